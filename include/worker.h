/* worker — the loop that turns queued events into CRM changes.
 *
 * Owns the worker threads: each reads a batch from the Redis stream's consumer group, takes
 * a short lock per member (so two workers, in any process, never write the same member at
 * once), plans every event (plan.h), reads what the plan needs (a Marketo member status, a
 * campaign's default status), resolves people across the CRMs (creating a Lead in
 * Salesforce or a lead in Marketo when missing, one creation per email at a time), writes in
 * batches (sObject Collections of 200; Marketo status calls of 300 per program and status),
 * records the member state, and acknowledges. Failures retry with exponential backoff and
 * jitter (Retry-After honoured) until MAX_ATTEMPTS, then go to the dead-letter list with the
 * CRM's own text; permanent failures go there at once (plan decides which is which). Entries
 * held by a worker that died are claimed back after CLAIM_IDLE_MS. Nothing runs while sync is
 * disabled. Jobs' corrections (jobs.h) are read only when no live change of their direction
 * waits, by all threads but one, their Marketo calls within BACKFILL_MARKETO_SHARE, and each
 * one's outcome is counted on its job. The files of one batch's walk are listed in
 * service/worker_priv.h. */
#ifndef CS_WORKER_H
#define CS_WORKER_H

#include "config.h"
#include "store.h"

#include <stddef.h>

typedef struct worker_pool worker_pool;

/* Starts `threads` workers for live changes and two for jobs' corrections (one per direction);
 * NULL with err on failure. cfg must outlive the pool. */
worker_pool *worker_pool_start(const struct config *cfg, int threads, char *err, size_t errlen);

/* Asks every worker to stop after its current batch and waits for them. */
void worker_pool_stop(worker_pool *p);

/* Readiness check (routes_health_add_check): fails when events wait, sync is enabled and no
 * worker anywhere finished an event for READY_STALL_S. ud: the config; st: the asking
 * thread's Redis handle (NULL: out of memory). */
int worker_ready_check(void *ud, store *st, char *detail, size_t len);

#endif
