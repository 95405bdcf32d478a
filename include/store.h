/* store — the connection to Redis, where the service keeps everything.
 *
 * Owns the Redis connection (with store_priv.h, the only code that includes hiredis): a
 * handle is one connection and is not thread-safe, so each thread uses its own (a store_pool
 * gives each thread that asks its handle). Every call reconnects when the connection broke, with a
 * growing pause between failed attempts so a Redis outage never becomes a hot loop. Also owns the
 * short-lived locks:
 *   cs:lock:<name>            (member, person creation, a poller's or a probe's turn)
 * What is stored is split by what it is, each module with its keys in its header:
 *   store_queue.h             the two queues, de-duplication, retries, parked events
 *   store_dead.h              dead letters
 *   store_members.h           member state, person links, our own CampaignMember deletions
 *   store_mappings.h          mappings, the switch, the audit log, progress, pollers' values,
 *                             program copies
 *   store_budget.h            the Marketo call budget and pace, the CRMs' spent allowances
 *   store_trace.h             each person's trace, the time-zone evidence
 *   store_jobs.h              jobs (backfill, reconciliation), their details and what a
 *                             running job keeps
 * Every state change that must not half-happen is one Lua script (service/lua/, embedded at
 * build time), each key it touches passed in KEYS; store_priv.h runs them. */
#ifndef CS_STORE_H
#define CS_STORE_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_ERR_MAX 256

/* Conventions of every store_* function: errors are a return value (-1, or the enum's
 * ERROR) with a sentence in the caller's err buffer (STORE_ERR_MAX is enough); a handle is
 * made by store_new and released by store_free, and whatever the store hands out is released
 * by its *_free function, which accepts NULL. */

/* What a call that looks up, deletes or replays one thing found. */
typedef enum {
    STORE_ERROR = -1,    /* Redis failed or refused: err says why */
    STORE_NOT_FOUND = 0, /* no such thing (nothing deleted, nothing to replay) */
    STORE_FOUND = 1,     /* found (and deleted, replayed: as the function says) */
} store_found;

typedef struct store store;

/* Creates a handle for target; connects lazily. NULL only when out of memory. */
store *store_new(const struct redis_target *target);
void store_free(store *s);

/* PING with the given timeout; 0 when Redis answered, -1 with the reason in err. */
int store_ping(store *s, int timeout_ms, char *err, size_t errlen);

/* Whether Redis runs with AOF on, and its appendfsync setting ("" when CONFIG is refused,
 * as some managed Redis services do). 0 or -1. */
int store_aof_status(store *s, bool *aof, char *fsync, size_t size, char *err, size_t errlen);

/* ---- locks ---- */

/* Tries to take each key (SET NX PX ttl_ms) for token; got[i] says which were taken. */
int store_lock_many(store *s, const char *const *keys, size_t n, const char *token, long ttl_ms,
                    bool *got, char *err, size_t errlen);
/* Releases the keys still held by token. */
int store_unlock_many(store *s, const char *const *keys, size_t n, const char *token, char *err,
                      size_t errlen);

/* ---- one handle per thread ---- */

/* A pool of handles to target, one per thread that asks (the HTTP server's threads). Made by
 * main and passed to whoever serves requests; NULL when out of memory or out of thread keys.
 * store_pool_free frees every thread's handle; call it after every thread using them stopped
 * (accepts NULL). */
typedef struct store_pool store_pool;
store_pool *store_pool_new(const struct redis_target *target);
void store_pool_free(store_pool *p);
/* The calling thread's handle (owned by the pool), created on first use; NULL only when out
 * of memory. It connects lazily: a Redis outage shows in the calls made with it. */
store *store_pool_get(store_pool *p);

#endif
