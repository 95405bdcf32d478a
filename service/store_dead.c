/* store_dead — dead letters: moving an entry there, listing, scanning, replaying and
 * deleting them, and the received items that never were events. See include/store_dead.h. */
#include "store_dead.h"

#include "store_priv.h"

#include <cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Dead letters take the first free id among candidates the scripts are given (lib/dead.lua):
 * DEAD_WINDOW ids at first, twice as many each time all are taken, up to DEAD_WINDOW_MAX. */
#define DEAD_WINDOW     4
#define DEAD_WINDOW_MAX 1024

/* The listed JSON of an entry's dead letter (its id is set when listed); caller frees. NULL
 * when out of memory. */
static char *dead_item(const store_entry *e, int attempts, const char *error, int64_t at_ms) {
    char at[40];
    event_format_time(at_ms, at, sizeof at);
    cJSON *item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "id", e->id); /* replaced when listed if another was chosen */
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
    return js;
}

/* A stream entry id's two parts (<ms>-<seq>); false when id is not one. */
static bool entry_id_parts(const char *id, unsigned long long *ms, unsigned long long *seq) {
    char *end;
    if (!isdigit((unsigned char)*id)) return false;
    *ms = strtoull(id, &end, 10);
    if (*end != '-' || !isdigit((unsigned char)end[1])) return false;
    *seq = strtoull(end + 1, &end, 10);
    return *end == '\0';
}

/* One try of dead_letter.lua with the window of w candidates from seq on: the reply (a nil
 * one when all were taken), or NULL with err. */
static redisReply *dead_letter_try(store *s, const store_entry *e, const char *item,
                                   const char *atms, unsigned long long ms, unsigned long long seq,
                                   size_t w, char *err, size_t errlen) {
    store_priv_args a = {0};
    char q[4];
    snprintf(q, sizeof q, "%d", (int)e->q);
    store_priv_args_add(&a, store_stream(e->q));
    store_priv_args_add(&a, "cs:deadletters");
    for (size_t j = 0; j < w; j++)
        store_priv_args_addf(&a, "cs:dead:%llu-%llu", ms, seq + j);
    const char *argv[] = {STORE_GROUP, e->id, item, e->json, atms, q};
    for (size_t k = 0; k < sizeof argv / sizeof argv[0]; k++)
        store_priv_args_add(&a, argv[k]);
    for (size_t j = 0; j < w; j++)
        store_priv_args_addf(&a, "%llu-%llu", ms, seq + j);
    redisReply *r = NULL;
    if (a.oom)
        snprintf(err, errlen, "out of memory");
    else
        r = store_priv_eval_strs(s, STORE_LUA_DEAD_LETTER, (int)(2 + w), a.v, (int)a.n, err,
                                 errlen);
    store_priv_args_free(&a);
    return r;
}

int store_dead_letter(store *s, const store_entry *e, int attempts, const char *error, char *id,
                      size_t idlen, char *err, size_t errlen) {
    unsigned long long ms, seq;
    if (!entry_id_parts(e->id, &ms, &seq)) {
        snprintf(err, errlen, "not a stream entry id: %.40s", e->id);
        return -1;
    }
    int64_t now = event_now_ms();
    char atms[24];
    snprintf(atms, sizeof atms, "%lld", (long long)now);
    char *item = dead_item(e, attempts, error, now);
    if (!item) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = -1;
    for (size_t w = DEAD_WINDOW; rc != 0; seq += w, w *= 2) {
        if (w > DEAD_WINDOW_MAX) {
            snprintf(err, errlen, "no free dead-letter id after %.40s", e->id);
            break;
        }
        redisReply *r = dead_letter_try(s, e, item, atms, ms, seq, w, err, errlen);
        if (!r) break;
        if (r->type == REDIS_REPLY_STRING) {
            if (id) snprintf(id, idlen, "%s", r->str);
            rc = 0;
        }
        freeReplyObject(r);
    }
    free(item);
    return rc;
}

typedef struct {
    cJSON *arr;
    const redisReply *ids;
} dead_list_ud;

/* One dead letter's item as listed, with the id the script gave it (another than its entry
 * id only after a clash between queues); gone since the index was read: left out. */
static int dead_list_each(size_t i, redisReply *r, void *ud) {
    dead_list_ud *u = ud;
    if (r->type != REDIS_REPLY_STRING) return 0;
    cJSON *o = cJSON_ParseWithLength(r->str, r->len);
    if (!o) return 0;
    cJSON_ReplaceItemInObjectCaseSensitive(o, "id", cJSON_CreateString(u->ids->element[i]->str));
    cJSON_AddItemToArray(u->arr, o);
    return 0;
}

/* The rank after which the page starts: 0 without a cursor, else the cursor's rank + 1
 * (items with the same time are then neither skipped nor repeated). */
static store_dead_list_rc dead_list_start(store *s, const char *cursor, long *start, char *err,
                                          size_t errlen) {
    *start = 0;
    if (!cursor || !*cursor) return STORE_DEAD_LIST_OK;
    redisReply *rk = store_priv_cmd(s, err, errlen, "ZREVRANK cs:deadletters %s", cursor);
    if (!rk || store_priv_reply_error(rk, err, errlen)) return STORE_DEAD_LIST_ERROR;
    store_dead_list_rc rc = STORE_DEAD_LIST_OK;
    if (rk->type == REDIS_REPLY_INTEGER) {
        *start = (long)rk->integer + 1;
    } else {
        snprintf(err, errlen,
                 "cursor: no dead letter %.60s (replayed or deleted since); "
                 "start again without a cursor",
                 cursor);
        rc = STORE_DEAD_LIST_NO_CURSOR;
    }
    freeReplyObject(rk);
    return rc;
}

store_dead_list_rc store_dead_list(store *s, const char *cursor, long limit, char **json,
                                   char *next, size_t nextlen, char *err, size_t errlen) {
    *json = NULL;
    next[0] = '\0';
    long start;
    store_dead_list_rc rc = dead_list_start(s, cursor, &start, err, errlen);
    if (rc != STORE_DEAD_LIST_OK) return rc;
    /* Newest first, one more than the page to know whether another follows. */
    redisReply *r =
        store_priv_cmd(s, err, errlen, "ZREVRANGE cs:deadletters %ld %ld", start, start + limit);
    if (!r || store_priv_reply_error(r, err, errlen)) return STORE_DEAD_LIST_ERROR;
    size_t count = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    size_t page = limit < 1 ? 0 : count < (size_t)limit ? count : (size_t)limit;
    store_priv_pipe p = {0};
    for (size_t i = 0; i < page; i++)
        store_priv_pipe_addf(&p, "HGET cs:dead:%s item", r->element[i]->str);
    dead_list_ud u = {cJSON_CreateArray(), r};
    if (!u.arr || store_priv_pipe_each(s, &p, true, dead_list_each, &u, err, errlen) != 0) {
        if (!u.arr) snprintf(err, errlen, "out of memory");
        rc = STORE_DEAD_LIST_ERROR;
    }
    if (rc == STORE_DEAD_LIST_OK && page > 0 && count > page)
        snprintf(next, nextlen, "%s", r->element[page - 1]->str);
    if (rc == STORE_DEAD_LIST_OK && !(*json = cJSON_PrintUnformatted(u.arr))) {
        snprintf(err, errlen, "out of memory");
        rc = STORE_DEAD_LIST_ERROR;
    }
    cJSON_Delete(u.arr);
    store_priv_pipe_free(&p);
    freeReplyObject(r);
    return rc;
}

store_found store_dead_replay(store *s, const char *id, char *err, size_t errlen) {
    char key[64];
    snprintf(key, sizeof key, "cs:dead:%.40s", id);
    const char *args[] = {key, "cs:deadletters", store_stream(STORE_Q_SF),
                          store_stream(STORE_Q_MKTO), id};
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_DEAD_REPLAY, 4, args, 5, err, errlen);
    if (!r) return STORE_ERROR;
    store_found rc =
        r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? STORE_FOUND : STORE_NOT_FOUND;
    freeReplyObject(r);
    return rc;
}

store_found store_dead_delete(store *s, const char *id, char *err, size_t errlen) {
    redisReply *r = store_priv_cmd(s, err, errlen, "DEL cs:dead:%s", id);
    if (!r || store_priv_reply_error(r, err, errlen)) return STORE_ERROR;
    store_found rc =
        r->type == REDIS_REPLY_INTEGER && r->integer > 0 ? STORE_FOUND : STORE_NOT_FOUND;
    freeReplyObject(r);
    r = store_priv_cmd(s, err, errlen, "ZREM cs:deadletters %s", id);
    if (!r || store_priv_reply_error(r, err, errlen)) return STORE_ERROR;
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

/* The unusable items received in one millisecond, and their window of candidate ids. */
typedef struct {
    int64_t ms;
    size_t items;  /* how many of the batch */
    size_t window; /* candidates ms-0 .. ms-(window - 1) */
} dead_group;

/* Groups the m items by receive time: groups (room for m) and each item's group (0-based)
 * in group_of; returns the number of groups. */
static size_t group_items(const store_unusable *const *dead, size_t m, dead_group *groups,
                          size_t *group_of) {
    size_t g = 0;
    for (size_t k = 0; k < m; k++) {
        size_t h = 0;
        while (h < g && groups[h].ms != dead[k]->ev->received_ms)
            h++;
        if (h == g) groups[g++] = (dead_group){dead[k]->ev->received_ms, 0, 0};
        groups[h].items++;
        group_of[k] = h;
    }
    return g;
}

/* The KEYS and ARGV of enqueue_with_dead.lua (its header says which is which) into a; the
 * number of keys. */
static size_t enqueue_dead_args(store_priv_args *a, const event *const *evs, size_t n,
                                const store_unusable *const *dead, size_t m,
                                const dead_group *groups, size_t g, const size_t *group_of) {
    for (size_t i = 0; i < n; i++) {
        store_priv_args_add(a, store_stream(store_queue_of(evs[i])));
        store_priv_args_take(a, store_priv_dedup_key(evs[i]));
    }
    for (size_t k = 0; k < m; k++)
        store_priv_args_take(a, store_priv_dedup_key(dead[k]->ev));
    store_priv_args_add(a, "cs:deadletters");
    size_t nkeys = 2 * n + m + 1;
    for (size_t h = 0; h < g; h++) {
        for (size_t j = 0; j < groups[h].window; j++)
            store_priv_args_addf(a, "cs:dead:%lld-%zu", (long long)groups[h].ms, j);
        nkeys += groups[h].window;
    }
    store_priv_args_addf(a, "%d", STORE_DEDUP_TTL_S);
    store_priv_args_addf(a, "%zu", n);
    store_priv_args_addf(a, "%zu", m);
    store_priv_args_addf(a, "%zu", g);
    for (size_t i = 0; i < n; i++)
        store_priv_args_take(a, event_to_json(evs[i]));
    for (size_t k = 0; k < m; k++) {
        store_priv_args_take(a, unusable_item(dead[k]));
        store_priv_args_add(a, dead[k]->error);
        store_priv_args_addf(a, "%zu", group_of[k] + 1);
    }
    size_t first = 2 * n + m + 2; /* the first window's first key, counting from 1 as Lua */
    for (size_t h = 0; h < g; h++) {
        store_priv_args_addf(a, "%lld", (long long)groups[h].ms);
        store_priv_args_addf(a, "%zu", first);
        store_priv_args_addf(a, "%zu", groups[h].window);
        first += groups[h].window;
    }
    return nkeys;
}

/* One try of enqueue_with_dead.lua with the groups' windows as they are: the reply (the
 * integer -1 when a window was too small), or NULL with err. */
static redisReply *enqueue_dead_try(store *s, const event *const *evs, size_t n,
                                    const store_unusable *const *dead, size_t m,
                                    const dead_group *groups, size_t g, const size_t *group_of,
                                    char *err, size_t errlen) {
    store_priv_args a = {0};
    size_t nkeys = enqueue_dead_args(&a, evs, n, dead, m, groups, g, group_of);
    size_t *lens = a.oom ? NULL : malloc(sizeof *lens * a.n);
    redisReply *r = NULL;
    if (!lens) {
        snprintf(err, errlen, "out of memory");
    } else {
        for (size_t i = 0; i < a.n; i++)
            lens[i] = strlen(a.v[i]);
        r = store_priv_eval(s, STORE_LUA_ENQUEUE_WITH_DEAD, (int)nkeys, (int)a.n, a.v, lens, err,
                            errlen);
    }
    free(lens);
    store_priv_args_free(&a);
    return r;
}

int store_enqueue_with_dead(store *s, const event *const *evs, size_t n, bool *added,
                            const store_unusable *const *dead, size_t m, bool *dead_added,
                            char *err, size_t errlen) {
    if (m == 0) return store_enqueue_refs(s, evs, n, added, err, errlen);
    dead_group *groups = malloc(sizeof *groups * m);
    size_t *group_of = malloc(sizeof *group_of * m);
    redisReply *r = NULL;
    int rc = -1;
    if (!groups || !group_of) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    size_t g = group_items(dead, m, groups, group_of);
    for (size_t h = 0; h < g; h++)
        groups[h].window = groups[h].items + DEAD_WINDOW;
    for (;;) {
        r = enqueue_dead_try(s, evs, n, dead, m, groups, g, group_of, err, errlen);
        if (!r || r->type != REDIS_REPLY_INTEGER) break;
        freeReplyObject(r); /* a window had too few free ids: nothing was stored */
        r = NULL;
        bool room = true;
        for (size_t h = 0; h < g; h++)
            room = room && (groups[h].window *= 2) <= DEAD_WINDOW_MAX + groups[h].items;
        if (!room) {
            snprintf(err, errlen, "no free dead-letter id in the receive time's millisecond");
            goto out;
        }
    }
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
    free(groups);
    free(group_of);
    return rc;
}

store_found store_dead_unusable(store *s, const char *id, char *why, size_t whylen, char *err,
                                size_t errlen) {
    redisReply *r = store_priv_cmd(s, err, errlen, "HGET cs:dead:%s unusable", id);
    if (!r || store_priv_reply_error(r, err, errlen)) return STORE_ERROR;
    store_found rc = r->type == REDIS_REPLY_STRING ? STORE_FOUND : STORE_NOT_FOUND;
    if (rc == STORE_FOUND) snprintf(why, whylen, "%s", r->str);
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

int store_dead_replay_many(store *s, const char *const *ids, size_t n, store_found *rc, char *err,
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
            rc[i] = out[i]->type == REDIS_REPLY_INTEGER && out[i]->integer == 1 ? STORE_FOUND
                                                                                : STORE_NOT_FOUND;
        }
    }
    for (size_t i = 0; out && i < n; i++)
        if (out[i]) freeReplyObject(out[i]);
    free(out);
    store_priv_pipe_free(&p);
    return ret;
}
