/* store — everything the service keeps in Redis.
 *
 * Owns the Redis connection (the only module that includes hiredis) and the key layout:
 *   cs:events              stream of queued events (field `event` = event JSON,
 *                          `attempts`); consumer group `workers`
 *   cs:dedup:<src>:<id>    de-duplication key of a received event, value = stream id,
 *                          expires after STORE_DEDUP_TTL_S
 * An event and its de-duplication key are written by one Lua script, so Redis never holds
 * one without the other. A handle is one connection and is not thread-safe: each thread
 * uses its own (store_thread). Every call reconnects when the connection broke, with a
 * growing pause between failed attempts so a Redis outage never becomes a hot loop. */
#ifndef CS_STORE_H
#define CS_STORE_H

#include "config.h"
#include "event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_ERR_MAX 256
#define STORE_DEDUP_TTL_S (26 * 3600) /* > Salesforce's 24 h redelivery window */
#define STORE_STREAM "cs:events"
#define STORE_GROUP "workers"

typedef struct store store;

/* Creates a handle for target; connects lazily. NULL only when out of memory. */
store *store_open(const struct redis_target *target);
void store_free(store *s);

/* PING with the given timeout; 0 when Redis answered, -1 with the reason in err. */
int store_ping(store *s, int timeout_ms, char *err, size_t errlen);

/* Appends n events, skipping those whose de-duplication key exists, atomically.
 * added[i] is set to true for an event stored, false for a duplicate. Returns 0, or -1 when
 * Redis could not take them (then nothing of the batch was stored). */
int store_enqueue(store *s, const event *evs, size_t n, bool *added, char *err, size_t errlen);

/* Events waiting (depth) and the age of the oldest, in seconds (0 when empty). */
int store_queue_stats(store *s, long long *depth, double *oldest_age_s, char *err,
                      size_t errlen);

/* ---- one handle per thread ---- */

/* Sets the target every thread's handle connects to; call once before threads start. */
void store_thread_setup(const struct redis_target *target);
/* The calling thread's handle, created on first use; NULL only when out of memory. */
store *store_thread(void);
/* Frees every per-thread handle; call after all threads using them stopped. */
void store_thread_cleanup(void);

#endif
