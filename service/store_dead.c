/* store_dead — dead letters: moving an entry there, listing, scanning, replaying and
 * deleting them, and the received items that never were events. See include/store_dead.h. */
#include "store_dead.h"

#include "store_priv.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_dead_letter(store *s, const store_entry *e, int attempts, const char *error, char *id,
                      size_t idlen, char *err, size_t errlen) {
    int64_t now = event_now_ms();
    char at[40], atms[24], q[4];
    event_format_time(now, at, sizeof at);
    snprintf(atms, sizeof atms, "%lld", (long long)now);
    snprintf(q, sizeof q, "%d", (int)e->q);
    cJSON *item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "id",
                            e->id); /* replaced when listed if the script chose another */
    cJSON_AddStringToObject(item, "at", at);
    cJSON_AddNumberToObject(item, "attempts", attempts);
    cJSON_AddStringToObject(item, "error", error);
    cJSON *ev = cJSON_ParseWithLength(e->json, e->len);
    if (ev)
        cJSON_AddItemToObject(item, "event", ev);
    else
        cJSON_AddStringToObject(item, "event", e->json);
    char *js = cJSON_PrintUnformatted(item);
    cJSON_Delete(item);
    if (!js) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *args[] = {
        store_stream(e->q), "cs:deadletters", STORE_GROUP, e->id, js, e->json, atms, q};
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_DEAD_LETTER, 2, args, 8, err, errlen);
    free(js);
    if (!r) return -1;
    if (id) snprintf(id, idlen, "%s", r->type == REDIS_REPLY_STRING ? r->str : e->id);
    freeReplyObject(r);
    return 0;
}

char *store_dead_list(store *s, const char *cursor, long limit, char *next, size_t nextlen,
                      char *err, size_t errlen) {
    next[0] = '\0';
    /* Newest first. The cursor is the id of the last item given: the page goes on after its
     * rank, so items with the same time are neither skipped nor repeated. */
    long start = 0;
    if (cursor && *cursor) {
        redisReply *rk = store_priv_cmd(s, err, errlen, "ZREVRANK cs:deadletters %s", cursor);
        if (!rk || store_priv_reply_error(rk, err, errlen)) return NULL;
        if (rk->type != REDIS_REPLY_INTEGER) {
            freeReplyObject(rk);
            snprintf(err, errlen,
                     "cursor: no dead letter %.60s (replayed or deleted since); "
                     "start again without a cursor",
                     cursor);
            errno = EINVAL;
            return NULL;
        }
        start = (long)rk->integer + 1;
        freeReplyObject(rk);
    }
    redisReply *r =
        store_priv_cmd(s, err, errlen, "ZREVRANGE cs:deadletters %ld %ld", start, start + limit);
    if (!r || store_priv_reply_error(r, err, errlen)) return NULL;
    cJSON *arr = cJSON_CreateArray();
    size_t count = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    for (size_t i = 0; i < count && (long)i < limit; i++) {
        const char *id = r->element[i]->str;
        redisReply *it = store_priv_cmd(s, err, errlen, "HGET cs:dead:%s item", id);
        if (it && it->type == REDIS_REPLY_STRING) {
            cJSON *o = cJSON_ParseWithLength(it->str, it->len);
            if (o) {
                /* The id the script gave it (another only after a clash between queues). */
                cJSON_ReplaceItemInObjectCaseSensitive(o, "id", cJSON_CreateString(id));
                cJSON_AddItemToArray(arr, o);
            }
        }
        if (it) freeReplyObject(it);
        if ((long)i == limit - 1 && count > (size_t)limit) snprintf(next, nextlen, "%s", id);
    }
    freeReplyObject(r);
    errno = 0;
    char *js = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return js;
}

int store_dead_replay(store *s, const char *id, char *err, size_t errlen) {
    char key[64];
    snprintf(key, sizeof key, "cs:dead:%.40s", id);
    const char *args[] = {key, "cs:deadletters", store_stream(STORE_Q_SF),
                          store_stream(STORE_Q_MKTO), id};
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_DEAD_REPLAY, 4, args, 5, err, errlen);
    if (!r) return -1;
    int rc = (int)r->integer;
    freeReplyObject(r);
    return rc;
}

int store_dead_delete(store *s, const char *id, char *err, size_t errlen) {
    redisReply *r = store_priv_cmd(s, err, errlen, "DEL cs:dead:%s", id);
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    int rc = r->integer > 0;
    freeReplyObject(r);
    r = store_priv_cmd(s, err, errlen, "ZREM cs:deadletters %s", id);
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    freeReplyObject(r);
    return rc;
}

/* The listed JSON of an unusable item's dead letter (its id is set when listed); caller
 * frees. NULL when out of memory. */
static char *unusable_item(const store_unusable *u) {
    char at[40];
    event_format_time(u->ev->received_ms, at, sizeof at);
    char *evjs = event_to_json(u->ev);
    cJSON *ev = evjs ? cJSON_Parse(evjs) : NULL;
    free(evjs);
    cJSON *item = ev ? cJSON_CreateObject() : NULL;
    char *js = NULL;
    if (item) {
        cJSON_AddStringToObject(item, "id", "");
        cJSON_AddStringToObject(item, "at", at);
        cJSON_AddNumberToObject(item, "attempts", 0);
        cJSON_AddStringToObject(item, "error", u->error);
        cJSON_AddItemToObject(item, "event", ev);
        js = cJSON_PrintUnformatted(item);
        cJSON_Delete(item);
    } else {
        cJSON_Delete(ev);
    }
    return js;
}

int store_enqueue_with_dead(store *s, const event *const *evs, size_t n, bool *added,
                            const store_unusable *const *dead, size_t m, bool *dead_added,
                            char *err, size_t errlen) {
    if (m == 0) return store_enqueue_refs(s, evs, n, added, err, errlen);
    size_t nkeys = 2 * n + m + 1, argc = nkeys + 2 + n + 3 * m, nowned = 2 * n + 3 * m;
    const char **argv = calloc(argc, sizeof *argv);
    size_t *lens = calloc(argc, sizeof *lens);
    char **owned = calloc(nowned, sizeof *owned);
    char ttl[16], count[24];
    int rc = -1;
    redisReply *r = NULL;
    snprintf(err, errlen, "out of memory");
    if (!argv || !lens || !owned) goto out;
    snprintf(ttl, sizeof ttl, "%d", STORE_DEDUP_TTL_S);
    snprintf(count, sizeof count, "%zu", n);
    size_t a = 0, o = 0; /* next argument, next owned string */
    for (size_t i = 0; i < n; i++) {
        argv[a++] = store_stream(store_queue_of(evs[i]));
        if (!(argv[a++] = owned[o++] = store_priv_dedup_key(evs[i]))) goto out;
    }
    for (size_t k = 0; k < m; k++)
        if (!(argv[a++] = owned[o++] = store_priv_dedup_key(dead[k]->ev))) goto out;
    argv[a++] = "cs:deadletters";
    argv[a++] = ttl;
    argv[a++] = count;
    for (size_t i = 0; i < n; i++)
        if (!(argv[a++] = owned[o++] = event_to_json(evs[i]))) goto out;
    for (size_t k = 0; k < m; k++) {
        if (!(argv[a++] = owned[o++] = unusable_item(dead[k]))) goto out;
        argv[a++] = dead[k]->error;
        if (!(argv[a++] = owned[o++] = malloc(24))) goto out;
        snprintf(owned[o - 1], 24, "%lld", (long long)dead[k]->ev->received_ms);
    }
    for (size_t i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    r = store_priv_eval(s, STORE_LUA_ENQUEUE_WITH_DEAD, (int)nkeys, (int)argc, argv, lens, err,
                        errlen);
    if (!r) goto out;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n + m) {
        snprintf(err, errlen, "Redis refused the events: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected answer");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        added[i] = r->element[i]->type == REDIS_REPLY_STRING;
    for (size_t k = 0; k < m; k++)
        dead_added[k] = r->element[n + k]->type == REDIS_REPLY_STRING;
    rc = 0;
out:
    if (r) freeReplyObject(r);
    if (owned)
        for (size_t i = 0; i < nowned; i++)
            free(owned[i]);
    free(owned);
    free(argv);
    free(lens);
    return rc;
}

int store_dead_unusable(store *s, const char *id, char *why, size_t whylen, char *err,
                        size_t errlen) {
    redisReply *r = store_priv_cmd(s, err, errlen, "HGET cs:dead:%s unusable", id);
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    int rc = r->type == REDIS_REPLY_STRING;
    if (rc) snprintf(why, whylen, "%s", r->str);
    freeReplyObject(r);
    return rc;
}

void store_dead_entries_free(store_dead_entry *e, size_t n) {
    if (!e) return;
    for (size_t i = 0; i < n; i++)
        free(e[i].item);
    free(e);
}

/* Appends to ids/scores the index entries of reply r (WITHSCORES pairs) that come after the
 * position (at, id) in newest-first order, up to max in all; r holds entries of one score in
 * ascending order when same_score (read from its end), else newest first. */
static void take_index(const redisReply *r, bool same_score, const store_dead_pos *after,
                       store_dead_entry *out, size_t *n, size_t max) {
    if (r->type != REDIS_REPLY_ARRAY) return;
    size_t pairs = r->elements / 2;
    for (size_t k = 0; k < pairs && *n < max; k++) {
        size_t i = same_score ? pairs - 1 - k : k;
        const redisReply *id = r->element[2 * i], *sc = r->element[2 * i + 1];
        if (id->type != REDIS_REPLY_STRING || !sc->str || id->len >= sizeof out[0].id) continue;
        if (same_score && strcmp(id->str, after->id) >= 0) continue;
        memcpy(out[*n].id, id->str, id->len + 1);
        out[*n].at_ms = strtoll(sc->str, NULL, 10);
        (*n)++;
    }
}

/* Reads each entry's item and unusable mark in one round trip; 0 or -1 with err. */
static int read_items(store *s, store_dead_entry *e, size_t n, char *err, size_t errlen) {
    if (n == 0) return 0;
    store_priv_pipe p = {0};
    for (size_t i = 0; i < n; i++)
        store_priv_pipe_addf(&p, "HMGET cs:dead:%s item unusable", e[i].id);
    redisReply **out = calloc(n, sizeof *out);
    int rc = out ? store_priv_pipe_run(s, &p, out, err, errlen) : -1;
    if (!out) snprintf(err, errlen, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const redisReply *r = out[i];
        /* Gone since the index was read (replayed or deleted): left without an item. */
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING)
            continue;
        e[i].item = malloc(r->element[0]->len + 1);
        if (!e[i].item) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        memcpy(e[i].item, r->element[0]->str, r->element[0]->len + 1);
        e[i].len = r->element[0]->len;
        e[i].unusable = r->element[1]->type == REDIS_REPLY_STRING;
    }
    for (size_t i = 0; out && i < n; i++)
        if (out[i]) freeReplyObject(out[i]);
    free(out);
    store_priv_pipe_free(&p);
    return rc;
}

long store_dead_scan(store *s, int64_t from_ms, int64_t to_ms, const store_dead_pos *after,
                     size_t max, store_dead_entry **out, char *err, size_t errlen) {
    *out = NULL;
    bool resume = after && after->at_ms >= 0 && after->at_ms <= to_ms;
    if (max == 0 || from_ms > to_ms || (resume && after->at_ms < from_ms)) return 0;
    store_dead_entry *e = calloc(max, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t n = 0;
    char hi[32];
    snprintf(hi, sizeof hi, "%lld", (long long)to_ms);
    redisReply *r;
    if (resume) {
        /* The rest of the cursor's millisecond first: ids before its id, newest first. */
        r = store_priv_cmd(s, err, errlen, "ZRANGEBYSCORE cs:deadletters %lld %lld WITHSCORES",
                           (long long)after->at_ms, (long long)after->at_ms);
        if (!r || store_priv_reply_error(r, err, errlen)) goto fail;
        take_index(r, true, after, e, &n, max);
        freeReplyObject(r);
        snprintf(hi, sizeof hi, "(%lld", (long long)after->at_ms);
    }
    if (n < max) {
        r = store_priv_cmd(s, err, errlen,
                           "ZREVRANGEBYSCORE cs:deadletters %s %lld WITHSCORES LIMIT 0 %lld", hi,
                           (long long)from_ms, (long long)(max - n));
        if (!r || store_priv_reply_error(r, err, errlen)) goto fail;
        take_index(r, false, after, e, &n, max);
        freeReplyObject(r);
    }
    if (read_items(s, e, n, err, errlen) != 0) goto fail;
    *out = e;
    return (long)n;
fail:
    store_dead_entries_free(e, n);
    return -1;
}

int store_dead_replay_many(store *s, const char *const *ids, size_t n, int *rc, char *err,
                           size_t errlen) {
    if (n == 0) return 0;
    store_priv_pipe p = {0};
    for (size_t i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof key, "cs:dead:%.40s", ids[i]);
        const char *args[] = {key, "cs:deadletters", store_stream(STORE_Q_SF),
                              store_stream(STORE_Q_MKTO), ids[i]};
        store_priv_pipe_add_eval(&p, STORE_LUA_DEAD_REPLAY, 4, args, 5);
    }
    redisReply **out = calloc(n, sizeof *out);
    int ret = out ? store_priv_pipe_run(s, &p, out, err, errlen) : -1;
    if (!out) snprintf(err, errlen, "out of memory");
    for (size_t i = 0; ret == 0 && i < n; i++) {
        if (out[i]->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "Redis: %s", out[i]->str);
            ret = -1;
        } else {
            rc[i] = out[i]->type == REDIS_REPLY_INTEGER ? (int)out[i]->integer : 0;
        }
    }
    for (size_t i = 0; out && i < n; i++)
        if (out[i]) freeReplyObject(out[i]);
    free(out);
    store_priv_pipe_free(&p);
    return ret;
}
