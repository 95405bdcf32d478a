/* store_budget — the CRMs' call allowances shared by every process, in Redis.
 *
 * Owns the Marketo call budget and its pace, and the spent daily allowances of quota.c:
 *   cs:mkto:calls, cs:mkto:inflight
 *                             calls started in the last STORE_MKTO_WINDOW_MS (zset by start
 *                             time) and calls in flight (zset by the end of their lease)
 *   cs:mkto:calls:fix, cs:mkto:inflight:fix
 *                             the same of the calls jobs made (listings and corrections),
 *                             which take at most BACKFILL_MARKETO_SHARE of both, spread
 *                             evenly, and give it up while a live stream runs (pace.h)
 *   cs:mkto:pace, cs:mkto:read, cs:mkto:rate
 *                             the pace of reads toward Marketo: when the calls made are one
 *                             pace apart again, when the last paced read began, and the
 *                             arrival rate measured over the last span
 *   cs:quota:<crm>, cs:quota:<crm>:probe
 *                             a CRM's spent allowance: the epoch ms when calls may resume
 *                             (expiring then), and that a probe must find room first
 * The budget runs on Redis's clock, so every process counts on the same one; taking a permit
 * and the read gate are each one script (service/lua/). */
#ifndef CS_STORE_BUDGET_H
#define CS_STORE_BUDGET_H

#include "store.h"

#include <stdbool.h>
#include <stddef.h>

#define STORE_MKTO_FIX_CALLS    "cs:mkto:calls:fix"
#define STORE_MKTO_FIX_INFLIGHT "cs:mkto:inflight:fix"

/* The Marketo call budget shared by every process (cs:mkto:calls, cs:mkto:inflight): takes
 * a permit when fewer than calls_per_window calls started in the last window_ms and fewer
 * than max_concurrent are in flight. share > 0 makes it a job's call: it also needs room in
 * the jobs' share (pace_share_calls, pace_share_concurrent of share; PACE_BUSY_SHARE_CALLS
 * while live changes toward Marketo arrive at PACE_LIGHT_RATE or more), one share's pace
 * after the jobs' last call, and does not move the live pace; share 0 is a live call, which
 * moves the pace (counted on the window's calls less the jobs' calls in it, or less
 * PACE_BUSY_SHARE_CALLS while live changes stream, and no faster than the calls in the window
 * leave it). Returns 0 (permit taken, token recorded), or the milliseconds to
 * wait before asking again (> 0), or -1 on a Redis error. */
long store_mkto_acquire(store *s, const char *token, int calls_per_window, long window_ms,
                        int max_concurrent, double share, char *err, size_t errlen);
int store_mkto_release(store *s, const char *token, char *err, size_t errlen);

/* Whether a worker may read the queue toward Marketo (STORE_Q_SF) now: 0, or the ms to wait
 * (-1 on a Redis error). Reading waits for a permit of the budget above. While changes
 * arrive at light_rate per second or more, it also waits for the pace (every process shares
 * it, cs:mkto:read and cs:mkto:pace): a paced read starts at most once per window /
 * (calls_per_window - 3), and only while the calls made (every permit counts) are at most
 * two ahead of one per that pace; then *paced_ms is set to the pace (else 0) and *calls to
 * the calls that tolerance has room for now: read what waits, not what comes next, and no
 * more than those calls carry. So a steady stream is written in evenly spaced calls, each
 * carrying what gathered since the last, instead of spending the window's calls at once on a
 * few changes each and waiting for the next window; an occasional change is not held. */
long store_mkto_gate(store *s, int calls_per_window, int max_concurrent, long light_rate,
                     long *paced_ms, int *calls, char *err, size_t errlen);

/* Which of jobs' corrections a worker may read now: toward Marketo (STORE_Q_FIX_SF)
 * *mkto_room > 0, the calls the jobs' share has left in the window, when some are unread, no
 * live change toward Marketo is, and a permit of the budget and of the share is free; toward
 * Salesforce (STORE_Q_FIX_MKTO) *to_sf, when some are unread and no live change toward
 * Salesforce is. *busy: live changes toward Marketo arrive at PACE_LIGHT_RATE or more, so the
 * jobs' share is shrunk to PACE_BUSY_SHARE_CALLS (pace.h).
 * Corrections have no pace: they are read only when no live change waits (worker.c). 0, or
 * -1 with err. */
int store_fix_gate(store *s, int calls_per_window, int max_concurrent, double share, int *mkto_room,
                   bool *to_sf, bool *busy, char *err, size_t errlen);

/* The Marketo budget as mkto_client's limiter: one per client (thread). acquire waits for a
 * permit (returns -1 when Redis fails or the stop flag becomes true); with a wait limit > 0 it
 * waits no longer than that and returns the milliseconds still to wait instead (> 0), so that
 * a worker can put Marketo-bound events aside and go on with others. release gives it back.
 * holder names the permits' owner (a process and thread). new: NULL when out of memory. */
#define STORE_MKTO_WINDOW_MS 21000 /* Marketo's 20 s plus a second for clock and transit skew */
typedef struct store_mkto_budget store_mkto_budget;
store_mkto_budget *store_mkto_budget_new(store *st, int calls_per_20s, int max_concurrent,
                                         const char *holder);
void store_mkto_budget_free(store_mkto_budget *b);
/* The longest wait for a permit (0: as long as it takes) and the flag that ends a wait. */
void store_mkto_budget_set_wait(store_mkto_budget *b, long max_wait_ms, const _Atomic bool *stop);
long store_mkto_budget_wait(const store_mkto_budget *b);
bool store_mkto_budget_stopping(const store_mkto_budget *b);
/* share > 0: the calls are a job's, within this share (BACKFILL_MARKETO_SHARE); 0: live. */
void store_mkto_budget_set_share(store_mkto_budget *b, double share);
int store_mkto_budget_acquire(void *budget);
void store_mkto_budget_release(void *budget);

/* ---- CRM allowances (quota.c) ---- */

/* A CRM's spent allowance, shared by every process: cs:quota:<crm> (its value the epoch ms
 * when calls may resume, expiring then) and cs:quota:<crm>:probe (calls may resume only once
 * a probe found room). crm is "salesforce" or "marketo". get: *pause_ms the time left (0:
 * none); set: pause for pause_ms, with probe also marking that a probe must come first;
 * clear: both gone. 0 or -1. */
int store_quota_get(store *s, const char *crm, long *pause_ms, bool *probe, char *err,
                    size_t errlen);
int store_quota_pause(store *s, const char *crm, long pause_ms, bool probe, char *err,
                      size_t errlen);
int store_quota_clear(store *s, const char *crm, char *err, size_t errlen);

/* Whether changes toward Marketo want its call budget now: some wait to be read toward it,
 * they arrive at light_rate per second or more, or half the window's calls are spent (*busy).
 * A call that only refines (reading leads' sfdc ids toward Salesforce) is then left out. 0 or
 * -1 with err. */
int store_mkto_busy(store *s, int calls_per_window, long light_rate, bool *busy, char *err,
                    size_t errlen);

#endif
