/* jobs_priv — what the job thread (jobs.c) shares with the running of one job (job_run.c):
 * the context a job runs in. Nothing else includes it. */
#ifndef CS_JOBS_PRIV_H
#define CS_JOBS_PRIV_H

#include "jobs.h"

#include "config.h"
#include "crm.h"
#include "store.h"
#include "store_jobs.h"

#include <stdatomic.h>
#include <stdbool.h>

/* One job being run by this process. */
typedef struct {
    const struct config *cfg;
    store *st;
    crm *c;                  /* its Marketo calls within the jobs' share of the budget */
    const char *owner;       /* this process's token on the mapping's lock */
    const atomic_bool *stop; /* the process stops: leave the job for another process */
    const atomic_bool *lost; /* the heartbeat could not renew the lock: another process may
                                have taken the job over */
    store_job job;           /* as taken: its phase and cursor say where to go on */
} job_ctx;

/* Runs the job from where it stands until it waits for its corrections' outcomes (applying),
 * ends (done, failed, cancelled: recorded) or is left for another process (stop, lost). */
void job_run(job_ctx *jc);

/* Ends the job as state (by this process: jc->owner holds its lock) with error, observing its
 * duration. */
void job_end(job_ctx *jc, job_state state, const char *error);

#endif
