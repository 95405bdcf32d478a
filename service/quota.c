/* quota — spent CRM allowances pause every process. See include/quota.h. */
#include "quota.h"

#include "event.h"
#include "log.h"
#include "metrics.h"
#include "store_budget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLEAR_TRUST_MS 1000         /* a look that found no pause holds this long */
#define RECHECK_MAX_MS (5 * 60000L) /* changes put aside look again at least this often */
#define PROBE_EVERY_MS (5 * 60000L) /* Salesforce's allowance is probed this often */
#define PROBE_LOCK_MS  30000

struct quota_gate {
    store *st;
    sf_client *sf;   /* Salesforce: the client whose `limits` probe decides; else NULL */
    const char *crm; /* "salesforce" or "marketo" */
    char token[160]; /* this gate's probe-lock token */
    unsigned long seq;
};

quota_gate *quota_gate_new(store *st, const char *crm, sf_client *sf, const char *holder) {
    quota_gate *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->st = st;
    g->sf = sf;
    g->crm = crm;
    snprintf(g->token, sizeof g->token, "%s:q", holder);
    return g;
}

void quota_gate_free(quota_gate *g) {
    free(g);
}

/* Salesforce's allowance has room again when `limits` says more than 1 % remains: the last
 * calls of an allowance are every integration's of the org, not only ours. */
static bool salesforce_has_room(quota_gate *g) {
    long max = 0, remaining = 0;
    sf_error e;
    if (sf_daily_requests(g->sf, &max, &remaining, &e) != 0) {
        LOG_KV_LIMITED(LOG_WARN, "quota: probing Salesforce's API allowance failed", "code", e.code,
                       "error", e.message);
        return false;
    }
    return remaining > 0 && remaining > max / 100;
}

/* The pause is over but a probe must say so first: one process at a time asks `limits`. */
static long probe(quota_gate *g) {
    char key[64], err[STORE_ERR_MAX], tok[200];
    snprintf(key, sizeof key, "cs:lock:quota-probe:%s", g->crm);
    snprintf(tok, sizeof tok, "%s%lu", g->token, ++g->seq);
    const char *keys[] = {key};
    bool got = false;
    if (store_lock_many(g->st, keys, 1, tok, PROBE_LOCK_MS, &got, err, sizeof err) != 0 || !got)
        return 5000; /* another process is probing */
    long wait = 0;
    if (g->sf && salesforce_has_room(g)) {
        if (store_quota_clear(g->st, g->crm, err, sizeof err) == 0)
            LOG_KV(LOG_INFO, "quota: Salesforce's API allowance has room again; calls resume");
        else /* the pause stays: the next look probes again */
            LOG_KV_LIMITED(LOG_WARN, "quota: ending the pause failed", "error", err);
    } else {
        if (store_quota_pause(g->st, g->crm, PROBE_EVERY_MS, true, err, sizeof err) != 0)
            LOG_KV_LIMITED(LOG_WARN, "quota: extending the pause failed", "error", err);
        wait = PROBE_EVERY_MS;
    }
    /* Else the probe lock ends by itself after PROBE_LOCK_MS. */
    if (store_unlock_many(g->st, keys, 1, tok, err, sizeof err) != 0)
        LOG_KV_LIMITED(LOG_WARN, "quota: releasing the probe lock failed", "error", err);
    return wait;
}

long quota_gate_check(void *ud) {
    quota_gate *g = ud;
    long pause = 0;
    bool need_probe = false;
    char err[STORE_ERR_MAX];
    /* Redis unreachable: the call goes; whatever it needs from Redis fails on its own. */
    if (store_quota_get(g->st, g->crm, &pause, &need_probe, err, sizeof err) != 0) return 0;
    if (pause == 0 && need_probe) pause = probe(g);
    return pause < RECHECK_MAX_MS ? pause : RECHECK_MAX_MS;
}

void quota_salesforce_spent(void *ud) {
    quota_gate *g = ud;
    char err[STORE_ERR_MAX];
    if (store_quota_pause(g->st, g->crm, PROBE_EVERY_MS, true, err, sizeof err) != 0) return;
    LOG_KV_LIMITED(LOG_WARN,
                   "quota: Salesforce's API allowance is spent (REQUEST_LIMIT_EXCEEDED); calls "
                   "to Salesforce wait, changes stay queued",
                   "probe_every_s", "300");
}

void quota_marketo_spent(void *ud, int64_t reset_ms) {
    quota_gate *g = ud;
    char err[STORE_ERR_MAX], at[40];
    long wait = (long)(reset_ms - event_now_ms());
    if (store_quota_pause(g->st, g->crm, wait > 0 ? wait : 1, false, err, sizeof err) != 0) return;
    event_format_time(reset_ms, at, sizeof at);
    LOG_KV_LIMITED(LOG_WARN,
                   "quota: Marketo's daily API quota is spent (607); calls to Marketo wait for "
                   "its reset, changes stay queued",
                   "resumes_at", at);
}

/* The wait on one CRM as /readyz shows it (0 when none). */
static int ready_check(store *st, const char *crm, const char *what, char *detail, size_t len) {
    long pause = 0;
    bool need_probe = false;
    char err[STORE_ERR_MAX], at[40];
    if (!st || store_quota_get(st, crm, &pause, &need_probe, err, sizeof err) != 0) {
        snprintf(detail, len, "cannot read: %s", st ? err : "out of memory");
        return -1;
    }
    if (pause == 0 && !need_probe) return 0;
    event_format_time(event_now_ms() + pause, at, sizeof at);
    snprintf(detail, len, "waiting: %s; calls resume %s %s", what,
             need_probe ? "once a probe finds room, next at" : "at", at);
    return -1;
}

int quota_ready_salesforce(void *ud, store *st, char *detail, size_t len) {
    (void)ud;
    return ready_check(st, "salesforce", "the org's API allowance is spent", detail, len);
}

int quota_ready_marketo(void *ud, store *st, char *detail, size_t len) {
    (void)ud;
    return ready_check(st, "marketo", "the daily API quota is spent", detail, len);
}

static void collect(void *ud) {
    store *st = store_pool_get(ud);
    const char *crms[] = {"salesforce", "marketo"};
    for (size_t i = 0; st && i < 2; i++) {
        long pause = 0;
        bool need_probe = false;
        char err[STORE_ERR_MAX];
        if (store_quota_get(st, crms[i], &pause, &need_probe, err, sizeof err) == 0)
            metrics_set(M_CRM_QUOTA_WAITING, pause > 0 || need_probe ? 1.0 : 0.0, crms[i]);
    }
}

int quota_metrics_start(store_pool *stores) {
    return metrics_on_collect(collect, stores);
}

void quota_metrics_stop(store_pool *stores) {
    metrics_remove_collect(collect, stores);
}
