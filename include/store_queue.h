/* store_queue — the two queues of received events, in Redis.
 *
 * Owns the queues and everything an event passes through on its way to being applied:
 *   cs:events:sf, cs:events:mkto
 *                             the two live queues: streams of the events received from Salesforce
 *                             (applied toward Marketo) and from Marketo (toward Salesforce);
 *                             fields `event` (event JSON), `attempts`, `error` (last
 *                             failure); consumer group `workers` on each. Two queues so that
 *                             changes toward Salesforce never wait in line behind the
 *                             rate-limited ones toward Marketo, and the latter gather in
 *                             order while Marketo's budget is spent
 *   cs:events:fix:sf, cs:events:fix:mkto
 *                             the corrections of jobs (backfill, reconciliation), in the same
 *                             form and group, one stream per direction, read below the live
 *                             ones (store_read_prio)
 *   cs:dedup:<sf|mkto>:<id>   de-duplication key of a received event (value: stream id),
 *                             expires after STORE_DEDUP_TTL_S
 *   cs:retry, cs:retry:recv   events waiting for a retry (of both queues; each member names
 *                             its queue): zsets of the same members scored by due time and by
 *                             receive time
 *   cs:retry:recv:sf, cs:retry:recv:mkto, cs:retry:recv:fix:sf, cs:retry:recv:fix:mkto
 *                             the entry ids of those retries, per queue, by receive time
 *   cs:parked:<programId>, cs:parked:programs  events of a disabled mapping, in order (and
 *                             cs:parked:quota:<crm>: events waiting for that CRM's daily
 *                             allowance, parked under the program id "quota:<crm>")
 * Enqueueing with the de-duplication key, acknowledging with a retry or a park: each is one
 * script (service/lua/), so Redis never holds one part without the other. Dead letters are
 * store_dead.h's. */
#ifndef CS_STORE_QUEUE_H
#define CS_STORE_QUEUE_H

#include "event.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_DEDUP_TTL_S (26 * 3600) /* > Salesforce's 24 h redelivery window */
#define STORE_GROUP       "workers"

/* The queues, named by where their events come from: the live changes the CRMs reported,
 * and the corrections of jobs (jobs.h: backfill, reconciliation), each in a queue of its own
 * per direction, read only when the live queue of that direction has nothing ready, so that
 * a backfill of 100,000 members never stands in line before a live change. */
typedef enum {
    STORE_Q_SF = 0,       /* cs:events:sf: from Salesforce, toward Marketo */
    STORE_Q_MKTO = 1,     /* cs:events:mkto: from Marketo, toward Salesforce */
    STORE_Q_FIX_SF = 2,   /* cs:events:fix:sf: corrections toward Marketo */
    STORE_Q_FIX_MKTO = 3, /* cs:events:fix:mkto: corrections toward Salesforce */
} store_queue;
#define STORE_NQUEUES 4
/* The stream key of a queue ("cs:events:sf", "cs:events:mkto", "cs:events:fix:sf",
 * "cs:events:fix:mkto"). */
const char *store_stream(store_queue q);
/* The queue an event goes to: the one of its source, a correction's (ev->job set) among the
 * corrections. */
store_queue store_queue_of(const event *ev);
/* Whether q's events are written to Salesforce (they came from Marketo); whether q holds
 * corrections. */
bool store_queue_to_salesforce(store_queue q);
bool store_queue_is_fix(store_queue q);

/* Appends n events, each to its source's queue, skipping those whose de-duplication key exists,
 * atomically. added[i] is set to true for an event stored, false for a duplicate. Returns 0, or -1
 * when Redis could not take them (then nothing of the batch was stored). */
int store_enqueue(store *s, const event *evs, size_t n, bool *added, char *err, size_t errlen);

/* As store_enqueue, for events spread over many requests (commit.c's groups). */
int store_enqueue_refs(store *s, const event *const *evs, size_t n, bool *added, char *err,
                       size_t errlen);

/* Events waiting in both live queues (depth) and the age of the oldest, in seconds (0 when
 * empty). Jobs' corrections are not received events and are left out (their jobs count
 * them), but for those waiting for a retry. */
int store_queue_stats(store *s, long long *depth, double *oldest_age_s, char *err, size_t errlen);

/* ---- worker queue ---- */

typedef struct {
    char id[32];   /* stream entry id */
    store_queue q; /* the queue it was read from */
    char *json;    /* event JSON (malloc'd) */
    size_t len;
    int attempts;    /* failed tries so far */
    char error[256]; /* the last failure, if any */
} store_entry;

void store_entries_free(store_entry *e, size_t n);

/* Creates the consumer groups when missing (also after Redis lost them). */
int store_group_ensure(store *s, char *err, size_t errlen);

/* Reads up to max new entries of each queue q with want[q] for consumer, waiting up to
 * block_ms for any (< 0: not at all). *out is malloc'd (free with store_entries_free);
 * returns the count, or -1 with err. */
long store_read(store *s, const char *consumer, const bool want[STORE_NQUEUES], size_t max,
                int block_ms, store_entry **out, char *err, size_t errlen);

/* Claims entries of queue q that another consumer has held for at least min_idle_ms. */
long store_claim(store *s, store_queue q, const char *consumer, long min_idle_ms, size_t max,
                 store_entry **out, char *err, size_t errlen);

/* Resets the idle time of entries of queue q that consumer holds (XCLAIM ... JUSTID), so
 * that a worker still working on them is not taken for a stopped one. */
int store_touch(store *s, store_queue q, const char *consumer, const char *const *ids, size_t n,
                char *err, size_t errlen);

/* Acknowledges and deletes finished entries of queue q. */
int store_ack(store *s, store_queue q, const char *const *ids, size_t n, char *err, size_t errlen);

/* Moves an entry to the retry set, due at due_ms, with attempts and the error kept. */
int store_retry(store *s, const store_entry *e, int attempts, int64_t due_ms, const char *error,
                char *err, size_t errlen);

/* Puts an entry back for another worker at once (a member lock was busy); attempts kept. */
int store_defer(store *s, const store_entry *e, int64_t due_ms, char *err, size_t errlen);

/* Moves retries due by now_ms back into their queues; returns how many. */
long store_promote_due(store *s, int64_t now_ms, size_t max, char *err, size_t errlen);

/* Parks an entry of a disabled mapping; store_unpark puts a program's parked entries back
 * into their queues, in order, and returns how many. */
int store_park(store *s, const store_entry *e, const char *program_id, char *err, size_t errlen);
long store_unpark(store *s, const char *program_id, char *err, size_t errlen);
/* Program ids with parked events (for a worker to re-check); caller frees each and the array. */
long store_parked_programs(store *s, char ***out, char *err, size_t errlen);

/* ---- the queues by direction ---- */

/* The events waiting to be written to one CRM: queued (also held by a worker), waiting for a
 * retry, or parked while its daily allowance is spent. oldest_age_s: seconds since the
 * oldest of them was received (of the head of its queue, its oldest retry and the head of
 * the allowance list); 0 when none wait. */
typedef struct {
    long long depth;
    double oldest_age_s;
} store_queue_way;

typedef struct {
    char program_id[EV_NUMID_MAX];
    long long parked;
} store_parked_count;

/* The queues at one moment (one script): depth is store_queue_stats's (everything waiting,
 * with the events parked by disabled mappings); oldest_age_s the older of the two ways;
 * parked the programs whose disabled mapping holds events, most first (malloc'd, see
 * store_queue_detail_free). Retries scheduled by a version without cs:retry:recv:<queue>
 * count in depth only, until they come due. 0, or -1 with err. */
typedef struct {
    long long depth;
    double oldest_age_s;
    store_queue_way to_salesforce, to_marketo;
    store_parked_count *parked;
    size_t nparked;
} store_queue_detail;
int store_queue_detail_get(store *s, store_queue_detail *out, char *err, size_t errlen);
void store_queue_detail_free(store_queue_detail *d);

/* The corrections jobs queued (jobs.h) still waiting to be written to each CRM: their queue
 * (also held by a worker) and their retries. They are counted apart from the live queues so
 * that a backfill's hundred thousand corrections do not read as a stuck live path. 0, or -1
 * with err. */
int store_fix_depth(store *s, long long *to_marketo, long long *to_salesforce, char *err,
                    size_t errlen);

#endif
