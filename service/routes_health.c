/* routes_health — liveness, readiness and metrics. See include/routes_health.h. */
#include "routes_health.h"

#include "log.h"
#include "metrics.h"
#include "store.h"
#include "store_queue.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#define MAX_CHECKS            8
#define READY_PING_TIMEOUT_MS 500
#define HEALTH_MAX_BODY       4096 /* GETs: nothing to read */

static struct {
    const char *name;
    health_check_fn fn;
    void *ud;
    bool required;
} checks[MAX_CHECKS];
static int nchecks;

void routes_health_add_check(const char *name, health_check_fn fn, void *ud, bool required) {
    if (nchecks >= MAX_CHECKS) return;
    checks[nchecks].name = name;
    checks[nchecks].fn = fn;
    checks[nchecks].ud = ud;
    checks[nchecks].required = required;
    nchecks++;
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

cJSON *routes_health_readiness(bool *ready) {
    cJSON *o = cJSON_CreateObject();
    cJSON *c = cJSON_CreateObject();
    const char *failing = NULL;
    char detail[STORE_ERR_MAX], state[STATE_MAX];

    store *st = store_thread();
    int rc = st ? store_ping(st, READY_PING_TIMEOUT_MS, detail, sizeof detail) : -1;
    if (!st) snprintf(detail, sizeof detail, "out of memory");
    cJSON_AddStringToObject(c, "redis", check_state("redis", rc, detail, state));
    if (rc != 0) failing = "redis";
    for (int i = 0; i < nchecks; i++) {
        rc = checks[i].fn(checks[i].ud, detail, sizeof detail);
        cJSON_AddStringToObject(c, checks[i].name, check_state(checks[i].name, rc, detail, state));
        if (rc != 0 && checks[i].required && !failing) failing = checks[i].name;
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
    (void)ud;
    bool ready;
    cJSON *o = routes_health_readiness(&ready);
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
    (void)ud;
    store *st = store_thread();
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

void routes_health_init(void) {
    metrics_on_collect(collect_queue, NULL);
}

void routes_health_shutdown(void) {
    metrics_remove_collect(collect_queue, NULL);
    nchecks = 0;
}

size_t routes_health(http_route *out, size_t max) {
    const http_route r[] = {
        {"GET", "/healthz", healthz, NULL, NULL, NULL, HEALTH_MAX_BODY},
        {"GET", "/readyz", readyz, NULL, NULL, NULL, HEALTH_MAX_BODY},
        {"GET", "/metrics", metrics_page, NULL, NULL, NULL, HEALTH_MAX_BODY},
    };
    size_t n = sizeof r / sizeof r[0];
    if (n > max) n = max;
    memcpy(out, r, sizeof r[0] * n);
    return n;
}

size_t routes_health_liveness(http_route *out, size_t max) {
    return routes_health(out, max < 1 ? max : 1); /* /healthz comes first */
}
