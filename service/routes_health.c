/* routes_health — liveness, readiness and metrics. See include/routes_health.h. */
#include "routes_health.h"

#include "log.h"
#include "metrics.h"
#include "store.h"
#include "store_queue.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHECKS            8
#define READY_PING_TIMEOUT_MS 500
#define HEALTH_MAX_BODY       4096 /* GETs: nothing to read */

struct routes_health_ctx {
    store_pool *stores; /* borrowed */
    struct {
        const char *name;
        health_check_fn fn;
        void *ud;
        bool required;
    } checks[MAX_CHECKS];
    int nchecks;
};

static void collect_queue(void *ud);

routes_health_ctx *routes_health_new(store_pool *stores) {
    routes_health_ctx *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->stores = stores;
    if (metrics_on_collect(collect_queue, h) != 0) {
        free(h);
        return NULL;
    }
    return h;
}

void routes_health_free(routes_health_ctx *h) {
    if (!h) return;
    metrics_remove_collect(collect_queue, h);
    free(h);
}

int routes_health_add_check(routes_health_ctx *h, const char *name, health_check_fn fn, void *ud,
                            bool required) {
    if (h->nchecks >= MAX_CHECKS) return -1;
    h->checks[h->nchecks].name = name;
    h->checks[h->nchecks].fn = fn;
    h->checks[h->nchecks].ud = ud;
    h->checks[h->nchecks].required = required;
    h->nchecks++;
    return 0;
}

static void healthz(http_request *req, void *ud) {
    (void)ud;
    static const char body[] = "{\"status\":\"ok\"}";
    http_reply(req, 200, "application/json", body, sizeof body - 1);
}

#define STATE_MAX 24

/* One check's state in the answer: "ok", the one lowercase word a failing check's detail
 * starts with ("waiting: ..."), or "failing". The detail itself (a Redis host and port, a
 * CRM's error text) goes to the log only, rate-limited: /readyz answers anyone who can reach
 * it. */
static const char *check_state(const char *name, int rc, const char *detail,
                               char state[STATE_MAX]) {
    if (rc == 0) return "ok";
    LOG_KV_LIMITED(LOG_WARN, "readyz: check failing", "check", name, "detail", detail);
    size_t n = strspn(detail, "abcdefghijklmnopqrstuvwxyz_");
    if (n == 0 || n >= STATE_MAX || detail[n] != ':') return "failing";
    memcpy(state, detail, n);
    state[n] = '\0';
    return state;
}

cJSON *routes_health_readiness(routes_health_ctx *h, bool *ready) {
    cJSON *o = cJSON_CreateObject();
    cJSON *c = cJSON_CreateObject();
    const char *failing = NULL;
    char detail[STORE_ERR_MAX], state[STATE_MAX];

    store *st = store_pool_get(h->stores);
    int rc = st ? store_ping(st, READY_PING_TIMEOUT_MS, detail, sizeof detail) : -1;
    if (!st) snprintf(detail, sizeof detail, "out of memory");
    cJSON_AddStringToObject(c, "redis", check_state("redis", rc, detail, state));
    if (rc != 0) failing = "redis";
    for (int i = 0; i < h->nchecks; i++) {
        const char *name = h->checks[i].name;
        rc = h->checks[i].fn(h->checks[i].ud, st, detail, sizeof detail);
        cJSON_AddStringToObject(c, name, check_state(name, rc, detail, state));
        if (rc != 0 && h->checks[i].required && !failing) failing = name;
    }
    *ready = !failing;
    cJSON_AddStringToObject(o, "status", failing ? "not_ready" : "ready");
    if (failing) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: failing (the service's log says why)", failing);
        cJSON_AddStringToObject(o, "error", "not_ready");
        cJSON_AddStringToObject(o, "message", msg);
    }
    cJSON_AddItemToObject(o, "checks", c);
    return o;
}

static void readyz(http_request *req, void *ud) {
    bool ready;
    cJSON *o = routes_health_readiness(ud, &ready);
    int status = ready ? 200 : 503;
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!body) {
        http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    http_reply_owned(req, status, "application/json", body, strlen(body));
}

static void metrics_page(http_request *req, void *ud) {
    (void)ud;
    size_t len = 0;
    char *body = metrics_render(&len);
    if (!body) {
        http_reply_error(req, 500, "internal", "out of memory while rendering metrics");
        return;
    }
    http_reply_owned(req, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
}

#define PARKED_SERIES_MAX 100 /* programs with a campaign_sync_parked_events series */

/* The queue gauges: the total (no queue label, SPEC section 9) and per CRM the events are to
 * be written to ("toward": which side is stuck), and the events parked per program of a
 * disabled mapping (the programs with most, at most PARKED_SERIES_MAX); jobs' corrections
 * apart (campaign_sync_corrections_waiting). Runs on the scraping
 * thread; a Redis outage leaves the last values in place. */
static void collect_queue(void *ud) {
    const routes_health_ctx *h = ud;
    store *st = store_pool_get(h->stores);
    store_queue_detail d;
    char err[STORE_ERR_MAX];
    if (!st || store_queue_detail_get(st, &d, err, sizeof err) != 0) return;
    metrics_set(M_QUEUE_DEPTH, (double)d.depth, "");
    metrics_set(M_QUEUE_OLDEST_AGE, d.oldest_age_s, "");
    metrics_set(M_QUEUE_DEPTH, (double)d.to_salesforce.depth, "salesforce");
    metrics_set(M_QUEUE_OLDEST_AGE, d.to_salesforce.oldest_age_s, "salesforce");
    metrics_set(M_QUEUE_DEPTH, (double)d.to_marketo.depth, "marketo");
    metrics_set(M_QUEUE_OLDEST_AGE, d.to_marketo.oldest_age_s, "marketo");
    size_t n = d.nparked < PARKED_SERIES_MAX ? d.nparked : PARKED_SERIES_MAX;
    const char *ids[PARKED_SERIES_MAX];
    double counts[PARKED_SERIES_MAX];
    for (size_t i = 0; i < n; i++) {
        ids[i] = d.parked[i].program_id;
        counts[i] = (double)d.parked[i].parked;
    }
    metrics_set_all(M_PARKED_EVENTS, n, ids, counts);
    store_queue_detail_free(&d);
    long long fix_mk = 0, fix_sf = 0;
    if (store_fix_depth(st, &fix_mk, &fix_sf, err, sizeof err) != 0) return;
    metrics_set(M_CORRECTIONS_WAITING, (double)fix_sf, "salesforce");
    metrics_set(M_CORRECTIONS_WAITING, (double)fix_mk, "marketo");
}

size_t routes_health(http_route *out, size_t max, routes_health_ctx *h) {
    const http_route r[] = {
        {"GET", "/healthz", healthz, h, NULL, NULL, HEALTH_MAX_BODY},
        {"GET", "/readyz", readyz, h, NULL, NULL, HEALTH_MAX_BODY},
        {"GET", "/metrics", metrics_page, h, NULL, NULL, HEALTH_MAX_BODY},
    };
    size_t n = sizeof r / sizeof r[0];
    if (n > max) n = max;
    memcpy(out, r, sizeof r[0] * n);
    return n;
}

size_t routes_health_liveness(http_route *out, size_t max, routes_health_ctx *h) {
    return routes_health(out, max < 1 ? max : 1, h); /* /healthz comes first */
}
