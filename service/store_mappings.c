/* store_mappings — mappings, the global switch, the audit log, the workers' progress,
 * pollers' values and the program copies' state. See include/store_mappings.h. */
#include "store_mappings.h"

#include "store_priv.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_sync_init(store *s, bool enabled, char *err, size_t errlen) {
    redisReply *r =
        store_priv_cmd(s, err, errlen, "SET cs:sync:enabled %s NX", enabled ? "1" : "0");
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    freeReplyObject(r);
    return 0;
}

int store_sync_get(store *s, bool *enabled, char *err, size_t errlen) {
    redisReply *r = store_priv_cmd(s, err, errlen, "GET cs:sync:enabled");
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    *enabled = !(r->type == REDIS_REPLY_STRING && strcmp(r->str, "0") == 0);
    freeReplyObject(r);
    return 0;
}

int store_sync_set(store *s, bool enabled, char *err, size_t errlen) {
    redisReply *r = store_priv_cmd(s, err, errlen, "SET cs:sync:enabled %s", enabled ? "1" : "0");
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    freeReplyObject(r);
    return 0;
}

store_found store_mapping_get(store *s, const char *program_id, mapping *out, char *err,
                              size_t errlen) {
    redisReply *r = store_priv_cmd(s, err, errlen, "GET cs:mapping:%s", program_id);
    if (!r || store_priv_reply_error(r, err, errlen)) return STORE_ERROR;
    store_found rc = STORE_NOT_FOUND;
    if (r->type == REDIS_REPLY_STRING)
        rc = mapping_from_json(r->str, r->len, out, err, errlen) == 0 ? STORE_FOUND : STORE_ERROR;
    freeReplyObject(r);
    return rc;
}

store_found store_mapping_by_campaign(store *s, const char *campaign_id, mapping *out, char *err,
                                      size_t errlen) {
    char c[16];
    store_priv_c15(c, campaign_id);
    redisReply *r = store_priv_cmd(s, err, errlen, "GET cs:mapping:campaign:%s", c);
    if (!r || store_priv_reply_error(r, err, errlen)) return STORE_ERROR;
    char pid[EV_NUMID_MAX] = "";
    if (r->type == REDIS_REPLY_STRING) snprintf(pid, sizeof pid, "%s", r->str);
    freeReplyObject(r);
    return pid[0] ? store_mapping_get(s, pid, out, err, errlen) : STORE_NOT_FOUND;
}

store_mapping_put_rc store_mapping_put(store *s, const mapping *m, char *conflict_program,
                                       size_t clen, char *err, size_t errlen) {
    mapping old;
    store_found had = store_mapping_get(s, m->program_id, &old, err, errlen);
    if (had == STORE_ERROR) return STORE_MAPPING_ERROR;
    char k1[64], k2[64], k4[64], c[16];
    snprintf(k1, sizeof k1, "cs:mapping:%s", m->program_id);
    store_priv_c15(c, m->campaign_id);
    snprintf(k2, sizeof k2, "cs:mapping:campaign:%s", c);
    if (had == STORE_FOUND) {
        store_priv_c15(c, old.campaign_id);
        snprintf(k4, sizeof k4, "cs:mapping:campaign:%s", c);
    } else {
        snprintf(k4, sizeof k4, "%s", k2);
    }
    char *js = mapping_to_json(m);
    if (!js) {
        snprintf(err, errlen, "out of memory");
        return STORE_MAPPING_ERROR;
    }
    const char *args[] = {k1, k2, "cs:mappings", k4, m->program_id, js};
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_MAPPING_PUT, 4, args, 6, err, errlen);
    free(js);
    if (!r) return STORE_MAPPING_ERROR;
    store_mapping_put_rc rc = STORE_MAPPING_ERROR;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER && r->element[1]->type == REDIS_REPLY_STRING) {
        switch (r->element[0]->integer) {
        case 0: rc = STORE_MAPPING_REPLACED; break;
        case 1: rc = STORE_MAPPING_CREATED; break;
        case 2:
            rc = STORE_MAPPING_CONFLICT;
            snprintf(conflict_program, clen, "%s", r->element[1]->str);
            break;
        default: break; /* an integer, not an enum: anything else is unexpected */
        }
    }
    if (rc == STORE_MAPPING_ERROR)
        snprintf(err, errlen, "Redis: unexpected answer to storing a mapping");
    freeReplyObject(r);
    return rc;
}

store_found store_mapping_delete(store *s, const char *program_id, char *err, size_t errlen) {
    mapping old;
    store_found had = store_mapping_get(s, program_id, &old, err, errlen);
    if (had != STORE_FOUND) return had;
    char k1[64], k2[64], c[16];
    snprintf(k1, sizeof k1, "cs:mapping:%s", program_id);
    store_priv_c15(c, old.campaign_id);
    snprintf(k2, sizeof k2, "cs:mapping:campaign:%s", c);
    const char *args[] = {k1, k2, "cs:mappings", program_id};
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_MAPPING_DELETE, 3, args, 4, err, errlen);
    if (!r) return STORE_ERROR;
    store_found rc =
        r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? STORE_FOUND : STORE_NOT_FOUND;
    freeReplyObject(r);
    return rc;
}

long store_mapping_list(store *s, const char *cursor, long limit, mapping *out, char *next,
                        size_t nextlen, char *err, size_t errlen) {
    next[0] = '\0';
    char min[40] = "-inf";
    if (cursor && *cursor) snprintf(min, sizeof min, "(%s", cursor);
    redisReply *r = store_priv_cmd(s, err, errlen, "ZRANGEBYSCORE cs:mappings %s +inf LIMIT 0 %ld",
                                   min, limit + 1);
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    long n = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && n < limit; i++) {
        store_found got = store_mapping_get(s, r->element[i]->str, &out[n], err, errlen);
        if (got == STORE_ERROR) {
            freeReplyObject(r);
            return -1;
        }
        if (got == STORE_FOUND) n++;
    }
    if (r->type == REDIS_REPLY_ARRAY && (long)r->elements > limit && n > 0)
        snprintf(next, nextlen, "%s", out[n - 1].program_id);
    freeReplyObject(r);
    return n;
}

store_found store_kv_get(store *s, const char *key, char *out, size_t size, char *err,
                         size_t errlen) {
    char k[160];
    snprintf(k, sizeof k, "cs:kv:%s", key);
    return store_priv_get_string(s, out, size, err, errlen, "GET %s", k);
}

int store_kv_set(store *s, const char *key, const char *value, char *err, size_t errlen) {
    redisReply *r = store_priv_cmd(s, err, errlen, "SET cs:kv:%s %s", key, value);
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    freeReplyObject(r);
    return 0;
}

int store_program_due_add(store *s, const char *program_id, char *err, size_t errlen) {
    redisReply *r = store_priv_cmd(s, err, errlen, "SADD cs:programs:due %s", program_id);
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    freeReplyObject(r);
    return 0;
}

long store_program_due_take(store *s, size_t max, char ***out, char *err, size_t errlen) {
    *out = NULL;
    redisReply *r = store_priv_cmd(s, err, errlen, "SPOP cs:programs:due %ld", (long)max);
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    long n = store_priv_strings(r, out, err, errlen);
    freeReplyObject(r);
    return n;
}

int store_audit_add(store *s, const char *const *entries, size_t n, char *err, size_t errlen) {
    if (n == 0) return 0;
    const char **args = malloc(sizeof *args * (n + 2));
    char max[16];
    if (!args) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(max, sizeof max, "%d", STORE_AUDIT_MAX);
    args[0] = "cs:audit";
    args[1] = max;
    memcpy(args + 2, entries, sizeof *entries * n);
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_AUDIT_ADD, 1, args, (int)n + 2, err, errlen);
    free(args);
    if (!r) return -1;
    freeReplyObject(r);
    return 0;
}

static bool audit_matches(const cJSON *o, const char *program_id, const char *campaign_id) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "programId");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "campaignId");
    if (*program_id && !(cJSON_IsString(p) && strcmp(p->valuestring, program_id) == 0))
        return false;
    if (*campaign_id && !(cJSON_IsString(c) && strncmp(c->valuestring, campaign_id, 15) == 0))
        return false;
    return true;
}

char *store_audit_list(store *s, const char *program_id, const char *campaign_id,
                       const char *cursor, long limit, char *next, size_t nextlen, char *err,
                       size_t errlen) {
    next[0] = '\0';
    char from[48] = "+";
    if (cursor && *cursor) snprintf(from, sizeof from, "(%s", cursor);
    cJSON *arr = cJSON_CreateArray();
    long found = 0, scanned = 0;
    char last[32] = "";
    /* Filtered pages scan at most 50 pages' worth of entries per call. */
    while (found < limit && scanned < limit * 50) {
        redisReply *r =
            store_priv_cmd(s, err, errlen, "XREVRANGE cs:audit %s - COUNT %ld", from, limit);
        if (!r || store_priv_reply_error(r, err, errlen)) {
            cJSON_Delete(arr);
            return NULL;
        }
        size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        for (size_t i = 0; i < n && found < limit; i++) {
            const redisReply *e = r->element[i];
            snprintf(last, sizeof last, "%s", e->element[0]->str);
            scanned++;
            const redisReply *f = e->element[1];
            for (size_t j = 0; j + 1 < f->elements; j += 2) {
                if (strcmp(f->element[j]->str, "entry") != 0) continue;
                cJSON *o = cJSON_ParseWithLength(f->element[j + 1]->str, f->element[j + 1]->len);
                if (o && audit_matches(o, program_id, campaign_id)) {
                    cJSON_AddItemToArray(arr, o);
                    found++;
                } else {
                    cJSON_Delete(o);
                }
            }
        }
        freeReplyObject(r);
        if ((long)n < limit) {
            last[0] = '\0'; /* the log's end: no next page */
            break;
        }
        snprintf(from, sizeof from, "(%s", last);
    }
    if (last[0]) snprintf(next, nextlen, "%s", last);
    char *js = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return js;
}

int store_progress_mark(store *s, char *err, size_t errlen) {
    redisReply *r =
        store_priv_cmd(s, err, errlen, "SET cs:workers:progress %lld", (long long)event_now_ms());
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    freeReplyObject(r);
    return 0;
}

int store_progress_get(store *s, int64_t *ms, char *err, size_t errlen) {
    char buf[32];
    int rc =
        store_priv_get_string(s, buf, sizeof buf, err, errlen, "GET %s", "cs:workers:progress");
    if (rc < 0) return -1;
    *ms = rc ? strtoll(buf, NULL, 10) : 0;
    return 0;
}

#define COPY_SCHEDULE "cs:programs:backoff"

static void copy_state_from_hash(const redisReply *r, store_copy_state *st) {
    memset(st, 0, sizeof *st);
    if (r->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
        if (!k || !v) continue;
        if (!strcmp(k, "failures"))
            st->failures = (int)strtol(v, NULL, 10);
        else if (!strcmp(k, "next"))
            st->next_ms = strtoll(v, NULL, 10);
        else if (!strcmp(k, "crm"))
            snprintf(st->crm, sizeof st->crm, "%s", v);
        else if (!strcmp(k, "code"))
            snprintf(st->code, sizeof st->code, "%s", v);
        else if (!strcmp(k, "message"))
            snprintf(st->message, sizeof st->message, "%s", v);
        else if (!strcmp(k, "at"))
            st->at_ms = strtoll(v, NULL, 10);
    }
}

static int copy_state_each(size_t i, redisReply *r, void *ud) {
    copy_state_from_hash(r, &((store_copy_state *)ud)[i]);
    return 0;
}

int store_copy_state_get_many(store *s, size_t n, const char *const *program_ids,
                              store_copy_state *out, char *err, size_t errlen) {
    store_priv_pipe p = {0};
    for (size_t i = 0; i < n; i++)
        store_priv_pipe_addf(&p, "HGETALL cs:program:copy:%s", program_ids[i]);
    int rc = store_priv_pipe_each(s, &p, false, copy_state_each, out, err, errlen);
    store_priv_pipe_free(&p);
    return rc;
}

int store_copy_state_get(store *s, const char *program_id, store_copy_state *out, char *err,
                         size_t errlen) {
    return store_copy_state_get_many(s, 1, &program_id, out, err, errlen);
}

int store_copy_failed(store *s, const char *program_id, const store_copy_state *st, char *err,
                      size_t errlen) {
    store_priv_pipe p = {0};
    store_priv_pipe_addf(&p, "MULTI");
    store_priv_pipe_addf(
        &p, "HSET cs:program:copy:%s failures %d next %lld crm %s code %s message %s at %lld",
        program_id, st->failures, (long long)st->next_ms, st->crm, st->code, st->message,
        (long long)st->at_ms);
    store_priv_pipe_addf(&p, "ZADD " COPY_SCHEDULE " %lld %s", (long long)st->next_ms, program_id);
    store_priv_pipe_addf(&p, "EXEC");
    int rc = store_priv_pipe_each(s, &p, false, store_priv_ignore_reply, NULL, err, errlen);
    store_priv_pipe_free(&p);
    return rc;
}

int store_copy_clear(store *s, const char *program_id, char *err, size_t errlen) {
    store_priv_pipe p = {0};
    store_priv_pipe_addf(&p, "MULTI");
    store_priv_pipe_addf(&p, "DEL cs:program:copy:%s", program_id);
    store_priv_pipe_addf(&p, "ZREM " COPY_SCHEDULE " %s", program_id);
    store_priv_pipe_addf(&p, "EXEC");
    int rc = store_priv_pipe_each(s, &p, false, store_priv_ignore_reply, NULL, err, errlen);
    store_priv_pipe_free(&p);
    return rc;
}

int store_copy_retry_now(store *s, const char *program_id, char *err, size_t errlen) {
    store_priv_pipe p = {0};
    store_priv_pipe_addf(&p, "MULTI");
    store_priv_pipe_addf(&p, "HDEL cs:program:copy:%s failures next", program_id);
    store_priv_pipe_addf(&p, "ZREM " COPY_SCHEDULE " %s", program_id);
    store_priv_pipe_addf(&p, "EXEC");
    int rc = store_priv_pipe_each(s, &p, false, store_priv_ignore_reply, NULL, err, errlen);
    store_priv_pipe_free(&p);
    return rc;
}

typedef struct {
    char **ids;
    long n;
    const redisReply *due;
} copy_take_ud;

/* ZREM answers 1 to the one caller that took the program off the schedule. */
static int copy_take_each(size_t i, redisReply *r, void *ud) {
    copy_take_ud *u = ud;
    const char *id = u->due->element[i]->str;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 1 && id)
        if ((u->ids[u->n] = strdup(id)) != NULL) u->n++;
    return 0;
}

long store_copy_due_take(store *s, int64_t now_ms, size_t max, char ***out, char *err,
                         size_t errlen) {
    *out = NULL;
    redisReply *r =
        store_priv_cmd(s, err, errlen, "ZRANGEBYSCORE " COPY_SCHEDULE " -inf %lld LIMIT 0 %lld",
                       (long long)now_ms, (long long)max);
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    long rc = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements) {
        store_priv_pipe p = {0};
        copy_take_ud u = {calloc(r->elements, sizeof(char *)), 0, r};
        for (size_t i = 0; i < r->elements; i++)
            store_priv_pipe_addf(&p, "ZREM " COPY_SCHEDULE " %s",
                                 r->element[i]->str ? r->element[i]->str : "");
        if (!u.ids) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        } else {
            rc = store_priv_pipe_each(s, &p, false, copy_take_each, &u, err, errlen);
        }
        store_priv_pipe_free(&p);
        if (rc == 0) {
            *out = u.ids;
            rc = u.n;
        } else {
            for (long i = 0; u.ids && i < u.n; i++)
                free(u.ids[i]);
            free(u.ids);
        }
    }
    freeReplyObject(r);
    return rc;
}

void store_priv_pipe_add_audit(store_priv_pipe *p, const char *entry) {
    char max[16];
    snprintf(max, sizeof max, "%d", STORE_AUDIT_MAX);
    /* As audit_add.lua writes each entry. */
    const char *argv[] = {"XADD", "cs:audit", "MAXLEN", "~", max, "*", "entry", entry};
    store_priv_pipe_add_argv(p, 8, argv, NULL);
}
