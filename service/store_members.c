/* store_members — member state (one record, many, their write marks and lists), person
 * links and our own CampaignMember deletions. See include/store_members.h. */
#include "store_members.h"

#include "store_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void member_from_hash(const redisReply *r, member_state *st) {
    memset(st, 0, sizeof *st);
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
        if (!k || !v) continue;
        /* A hash holding only write marks (store_mark_written) is no record yet. */
        if (strcmp(k, "sf_pending") != 0 && strcmp(k, "mkto_pending") != 0) st->known = true;
        if (!strcmp(k, "sf_member"))
            st->sf_member = *v == '1';
        else if (!strcmp(k, "sf_status"))
            snprintf(st->sf_status, sizeof st->sf_status, "%s", v);
        else if (!strcmp(k, "cm_id"))
            snprintf(st->cm_id, sizeof st->cm_id, "%s", v);
        else if (!strcmp(k, "sf_person"))
            snprintf(st->sf_person, sizeof st->sf_person, "%s", v);
        else if (!strcmp(k, "mkto_member"))
            st->mkto_member = *v == '1';
        else if (!strcmp(k, "mkto_status"))
            snprintf(st->mkto_status, sizeof st->mkto_status, "%s", v);
        else if (!strcmp(k, "mkto_lead"))
            snprintf(st->mkto_lead, sizeof st->mkto_lead, "%s", v);
        else if (!strcmp(k, "email"))
            snprintf(st->email, sizeof st->email, "%s", v);
        else if (!strcmp(k, "ts"))
            st->ts = strtoll(v, NULL, 10);
        else if (!strcmp(k, "updated"))
            st->updated_ms = strtoll(v, NULL, 10);
        else if (!strcmp(k, "src"))
            st->src = strcmp(v, "marketo") == 0 ? SRC_MARKETO : SRC_SALESFORCE;
        else if (!strcmp(k, "sf_written"))
            st->sf_written_ms = strtoll(v, NULL, 10);
        else if (!strcmp(k, "mkto_written"))
            st->mkto_written_ms = strtoll(v, NULL, 10);
        else if (!strcmp(k, "ver"))
            st->version = strtoll(v, NULL, 10);
        else if (!strcmp(k, "sf_pending"))
            st->sf_pending_ms = strtoll(v, NULL, 10);
        else if (!strcmp(k, "mkto_pending"))
            st->mkto_pending_ms = strtoll(v, NULL, 10);
    }
}

store_found store_member_get(store *s, const char *campaign_id, const char *mkto_lead,
                             member_state *out, char *err, size_t errlen) {
    char c[16];
    store_priv_c15(c, campaign_id);
    redisReply *r = store_priv_cmd(s, err, errlen, "HGETALL cs:member:%s:%s", c, mkto_lead);
    if (!r || store_priv_reply_error(r, err, errlen)) return STORE_ERROR;
    member_from_hash(r, out);
    freeReplyObject(r);
    return out->known ? STORE_FOUND : STORE_NOT_FOUND;
}

static int member_get_each(size_t i, redisReply *r, void *ud) {
    member_from_hash(r, &((member_state *)ud)[i]);
    return 0;
}

int store_member_get_many(store *s, size_t n, const char *const *campaigns,
                          const char *const *leads, member_state *out, char *err, size_t errlen) {
    store_priv_pipe p = {0};
    for (size_t i = 0; i < n; i++) {
        char c[16];
        store_priv_c15(c, campaigns[i]);
        store_priv_pipe_addf(&p, "HGETALL cs:member:%s:%s", c, leads[i]);
    }
    int rc = store_priv_pipe_each(s, &p, false, member_get_each, out, err, errlen);
    store_priv_pipe_free(&p);
    return rc;
}

/* The KEYS and ARGV of member_put.lua for one member (nkeys keys, then the ARGV: n in all),
 * with the buffers they point into. */
typedef struct {
    char c[16], key[96], zkey[64], cmkey[48], cmval[64], ver[24], up[24], ts[24], sfw[24], mkw[24],
        sfd[24], mkd[24];
    const char *args[33];
    int nkeys, n;
} member_put_args;

static void member_put_build(member_put_args *a, const char *campaign_id, const char *mkto_lead,
                             const member_state *st, int64_t sf_done, int64_t mkto_done) {
    memset(a, 0, sizeof *a);
    store_priv_c15(a->c, campaign_id);
    snprintf(a->key, sizeof a->key, "cs:member:%s:%s", a->c, mkto_lead);
    snprintf(a->zkey, sizeof a->zkey, "cs:members:%s", a->c);
    if (st->cm_id[0]) {
        /* The deleted-records poll only learns the CampaignMember id. */
        snprintf(a->cmkey, sizeof a->cmkey, "cs:cm:%.15s", st->cm_id);
        snprintf(a->cmval, sizeof a->cmval, "%s:%s", a->c, mkto_lead);
    }
    snprintf(a->ver, sizeof a->ver, "%lld", (long long)st->version);
    snprintf(a->up, sizeof a->up, "%lld",
             (long long)(st->updated_ms ? st->updated_ms : event_now_ms()));
    snprintf(a->ts, sizeof a->ts, "%lld", (long long)st->ts);
    snprintf(a->sfw, sizeof a->sfw, "%lld", (long long)st->sf_written_ms);
    snprintf(a->mkw, sizeof a->mkw, "%lld", (long long)st->mkto_written_ms);
    snprintf(a->sfd, sizeof a->sfd, "%lld", (long long)sf_done);
    snprintf(a->mkd, sizeof a->mkd, "%lld", (long long)mkto_done);
    const char *args[] = {a->key,
                          a->zkey,
                          a->cmkey,
                          a->ver,
                          a->up,
                          mkto_lead,
                          a->cmval,
                          a->sfw,
                          a->mkw,
                          a->sfd,
                          a->mkd,
                          "sf_member",
                          st->sf_member ? "1" : "0",
                          "sf_status",
                          st->sf_status,
                          "cm_id",
                          st->cm_id,
                          "sf_person",
                          st->sf_person,
                          "mkto_member",
                          st->mkto_member ? "1" : "0",
                          "mkto_status",
                          st->mkto_status,
                          "mkto_lead",
                          mkto_lead,
                          "email",
                          st->email,
                          "ts",
                          a->ts,
                          "updated",
                          a->up,
                          "src",
                          event_source_name(st->src)};
    _Static_assert(sizeof args == sizeof a->args, "member_put_args.args holds every argument");
    memcpy(a->args, args, sizeof args);
    a->nkeys = 3;
    a->n = (int)(sizeof args / sizeof args[0]);
    if (!a->cmkey[0]) { /* no CampaignMember index to write: its key is left out */
        memmove(a->args + 2, a->args + 3, sizeof args - 3 * sizeof args[0]);
        a->nkeys--;
        a->n--;
    }
}

/* What member_put.lua answered, as store_member_put says it. */
static store_member_put_rc member_put_answer(const redisReply *r, char *err, size_t errlen) {
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "Redis: %s", r->str);
        return STORE_MEMBER_ERROR;
    }
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) return STORE_MEMBER_RECORDED;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 0) return STORE_MEMBER_MOVED_ON;
    snprintf(err, errlen, "Redis: unexpected answer to recording a member");
    return STORE_MEMBER_ERROR;
}

store_member_put_rc store_member_put(store *s, const char *campaign_id, const char *mkto_lead,
                                     const member_state *st, int64_t sf_done, int64_t mkto_done,
                                     char *err, size_t errlen) {
    member_put_args a;
    member_put_build(&a, campaign_id, mkto_lead, st, sf_done, mkto_done);
    redisReply *r =
        store_priv_eval_strs(s, STORE_LUA_MEMBER_PUT, a.nkeys, a.args, a.n, err, errlen);
    if (!r) return STORE_MEMBER_ERROR;
    store_member_put_rc rc = member_put_answer(r, err, errlen);
    freeReplyObject(r);
    return rc;
}

typedef struct {
    int *rc;
    char *err;
    size_t errlen;
} member_put_ud;

static int member_put_each(size_t i, redisReply *r, void *ud) {
    member_put_ud *u = ud;
    u->rc[i] = member_put_answer(r, u->err, u->errlen);
    return 0;
}

int store_member_put_many(store *s, size_t n, const store_member_write *w, int *rc, char *err,
                          size_t errlen) {
    if (n == 0) return 0;
    store_priv_pipe p = {0};
    member_put_args *a = malloc(sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        member_put_build(a, w[i].campaign, w[i].lead, w[i].st, w[i].sf_done, w[i].mkto_done);
        store_priv_pipe_add_eval(&p, STORE_LUA_MEMBER_PUT, a->nkeys, a->args, a->n);
        rc[i] = STORE_MEMBER_ERROR;
    }
    member_put_ud u = {rc, err, errlen};
    int out = store_priv_pipe_each(s, &p, true, member_put_each, &u, err, errlen);
    store_priv_pipe_free(&p);
    free(a);
    return out;
}

store_found store_cm_lookup(store *s, const char *cm_id, char *campaign, size_t clen, char *lead,
                            size_t llen, char *err, size_t errlen) {
    char v[128];
    char key[32];
    snprintf(key, sizeof key, "cs:cm:%.15s", cm_id);
    store_found rc = store_priv_get_string(s, v, sizeof v, err, errlen, "GET %s", key);
    if (rc != STORE_FOUND) return rc;
    char *colon = strchr(v, ':');
    if (!colon) return STORE_NOT_FOUND;
    *colon = '\0';
    snprintf(campaign, clen, "%s", v);
    snprintf(lead, llen, "%s", colon + 1);
    return STORE_FOUND;
}

int store_mark_written(store *s, const char *const *campaigns, const char *const *leads, size_t n,
                       const char *field, int64_t ms, char *err, size_t errlen) {
    if (n == 0) return 0;
    char(*keys)[64] = calloc(n, sizeof *keys);
    const char **args = calloc(n + 2, sizeof *args);
    char value[24];
    int rc = -1;
    if (!keys || !args) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char c[16];
        store_priv_c15(c, campaigns[i]);
        snprintf(keys[i], sizeof keys[i], "cs:member:%s:%s", c, leads[i]);
        args[i] = keys[i];
    }
    snprintf(value, sizeof value, "%lld", (long long)ms);
    args[n] = field;
    args[n + 1] = value;
    redisReply *r =
        store_priv_eval_strs(s, STORE_LUA_MARK_WRITTEN, (int)n, args, (int)n + 2, err, errlen);
    if (r) {
        freeReplyObject(r);
        rc = 0;
    }
out:
    free(keys);
    free(args);
    return rc;
}

long store_member_list(store *s, const char *campaign_id, const char *cursor, long limit,
                       member_state *out, char *next, size_t nextlen, char *err, size_t errlen) {
    char c[16];
    store_priv_c15(c, campaign_id);
    next[0] = '\0';
    long offset = cursor && *cursor ? strtol(cursor, NULL, 10) : 0;
    if (offset < 0) offset = 0;
    redisReply *r = store_priv_cmd(s, err, errlen, "ZREVRANGE cs:members:%s %ld %ld", c, offset,
                                   offset + limit);
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    long n = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && n < limit; i++) {
        store_found got =
            store_member_get(s, campaign_id, r->element[i]->str, &out[n], err, errlen);
        if (got == STORE_ERROR) {
            freeReplyObject(r);
            return -1;
        }
        if (got == STORE_FOUND) n++;
    }
    if (r->type == REDIS_REPLY_ARRAY && (long)r->elements > limit)
        snprintf(next, nextlen, "%ld", offset + limit);
    freeReplyObject(r);
    return n;
}

#define LINK_TTL_S (7 * 86400)

store_found store_link_by_mkto(store *s, const char *mkto_lead, char *sf_person, char *err,
                               size_t errlen) {
    return store_priv_get_string(s, sf_person, EV_SFID_MAX, err, errlen, "GET cs:link:mkto:%s",
                                 mkto_lead);
}

int store_link_put_many(store *s, size_t n, const char *const *mkto_leads,
                        const char *const *sf_persons, char *err, size_t errlen) {
    store_priv_pipe p = {0};
    for (size_t i = 0; i < n; i++) {
        char p15[16]; /* hiredis formats take no precision: the 15-character form by hand */
        snprintf(p15, sizeof p15, "%.15s", sf_persons[i]);
        store_priv_pipe_addf(&p, "SET cs:link:mkto:%s %s EX %d", mkto_leads[i], sf_persons[i],
                             LINK_TTL_S);
        store_priv_pipe_addf(&p, "SET cs:link:sf:%s %s EX %d", p15, mkto_leads[i], LINK_TTL_S);
    }
    int rc = store_priv_pipe_each(s, &p, false, store_priv_ignore_reply, NULL, err, errlen);
    store_priv_pipe_free(&p);
    return rc;
}

static int link_get_each(size_t i, redisReply *r, void *ud) {
    char(*out)[EV_NUMID_MAX] = ud;
    out[i][0] = '\0';
    if (r->type == REDIS_REPLY_STRING && r->len < EV_NUMID_MAX) memcpy(out[i], r->str, r->len + 1);
    return 0;
}

int store_link_by_sf_many(store *s, size_t n, const char *const *sf_persons,
                          char (*mkto_leads)[EV_NUMID_MAX], char *err, size_t errlen) {
    store_priv_pipe p = {0};
    for (size_t i = 0; i < n; i++) {
        char p15[16];
        snprintf(p15, sizeof p15, "%.15s", sf_persons[i]);
        store_priv_pipe_addf(&p, "GET cs:link:sf:%s", p15);
    }
    int rc = store_priv_pipe_each(s, &p, false, link_get_each, mkto_leads, err, errlen);
    store_priv_pipe_free(&p);
    return rc;
}

store_found store_link_by_sf(store *s, const char *sf_person, char *mkto_lead, char *err,
                             size_t errlen) {
    char p[16];
    snprintf(p, sizeof p, "%.15s", sf_person);
    return store_priv_get_string(s, mkto_lead, EV_NUMID_MAX, err, errlen, "GET cs:link:sf:%s", p);
}

int store_sf_deleted_mark(store *s, const char *const *cm_ids, size_t n, long ttl_s, char *err,
                          size_t errlen) {
    store_priv_pipe p = {0};
    for (size_t i = 0; i < n; i++) {
        char id[16];
        store_priv_c15(id, cm_ids[i]);
        store_priv_pipe_addf(&p, "SET cs:sfdel:%s 1 EX %ld", id, ttl_s);
    }
    int rc = store_priv_pipe_each(s, &p, false, store_priv_ignore_reply, NULL, err, errlen);
    store_priv_pipe_free(&p);
    return rc;
}

store_found store_sf_deleted_ours(store *s, const char *cm_id, char *err, size_t errlen) {
    char id[16];
    store_priv_c15(id, cm_id);
    redisReply *r = store_priv_cmd(s, err, errlen, "EXISTS cs:sfdel:%s", id);
    if (!r || store_priv_reply_error(r, err, errlen)) return STORE_ERROR;
    store_found rc =
        r->type == REDIS_REPLY_INTEGER && r->integer > 0 ? STORE_FOUND : STORE_NOT_FOUND;
    freeReplyObject(r);
    return rc;
}
