/* routes_admin — mappings, the sync switch, members and audit. See include/routes_admin.h. */
#include "routes_admin.h"

#include "checks.h"
#include "crm.h"
#include "dead_filter.h"
#include "log.h"
#include "mapping_patch.h"
#include "jobs.h"
#include "secure.h"
#include "status_map.h"
#include "store.h"
#include "store_dead.h"
#include "store_mappings.h"
#include "store_members.h"
#include "store_queue.h"

#include <cJSON.h>
#include <errno.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT_DEFAULT  100
#define LIMIT_MAX      1000
#define ADMIN_MAX_BODY ROUTES_ADMIN_MAX_BODY

/* Checks the bearer token; answers and returns false when the request may not go on. */
bool admin_authorized(http_request *req, const struct config *cfg) {
    if (!cfg->admin_token) {
        http_reply_error(req, 404, "not_found",
                         "the admin API is disabled; set ADMIN_TOKEN to enable it");
        return false;
    }
    const char *h = http_req_header(req, "Authorization");
    /* The scheme name is case-insensitive (RFC 9110). */
    const char *presented = h && strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : NULL;
    if (!secure_equals(presented, cfg->admin_token)) {
        http_reply_header(req, "WWW-Authenticate", "Bearer");
        http_reply_error(req, 401, "unauthorized",
                         "missing or wrong bearer token; send Authorization: Bearer "
                         "<ADMIN_TOKEN>");
        return false;
    }
    return true;
}

bool routes_admin_authorize(http_request *req, void *ud) {
    return admin_authorized(req, routes_config(ud));
}

const struct config *routes_config(const void *ud) {
    return crm_pool_config(((const routes_ctx *)ud)->crms);
}

store *admin_redis(http_request *req, const void *ud) {
    store *st = store_pool_get(((const routes_ctx *)ud)->stores);
    if (!st) http_reply_error(req, 503, "unavailable", "out of memory");
    return st;
}

void admin_unavailable(http_request *req, const char *err) {
    http_reply_error(req, 503, "unavailable", "Redis is unavailable: %s", err);
}

void admin_reply_json(http_request *req, int status, cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) {
        http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    http_reply_owned(req, status, "application/json", s, strlen(s));
}

/* ?limit= within 1..1000 (default 100); false after answering 400. */
bool admin_read_limit(http_request *req, long *limit) {
    const char *l = http_req_query(req, "limit");
    *limit = LIMIT_DEFAULT;
    if (!l) return true;
    char *end;
    long v = strtol(l, &end, 10);
    if (*end || v < 1 || v > LIMIT_MAX) {
        http_reply_error(req, 400, "invalid_parameter", "limit must be an integer from 1 to %d",
                         LIMIT_MAX);
        return false;
    }
    *limit = v;
    return true;
}

/* The mapping as answered: its stored form, plus the last failed copy of the program's
 * channel and costs (F2/F3) as lastCopyError {crm, code, message} and lastCopyErrorAt, both
 * null when the last copy succeeded or none failed. */
static cJSON *mapping_object(const mapping *m, const store_copy_state *cp) {
    char *s = mapping_to_json(m);
    cJSON *o = s ? cJSON_Parse(s) : NULL;
    free(s);
    if (!o) return NULL;
    if (cp->at_ms) {
        cJSON *e = cJSON_AddObjectToObject(o, "lastCopyError");
        cJSON_AddStringToObject(e, "crm", cp->crm);
        cJSON_AddStringToObject(e, "code", cp->code);
        cJSON_AddStringToObject(e, "message", cp->message);
        char at[40];
        event_format_time(cp->at_ms, at, sizeof at);
        cJSON_AddStringToObject(o, "lastCopyErrorAt", at);
    } else {
        cJSON_AddNullToObject(o, "lastCopyError");
        cJSON_AddNullToObject(o, "lastCopyErrorAt");
    }
    return o;
}

void admin_list_page(http_request *req, cJSON *items, const char *next) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "items", items);
    if (next && *next)
        cJSON_AddStringToObject(o, "next", next);
    else
        cJSON_AddNullToObject(o, "next");
    admin_reply_json(req, 200, o);
}

/* ---- mappings ---- */

/* A store write that follows a mapping's change failed: the change stands (it is stored);
 * `what` says when the write's purpose is met instead. */
static void followup_failed(const char *what, const char *program_id, const char *err) {
    LOG_KV(LOG_WARN, what, "program_id", program_id, "error", err);
}

/* A mapping just created or enabled (or pointed at another campaign) links a program to a
 * campaign that may both have members already: a backfill job merges them both ways, as
 * Marketo's native sync does when a program is linked (BACKFILL_ON_LINK). id (JOB_ID_MAX)
 * gets the job's id (the mapping's unfinished job when it has one), "" when none started. */
static void start_backfill(const struct config *cfg, store *st, const mapping *m,
                           const mapping *old, bool had, char *id) {
    char err[STORE_ERR_MAX];
    bool created = false;
    bool linked = !had || !old->enabled || strncmp(old->campaign_id, m->campaign_id, 15) != 0;
    id[0] = '\0';
    if (!linked || !cfg->backfill_on_link) return;
    if (jobs_create(st, cfg, m, JOB_BACKFILL, JOB_BY_LINK, id, &created, err, sizeof err) != 0) {
        id[0] = '\0';
        followup_failed("mapping saved; no backfill started (POST .../reconcile to start one)",
                        m->program_id, err);
    }
}

/* Stores m, a whole mapping read from a PUT body (or a patched mapping turned into one), as
 * PUT does: the status check of an enabled mapping (409 unless forced), the campaign's
 * uniqueness (409), then its parked events queued and the F2/F3 copy scheduled when it is
 * enabled. old: the stored mapping (had) or none (!had). Answers, with the stored mapping
 * and the check's result, 201 when a PUT created it, else 200 (a PATCH always: it changed
 * what it read, whatever a DELETE did since). */
static void save_mapping(http_request *req, const routes_ctx *ctx, store *st, mapping *m,
                         bool force, const mapping *old, bool had, bool patch) {
    const struct config *cfg = routes_config(ctx);
    const char *pid = m->program_id;
    char err[STORE_ERR_MAX];
    /* F11: an enabled mapping's statuses must match on both sides, unless forced. */
    const char *check = "skipped";
    char check_msg[600] = "";
    status_report *rep = NULL;
    char missing[200];
    if (m->enabled && !crm_configured(cfg, missing, sizeof missing)) {
        check = "pending";
        snprintf(check_msg, sizeof check_msg,
                 "this process has no CRM credentials (%s) to "
                 "compare the statuses; GET .../validation from a "
                 "process that has them",
                 missing);
    } else if (m->enabled) {
        crm *c = crm_pool_get(ctx->crms);
        rep = calloc(1, sizeof *rep);
        if (!c || !rep) {
            free(rep);
            http_reply_error(req, 500, "internal", "out of memory");
            return;
        }
        if (checks_validate(c, m, rep, err, sizeof err) != 0) {
            check = "pending"; /* a CRM could not be asked: stored, compared later */
            snprintf(check_msg, sizeof check_msg, "%s", err);
        } else if (rep->nunmatched && !force) {
            char names[500] = "";
            for (int i = 0; i < rep->nunmatched; i++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s \"%s\"",
                         i ? ", " : "", rep->unmatched[i].marketo_side ? "Marketo" : "Salesforce",
                         rep->unmatched[i].status);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "error", "incompatible_statuses");
            char msg[800];
            snprintf(msg, sizeof msg,
                     "statuses without a counterpart: %s; add them on the "
                     "other side or to statusMap, or send \"force\": true",
                     names);
            cJSON_AddStringToObject(o, "message", msg);
            char *js = checks_report_json(m, rep);
            cJSON *report = js ? cJSON_Parse(js) : NULL;
            free(js);
            if (report)
                cJSON_AddItemToObject(o, "unmatched",
                                      cJSON_DetachItemFromObjectCaseSensitive(report, "unmatched"));
            cJSON_Delete(report);
            free(rep);
            admin_reply_json(req, 409, o);
            return;
        } else {
            check = rep->nunmatched ? "forced" : "passed";
        }
    }

    int64_t now = event_now_ms();
    m->created_ms = had ? old->created_ms : now;
    m->updated_ms = now;
    char other[EV_NUMID_MAX] = "";
    store_mapping_put_rc rc = store_mapping_put(st, m, other, sizeof other, err, sizeof err);
    switch (rc) {
    case STORE_MAPPING_CREATED:
    case STORE_MAPPING_REPLACED: break;
    case STORE_MAPPING_ERROR:
        free(rep);
        admin_unavailable(req, err);
        return;
    case STORE_MAPPING_CONFLICT:
        free(rep);
        http_reply_error(req, 409, "conflict",
                         "campaign %s is already mapped to program %s; a campaign maps to one "
                         "program: delete that mapping first",
                         m->campaign_id, other);
        return;
    }
    LOG_KV(LOG_INFO,
           patch                         ? "mapping patched"
           : rc == STORE_MAPPING_CREATED ? "mapping created"
                                         : "mapping replaced",
           "program_id", pid, "campaign_id", m->campaign_id, "enabled",
           m->enabled ? "true" : "false", "status_check", check);
    char backfill[JOB_ID_MAX] = "";
    if (m->enabled) {
        /* The mapping is stored whatever follows; what fails here waits for a worker's next
         * look at the parked programs, or the program poll. */
        if (store_unpark(st, pid, err, sizeof err) < 0)
            followup_failed("mapping saved; its parked events wait for a worker", pid, err);
        /* F2/F3: copy the program's channel and costs now, not at the next poll, nor after
         * the backoff of earlier failed copies (the mapping may be what fixes them). */
        if (store_copy_retry_now(st, pid, err, sizeof err) != 0 ||
            store_program_due_add(st, pid, err, sizeof err) != 0)
            followup_failed("mapping saved; its program copy waits for the next poll", pid, err);
        start_backfill(cfg, st, m, old, had, backfill);
    }
    store_copy_state cp;
    if (store_copy_state_get(st, pid, &cp, err, sizeof err) != 0) memset(&cp, 0, sizeof cp);
    cJSON *o = mapping_object(m, &cp);
    cJSON_AddStringToObject(o, "statusCheck", check);
    if (check_msg[0]) cJSON_AddStringToObject(o, "statusCheckMessage", check_msg);
    if (backfill[0]) cJSON_AddStringToObject(o, "backfillJob", backfill);
    if (rep && rep->nunmatched) {
        char *js = checks_report_json(m, rep);
        cJSON *report = js ? cJSON_Parse(js) : NULL;
        free(js);
        if (report)
            cJSON_AddItemToObject(o, "unmatched",
                                  cJSON_DetachItemFromObjectCaseSensitive(report, "unmatched"));
        cJSON_Delete(report);
    }
    free(rep);
    admin_reply_json(req, rc == STORE_MAPPING_CREATED && !patch ? 201 : 200, o);
}

static void put_mapping(http_request *req, void *ud) {
    const struct config *cfg = routes_config(ud);
    if (!admin_authorized(req, cfg)) return;
    const char *pid = http_req_param(req, "programId");
    size_t len;
    const char *body = http_req_body(req, &len);
    mapping m;
    bool force;
    char err[STORE_ERR_MAX];
    if (mapping_from_request(pid, body, len, &m, &force, err, sizeof err) != 0) {
        http_reply_error(req, 400, "invalid_mapping", "%s", err);
        return;
    }
    store *st = admin_redis(req, ud);
    if (!st) return;
    mapping old;
    store_found had = store_mapping_get(st, pid, &old, err, sizeof err);
    if (had == STORE_ERROR) {
        admin_unavailable(req, err);
        return;
    }
    save_mapping(req, ud, st, &m, force, &old, had == STORE_FOUND, false);
}

/* The preamble of the endpoints that ask both CRMs about one mapping: token, Redis, the
 * mapping ({programId}), and this process's CRM clients. Answers and returns NULL when the
 * request cannot go on. */
static crm *mapping_and_crm(http_request *req, const routes_ctx *ctx, mapping *m, store **st) {
    const struct config *cfg = routes_config(ctx);
    if (!admin_authorized(req, cfg) || !(*st = admin_redis(req, ctx))) return NULL;
    const char *pid = http_req_param(req, "programId");
    char err[STORE_ERR_MAX], missing[200];
    switch (store_mapping_get(*st, pid, m, err, sizeof err)) {
    case STORE_FOUND: break;
    case STORE_ERROR: admin_unavailable(req, err); return NULL;
    case STORE_NOT_FOUND:
        http_reply_error(req, 404, "not_found", "no mapping for program %s", pid);
        return NULL;
    }
    if (!crm_configured(cfg, missing, sizeof missing)) {
        http_reply_error(req, 503, "crm_not_configured",
                         "this process has no CRM credentials: set %s", missing);
        return NULL;
    }
    crm *c = crm_pool_get(ctx->crms);
    if (!c) http_reply_error(req, 500, "internal", "out of memory");
    return c;
}

static void validate_mapping(http_request *req, void *ud) {
    mapping m;
    store *st;
    char err[STORE_ERR_MAX * 2];
    crm *c = mapping_and_crm(req, ud, &m, &st);
    if (!c) return;
    status_report *rep = calloc(1, sizeof *rep);
    if (!rep) {
        http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    if (checks_validate(c, &m, rep, err, sizeof err) != 0) {
        free(rep);
        http_reply_error(req, 503, "crm_unavailable", "%s", err);
        return;
    }
    char *js = checks_report_json(&m, rep);
    free(rep);
    if (!js) {
        http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    http_reply_owned(req, 200, "application/json", js, strlen(js));
}

static void get_mapping(http_request *req, void *ud) {
    const struct config *cfg = routes_config(ud);
    if (!admin_authorized(req, cfg)) return;
    store *st = admin_redis(req, ud);
    if (!st) return;
    const char *pid = http_req_param(req, "programId");
    mapping m;
    store_copy_state cp;
    char err[STORE_ERR_MAX];
    store_found rc = store_mapping_get(st, pid, &m, err, sizeof err);
    if (rc == STORE_FOUND && store_copy_state_get(st, pid, &cp, err, sizeof err) != 0)
        rc = STORE_ERROR;
    if (rc == STORE_ERROR)
        admin_unavailable(req, err);
    else if (rc == STORE_NOT_FOUND)
        http_reply_error(req, 404, "not_found", "no mapping for program %s", pid);
    else
        admin_reply_json(req, 200, mapping_object(&m, &cp));
}

static void delete_mapping(http_request *req, void *ud) {
    const struct config *cfg = routes_config(ud);
    if (!admin_authorized(req, cfg)) return;
    store *st = admin_redis(req, ud);
    if (!st) return;
    const char *pid = http_req_param(req, "programId");
    char err[STORE_ERR_MAX];
    switch (store_mapping_delete(st, pid, err, sizeof err)) {
    case STORE_FOUND: break;
    case STORE_ERROR: admin_unavailable(req, err); return;
    case STORE_NOT_FOUND:
        http_reply_error(req, 404, "not_found", "no mapping for program %s", pid);
        return;
    }
    LOG_KV(LOG_INFO, "mapping deleted", "program_id", pid);
    /* Its F2/F3 copy errors and retries. */
    if (store_copy_clear(st, pid, err, sizeof err) != 0)
        followup_failed("mapping deleted; its program copy state could not be cleared", pid, err);
    /* Its parked events are now unmapped: queue them so workers count them as such. */
    if (store_unpark(st, pid, err, sizeof err) < 0)
        followup_failed("mapping deleted; its parked events wait for a worker", pid, err);
    http_reply(req, 204, NULL, NULL, 0);
}

static void list_mappings(http_request *req, void *ud) {
    const struct config *cfg = routes_config(ud);
    if (!admin_authorized(req, cfg)) return;
    long limit;
    if (!admin_read_limit(req, &limit)) return;
    store *st = admin_redis(req, ud);
    if (!st) return;
    const char *cursor = http_req_query(req, "cursor");
    if (cursor &&
        (!*cursor || strspn(cursor, "0123456789") != strlen(cursor) || strlen(cursor) > 15)) {
        http_reply_error(req, 400, "invalid_parameter",
                         "cursor must be the \"next\" value of a "
                         "previous page (a program id)");
        return;
    }
    mapping *ms = calloc((size_t)limit, sizeof *ms);
    store_copy_state *cps = calloc((size_t)limit, sizeof *cps);
    const char **pids = calloc((size_t)limit, sizeof *pids);
    char next[EV_NUMID_MAX], err[STORE_ERR_MAX];
    if (!ms || !cps || !pids) {
        http_reply_error(req, 500, "internal", "out of memory");
        goto out;
    }
    long n =
        store_mapping_list(st, cursor ? cursor : "", limit, ms, next, sizeof next, err, sizeof err);
    for (long i = 0; i < n; i++)
        pids[i] = ms[i].program_id;
    if (n < 0 ||
        store_copy_state_get_many(st, (size_t)(n > 0 ? n : 0), pids, cps, err, sizeof err) != 0) {
        admin_unavailable(req, err);
        goto out;
    }
    cJSON *items = cJSON_CreateArray();
    for (long i = 0; i < n; i++)
        cJSON_AddItemToArray(items, mapping_object(&ms[i], &cps[i]));
    admin_list_page(req, items, next);
out:
    free(ms);
    free(cps);
    free(pids);
}

/* ---- sync switch ---- */

static void reply_sync(http_request *req, bool enabled) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "enabled", enabled);
    admin_reply_json(req, 200, o);
}

static void get_sync(http_request *req, void *ud) {
    const struct config *cfg = routes_config(ud);
    if (!admin_authorized(req, cfg)) return;
    store *st = admin_redis(req, ud);
    if (!st) return;
    bool enabled;
    char err[STORE_ERR_MAX];
    if (store_sync_get(st, &enabled, err, sizeof err) != 0)
        admin_unavailable(req, err);
    else
        reply_sync(req, enabled);
}

static void put_sync(http_request *req, void *ud) {
    const struct config *cfg = routes_config(ud);
    if (!admin_authorized(req, cfg)) return;
    size_t len;
    const char *body = http_req_body(req, &len);
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    while (o && end && (size_t)(end - body) < len && strchr(" \t\r\n", *end))
        end++;
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(o, "enabled");
    if (!cJSON_IsBool(en) || (end && (size_t)(end - body) < len && *end)) {
        cJSON_Delete(o);
        http_reply_error(req, 400, "invalid_field",
                         "the body must be {\"enabled\": true} or "
                         "{\"enabled\": false}");
        return;
    }
    bool enabled = cJSON_IsTrue(en);
    cJSON_Delete(o);
    store *st = admin_redis(req, ud);
    if (!st) return;
    char err[STORE_ERR_MAX];
    if (store_sync_set(st, enabled, err, sizeof err) != 0) {
        admin_unavailable(req, err);
        return;
    }
    LOG_KV(LOG_INFO, enabled ? "sync enabled" : "sync disabled");
    reply_sync(req, enabled);
}

/* A reconciliation job of the mapping (jobs.h), run by a worker process: 202 with its id at
 * once; 409 naming the mapping's unfinished job when it has one. */
static void reconcile_now(http_request *req, void *ud) {
    const struct config *cfg = routes_config(ud);
    if (!admin_authorized(req, cfg)) return;
    store *st = admin_redis(req, ud);
    if (!st) return;
    const char *pid = http_req_param(req, "programId");
    char err[STORE_ERR_MAX], id[JOB_ID_MAX];
    mapping m;
    switch (store_mapping_get(st, pid, &m, err, sizeof err)) {
    case STORE_FOUND: break;
    case STORE_ERROR: admin_unavailable(req, err); return;
    case STORE_NOT_FOUND:
        http_reply_error(req, 404, "not_found", "no mapping for program %s", pid);
        return;
    }
    bool created = false;
    if (jobs_create(st, cfg, &m, JOB_RECONCILE, JOB_BY_REQUEST, id, &created, err, sizeof err) !=
        0) {
        admin_unavailable(req, err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (!created) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "program %s has a job not finished yet (%s): follow it at GET /v1/jobs/%s, or "
                 "cancel it with DELETE /v1/jobs/%s",
                 pid, id, id, id);
        cJSON_AddStringToObject(o, "error", "job_running");
        cJSON_AddStringToObject(o, "message", msg);
        cJSON_AddStringToObject(o, "id", id);
        admin_reply_json(req, 409, o);
        return;
    }
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "state", job_state_name(JOB_QUEUED));
    admin_reply_json(req, 202, o);
}

/* ---- members (F9) and audit ---- */

static void campaign_members(http_request *req, void *ud) {
    const struct config *cfg = routes_config(ud);
    if (!admin_authorized(req, cfg)) return;
    long limit;
    if (!admin_read_limit(req, &limit)) return;
    const char *cid = http_req_param(req, "campaignId");
    const char *cursor = http_req_query(req, "cursor");
    if (cursor && strspn(cursor, "0123456789") != strlen(cursor)) {
        http_reply_error(req, 400, "invalid_parameter",
                         "cursor must be the \"next\" value of a "
                         "previous page");
        return;
    }
    store *st = admin_redis(req, ud);
    if (!st) return;
    member_state *ms = calloc((size_t)limit, sizeof *ms);
    char next[32], err[STORE_ERR_MAX];
    if (!ms) {
        http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    /* Former members stay recorded (their removal time matters) but are not listed: read
     * on until the page is full, so that a page is empty only at the end. */
    char at_cursor[32];
    snprintf(at_cursor, sizeof at_cursor, "%s", cursor ? cursor : "");
    long n = 0;
    member_state *page = calloc((size_t)limit, sizeof *page);
    if (!page) {
        free(ms);
        http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    for (;;) {
        long got = store_member_list(st, cid, at_cursor, limit - n, page, next, sizeof next, err,
                                     sizeof err);
        if (got < 0) {
            free(ms);
            free(page);
            admin_unavailable(req, err);
            return;
        }
        for (long i = 0; i < got; i++)
            if (page[i].sf_member || page[i].mkto_member) ms[n++] = page[i];
        if (n >= limit || !next[0]) break;
        snprintf(at_cursor, sizeof at_cursor, "%s", next);
    }
    free(page);
    cJSON *items = cJSON_CreateArray();
    for (long i = 0; i < n; i++) {
        const member_state *m = &ms[i];
        cJSON *o = cJSON_CreateObject();
        char at[40];
        event_format_time(m->updated_ms, at, sizeof at);
        cJSON_AddStringToObject(o, "email", m->email);
        cJSON_AddStringToObject(o, "marketoLeadId", m->mkto_lead);
        cJSON_AddStringToObject(o, "salesforceId", m->sf_person);
        if (m->sf_member)
            cJSON_AddStringToObject(o, "status", m->sf_status);
        else
            cJSON_AddNullToObject(o, "status");
        if (m->mkto_member)
            cJSON_AddStringToObject(o, "programStatus", m->mkto_status);
        else
            cJSON_AddNullToObject(o, "programStatus");
        cJSON_AddStringToObject(o, "updatedAt", at);
        cJSON_AddStringToObject(o, "source", event_source_name(m->src));
        cJSON_AddItemToArray(items, o);
    }
    free(ms);
    admin_list_page(req, items, next);
}

static bool valid_entry_id(const char *s) {
    unsigned long long part[2] = {0, 0};
    int parts = 0;
    for (const char *p = s; parts < 2;) {
        size_t n = strspn(p, "0123456789");
        if (n == 0 || n > 20) return false;
        errno = 0;
        part[parts++] = strtoull(p, NULL, 10);
        if (errno == ERANGE) return false;
        p += n;
        if (*p == '\0') break;
        if (*p != '-' || parts == 2) return false;
        p++;
    }
    return part[0] || part[1];
}

static void audit_log(http_request *req, void *ud) {
    const struct config *cfg = routes_config(ud);
    if (!admin_authorized(req, cfg)) return;
    long limit;
    if (!admin_read_limit(req, &limit)) return;
    store *st = admin_redis(req, ud);
    if (!st) return;
    const char *pid = http_req_query(req, "programId");
    const char *cid = http_req_query(req, "campaignId");
    const char *cursor = http_req_query(req, "cursor");
    /* A stream entry id: <ms> or <ms>-<seq>, each a 64-bit number, above 0-0. */
    if (cursor && *cursor && !valid_entry_id(cursor)) {
        http_reply_error(req, 400, "invalid_parameter",
                         "cursor must be the \"next\" value of a "
                         "previous page");
        return;
    }
    char next[48], err[STORE_ERR_MAX];
    char *items = store_audit_list(st, pid ? pid : "", cid ? cid : "", cursor ? cursor : "", limit,
                                   next, sizeof next, err, sizeof err);
    if (!items) {
        admin_unavailable(req, err);
        return;
    }
    cJSON *arr = cJSON_Parse(items);
    free(items);
    admin_list_page(req, arr ? arr : cJSON_CreateArray(), next);
}

/* ---- issue 21: mappings by merge patch, dead letters by filter ---- */

#define ACCEPT_PATCH "application/merge-patch+json, application/json"

/* The patch's media type: JSON merge patch's own (RFC 7396 section 4), or plain JSON, as the
 * other admin calls send: a merge patch is a JSON document and the only patch format this
 * endpoint reads, so nothing is ambiguous. Parameters (charset) are allowed. */
static bool patch_type_ok(const char *ct) {
    if (!ct) return false;
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    return (n == 28 && strncasecmp(ct, "application/merge-patch+json", 28) == 0) ||
           (n == 16 && strncasecmp(ct, "application/json", 16) == 0);
}

static void patch_mapping(http_request *req, void *ud) {
    const struct config *cfg = routes_config(ud);
    if (!admin_authorized(req, cfg)) return;
    const char *ctype = http_req_header(req, "Content-Type");
    if (!patch_type_ok(ctype)) {
        /* An unsupported patch format: 415 with Accept-Patch (RFC 5789 section 2.2,
         * https://www.rfc-editor.org/rfc/rfc5789#section-2.2). */
        http_reply_header(req, "Accept-Patch", ACCEPT_PATCH);
        http_reply_error(req, 415, "unsupported_media_type",
                         "Content-Type must be application/merge-patch+json (or "
                         "application/json), got \"%.60s\"",
                         ctype ? ctype : "(none)");
        return;
    }
    store *st = admin_redis(req, ud);
    if (!st) return;
    const char *pid = http_req_param(req, "programId");
    mapping old, m;
    char err[512];
    store_found had = store_mapping_get(st, pid, &old, err, sizeof err);
    if (had == STORE_ERROR) {
        admin_unavailable(req, err);
        return;
    }
    if (had == STORE_NOT_FOUND) {
        http_reply_error(req, 404, "not_found", "no mapping for program %s", pid);
        return;
    }
    size_t len;
    const char *body = http_req_body(req, &len);
    char *put_body;
    switch (mapping_patch_apply(&old, body, len, &put_body, err, sizeof err)) {
    case MAPPING_PATCH_APPLIED: break;
    case MAPPING_PATCH_REFUSED: http_reply_error(req, 400, "invalid_patch", "%s", err); return;
    case MAPPING_PATCH_OUT_OF_MEMORY:
        http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    bool force;
    int rc = mapping_from_request(pid, put_body, strlen(put_body), &m, &force, err, sizeof err);
    free(put_body);
    if (rc != 0) {
        http_reply_error(req, 400, "invalid_mapping", "%s", err);
        return;
    }
    save_mapping(req, ud, st, &m, force, &old, true, true);
}

size_t routes_admin(http_route *out, size_t max, const routes_ctx *ctx) {
    void *ud = (void *)ctx;
    /* The token is checked before any of the body is read (routes_admin_authorize); bodies are
     * small. */
    const http_route r[] = {
        {"GET", "/v1/mappings", list_mappings, ud, NULL, routes_admin_authorize, ADMIN_MAX_BODY},
        {"PUT", "/v1/mappings/{programId}", put_mapping, ud, NULL, routes_admin_authorize,
         ADMIN_MAX_BODY},
        {"GET", "/v1/mappings/{programId}", get_mapping, ud, NULL, routes_admin_authorize,
         ADMIN_MAX_BODY},
        {"DELETE", "/v1/mappings/{programId}", delete_mapping, ud, NULL, routes_admin_authorize,
         ADMIN_MAX_BODY},
        {"GET", "/v1/mappings/{programId}/validation", validate_mapping, ud, NULL,
         routes_admin_authorize, ADMIN_MAX_BODY},
        {"POST", "/v1/mappings/{programId}/reconcile", reconcile_now, ud, NULL,
         routes_admin_authorize, ADMIN_MAX_BODY},
        {"GET", "/v1/sync", get_sync, ud, NULL, routes_admin_authorize, ADMIN_MAX_BODY},
        {"PUT", "/v1/sync", put_sync, ud, NULL, routes_admin_authorize, ADMIN_MAX_BODY},
        {"GET", "/v1/campaigns/{campaignId}/members", campaign_members, ud, NULL,
         routes_admin_authorize, ADMIN_MAX_BODY},
        {"GET", "/v1/audit", audit_log, ud, NULL, routes_admin_authorize, ADMIN_MAX_BODY},
        /* Issue 21. */
        {"PATCH", "/v1/mappings/{programId}", patch_mapping, ud, NULL, routes_admin_authorize,
         ADMIN_MAX_BODY},
    };
    size_t n = sizeof r / sizeof r[0];
    if (n > max) n = max;
    memcpy(out, r, sizeof r[0] * n);
    return n;
}
