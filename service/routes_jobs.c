/* routes_jobs — list, read, page the details of and cancel jobs. See include/routes_jobs.h. */
#include "routes_jobs.h"

#include "event.h"
#include "job.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CANCEL_TRIES  5 /* a job that moves on while it is cancelled: read it again */
#define REDIS_PING_MS 500

static void add_time(cJSON *o, const char *name, int64_t ms) {
    char at[40];
    if (!ms) {
        cJSON_AddNullToObject(o, name);
        return;
    }
    event_format_time(ms, at, sizeof at);
    cJSON_AddStringToObject(o, name, at);
}

cJSON *routes_job_json(const store_job *j) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "kind", job_kind_name(j->kind));
    cJSON_AddStringToObject(o, "trigger", job_trigger_name(j->trigger));
    cJSON_AddStringToObject(o, "programId", j->program_id);
    cJSON_AddStringToObject(o, "campaignId", j->campaign_id);
    cJSON_AddStringToObject(o, "state", job_state_name(j->state));
    cJSON_AddStringToObject(o, "phase", job_phase_name(j->phase));
    add_time(o, "createdAt", j->created_ms);
    add_time(o, "startedAt", j->started_ms);
    add_time(o, "endedAt", j->ended_ms);
    if (j->error[0])
        cJSON_AddStringToObject(o, "error", j->error);
    else
        cJSON_AddNullToObject(o, "error");
    cJSON_AddBoolToObject(o, "cancelRequested", j->cancel);
    cJSON_AddNumberToObject(o, "takeovers", (double)j->takeovers);
    cJSON *c = cJSON_AddObjectToObject(o, "counts");
    cJSON *listed = cJSON_AddObjectToObject(c, "listed");
    cJSON_AddNumberToObject(listed, "marketo", (double)j->listed_marketo);
    cJSON_AddNumberToObject(listed, "salesforce", (double)j->listed_salesforce);
    cJSON_AddNumberToObject(c, "compared", (double)j->compared);
    cJSON *d = cJSON_AddObjectToObject(c, "differences");
    cJSON_AddNumberToObject(d, "missing_in_marketo", (double)j->missing_in_marketo);
    cJSON_AddNumberToObject(d, "missing_in_salesforce", (double)j->missing_in_salesforce);
    cJSON_AddNumberToObject(d, "status_differs", (double)j->status_differs);
    cJSON_AddNumberToObject(c, "queued", (double)j->queued);
    cJSON_AddNumberToObject(c, "applied", (double)j->applied);
    cJSON_AddNumberToObject(c, "skipped", (double)j->skipped);
    cJSON_AddNumberToObject(c, "deadLettered", (double)j->dead_lettered);
    cJSON *det = cJSON_AddObjectToObject(o, "details");
    cJSON_AddNumberToObject(det, "kept", (double)j->details);
    cJSON_AddNumberToObject(det, "dropped", (double)j->details_dropped);
    return o;
}

/* ?cursor= as an offset (absent: 0); false after answering 400. */
static bool read_offset(http_request *req, long *offset) {
    const char *c = http_req_query(req, "cursor");
    *offset = 0;
    if (!c) return true;
    char *end;
    long v = strtol(c, &end, 10);
    if (!*c || *end || v < 0 || strlen(c) > 12) {
        http_reply_error(req, 400, "invalid_parameter",
                         "cursor must be the \"next\" value of a previous page");
        return false;
    }
    *offset = v;
    return true;
}

/* The {id} of the path, read: false after answering (400, 404, 503). */
static bool read_job(http_request *req, store *st, store_job *j) {
    const char *id = http_req_param(req, "id");
    char err[STORE_ERR_MAX];
    if (!job_id_valid(id)) {
        /* Redis first, as every admin endpoint answers 503 first while Redis is away. */
        if (store_ping(st, REDIS_PING_MS, err, sizeof err) != 0)
            admin_unavailable(req, err);
        else
            http_reply_error(req, 404, "not_found", "no job %.60s", id ? id : "");
        return false;
    }
    switch (store_job_get(st, id, j, err, sizeof err)) {
    case STORE_FOUND: return true;
    case STORE_NOT_FOUND:
        http_reply_error(req, 404, "not_found",
                         "no job %s (finished jobs are kept JOB_RETENTION_S after their end)", id);
        return false;
    case STORE_ERROR: admin_unavailable(req, err); return false;
    }
    return false;
}

static void list_jobs(http_request *req, void *ud) {
    if (!admin_authorized(req, routes_config(ud))) return;
    long limit, offset;
    if (!admin_read_limit(req, &limit) || !read_offset(req, &offset)) return;
    const char *pid = http_req_query(req, "programId");
    if (pid && (!*pid || strlen(pid) >= EV_NUMID_MAX || strspn(pid, "0123456789") != strlen(pid))) {
        http_reply_error(req, 400, "invalid_parameter", "programId must be a Marketo program id");
        return;
    }
    store *st = admin_redis(req, ud);
    if (!st) return;
    store_job *jobs = calloc((size_t)limit, sizeof *jobs);
    char err[STORE_ERR_MAX];
    long next = -1;
    if (!jobs) {
        http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    long n = store_job_list(st, pid, offset, limit, jobs, &next, err, sizeof err);
    if (n < 0) {
        free(jobs);
        admin_unavailable(req, err);
        return;
    }
    cJSON *items = cJSON_CreateArray();
    for (long i = 0; i < n; i++)
        cJSON_AddItemToArray(items, routes_job_json(&jobs[i]));
    free(jobs);
    char nx[24] = "";
    if (next >= 0) snprintf(nx, sizeof nx, "%ld", next);
    admin_list_page(req, items, nx);
}

static void get_job(http_request *req, void *ud) {
    if (!admin_authorized(req, routes_config(ud))) return;
    store *st = admin_redis(req, ud);
    store_job *j = st ? malloc(sizeof *j) : NULL;
    if (st && !j) http_reply_error(req, 500, "internal", "out of memory");
    if (j && read_job(req, st, j)) admin_reply_json(req, 200, routes_job_json(j));
    free(j);
}

static void job_details(http_request *req, void *ud) {
    if (!admin_authorized(req, routes_config(ud))) return;
    long limit, offset;
    if (!admin_read_limit(req, &limit) || !read_offset(req, &offset)) return;
    store *st = admin_redis(req, ud);
    store_job *j = st ? malloc(sizeof *j) : NULL;
    if (st && !j) http_reply_error(req, 500, "internal", "out of memory");
    if (!j || !read_job(req, st, j)) {
        free(j);
        return;
    }
    char **texts = NULL, err[STORE_ERR_MAX];
    long next = -1;
    long n = store_job_details(st, j->id, offset, limit, &texts, &next, err, sizeof err);
    free(j);
    if (n < 0) {
        admin_unavailable(req, err);
        return;
    }
    cJSON *items = cJSON_CreateArray();
    for (long i = 0; i < n; i++) {
        cJSON *d = cJSON_Parse(texts[i]);
        if (d) cJSON_AddItemToArray(items, d);
        free(texts[i]);
    }
    free(texts);
    char nx[24] = "";
    if (next >= 0) snprintf(nx, sizeof nx, "%ld", next);
    admin_list_page(req, items, nx);
}

/* Cancels j (read): job_next says whether at once or at the running job's next page. The
 * status to answer with j read again, 409 when it had ended, or -1 after answering 503. */
static int cancel(http_request *req, store *st, store_job *j, const struct config *cfg) {
    char err[STORE_ERR_MAX], expect[64];
    for (int attempt = 0; attempt < CANCEL_TRIES; attempt++) {
        job_step step = job_next(j->state, j->phase, JOB_EV_CANCEL);
        if (!step.allowed) return 409;
        snprintf(expect, sizeof expect, "%s,%s", job_state_name(j->state),
                 job_phase_name(j->phase));
        store_job_change rc =
            step.cancel_asked
                ? store_job_cancel_ask(st, j->id, expect, err, sizeof err)
                : store_job_finish(st, j->id, j->program_id, "", JOB_CANCELLED, "", event_now_ms(),
                                   cfg->job_retention_s, expect, err, sizeof err);
        store_found f = rc == STORE_JOB_CHANGE_ERROR ? STORE_ERROR
                                                     : store_job_get(st, j->id, j, err, sizeof err);
        if (f == STORE_ERROR) {
            admin_unavailable(req, err);
            return -1;
        }
        if (f == STORE_NOT_FOUND) return 409; /* expired meanwhile */
        if (rc == STORE_JOB_CHANGED) {
            LOG_KV(LOG_INFO, step.cancel_asked ? "jobs: cancel asked" : "jobs: job cancelled",
                   "job_id", j->id, "program_id", j->program_id);
            return step.cancel_asked ? 202 : 200;
        }
    }
    http_reply_error(req, 503, "unavailable",
                     "job %s kept changing while it was cancelled; try "
                     "again",
                     j->id);
    return -1;
}

static void delete_job(http_request *req, void *ud) {
    const struct config *cfg = routes_config(ud);
    if (!admin_authorized(req, cfg)) return;
    store *st = admin_redis(req, ud);
    store_job *j = st ? malloc(sizeof *j) : NULL;
    if (st && !j) http_reply_error(req, 500, "internal", "out of memory");
    if (!j || !read_job(req, st, j)) {
        free(j);
        return;
    }
    int status = cancel(req, st, j, cfg);
    if (status == 409)
        http_reply_error(req, 409, "job_finished", "job %s has ended (%s): nothing to cancel",
                         j->id, job_state_name(j->state));
    else if (status > 0)
        admin_reply_json(req, status, routes_job_json(j));
    free(j);
}

size_t routes_jobs(http_route *out, size_t max, const routes_ctx *ctx) {
    void *ud = (void *)ctx;
    const http_route r[] = {
        {"GET", "/v1/jobs", list_jobs, ud, NULL, routes_admin_authorize, ROUTES_ADMIN_MAX_BODY},
        {"GET", "/v1/jobs/{id}", get_job, ud, NULL, routes_admin_authorize, ROUTES_ADMIN_MAX_BODY},
        {"DELETE", "/v1/jobs/{id}", delete_job, ud, NULL, routes_admin_authorize,
         ROUTES_ADMIN_MAX_BODY},
        {"GET", "/v1/jobs/{id}/details", job_details, ud, NULL, routes_admin_authorize,
         ROUTES_ADMIN_MAX_BODY},
    };
    size_t n = sizeof r / sizeof r[0];
    if (n > max) n = max;
    memcpy(out, r, sizeof r[0] * n);
    return n;
}
