/* routes_jobs — the jobs of the admin API (backfill, reconciliation; jobs.h):
 *   GET    /v1/jobs?programId=        the jobs, newest first (one program's, or every one)
 *   GET    /v1/jobs/{id}              one job: kind, trigger, state, phase, counts, times, error
 *   GET    /v1/jobs/{id}/details      its differences, a page at a time (?cursor=, ?limit=)
 *   DELETE /v1/jobs/{id}              cancels it: at once when no process works on it (200),
 *                                     at the running job's next page otherwise (202)
 *
 * Owns the JSON shape of a job (openapi.yaml, Job) for these routes and for the answers that
 * start one (routes_admin.c: POST .../reconcile, a mapping created or enabled), with the admin
 * API's bearer-token authentication. A job's report is its summary plus paged details, never
 * one unbounded body. */
#ifndef CS_ROUTES_JOBS_H
#define CS_ROUTES_JOBS_H

#include "http_server.h"
#include "routes_admin.h"
#include "store_jobs.h"

#include <cJSON.h>
#include <stddef.h>

/* The job as the API answers it (caller frees); NULL when out of memory. */
cJSON *routes_job_json(const store_job *j);

/* Writes the routes into out; returns how many. ctx must outlive the server. */
size_t routes_jobs(http_route *out, size_t max, const routes_ctx *ctx);

#endif
