/* store_budget — the Marketo call budget, its read gate, and the CRMs' spent allowances.
 * See include/store_budget.h. */
#include "store_budget.h"

#include "log.h"
#include "pace.h"
#include "store_priv.h"
#include "store_queue.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A permit is held at most this long, so a process that died holding one cannot block the
 * budget for more than a minute. */
#define MKTO_LEASE_MS 60000

long store_mkto_acquire(store *s, const char *token, int calls_per_window, long window_ms,
                        int max_concurrent, double share, char *err, size_t errlen) {
    char cpw[16], win[24], mc[16], lease[16], fm[16] = "0", fc[16] = "0", lt[16], bm[16];
    snprintf(cpw, sizeof cpw, "%d", calls_per_window);
    snprintf(lt, sizeof lt, "%d", PACE_LIGHT_RATE);
    snprintf(bm, sizeof bm, "%d", PACE_BUSY_SHARE_CALLS);
    snprintf(win, sizeof win, "%ld", window_ms);
    snprintf(mc, sizeof mc, "%d", max_concurrent);
    snprintf(lease, sizeof lease, "%d", MKTO_LEASE_MS);
    if (share > 0) {
        snprintf(fm, sizeof fm, "%d", pace_share_calls(calls_per_window, share));
        snprintf(fc, sizeof fc, "%d", pace_share_concurrent(max_concurrent, share));
    }
    const char *args[] = {"cs:mkto:calls",
                          "cs:mkto:inflight",
                          "cs:mkto:pace",
                          STORE_MKTO_FIX_CALLS,
                          STORE_MKTO_FIX_INFLIGHT,
                          store_stream(STORE_Q_SF),
                          "cs:mkto:rate",
                          token,
                          cpw,
                          win,
                          mc,
                          lease,
                          fm,
                          fc,
                          lt,
                          bm};
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_MKTO_ACQUIRE, 7, args, 16, err, errlen);
    if (!r) return -1;
    long wait = (long)r->integer;
    freeReplyObject(r);
    return wait;
}

long store_mkto_gate(store *s, int calls_per_window, int max_concurrent, long light_rate,
                     long *paced_ms, int *calls, char *err, size_t errlen) {
    char cpw[16], win[24], mc[16], lt[24], bm[16];
    snprintf(cpw, sizeof cpw, "%d", calls_per_window);
    snprintf(bm, sizeof bm, "%d", PACE_BUSY_SHARE_CALLS);
    snprintf(win, sizeof win, "%d", STORE_MKTO_WINDOW_MS);
    snprintf(mc, sizeof mc, "%d", max_concurrent);
    snprintf(lt, sizeof lt, "%ld", light_rate);
    const char *args[] = {"cs:mkto:calls",
                          "cs:mkto:inflight",
                          "cs:mkto:pace",
                          store_stream(STORE_Q_SF),
                          "cs:mkto:rate",
                          "cs:mkto:read",
                          STORE_MKTO_FIX_CALLS,
                          cpw,
                          win,
                          mc,
                          STORE_GROUP,
                          lt,
                          bm};
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_MKTO_GATE, 7, args, 13, err, errlen);
    if (!r) return -1;
    long wait = (long)r->integer;
    *paced_ms = 0;
    *calls = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
        wait = 0;
        *paced_ms = r->element[1]->integer < 1 ? 1 : (long)r->element[1]->integer;
        *calls = r->element[2]->integer < 1 ? 1 : (int)r->element[2]->integer;
    }
    freeReplyObject(r);
    return wait;
}

int store_fix_gate(store *s, int calls_per_window, int max_concurrent, double share, int *mkto_room,
                   bool *to_sf, bool *busy, char *err, size_t errlen) {
    char cpw[16], win[24], mc[16], fm[16], fc[16], lt[16], bm[16];
    snprintf(cpw, sizeof cpw, "%d", calls_per_window);
    snprintf(win, sizeof win, "%d", STORE_MKTO_WINDOW_MS);
    snprintf(mc, sizeof mc, "%d", max_concurrent);
    snprintf(lt, sizeof lt, "%d", PACE_LIGHT_RATE);
    snprintf(bm, sizeof bm, "%d", PACE_BUSY_SHARE_CALLS);
    snprintf(fm, sizeof fm, "%d", pace_share_calls(calls_per_window, share));
    snprintf(fc, sizeof fc, "%d", pace_share_concurrent(max_concurrent, share));
    const char *args[] = {"cs:mkto:calls",
                          "cs:mkto:inflight",
                          STORE_MKTO_FIX_CALLS,
                          STORE_MKTO_FIX_INFLIGHT,
                          store_stream(STORE_Q_SF),
                          store_stream(STORE_Q_MKTO),
                          store_stream(STORE_Q_FIX_SF),
                          store_stream(STORE_Q_FIX_MKTO),
                          "cs:mkto:rate",
                          cpw,
                          win,
                          mc,
                          fm,
                          fc,
                          STORE_GROUP,
                          lt,
                          bm};
    *mkto_room = 0;
    *to_sf = *busy = false;
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_FIX_GATE, 9, args, 17, err, errlen);
    if (!r) return -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        snprintf(err, errlen, "Redis: unexpected answer to the corrections' gate");
        freeReplyObject(r);
        return -1;
    }
    *mkto_room = r->element[0]->integer > 0 ? (int)r->element[0]->integer : 0;
    *to_sf = r->element[1]->integer == 1;
    *busy = r->element[2]->integer == 1;
    freeReplyObject(r);
    return 0;
}

int store_mkto_release(store *s, const char *token, char *err, size_t errlen) {
    /* A job's permit is also in the jobs' set; removing a live one from it is a no-op. */
    store_priv_pipe p = {0};
    store_priv_pipe_addf(&p, "ZREM cs:mkto:inflight %s", token);
    store_priv_pipe_addf(&p, "ZREM " STORE_MKTO_FIX_INFLIGHT " %s", token);
    int rc = store_priv_pipe_each(s, &p, false, store_priv_ignore_reply, NULL, err, errlen);
    store_priv_pipe_free(&p);
    return rc;
}

struct store_mkto_budget {
    store *st;
    int calls_per_20s, max_concurrent;
    long max_wait_ms; /* 0: wait as long as it takes */
    double share;     /* > 0: the calls are a job's, within this share */
    const _Atomic bool *stop;
    char holder[128];
    unsigned long seq;
    char permit[160];
};

store_mkto_budget *store_mkto_budget_new(store *st, int calls_per_20s, int max_concurrent,
                                         const char *holder) {
    store_mkto_budget *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    *b = (store_mkto_budget){
        .st = st, .calls_per_20s = calls_per_20s, .max_concurrent = max_concurrent};
    snprintf(b->holder, sizeof b->holder, "%s", holder);
    return b;
}

void store_mkto_budget_free(store_mkto_budget *b) {
    free(b);
}

void store_mkto_budget_set_wait(store_mkto_budget *b, long max_wait_ms, const _Atomic bool *stop) {
    b->max_wait_ms = max_wait_ms;
    b->stop = stop;
}

long store_mkto_budget_wait(const store_mkto_budget *b) {
    return b->max_wait_ms;
}

bool store_mkto_budget_stopping(const store_mkto_budget *b) {
    return b->stop && *b->stop;
}

void store_mkto_budget_set_share(store_mkto_budget *b, double share) {
    b->share = share;
}

int store_mkto_budget_acquire(void *budget) {
    store_mkto_budget *b = budget;
    char err[STORE_ERR_MAX];
    long waited = 0;
    snprintf(b->permit, sizeof b->permit, "%s:%lu", b->holder, ++b->seq);
    for (;;) {
        long wait = store_mkto_acquire(b->st, b->permit, b->calls_per_20s, STORE_MKTO_WINDOW_MS,
                                       b->max_concurrent, b->share, err, sizeof err);
        if (wait <= 0) return wait == 0 ? 0 : -1;
        if (b->stop && *b->stop) return -1;
        if (b->max_wait_ms > 0 && waited + wait > b->max_wait_ms)
            return wait > INT_MAX ? INT_MAX : (int)wait;
        waited += wait < 200 ? wait : 200;
        struct timespec ts = {0, (wait < 200 ? wait : 200) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

void store_mkto_budget_release(void *budget) {
    store_mkto_budget *b = budget;
    char err[STORE_ERR_MAX];
    /* Else the permit counts as in flight until its lease ends (MKTO_LEASE_MS). */
    if (store_mkto_release(b->st, b->permit, err, sizeof err) != 0)
        LOG_KV_LIMITED(LOG_WARN, "store: giving back a Marketo permit failed", "error", err);
}

typedef struct {
    long *pause_ms;
    bool *probe;
} quota_ud;

static int quota_each(size_t i, redisReply *r, void *ud) {
    quota_ud *q = ud;
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    if (i == 0) *q->pause_ms = v > 0 ? (long)v : 0; /* PTTL: -2 none, -1 no expiry */
    if (i == 1) *q->probe = v > 0;
    return 0;
}

int store_quota_get(store *s, const char *crm, long *pause_ms, bool *probe, char *err,
                    size_t errlen) {
    store_priv_pipe p = {0};
    store_priv_pipe_addf(&p, "PTTL cs:quota:%s", crm);
    store_priv_pipe_addf(&p, "EXISTS cs:quota:%s:probe", crm);
    quota_ud q = {pause_ms, probe};
    *pause_ms = 0;
    *probe = false;
    int rc = store_priv_pipe_each(s, &p, false, quota_each, &q, err, errlen);
    store_priv_pipe_free(&p);
    return rc;
}

int store_quota_pause(store *s, const char *crm, long pause_ms, bool probe, char *err,
                      size_t errlen) {
    store_priv_pipe p = {0};
    store_priv_pipe_addf(&p, "SET cs:quota:%s %lld PX %ld", crm,
                         (long long)(event_now_ms() + pause_ms), pause_ms > 0 ? pause_ms : 1);
    if (probe) store_priv_pipe_addf(&p, "SET cs:quota:%s:probe 1", crm);
    int rc = store_priv_pipe_each(s, &p, false, store_priv_ignore_reply, NULL, err, errlen);
    store_priv_pipe_free(&p);
    return rc;
}

int store_quota_clear(store *s, const char *crm, char *err, size_t errlen) {
    redisReply *r = store_priv_cmd(s, err, errlen, "DEL cs:quota:%s cs:quota:%s:probe", crm, crm);
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    freeReplyObject(r);
    return 0;
}

int store_mkto_busy(store *s, int calls_per_window, long light_rate, bool *busy, char *err,
                    size_t errlen) {
    char lt[24], cpw[16], win[24];
    snprintf(lt, sizeof lt, "%ld", light_rate);
    snprintf(cpw, sizeof cpw, "%d", calls_per_window);
    snprintf(win, sizeof win, "%d", STORE_MKTO_WINDOW_MS);
    const char *args[] = {
        store_stream(STORE_Q_SF), "cs:mkto:rate", "cs:mkto:calls", STORE_GROUP, lt, cpw, win};
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_MKTO_BUSY, 3, args, 7, err, errlen);
    if (!r) return -1;
    *busy = r->type == REDIS_REPLY_INTEGER && r->integer != 0;
    freeReplyObject(r);
    return 0;
}
