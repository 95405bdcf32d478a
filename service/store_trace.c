/* store_trace — per-person traces and the time-zone evidence in Redis. See
 * include/store_trace.h. */
#include "store_trace.h"

#include "store_mappings.h"
#include "store_members.h"
#include "store_priv.h"
#include "trace.h"

#include <cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_LIMIT_MAX 1000
#define READ_KEYS_MAX  12 /* person keys read for one answer */
#define PKEY_MAX       (EV_TEXT_MAX + 8)

/* Runs the commands; out gets every reply (caller frees them and out), or NULL with err. An
 * error reply fails the whole (with Redis's sentence). */
static redisReply **run_all(store *s, store_priv_pipe *c, char *err, size_t errlen) {
    redisReply **out = calloc(c->n ? c->n : 1, sizeof *out);
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (store_priv_pipe_run(s, c, out, err, errlen) != 0) {
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < c->n; i++)
        if (out[i]->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "Redis: %s", out[i]->str);
            for (size_t j = 0; j < c->n; j++)
                freeReplyObject(out[j]);
            free(out);
            return NULL;
        }
    return out;
}

static void replies_free(redisReply **out, size_t n) {
    for (size_t i = 0; out && i < n; i++)
        freeReplyObject(out[i]);
    free(out);
}

/* The person part of a trace key: e:<email in lower case>, m:<lead>, s:<id15>; "" when the
 * item names nobody. */
static void person_key(const char *email, const char *lead, const char *sf, char *pk, size_t size) {
    pk[0] = '\0';
    if (email && *email) {
        size_t i = 0;
        snprintf(pk, size, "e:");
        for (; email[i] && i + 3 < size; i++)
            pk[2 + i] = (char)tolower((unsigned char)email[i]);
        pk[2 + i] = '\0';
    } else if (lead && *lead) {
        snprintf(pk, size, "m:%s", lead);
    } else if (sf && *sf) {
        snprintf(pk, size, "s:%.15s", sf);
    }
}

int store_trace_write(store *s, const char *const *audit, size_t naudit,
                      const store_trace_item *items, size_t n, const store_tz_suspect *tz,
                      const store_trace_limits *lim, char *err, size_t errlen) {
    store_priv_pipe c = {0};
    for (size_t i = 0; i < naudit; i++)
        store_priv_pipe_add_audit(&c, audit[i]);
    for (size_t i = 0; lim->retention_s > 0 && i < n; i++) {
        const store_trace_item *it = &items[i];
        char pk[PKEY_MAX];
        person_key(it->email, it->mkto_lead, it->sf_person, pk, sizeof pk);
        if (!pk[0] || !it->entry) continue;
        long long cutoff = (long long)it->at_ms - lim->retention_s * 1000LL;
        store_priv_pipe_addf(&c, "ZADD cs:trace:%s %lld %s", pk, (long long)it->at_ms, it->entry);
        store_priv_pipe_addf(&c, "ZREMRANGEBYSCORE cs:trace:%s -inf (%lld", pk, cutoff);
        store_priv_pipe_addf(&c, "ZREMRANGEBYRANK cs:trace:%s 0 %ld", pk,
                             -(lim->max_per_person + 1));
        store_priv_pipe_addf(&c, "EXPIRE cs:trace:%s %ld", pk, lim->retention_s);
        /* The ids lead to the person's email key. */
        if (pk[0] != 'e') continue;
        if (it->mkto_lead && *it->mkto_lead)
            store_priv_pipe_addf(&c, "SET cs:trace:id:m:%s %s EX %ld", it->mkto_lead, pk,
                                 lim->retention_s);
        if (it->sf_person && *it->sf_person) {
            char id15[16];
            snprintf(id15, sizeof id15, "%.15s", it->sf_person);
            store_priv_pipe_addf(&c, "SET cs:trace:id:s:%s %s EX %ld", id15, pk, lim->retention_s);
        }
    }
    if (tz) {
        store_priv_pipe_addf(
            &c,
            "HSET cs:tz:marketo offset_h %d last_ms %lld event_id %s occurred_ms %lld "
            "received_ms %lld",
            tz->offset_hours, (long long)tz->last_ms, tz->event_id, (long long)tz->occurred_ms,
            (long long)tz->received_ms);
        store_priv_pipe_addf(&c, "HINCRBY cs:tz:marketo count 1");
        store_priv_pipe_addf(&c, "EXPIRE cs:tz:marketo %d", STORE_TZ_TTL_S);
    }
    int rc = 0;
    if (c.n || c.oom) {
        redisReply **out = run_all(s, &c, err, errlen);
        rc = out ? 0 : -1;
        replies_free(out, c.n);
    }
    store_priv_pipe_free(&c);
    return rc;
}

store_trace_limits store_trace_limits_of(const struct config *cfg) {
    return (store_trace_limits){cfg->trace_retention_days * 86400L, cfg->trace_max_per_person};
}

int store_trace_own_deletion(store *s, const struct config *cfg, const char *campaign,
                             const char *lead, const char *cm_id, const char *deleted_date,
                             char *err, size_t errlen) {
    store_trace_limits lim = store_trace_limits_of(cfg);
    member_state st;
    mapping m;
    if (lim.retention_s <= 0) return 0;
    if (store_member_get(s, campaign, lead, &st, err, errlen) == STORE_ERROR) return -1;
    /* The mapping names the program, and the campaign in its 18-character form. */
    store_found mapped = store_mapping_by_campaign(s, campaign, &m, err, errlen);
    if (mapped == STORE_ERROR) return -1;
    event ev = {.source = SRC_SALESFORCE, .type = EV_SF_MEMBER_DELETED};
    int64_t now = event_now_ms();
    ev.received_ms = now;
    event_parse_time(deleted_date, &ev.source_ts_ms);
    /* The id the poll gives the removal events it queues. */
    snprintf(ev.id, sizeof ev.id, "del:%.18s:%lld", cm_id, (long long)ev.source_ts_ms);
    snprintf(ev.campaign_id, sizeof ev.campaign_id, "%s",
             mapped == STORE_FOUND ? m.campaign_id : campaign);
    snprintf(ev.member_id, sizeof ev.member_id, "%.18s", cm_id);
    trace_record r = {.at_ms = now,
                      .ev = &ev,
                      .email = st.email,
                      .mkto_lead = lead,
                      .sf_person = st.sf_person,
                      .program_id = mapped == STORE_FOUND ? m.program_id : "",
                      .campaign_id = ev.campaign_id,
                      .outcome = TRACE_DROPPED,
                      .reason = "echo"};
    char *entry = trace_entry_json(&r);
    if (!entry) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    store_trace_item it = {st.email, lead, st.sf_person, now, entry};
    int rc = store_trace_write(s, NULL, 0, &it, 1, NULL, &lim, err, errlen);
    free(entry);
    return rc;
}

/* ---- reading ---- */

typedef struct {
    int64_t score;
    char *text;
} scored;

typedef struct {
    scored *e;
    size_t n, cap;
    char keys[READ_KEYS_MAX][PKEY_MAX]; /* person keys read so far */
    size_t nkeys;
    bool oom;
} found;

static bool key_read(const found *f, const char *pk) {
    for (size_t i = 0; i < f->nkeys; i++)
        if (!strcmp(f->keys[i], pk)) return true;
    return false;
}

/* Queues the read of one person key (once). */
static void want_key(found *f, store_priv_pipe *c, const char *pk, int64_t since_ms, long limit) {
    if (!pk[0] || key_read(f, pk) || f->nkeys == READ_KEYS_MAX) return;
    snprintf(f->keys[f->nkeys++], PKEY_MAX, "%s", pk);
    store_priv_pipe_addf(c, "ZREVRANGEBYSCORE cs:trace:%s +inf %lld WITHSCORES LIMIT 0 %ld", pk,
                         (long long)since_ms, limit);
}

static void take_entries(found *f, const redisReply *r) {
    if (r->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        if (f->n == f->cap) {
            size_t cap = f->cap ? 2 * f->cap : 64;
            scored *ne = realloc(f->e, cap * sizeof *ne);
            if (!ne) {
                f->oom = true;
                return;
            }
            f->e = ne;
            f->cap = cap;
        }
        char *t = strdup(r->element[i]->str ? r->element[i]->str : "");
        if (!t) {
            f->oom = true;
            return;
        }
        f->e[f->n].text = t;
        f->e[f->n++].score =
            strtoll(r->element[i + 1]->str ? r->element[i + 1]->str : "0", NULL, 10);
    }
}

/* Runs c, taking each sorted-set answer; a string answer (an id's person key) goes to
 * alias. 0 or -1. */
static int read_round(store *s, store_priv_pipe *c, found *f, char *alias, size_t alen, char *err,
                      size_t errlen) {
    if (c->n == 0) return 0;
    redisReply **out = run_all(s, c, err, errlen);
    if (!out) return -1;
    for (size_t i = 0; i < c->n; i++) {
        if (out[i]->type == REDIS_REPLY_STRING && alias)
            snprintf(alias, alen, "%s", out[i]->str);
        else
            take_entries(f, out[i]);
    }
    replies_free(out, c->n);
    store_priv_pipe_free(c);
    return 0;
}

/* The id keys (m:, s:) of the ids the entries read so far name, not read yet. */
static void want_named_ids(found *f, store_priv_pipe *c, int64_t since_ms, long limit) {
    for (size_t i = 0, n = f->n; i < n; i++) {
        cJSON *o = cJSON_Parse(f->e[i].text);
        const cJSON *lead = cJSON_GetObjectItemCaseSensitive(o, "marketoLeadId");
        const cJSON *sf = cJSON_GetObjectItemCaseSensitive(o, "salesforceId");
        char pk[PKEY_MAX];
        if (cJSON_IsString(lead)) {
            person_key(NULL, lead->valuestring, NULL, pk, sizeof pk);
            want_key(f, c, pk, since_ms, limit);
        }
        if (cJSON_IsString(sf)) {
            person_key(NULL, NULL, sf->valuestring, pk, sizeof pk);
            want_key(f, c, pk, since_ms, limit);
        }
        cJSON_Delete(o);
    }
}

static int newest_first(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return strcmp(x->text, y->text);
}

/* The newest `limit` distinct entries as a JSON array text. */
static char *merged(found *f, long limit) {
    if (f->n) qsort(f->e, f->n, sizeof *f->e, newest_first);
    cJSON *arr = cJSON_CreateArray();
    long taken = 0;
    for (size_t i = 0; arr && i < f->n && taken < limit; i++) {
        if (i > 0 && f->e[i].score == f->e[i - 1].score && !strcmp(f->e[i].text, f->e[i - 1].text))
            continue; /* one entry met under two keys */
        cJSON *o = cJSON_Parse(f->e[i].text);
        if (!o) continue;
        cJSON_AddItemToArray(arr, o);
        taken++;
    }
    char *js = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return js;
}

char *store_trace_read(store *s, store_trace_by by, const char *value, long limit, int64_t since_ms,
                       char *err, size_t errlen) {
    found f = {0};
    store_priv_pipe c = {0};
    char *js = NULL, pk[PKEY_MAX], alias[PKEY_MAX] = "";
    if (limit < 1) limit = 1;
    if (limit > READ_LIMIT_MAX) limit = READ_LIMIT_MAX;
    if (by == STORE_TRACE_BY_EMAIL) {
        person_key(value, NULL, NULL, pk, sizeof pk);
    } else {
        person_key(NULL, by == STORE_TRACE_BY_MKTO ? value : NULL,
                   by == STORE_TRACE_BY_SF ? value : NULL, pk, sizeof pk);
        store_priv_pipe_addf(&c, "GET cs:trace:id:%s", pk);
    }
    want_key(&f, &c, pk, since_ms, limit);
    /* The id's person key (its email), then the ids the entries name. */
    if (read_round(s, &c, &f, alias, sizeof alias, err, errlen) != 0) goto out;
    want_key(&f, &c, alias, since_ms, limit);
    if (read_round(s, &c, &f, NULL, 0, err, errlen) != 0) goto out;
    want_named_ids(&f, &c, since_ms, limit);
    if (read_round(s, &c, &f, NULL, 0, err, errlen) != 0) goto out;
    if (f.oom || !(js = merged(&f, limit))) snprintf(err, errlen, "out of memory");
out:
    store_priv_pipe_free(&c);
    for (size_t i = 0; i < f.n; i++)
        free(f.e[i].text);
    free(f.e);
    return js;
}

store_found store_tz_get(store *s, store_tz_suspect *out, char *err, size_t errlen) {
    store_priv_pipe c = {0};
    memset(out, 0, sizeof *out);
    store_priv_pipe_addf(&c, "HGETALL cs:tz:marketo");
    redisReply **r = run_all(s, &c, err, errlen);
    store_priv_pipe_free(&c);
    if (!r) return STORE_ERROR;
    store_found rc = STORE_NOT_FOUND;
    const redisReply *h = r[0];
    for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
        const char *k = h->element[i]->str, *v = h->element[i + 1]->str;
        if (!k || !v) continue;
        rc = STORE_FOUND;
        if (!strcmp(k, "offset_h"))
            out->offset_hours = atoi(v);
        else if (!strcmp(k, "count"))
            out->count = strtoll(v, NULL, 10);
        else if (!strcmp(k, "last_ms"))
            out->last_ms = strtoll(v, NULL, 10);
        else if (!strcmp(k, "event_id"))
            snprintf(out->event_id, sizeof out->event_id, "%s", v);
        else if (!strcmp(k, "occurred_ms"))
            out->occurred_ms = strtoll(v, NULL, 10);
        else if (!strcmp(k, "received_ms"))
            out->received_ms = strtoll(v, NULL, 10);
    }
    replies_free(r, 1);
    return rc;
}
