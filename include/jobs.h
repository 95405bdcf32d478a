/* jobs — backfill and reconciliation as jobs that worker processes run.
 *
 * Owns creating a job for a mapping (one unfinished job per mapping at a time, whichever
 * process asks: a mapping created or enabled, POST .../reconcile, the hourly schedule, the
 * deleted-records poll's gap), and the job thread of each worker process: it takes a queued
 * job, or a running one whose process stopped (its lock expired: the job goes on from its
 * cursor, not from the start), runs it with the mapping's lock renewed by a heartbeat, ends
 * the jobs whose corrections all have an outcome, and stops a job whose cancel was asked at
 * its next page.
 *
 * Running one job (job_run.c) merges or compares the mapping's two member lists without
 * holding either in memory: the program's members are listed (member_lists.h) into Redis
 * (store_jobs.h, a hash by email), then the campaign's, each page compared with them, then
 * the program's members the campaign lacks; each person whose sides differ is decided as a
 * reconciliation decides (reconcile.h: the side that changed since the recorded state wins,
 * else the newer change, a membership over an absence) and queued as an ordinary correction
 * event in the corrections' queues (store_queue.h), below live changes, its Marketo calls
 * within BACKFILL_MARKETO_SHARE of the budget. The worker applies it under the normal rules
 * (one-way progression, F6 person creation, F11 dead letters) and counts its outcome on the
 * job. A page's counts, details and cursor are recorded in one step. */
#ifndef CS_JOBS_H
#define CS_JOBS_H

#include "config.h"
#include "job.h"
#include "status_map.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>

/* Queues a job of kind for mapping m unless the mapping has one unfinished. id (JOB_ID_MAX)
 * gets the new job's id, or the unfinished one's (*created false). 0, or -1 with err. */
int jobs_create(store *st, const struct config *cfg, const mapping *m, job_kind kind,
                job_trigger trigger, char *id, bool *created, char *err, size_t errlen);

/* The job thread of a worker process. NULL with err when it cannot start; cfg must outlive
 * it. jobs_runner_stop ends it after the page in progress (accepts NULL): the job stays
 * running and another process takes it over once its lock expires. */
typedef struct jobs_runner jobs_runner;
jobs_runner *jobs_runner_start(const struct config *cfg, char *err, size_t errlen);
void jobs_runner_stop(jobs_runner *r);

#endif
