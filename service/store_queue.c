/* store_queue — the two queues: enqueue past de-duplication, read, claim, touch, ack,
 * retry, defer, promote, park and unpark, and their statistics. See include/store_queue.h. */
#include "store_queue.h"

#include "log.h"
#include "store_priv.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *store_priv_dedup_key(const event *ev) {
    size_t len = strlen(ev->id) + 32;
    char *k = malloc(len);
    if (k) snprintf(k, len, "cs:dedup:%s:%s", ev->source == SRC_SALESFORCE ? "sf" : "mkto", ev->id);
    return k;
}

int store_enqueue_refs(store *s, const event *const *evs, size_t n, bool *added, char *err,
                       size_t errlen) {
    if (n == 0) return 0;
    size_t argc = 2 * n + 1 + n; /* (stream, dedup key) per event, ttl, payloads */
    const char **argv = calloc(argc, sizeof *argv);
    size_t *lens = calloc(argc, sizeof *lens);
    char **owned = calloc(2 * n, sizeof *owned);
    char ttl[16];
    int rc = -1;
    redisReply *r = NULL;
    if (!argv || !lens || !owned) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    snprintf(ttl, sizeof ttl, "%d", STORE_DEDUP_TTL_S);
    argv[2 * n] = ttl;
    for (size_t i = 0; i < n; i++) {
        owned[i] = store_priv_dedup_key(evs[i]);
        owned[n + i] = event_to_json(evs[i]);
        if (!owned[i] || !owned[n + i]) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        argv[2 * i] = store_stream(store_queue_of(evs[i]));
        argv[2 * i + 1] = owned[i];
        argv[2 * n + 1 + i] = owned[n + i];
    }
    for (size_t i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    r = store_priv_eval(s, STORE_LUA_ENQUEUE, (int)(2 * n), (int)argc, argv, lens, err, errlen);
    if (!r) goto out;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        snprintf(err, errlen, "Redis refused the events: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected answer");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        added[i] = r->element[i]->type == REDIS_REPLY_STRING;
    rc = 0;
out:
    if (r) freeReplyObject(r);
    if (owned)
        for (size_t i = 0; i < 2 * n; i++)
            free(owned[i]);
    free(owned);
    free(argv);
    free(lens);
    return rc;
}

int store_enqueue(store *s, const event *evs, size_t n, bool *added, char *err, size_t errlen) {
    if (n == 0) return 0;
    const event **p = malloc(sizeof *p * n);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        p[i] = &evs[i];
    int rc = store_enqueue_refs(s, p, n, added, err, errlen);
    free(p);
    return rc;
}

const char *store_stream(store_queue q) {
    switch (q) {
    case STORE_Q_SF: return "cs:events:sf";
    case STORE_Q_MKTO: return "cs:events:mkto";
    case STORE_Q_FIX_SF: return "cs:events:fix:sf";
    case STORE_Q_FIX_MKTO: return "cs:events:fix:mkto";
    }
    return "cs:events:sf";
}

store_queue store_queue_of(const event *ev) {
    if (ev->job[0]) return ev->source == SRC_MARKETO ? STORE_Q_FIX_MKTO : STORE_Q_FIX_SF;
    return ev->source == SRC_MARKETO ? STORE_Q_MKTO : STORE_Q_SF;
}

bool store_queue_to_salesforce(store_queue q) {
    return q == STORE_Q_MKTO || q == STORE_Q_FIX_MKTO;
}

bool store_queue_is_fix(store_queue q) {
    return q == STORE_Q_FIX_SF || q == STORE_Q_FIX_MKTO;
}

/* The queue whose stream key is name (STORE_Q_SF when none is). */
static store_queue queue_named(const char *name) {
    for (int q = 0; q < STORE_NQUEUES; q++)
        if (strcmp(name, store_stream((store_queue)q)) == 0) return (store_queue)q;
    return STORE_Q_SF;
}

void store_entries_free(store_entry *e, size_t n) {
    if (!e) return;
    for (size_t i = 0; i < n; i++)
        free(e[i].json);
    free(e);
}

int store_group_ensure(store *s, char *err, size_t errlen) {
    for (int q = 0; q < STORE_NQUEUES; q++) {
        redisReply *r = store_priv_cmd(s, err, errlen, "XGROUP CREATE %s %s 0 MKSTREAM",
                                       store_stream((store_queue)q), STORE_GROUP);
        if (!r) return -1;
        bool bad = r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0;
        if (bad) snprintf(err, errlen, "Redis: %s", r->str);
        freeReplyObject(r);
        if (bad) return -1;
    }
    return 0;
}

/* Appends the entries of an XREADGROUP/XAUTOCLAIM answer of queue q, [[id, [field, value,
 * ...]], ...], to *out (holding *n); deleted entries (nil fields) are skipped. Returns the
 * new count, or -1 when out of memory. */
static long parse_entries(const redisReply *list, store_queue q, store_entry **out, long n) {
    if (!list || list->type != REDIS_REPLY_ARRAY || list->elements == 0) return n;
    store_entry *e = realloc(*out, sizeof *e * ((size_t)n + list->elements));
    if (!e) return -1;
    *out = e;
    memset(e + n, 0, sizeof *e * list->elements);
    for (size_t i = 0; i < list->elements; i++) {
        const redisReply *it = list->element[i];
        if (it->type != REDIS_REPLY_ARRAY || it->elements < 2 ||
            it->element[0]->type != REDIS_REPLY_STRING || it->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        store_entry *x = &e[n];
        x->q = q;
        snprintf(x->id, sizeof x->id, "%s", it->element[0]->str);
        const redisReply *f = it->element[1];
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            const char *k = f->element[j]->str, *v = f->element[j + 1]->str;
            if (!k || !v) continue;
            if (strcmp(k, "event") == 0) {
                x->json = malloc(f->element[j + 1]->len + 1);
                if (x->json) {
                    memcpy(x->json, v, f->element[j + 1]->len);
                    x->json[f->element[j + 1]->len] = '\0';
                    x->len = f->element[j + 1]->len;
                }
            } else if (strcmp(k, "attempts") == 0) {
                x->attempts = atoi(v);
            } else if (strcmp(k, "error") == 0) {
                snprintf(x->error, sizeof x->error, "%s", v);
            }
        }
        if (!x->json) { /* an entry without an event is unusable; keep it so it is acked */
            x->json = strdup("");
            x->len = 0;
        }
        n++;
    }
    return n;
}

long store_read(store *s, const char *consumer, const bool want[STORE_NQUEUES], size_t max,
                int block_ms, store_entry **out, char *err, size_t errlen) {
    *out = NULL;
    char count[24], block[24];
    snprintf(count, sizeof count, "%zu", max);
    snprintf(block, sizeof block, "%d", block_ms);
    const char *argv[9 + 2 * STORE_NQUEUES] = {
        "XREADGROUP", "GROUP", STORE_GROUP, consumer, "COUNT", count, "BLOCK", block, "STREAMS"};
    int argc = 9, nq = 0;
    if (block_ms < 0) { /* no wait: without BLOCK */
        argv[6] = "STREAMS";
        argc = 7;
    }
    for (int q = 0; q < STORE_NQUEUES; q++)
        if (want[q]) argv[argc + nq++] = store_stream((store_queue)q);
    if (nq == 0) return 0;
    for (int i = 0; i < nq; i++)
        argv[argc + nq + i] = ">";
    argc += 2 * nq;
    size_t lens[9 + 2 * STORE_NQUEUES];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = store_priv_argv(s, argc, argv, lens, err, errlen);
    if (!r) return -1;
    if (r->type == REDIS_REPLY_ERROR) {
        /* Redis restarted without persistence: recreate the group and read again later. */
        if (strncmp(r->str, "NOGROUP", 7) == 0) {
            freeReplyObject(r);
            return store_group_ensure(s, err, errlen) == 0 ? 0 : -1;
        }
        return store_priv_reply_error(r, err, errlen);
    }
    long n = 0;
    for (size_t i = 0; n >= 0 && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *sr = r->element[i]; /* [stream name, entries] */
        if (sr->type != REDIS_REPLY_ARRAY || sr->elements != 2 || !sr->element[0]->str) continue;
        n = parse_entries(sr->element[1], queue_named(sr->element[0]->str), out, n);
    }
    freeReplyObject(r);
    if (n < 0) {
        snprintf(err, errlen, "out of memory");
        free(*out); /* nothing acknowledged: the entries stay pending and are claimed back */
        *out = NULL;
    }
    return n;
}

long store_claim(store *s, store_queue q, const char *consumer, long min_idle_ms, size_t max,
                 store_entry **out, char *err, size_t errlen) {
    *out = NULL;
    redisReply *r = store_priv_cmd(s, err, errlen, "XAUTOCLAIM %s %s %s %ld 0-0 COUNT %ld",
                                   store_stream(q), STORE_GROUP, consumer, min_idle_ms, (long)max);
    if (!r) return -1;
    if (r->type == REDIS_REPLY_ERROR) {
        if (strncmp(r->str, "NOGROUP", 7) == 0) {
            freeReplyObject(r);
            return store_group_ensure(s, err, errlen) == 0 ? 0 : -1;
        }
        return store_priv_reply_error(r, err, errlen);
    }
    long n = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2)
        n = parse_entries(r->element[1], q, out, 0);
    /* Entries deleted while pending come back as ids only: acknowledge them away. */
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
        r->element[2]->type == REDIS_REPLY_ARRAY && r->element[2]->elements > 0) {
        const redisReply *gone = r->element[2];
        const char **ids = calloc(gone->elements, sizeof *ids);
        if (ids) {
            for (size_t i = 0; i < gone->elements; i++)
                ids[i] = gone->element[i]->str;
            char e2[STORE_ERR_MAX];
            /* Else they come back as ids at the next claim, and are acknowledged then. */
            if (store_ack(s, q, ids, gone->elements, e2, sizeof e2) != 0)
                LOG_KV_LIMITED(LOG_WARN, "store: acknowledging deleted entries failed", "error",
                               e2);
            free(ids);
        }
    }
    freeReplyObject(r);
    if (n < 0) {
        snprintf(err, errlen, "out of memory");
        free(*out);
        *out = NULL;
    }
    return n;
}

int store_touch(store *s, store_queue q, const char *consumer, const char *const *ids, size_t n,
                char *err, size_t errlen) {
    if (n == 0) return 0;
    const char **argv = malloc(sizeof *argv * (n + 6));
    size_t *lens = malloc(sizeof *lens * (n + 6));
    if (!argv || !lens) {
        free(argv);
        free(lens);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *head[] = {"XCLAIM", store_stream(q), STORE_GROUP, consumer, "0"};
    memcpy(argv, head, sizeof head);
    memcpy(argv + 5, ids, sizeof *ids * n);
    argv[n + 5] = "JUSTID";
    for (size_t i = 0; i < n + 6; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = store_priv_argv(s, (int)n + 6, argv, lens, err, errlen);
    free(argv);
    free(lens);
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    freeReplyObject(r);
    return 0;
}

int store_ack(store *s, store_queue q, const char *const *ids, size_t n, char *err, size_t errlen) {
    if (n == 0) return 0;
    const char **args = malloc(sizeof *args * (n + 2));
    if (!args) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    args[0] = store_stream(q);
    args[1] = STORE_GROUP;
    memcpy(args + 2, ids, sizeof *ids * n);
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_ACK, 1, args, (int)n + 2, err, errlen);
    free(args);
    if (!r) return -1;
    freeReplyObject(r);
    return 0;
}

/* {"event": <json text>, "attempts": n, "error": "..."}: how an entry waits outside the
 * stream, so that the attempt count travels with the event. */
static char *waiting_member(const store_entry *e, int attempts, const char *error) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event", e->json);
    cJSON_AddNumberToObject(o, "attempts", attempts);
    cJSON_AddStringToObject(o, "error", error ? error : "");
    /* Two waits of one event differ by the entry id, so neither replaces the other. */
    cJSON_AddStringToObject(o, "from", e->id);
    cJSON_AddNumberToObject(o, "q", e->q); /* the queue it goes back to */
    char *m = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return m;
}

/* The retries of one queue by receive time (members: their entry ids). */
static const char *retry_recv_key(store_queue q) {
    switch (q) {
    case STORE_Q_SF: return "cs:retry:recv:sf";
    case STORE_Q_MKTO: return "cs:retry:recv:mkto";
    case STORE_Q_FIX_SF: return "cs:retry:recv:fix:sf";
    case STORE_Q_FIX_MKTO: return "cs:retry:recv:fix:mkto";
    }
    return "cs:retry:recv:sf";
}

static int64_t received_of(const store_entry *e) {
    event ev;
    char why[64];
    if (event_from_json(e->json, e->len, &ev, why, sizeof why) == 0 && ev.received_ms)
        return ev.received_ms;
    return event_now_ms();
}

int store_retry(store *s, const store_entry *e, int attempts, int64_t due_ms, const char *error,
                char *err, size_t errlen) {
    char *m = waiting_member(e, attempts, error);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char due[24], rx[24];
    snprintf(due, sizeof due, "%lld", (long long)due_ms);
    snprintf(rx, sizeof rx, "%lld", (long long)received_of(e));
    const char *args[] = {store_stream(e->q),
                          "cs:retry",
                          "cs:retry:recv",
                          retry_recv_key(e->q),
                          STORE_GROUP,
                          e->id,
                          m,
                          due,
                          rx};
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_RETRY, 4, args, 9, err, errlen);
    free(m);
    if (!r) return -1;
    freeReplyObject(r);
    return 0;
}

int store_defer(store *s, const store_entry *e, int64_t due_ms, char *err, size_t errlen) {
    return store_retry(s, e, e->attempts, due_ms, e->error, err, errlen);
}

long store_promote_due(store *s, int64_t now_ms, size_t max, char *err, size_t errlen) {
    char now[24], mx[16];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(mx, sizeof mx, "%zu", max);
    const char *args[] = {store_stream(STORE_Q_SF),
                          "cs:retry",
                          "cs:retry:recv",
                          store_stream(STORE_Q_MKTO),
                          retry_recv_key(STORE_Q_SF),
                          retry_recv_key(STORE_Q_MKTO),
                          store_stream(STORE_Q_FIX_SF),
                          store_stream(STORE_Q_FIX_MKTO),
                          retry_recv_key(STORE_Q_FIX_SF),
                          retry_recv_key(STORE_Q_FIX_MKTO),
                          now,
                          mx};
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_PROMOTE, 10, args, 12, err, errlen);
    if (!r) return -1;
    long n = (long)r->integer;
    freeReplyObject(r);
    return n;
}

int store_park(store *s, const store_entry *e, const char *program_id, char *err, size_t errlen) {
    char *m = waiting_member(e, e->attempts, e->error);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char key[64];
    snprintf(key, sizeof key, "cs:parked:%s", program_id);
    const char *args[] = {store_stream(e->q), key, "cs:parked:programs", STORE_GROUP, e->id, m,
                          program_id};
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_PARK, 3, args, 7, err, errlen);
    free(m);
    if (!r) return -1;
    freeReplyObject(r);
    return 0;
}

long store_unpark(store *s, const char *program_id, char *err, size_t errlen) {
    char key[64];
    snprintf(key, sizeof key, "cs:parked:%s", program_id);
    const char *args[] = {key,
                          "cs:parked:programs",
                          store_stream(STORE_Q_SF),
                          store_stream(STORE_Q_MKTO),
                          store_stream(STORE_Q_FIX_SF),
                          store_stream(STORE_Q_FIX_MKTO),
                          program_id};
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_UNPARK, 6, args, 7, err, errlen);
    if (!r) return -1;
    long n = (long)r->integer;
    freeReplyObject(r);
    return n;
}

long store_parked_programs(store *s, char ***out, char *err, size_t errlen) {
    *out = NULL;
    redisReply *r = store_priv_cmd(s, err, errlen, "SMEMBERS cs:parked:programs");
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    long n = store_priv_strings(r, out, err, errlen);
    freeReplyObject(r);
    return n;
}

/* The scripts that count parked events are told which lists to read: how often they read
 * cs:parked:programs again when it changed in between. */
#define PARKED_TRIES 5

/* Runs script id (queue_stats.lua, queue_detail.lua) with the keys head[0..nhead), then
 * cs:parked:<p> of each program p in cs:parked:programs as just read, and those ids as its
 * ARGV; reads the set again when it changed before the script ran. The reply, or NULL with
 * err (an error reply too). */
static redisReply *eval_with_parked(store *s, store_lua_id id, const char *const *head,
                                    size_t nhead, char *err, size_t errlen) {
    for (int attempt = 0; attempt < PARKED_TRIES; attempt++) {
        char **programs = NULL;
        long np = store_parked_programs(s, &programs, err, errlen);
        if (np < 0) return NULL;
        store_priv_args a = {0};
        for (size_t i = 0; i < nhead; i++)
            store_priv_args_add(&a, head[i]);
        for (long i = 0; i < np; i++)
            store_priv_args_addf(&a, "cs:parked:%s", programs[i]);
        for (long i = 0; i < np; i++)
            store_priv_args_add(&a, programs[i]);
        redisReply *r = NULL;
        if (a.oom)
            snprintf(err, errlen, "out of memory");
        else
            r = store_priv_eval_strs(s, id, (int)nhead + (int)np, a.v, (int)a.n, err, errlen);
        store_priv_args_free(&a);
        for (long i = 0; i < np; i++)
            free(programs[i]);
        free(programs);
        if (!r || r->type != REDIS_REPLY_NIL) return r;
        freeReplyObject(r);
    }
    snprintf(err, errlen, "the parked programs kept changing while the queues were counted");
    return NULL;
}

int store_queue_stats(store *s, long long *depth, double *oldest_age_s, char *err, size_t errlen) {
    const char *head[] = {store_stream(STORE_Q_SF), "cs:retry", "cs:retry:recv",
                          "cs:parked:programs", store_stream(STORE_Q_MKTO)};
    redisReply *r = eval_with_parked(s, STORE_LUA_QUEUE_STATS, head, 5, err, errlen);
    if (!r) return -1;
    *depth = 0;
    *oldest_age_s = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        *depth = r->element[0]->integer;
        long long oldest = r->element[1]->str ? strtoll(r->element[1]->str, NULL, 10) : 0;
        if (oldest > 0 && *depth > 0) {
            double age = (double)(event_now_ms() - oldest) / 1000.0;
            *oldest_age_s = age > 0 ? age : 0;
        }
    }
    freeReplyObject(r);
    return 0;
}

static double age_of(int64_t since_ms, long long depth, int64_t now) {
    if (since_ms <= 0 || depth <= 0 || now <= since_ms) return 0;
    return (double)(now - since_ms) / 1000.0;
}

static int by_parked_desc(const void *a, const void *b) {
    const store_parked_count *x = a, *y = b;
    return (x->parked < y->parked) - (x->parked > y->parked);
}

int store_queue_detail_get(store *s, store_queue_detail *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    const char *head[] = {
        store_stream(STORE_Q_SF),   store_stream(STORE_Q_MKTO),   "cs:retry",
        retry_recv_key(STORE_Q_SF), retry_recv_key(STORE_Q_MKTO), "cs:parked:programs",
        "cs:parked:quota:marketo",  "cs:parked:quota:salesforce"};
    redisReply *r = eval_with_parked(s, STORE_LUA_QUEUE_DETAIL, head, 8, err, errlen);
    if (!r) return -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 6 ||
        r->element[5]->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "Redis: unexpected answer to the queue statistics");
        freeReplyObject(r);
        return -1;
    }
    int64_t now = event_now_ms();
    store_queue_way *way[2] = {&out->to_marketo, &out->to_salesforce};
    for (int d = 0; d < 2; d++) {
        way[d]->depth = r->element[2 * d]->integer;
        const char *t = r->element[2 * d + 1]->str;
        way[d]->oldest_age_s = age_of(t ? strtoll(t, NULL, 10) : 0, way[d]->depth, now);
    }
    out->depth = r->element[4]->integer;
    out->oldest_age_s = out->to_marketo.oldest_age_s > out->to_salesforce.oldest_age_s
                            ? out->to_marketo.oldest_age_s
                            : out->to_salesforce.oldest_age_s;
    const redisReply *pr = r->element[5];
    size_t np = pr->elements / 2;
    out->parked = np ? calloc(np, sizeof *out->parked) : NULL;
    for (size_t i = 0; out->parked && i < np; i++) {
        const redisReply *id = pr->element[2 * i], *n = pr->element[2 * i + 1];
        if (id->type != REDIS_REPLY_STRING || id->len >= sizeof out->parked[0].program_id) continue;
        memcpy(out->parked[out->nparked].program_id, id->str, id->len + 1);
        out->parked[out->nparked++].parked = n->integer;
    }
    if (out->nparked > 1) qsort(out->parked, out->nparked, sizeof *out->parked, by_parked_desc);
    freeReplyObject(r);
    return 0;
}

void store_queue_detail_free(store_queue_detail *d) {
    if (!d) return;
    free(d->parked);
    d->parked = NULL;
    d->nparked = 0;
}

/* One queue's waiting corrections: its stream's entries (acknowledged ones are deleted) and
 * its scheduled retries. */
static int fix_way(store *s, store_queue q, long long *out, char *err, size_t errlen) {
    const char *what[2][2] = {{"XLEN", store_stream(q)}, {"ZCARD", retry_recv_key(q)}};
    *out = 0;
    for (int i = 0; i < 2; i++) {
        redisReply *r = store_priv_cmd(s, err, errlen, "%s %s", what[i][0], what[i][1]);
        if (store_priv_reply_error(r, err, errlen)) return -1;
        if (r->type == REDIS_REPLY_INTEGER) *out += r->integer;
        freeReplyObject(r);
    }
    return 0;
}

int store_fix_depth(store *s, long long *to_marketo, long long *to_salesforce, char *err,
                    size_t errlen) {
    *to_marketo = *to_salesforce = 0;
    if (fix_way(s, STORE_Q_FIX_SF, to_marketo, err, errlen) != 0) return -1;
    return fix_way(s, STORE_Q_FIX_MKTO, to_salesforce, err, errlen);
}
