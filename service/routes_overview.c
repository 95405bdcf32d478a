/* routes_overview — GET /v1/overview. See include/routes_overview.h. */
#include "routes_overview.h"

#include "event.h"
#include "job.h"
#include "metrics.h"
#include "routes_health.h"
#include "store_dead.h"
#include "store_queue.h"

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (24LL * 3600 * 1000)

/* The sample names of the families the console charts (a histogram by its three series). */
static const char *const CHARTED[] = {
    "campaign_sync_events_applied_total",      "campaign_sync_apply_latency_seconds_bucket",
    "campaign_sync_apply_latency_seconds_sum", "campaign_sync_apply_latency_seconds_count",
    "campaign_sync_crm_errors_total",          "campaign_sync_retries_total",
    "campaign_sync_salesforce_api_usage",      "campaign_sync_dead_letters_total",
};

static bool charted(const char *line, size_t len) {
    size_t n = strcspn(line, "{ \n");
    if (n > len) return false;
    for (size_t i = 0; i < sizeof CHARTED / sizeof CHARTED[0]; i++)
        if (strlen(CHARTED[i]) == n && memcmp(line, CHARTED[i], n) == 0) return true;
    return false;
}

/* The sample lines of the charted families out of the whole registry, whole lines up to
 * OVERVIEW_METRICS_MAX bytes; *truncated when some were left out. NULL when out of memory. */
static char *charted_lines(bool *truncated) {
    size_t len = 0;
    char *all = metrics_render(&len);
    if (!all) return NULL;
    char *out = malloc(OVERVIEW_METRICS_MAX + 1);
    size_t used = 0;
    *truncated = false;
    for (const char *p = all; out && p < all + len;) {
        const char *nl = memchr(p, '\n', (size_t)(all + len - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(all + len - p);
        if (*p != '#' && charted(p, n)) {
            if (used + n > OVERVIEW_METRICS_MAX) {
                *truncated = true;
                break;
            }
            memcpy(out + used, p, n);
            used += n;
        }
        p += n;
    }
    free(all);
    if (out) out[used] = '\0';
    return out;
}

static cJSON *way_json(long long depth, double oldest_age_s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "depth", (double)depth);
    cJSON_AddNumberToObject(o, "oldestAgeSeconds", oldest_age_s);
    return o;
}

/* "queues" and "parked" from one reading of the queues; -1 with err when Redis failed. */
static int add_queues(cJSON *o, store *st, char *err, size_t errlen) {
    store_queue_detail d;
    if (store_queue_detail_get(st, &d, err, errlen) != 0) return -1;
    cJSON *q = cJSON_AddObjectToObject(o, "queues");
    cJSON_AddItemToObject(q, "total", way_json(d.depth, d.oldest_age_s));
    cJSON_AddItemToObject(q, "toSalesforce",
                          way_json(d.to_salesforce.depth, d.to_salesforce.oldest_age_s));
    cJSON_AddItemToObject(q, "toMarketo", way_json(d.to_marketo.depth, d.to_marketo.oldest_age_s));
    long long parked = 0;
    cJSON *programs = cJSON_CreateArray();
    for (size_t i = 0; i < d.nparked; i++) {
        parked += d.parked[i].parked;
        if (i >= OVERVIEW_PARKED_MAX) continue;
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "programId", d.parked[i].program_id);
        cJSON_AddNumberToObject(p, "events", (double)d.parked[i].parked);
        cJSON_AddItemToArray(programs, p);
    }
    cJSON *pk = cJSON_AddObjectToObject(o, "parked");
    cJSON_AddNumberToObject(pk, "events", (double)parked);
    cJSON_AddNumberToObject(pk, "programs", (double)d.nparked);
    cJSON_AddItemToObject(pk, "top", programs);
    store_queue_detail_free(&d);
    return 0;
}

/* "deadLetters": those made in the last 24 hours, counted up to OVERVIEW_DEAD_MAX ("more":
 * there are others). -1 with err when Redis failed. */
static int add_dead_letters(cJSON *o, store *st, char *err, size_t errlen) {
    store_dead_entry *e = NULL;
    long n = store_dead_scan(st, event_now_ms() - DAY_MS, INT64_MAX, NULL, OVERVIEW_DEAD_MAX + 1,
                             &e, err, errlen);
    if (n < 0) return -1;
    store_dead_entries_free(e, (size_t)n);
    cJSON *d = cJSON_AddObjectToObject(o, "deadLetters");
    cJSON_AddNumberToObject(d, "last24h", (double)(n > OVERVIEW_DEAD_MAX ? OVERVIEW_DEAD_MAX : n));
    cJSON_AddBoolToObject(d, "more", n > OVERVIEW_DEAD_MAX);
    return 0;
}

static void add_jobs(cJSON *o) {
    cJSON *j = cJSON_AddObjectToObject(o, "jobsRunning");
    for (job_kind k = JOB_BACKFILL; k <= JOB_RECONCILE; k++)
        cJSON_AddNumberToObject(j, job_kind_name(k),
                                metrics_value(M_JOBS_RUNNING, job_kind_name(k)));
}

static void get_overview(http_request *req, void *ud) {
    if (!admin_authorized(req, routes_config(ud))) return;
    store *st = admin_redis(req, ud);
    if (!st) return;
    bool ready, truncated;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "ready",
                          routes_health_readiness(((const routes_ctx *)ud)->health, &ready));
    char err[STORE_ERR_MAX];
    if (add_queues(o, st, err, sizeof err) != 0 || add_dead_letters(o, st, err, sizeof err) != 0) {
        cJSON_Delete(o);
        admin_unavailable(req, err);
        return;
    }
    add_jobs(o);
    char *lines = charted_lines(&truncated);
    if (!lines) {
        cJSON_Delete(o);
        http_reply_error(req, 500, "internal", "out of memory while rendering metrics");
        return;
    }
    cJSON_AddStringToObject(o, "metrics", lines);
    cJSON_AddBoolToObject(o, "metricsTruncated", truncated);
    free(lines);
    admin_reply_json(req, 200, o);
}

size_t routes_overview(http_route *out, size_t max, const routes_ctx *ctx) {
    void *ud = (void *)ctx;
    const http_route r[] = {
        {"GET", "/v1/overview", get_overview, ud, NULL, routes_admin_authorize,
         ROUTES_ADMIN_MAX_BODY},
    };
    size_t n = sizeof r / sizeof r[0];
    if (n > max) n = max;
    memcpy(out, r, sizeof r[0] * n);
    return n;
}
