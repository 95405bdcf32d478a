/* store_jobs — jobs, their details and what a running job keeps. See include/store_jobs.h. */
#include "store_jobs.h"

#include "store_priv.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEP '\x1f' /* between a kept member's fields (no CRM value we keep holds it) */

/* The counts of a job's hash, by field name. */
static const struct {
    const char *name;
    size_t off;
} counts[] = {
    {"listedMarketo", offsetof(store_job, listed_marketo)},
    {"listedSalesforce", offsetof(store_job, listed_salesforce)},
    {"compared", offsetof(store_job, compared)},
    {"missing_in_marketo", offsetof(store_job, missing_in_marketo)},
    {"missing_in_salesforce", offsetof(store_job, missing_in_salesforce)},
    {"status_differs", offsetof(store_job, status_differs)},
    {"queued", offsetof(store_job, queued)},
    {"applied", offsetof(store_job, applied)},
    {"skipped", offsetof(store_job, skipped)},
    {"deadLettered", offsetof(store_job, dead_lettered)},
    {"details", offsetof(store_job, details)},
    {"detailsDropped", offsetof(store_job, details_dropped)},
    {"takeovers", offsetof(store_job, takeovers)},
};
#define NCOUNTS (sizeof counts / sizeof counts[0])

static void copy(char *dst, size_t size, const char *src) {
    snprintf(dst, size, "%s", src ? src : "");
}

/* One field of a job's hash into j. */
static void job_field(store_job *j, const char *k, const char *v) {
    for (size_t i = 0; i < NCOUNTS; i++)
        if (!strcmp(k, counts[i].name)) {
            *(long long *)((char *)j + counts[i].off) = strtoll(v, NULL, 10);
            return;
        }
    int e;
    if (!strcmp(k, "id"))
        copy(j->id, sizeof j->id, v);
    else if (!strcmp(k, "kind") && (e = job_kind_parse(v)) >= 0)
        j->kind = (job_kind)e;
    else if (!strcmp(k, "trigger") && (e = job_trigger_parse(v)) >= 0)
        j->trigger = (job_trigger)e;
    else if (!strcmp(k, "state") && (e = job_state_parse(v)) >= 0)
        j->state = (job_state)e;
    else if (!strcmp(k, "phase") && (e = job_phase_parse(v)) >= 0)
        j->phase = (job_phase)e;
    else if (!strcmp(k, "programId"))
        copy(j->program_id, sizeof j->program_id, v);
    else if (!strcmp(k, "campaignId"))
        copy(j->campaign_id, sizeof j->campaign_id, v);
    else if (!strcmp(k, "createdAt"))
        j->created_ms = strtoll(v, NULL, 10);
    else if (!strcmp(k, "startedAt"))
        j->started_ms = strtoll(v, NULL, 10);
    else if (!strcmp(k, "endedAt"))
        j->ended_ms = strtoll(v, NULL, 10);
    else if (!strcmp(k, "error"))
        copy(j->error, sizeof j->error, v);
    else if (!strcmp(k, "owner"))
        copy(j->owner, sizeof j->owner, v);
    else if (!strcmp(k, "cancel"))
        j->cancel = !strcmp(v, "1");
    else if (!strcmp(k, "cursor"))
        copy(j->cursor, sizeof j->cursor, v);
}

/* An HGETALL reply into out: STORE_FOUND, or STORE_NOT_FOUND for an empty one. */
static store_found job_from_reply(const redisReply *r, store_job *out) {
    memset(out, 0, sizeof *out);
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) return STORE_NOT_FOUND;
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->str && r->element[i + 1]->str)
            job_field(out, r->element[i]->str, r->element[i + 1]->str);
    return out->id[0] ? STORE_FOUND : STORE_NOT_FOUND;
}

store_found store_job_get(store *s, const char *id, store_job *out, char *err, size_t errlen) {
    redisReply *r = store_priv_cmd(s, err, errlen, "HGETALL cs:job:%s", id);
    if (!r || store_priv_reply_error(r, err, errlen)) return STORE_ERROR;
    store_found rc = job_from_reply(r, out);
    freeReplyObject(r);
    return rc;
}

store_job_create_rc store_job_create(store *s, const store_job *j, long long keep_ms, char *active,
                                     char *err, size_t errlen) {
    for (int attempt = 0; attempt < 5; attempt++) {
        char seen[JOB_ID_MAX] = "";
        if (store_priv_get_string(s, seen, sizeof seen, err, errlen, "GET cs:job:active:%s",
                                  j->program_id) == STORE_ERROR)
            return STORE_JOB_ERROR;
        store_priv_args a = {0};
        store_priv_args_addf(&a, "cs:job:active:%s", j->program_id);
        store_priv_args_addf(&a, "cs:job:%s", j->id);
        store_priv_args_add(&a, "cs:jobs");
        store_priv_args_addf(&a, "cs:jobs:program:%s", j->program_id);
        store_priv_args_add(&a, "cs:jobs:queued");
        store_priv_args_addf(&a, "cs:job:%s", seen[0] ? seen : j->id);
        store_priv_args_add(&a, j->id);
        store_priv_args_add(&a, seen);
        store_priv_args_addf(&a, "%lld", (long long)j->created_ms);
        store_priv_args_addf(&a, "%lld", keep_ms);
        const char *fields[][2] = {{"id", j->id},
                                   {"kind", job_kind_name(j->kind)},
                                   {"trigger", job_trigger_name(j->trigger)},
                                   {"programId", j->program_id},
                                   {"campaignId", j->campaign_id},
                                   {"state", job_state_name(JOB_QUEUED)},
                                   {"phase", job_phase_name(JOB_WAITING)}};
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
            store_priv_args_add(&a, fields[i][0]);
            store_priv_args_add(&a, fields[i][1]);
        }
        store_priv_args_add(&a, "createdAt");
        store_priv_args_addf(&a, "%lld", (long long)j->created_ms);
        redisReply *r = NULL;
        if (a.oom)
            snprintf(err, errlen, "out of memory");
        else
            r = store_priv_eval_strs(s, STORE_LUA_JOB_CREATE, 6, a.v, (int)a.n, err, errlen);
        store_priv_args_free(&a);
        if (!r) return STORE_JOB_ERROR;
        long long code =
            r->type == REDIS_REPLY_ARRAY && r->elements >= 1 ? r->element[0]->integer : -2;
        if (code >= 0 && r->elements == 2 && r->element[1]->str)
            copy(active, JOB_ID_MAX, r->element[1]->str);
        freeReplyObject(r);
        if (code == 1) return STORE_JOB_CREATED;
        if (code == 0) return STORE_JOB_EXISTS;
        if (code != -1) {
            snprintf(err, errlen, "Redis: unexpected answer when creating a job");
            return STORE_JOB_ERROR;
        }
    }
    snprintf(err, errlen, "the mapping's job kept changing while a job was created");
    return STORE_JOB_ERROR;
}

/* HGETALL of each id in one round trip into out (found[i] whether it exists). */
static int jobs_get_many(store *s, char **ids, size_t n, store_job *out, bool *found, char *err,
                         size_t errlen) {
    if (n == 0) return 0;
    store_priv_pipe p = {0};
    for (size_t i = 0; i < n; i++)
        store_priv_pipe_addf(&p, "HGETALL cs:job:%s", ids[i]);
    redisReply **rs = calloc(n, sizeof *rs);
    int rc = rs ? store_priv_pipe_run(s, &p, rs, err, errlen) : -1;
    if (!rs) snprintf(err, errlen, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        found[i] = job_from_reply(rs[i], &out[i]) == STORE_FOUND;
        freeReplyObject(rs[i]);
    }
    free(rs);
    store_priv_pipe_free(&p);
    return rc;
}

long store_job_list(store *s, const char *program_id, long offset, long limit, store_job *out,
                    long *next, char *err, size_t errlen) {
    char key[64];
    if (program_id)
        snprintf(key, sizeof key, "cs:jobs:program:%s", program_id);
    else
        snprintf(key, sizeof key, "cs:jobs");
    *next = -1;
    redisReply *r = store_priv_cmd(s, err, errlen, "ZREVRANGE %s %ld %ld", key, offset,
                                   offset + limit); /* one more: is there a next page? */
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    char **ids = NULL;
    long n = store_priv_strings(r, &ids, err, errlen);
    freeReplyObject(r);
    if (n < 0) return -1;
    bool more = n > limit;
    size_t take = (size_t)(more ? limit : n);
    bool *found = calloc(take ? take : 1, sizeof *found);
    long k = 0, gone = 0;
    if (!found || jobs_get_many(s, ids, take, out, found, err, errlen) != 0) {
        if (!found) snprintf(err, errlen, "out of memory");
        k = -1;
    }
    for (size_t i = 0; k >= 0 && i < take; i++) {
        if (found[i]) {
            if ((long)i != k) out[k] = out[i];
            k++;
            continue;
        }
        gone++; /* expired: its index entry goes too */
        redisReply *z = store_priv_cmd(s, err, errlen, "ZREM %s %s", key, ids[i]);
        if (z) freeReplyObject(z);
    }
    if (k >= 0 && more) *next = offset + limit - gone;
    for (long i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    free(found);
    return k;
}

long store_job_details(store *s, const char *id, long offset, long limit, char ***out, long *next,
                       char *err, size_t errlen) {
    *out = NULL;
    *next = -1;
    redisReply *r = store_priv_cmd(s, err, errlen, "LRANGE cs:job:%s:details %ld %ld", id, offset,
                                   offset + limit);
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    long n = store_priv_strings(r, out, err, errlen);
    freeReplyObject(r);
    if (n > limit) {
        free((*out)[limit]);
        n = limit;
        *next = offset + limit;
    }
    return n;
}

static long id_list(store *s, char ***out, char *err, size_t errlen, const char *fmt, long max) {
    *out = NULL;
    redisReply *r = max >= 0 ? store_priv_cmd(s, err, errlen, fmt, max - 1)
                             : store_priv_cmd(s, err, errlen, fmt);
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    long n = store_priv_strings(r, out, err, errlen);
    freeReplyObject(r);
    return n;
}

long store_jobs_queued(store *s, long max, char ***out, char *err, size_t errlen) {
    return id_list(s, out, err, errlen, "ZRANGE cs:jobs:queued 0 %ld", max);
}

long store_jobs_running(store *s, char ***out, char *err, size_t errlen) {
    return id_list(s, out, err, errlen, "SMEMBERS cs:jobs:running", -1);
}

long store_jobs_applying(store *s, char ***out, char *err, size_t errlen) {
    return id_list(s, out, err, errlen, "SMEMBERS cs:jobs:applying", -1);
}

store_claim_rc store_job_claim(store *s, const char *id, const char *program_id, const char *owner,
                               long ttl_ms, int64_t now_ms, char *err, size_t errlen) {
    char job[64], lock[64], ttl[24], now[24];
    snprintf(job, sizeof job, "cs:job:%s", id);
    snprintf(lock, sizeof lock, "cs:lock:job:%s", program_id);
    snprintf(ttl, sizeof ttl, "%ld", ttl_ms);
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    const char *args[] = {job, "cs:jobs:queued", "cs:jobs:running", lock, id, owner, ttl,
                          now, program_id};
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_JOB_CLAIM, 4, args, 9, err, errlen);
    if (!r) return STORE_CLAIM_ERROR;
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    return v == 1 ? STORE_CLAIM_TAKEN : v == 2 ? STORE_CLAIM_TAKEOVER : STORE_CLAIM_NONE;
}

int store_job_renew(store *s, const char *program_id, const char *owner, long ttl_ms, bool *held,
                    char *err, size_t errlen) {
    char lock[64];
    snprintf(lock, sizeof lock, "cs:lock:job:%s", program_id);
    const char *keys[] = {lock};
    *held = false;
    return store_lock_many(s, keys, 1, owner, ttl_ms, held, err, errlen);
}

/* ---- pages ---- */

struct store_job_page {
    cJSON *o, *incr, *details, *spill, *leads, *seen;
};

store_job_page *store_job_page_new(job_phase phase, const char *cursor) {
    store_job_page *p = calloc(1, sizeof *p);
    if (!p || !(p->o = cJSON_CreateObject())) {
        free(p);
        return NULL;
    }
    cJSON_AddStringToObject(p->o, "phase", job_phase_name(phase));
    cJSON_AddStringToObject(p->o, "cursor", cursor ? cursor : "");
    p->incr = cJSON_AddObjectToObject(p->o, "incr");
    p->details = cJSON_AddArrayToObject(p->o, "details");
    p->spill = cJSON_AddArrayToObject(p->o, "spill");
    p->leads = cJSON_AddArrayToObject(p->o, "leads");
    p->seen = cJSON_AddArrayToObject(p->o, "seen");
    return p;
}

void store_job_page_count(store_job_page *p, const char *field, long long n) {
    if (!p || !n) return;
    cJSON *c = cJSON_GetObjectItemCaseSensitive(p->incr, field);
    if (c)
        cJSON_SetNumberValue(c, c->valuedouble + (double)n);
    else
        cJSON_AddNumberToObject(p->incr, field, (double)n);
}

void store_job_page_detail(store_job_page *p, const char *json) {
    if (p) cJSON_AddItemToArray(p->details, cJSON_CreateString(json));
}

void store_job_page_keep(store_job_page *p, const char *email, const char *value,
                         const char *lead) {
    if (!p) return;
    const char *kv[] = {email, value};
    cJSON_AddItemToArray(p->spill, cJSON_CreateStringArray(kv, 2));
    if (lead && *lead) {
        const char *lk[] = {lead, email};
        cJSON_AddItemToArray(p->leads, cJSON_CreateStringArray(lk, 2));
    }
}

void store_job_page_seen(store_job_page *p, const char *email) {
    if (p) cJSON_AddItemToArray(p->seen, cJSON_CreateString(email));
}

void store_job_page_applying(store_job_page *p) {
    if (p) cJSON_AddBoolToObject(p->o, "applying", true);
}

void store_job_page_free(store_job_page *p) {
    if (!p) return;
    cJSON_Delete(p->o);
    free(p);
}

store_page_rc store_job_page_save(store *s, const char *id, const char *program_id,
                                  const char *owner, const store_job_page *p, long details_max,
                                  long keep_s, char *err, size_t errlen) {
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return STORE_PAGE_ERROR;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(p->o, "detailsMax");
    cJSON_DeleteItemFromObjectCaseSensitive(p->o, "ttl");
    cJSON_AddNumberToObject(p->o, "detailsMax", (double)details_max);
    cJSON_AddNumberToObject(p->o, "ttl", (double)keep_s);
    char *body = cJSON_PrintUnformatted(p->o);
    if (!body) {
        snprintf(err, errlen, "out of memory");
        return STORE_PAGE_ERROR;
    }
    char job[64], details[80], mk[80], mkl[80], lock[64];
    snprintf(job, sizeof job, "cs:job:%s", id);
    snprintf(details, sizeof details, "cs:job:%s:details", id);
    snprintf(mk, sizeof mk, "cs:job:%s:mk", id);
    snprintf(mkl, sizeof mkl, "cs:job:%s:mkl", id);
    snprintf(lock, sizeof lock, "cs:lock:job:%s", program_id);
    const char *args[] = {job,   details, mk, mkl, lock, "cs:jobs:running", "cs:jobs:applying",
                          owner, body};
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_JOB_PAGE, 7, args, 9, err, errlen);
    free(body);
    if (!r) return STORE_PAGE_ERROR;
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    return v == 1 ? STORE_PAGE_SAVED : v == 2 ? STORE_PAGE_CANCEL : STORE_PAGE_LOST;
}

store_job_change store_job_finish(store *s, const char *id, const char *program_id,
                                  const char *owner, job_state state, const char *error,
                                  int64_t now_ms, long keep_s, const char *expect, char *err,
                                  size_t errlen) {
    char job[64], active[64], lock[64], details[80], mk[80], mkl[80], now[24], keep[24];
    snprintf(job, sizeof job, "cs:job:%s", id);
    snprintf(active, sizeof active, "cs:job:active:%s", program_id);
    snprintf(lock, sizeof lock, "cs:lock:job:%s", program_id);
    snprintf(details, sizeof details, "cs:job:%s:details", id);
    snprintf(mk, sizeof mk, "cs:job:%s:mk", id);
    snprintf(mkl, sizeof mkl, "cs:job:%s:mkl", id);
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(keep, sizeof keep, "%ld", keep_s);
    const char *args[] = {job,
                          "cs:jobs:queued",
                          "cs:jobs:running",
                          "cs:jobs:applying",
                          active,
                          lock,
                          details,
                          mk,
                          mkl,
                          id,
                          owner ? owner : "",
                          job_state_name(state),
                          error ? error : "",
                          now,
                          keep,
                          expect ? expect : ""};
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_JOB_FINISH, 9, args, 16, err, errlen);
    if (!r) return STORE_JOB_CHANGE_ERROR;
    bool changed = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return changed ? STORE_JOB_CHANGED : STORE_JOB_MOVED_ON;
}

store_job_change store_job_cancel_ask(store *s, const char *id, const char *expect, char *err,
                                      size_t errlen) {
    char job[64];
    snprintf(job, sizeof job, "cs:job:%s", id);
    const char *args[] = {job, expect};
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_JOB_CANCEL, 1, args, 2, err, errlen);
    if (!r) return STORE_JOB_CHANGE_ERROR;
    bool changed = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return changed ? STORE_JOB_CHANGED : STORE_JOB_MOVED_ON;
}

int store_job_outcomes(store *s, const store_job_outcome *o, size_t n, char *err, size_t errlen) {
    if (n == 0) return 0;
    store_priv_args a = {0};
    for (size_t i = 0; i < n; i++)
        store_priv_args_addf(&a, "cs:job:%s", o[i].id);
    for (size_t i = 0; i < n; i++) {
        store_priv_args_addf(&a, "%ld", o[i].applied);
        store_priv_args_addf(&a, "%ld", o[i].skipped);
        store_priv_args_addf(&a, "%ld", o[i].dead);
    }
    redisReply *r = NULL;
    if (a.oom)
        snprintf(err, errlen, "out of memory");
    else
        r = store_priv_eval_strs(s, STORE_LUA_JOB_OUTCOMES, (int)n, a.v, (int)a.n, err, errlen);
    store_priv_args_free(&a);
    if (!r) return -1;
    freeReplyObject(r);
    return 0;
}

/* ---- kept members ---- */

/* Appends src to out at *n, its separators and control characters as spaces. */
static void put_field(char *out, size_t size, size_t *n, const char *src, bool last) {
    for (const unsigned char *p = (const unsigned char *)src; p && *p && *n + 2 < size; p++)
        out[(*n)++] = *p < 0x20 ? ' ' : (char)*p;
    if (!last && *n + 1 < size) out[(*n)++] = SEP;
    out[*n] = '\0';
}

void store_job_spill_value(const store_job_member *v, char *out, size_t size) {
    char ts[24];
    size_t n = 0;
    snprintf(ts, sizeof ts, "%lld", (long long)v->updated_ms);
    put_field(out, size, &n, v->seen ? "S" : "0", false);
    put_field(out, size, &n, v->lead, false);
    put_field(out, size, &n, v->status, false);
    put_field(out, size, &n, ts, false);
    put_field(out, size, &n, v->first, false);
    put_field(out, size, &n, v->last, false);
    put_field(out, size, &n, v->company, true);
}

int store_job_spill_parse(const char *text, store_job_member *out) {
    memset(out, 0, sizeof *out);
    const char *f[7];
    size_t len[7], k = 0;
    const char *p = text;
    while (k < 7) {
        const char *e = strchr(p, SEP);
        f[k] = p;
        len[k] = e ? (size_t)(e - p) : strlen(p);
        k++;
        if (!e) break;
        p = e + 1;
    }
    if (k != 7) return -1;
    out->seen = len[0] == 1 && f[0][0] == 'S';
    char ts[24];
    snprintf(out->lead, sizeof out->lead, "%.*s", (int)len[1], f[1]);
    snprintf(out->status, sizeof out->status, "%.*s", (int)len[2], f[2]);
    snprintf(ts, sizeof ts, "%.*s", (int)len[3], f[3]);
    out->updated_ms = strtoll(ts, NULL, 10);
    snprintf(out->first, sizeof out->first, "%.*s", (int)len[4], f[4]);
    snprintf(out->last, sizeof out->last, "%.*s", (int)len[5], f[5]);
    snprintf(out->company, sizeof out->company, "%.*s", (int)len[6], f[6]);
    return 0;
}

/* HMGET key fields[0..n) in one command; values[i] NULL when absent (reply owned by *r). */
static int hmget(store *s, const char *key, const char *const *fields, size_t n, redisReply **r,
                 char *err, size_t errlen) {
    *r = NULL;
    if (n == 0) return 0;
    const char **argv = calloc(n + 2, sizeof *argv);
    size_t *lens = calloc(n + 2, sizeof *lens);
    if (!argv || !lens) {
        free(argv);
        free(lens);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    argv[0] = "HMGET";
    argv[1] = key;
    for (size_t i = 0; i < n; i++)
        argv[i + 2] = fields[i];
    for (size_t i = 0; i < n + 2; i++)
        lens[i] = strlen(argv[i]);
    *r = store_priv_argv(s, (int)n + 2, argv, lens, err, errlen);
    free(argv);
    free(lens);
    if (!*r || store_priv_reply_error(*r, err, errlen)) {
        *r = NULL;
        return -1;
    }
    if ((*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != n) {
        snprintf(err, errlen, "Redis: unexpected answer to HMGET");
        freeReplyObject(*r);
        *r = NULL;
        return -1;
    }
    return 0;
}

int store_job_spill_get(store *s, const char *id, const char *const *emails, size_t n,
                        store_job_member *out, bool *found, char *err, size_t errlen) {
    char key[80];
    snprintf(key, sizeof key, "cs:job:%s:mk", id);
    redisReply *r;
    if (hmget(s, key, emails, n, &r, err, errlen) != 0) return -1;
    for (size_t i = 0; i < n; i++)
        found[i] = r->element[i]->type == REDIS_REPLY_STRING &&
                   store_job_spill_parse(r->element[i]->str, &out[i]) == 0;
    if (r) freeReplyObject(r);
    return 0;
}

int store_job_spill_emails(store *s, const char *id, const char *const *leads, size_t n,
                           char (*emails)[EV_TEXT_MAX], char *err, size_t errlen) {
    char key[80];
    snprintf(key, sizeof key, "cs:job:%s:mkl", id);
    redisReply *r;
    if (hmget(s, key, leads, n, &r, err, errlen) != 0) return -1;
    for (size_t i = 0; i < n; i++)
        copy(emails[i], EV_TEXT_MAX,
             r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : "");
    if (r) freeReplyObject(r);
    return 0;
}

long store_job_spill_scan(store *s, const char *id, char *cursor, size_t cursorlen, long count,
                          char (**emails)[EV_TEXT_MAX], store_job_member **out, char *err,
                          size_t errlen) {
    *emails = NULL;
    *out = NULL;
    redisReply *r =
        store_priv_cmd(s, err, errlen, "HSCAN cs:job:%s:mk %s COUNT %ld", id, cursor, count);
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    long n = 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !r->element[0]->str ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        snprintf(err, errlen, "Redis: unexpected answer to HSCAN");
        return -1;
    }
    const redisReply *kv = r->element[1];
    size_t cap = kv->elements / 2 + 1;
    *emails = calloc(cap, sizeof **emails);
    *out = calloc(cap, sizeof **out);
    if (!*emails || !*out) {
        free(*emails);
        free(*out);
        *emails = NULL;
        *out = NULL;
        freeReplyObject(r);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    copy(cursor, cursorlen, r->element[0]->str);
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        if (!kv->element[i]->str || !kv->element[i + 1]->str ||
            store_job_spill_parse(kv->element[i + 1]->str, &(*out)[n]) != 0)
            continue;
        copy((*emails)[n], EV_TEXT_MAX, kv->element[i]->str);
        n++;
    }
    freeReplyObject(r);
    return n;
}
