/* commit — group commit of the events the webhooks receive.
 *
 * Owns one thread and its Redis handle. A request hands its events in as a job and waits
 * without holding an HTTP thread (http_req_defer); the thread takes every job waiting, up to
 * COMMIT_MAX_EVENTS events, stores them with one enqueue script (one round trip, one fsync),
 * and calls each job's done callback, which resumes its request. Jobs that arrive during a
 * round trip form the next group, so under load Redis runs one script per group instead of
 * one per request and no HTTP thread blocks on Redis. A job may also carry items that cannot
 * become events (unusable Salesforce notifications): they are stored as dead letters in the
 * same script. Each job's outcome is its own: all of its events and dead letters stored (each
 * either added or found a duplicate) or none. */
#ifndef CS_COMMIT_H
#define CS_COMMIT_H

#include "config.h"
#include "event.h"
#include "store_dead.h"

#include <stdbool.h>
#include <stddef.h>

#define COMMIT_MAX_EVENTS 1000 /* events and dead letters of one group */

#define COMMIT_BUSY (-2)

typedef struct committer committer;

typedef struct commit_job {
    const event *evs; /* the events, kept alive by the submitter until done is called */
    size_t n;
    bool *added; /* n flags: stored (true) or a duplicate (false); set when rc == 0 */
    const store_unusable *dead; /* ndead items for the dead letters, kept alive likewise */
    size_t ndead;
    bool *dead_added; /* ndead flags, as added */
    int rc;           /* 0 stored; -1 not stored (err says why); COMMIT_BUSY: refused, too many
                         events wait for Redis already */
    char err[STORE_ERR_MAX];
    /* Called once on the committer's thread with rc, added and err set; the job is not
     * touched after it. */
    void (*done)(struct commit_job *job, void *ud);
    void *ud;
    struct commit_job *next;
} commit_job;

/* Starts the thread; NULL with the reason in err. At most max_waiting events may wait for
 * Redis at once (~1.2 KB each, plus their requests): while Redis is slow or away, requests
 * beyond that fail at once (Salesforce gets 503 and delivers again; Marketo's events go to
 * the spool) instead of piling up in memory. */
committer *committer_start(const struct redis_target *target, size_t max_waiting, char *err,
                           size_t errlen);

/* Queues a job (n + ndead > 0). It fails at once, done running on the calling thread, after
 * committer_stop (rc -1) or when max_waiting events would be exceeded (rc COMMIT_BUSY). */
void committer_submit(committer *c, commit_job *job);

/* Stores every job queued, then stops the thread and frees c. */
void committer_stop(committer *c);

#endif
