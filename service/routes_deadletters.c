/* routes_deadletters — the dead letters: list (with issue 21's filter), replay, delete, and the
 * filtered bulk replay. See include/routes_deadletters.h. */
#include "routes_deadletters.h"

#include "dead_filter.h"
#include "log.h"
#include "routes_admin.h"
#include "store.h"
#include "store_dead.h"
#include "store_mappings.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the query of GET /v1/deadletters asks for. */
typedef enum {
    LIST_ALL,      /* no filter: the plain list */
    LIST_FILTERED, /* f filled: the filtered list */
    LIST_ANSWERED, /* a bad parameter, answered 400 */
} list_query;

/* Issue 21's filter, defined with the bulk replay below. */
static list_query list_filter(http_request *req, dead_filter *f);
static void list_dead_filtered(http_request *req, store *st, dead_filter *f, long limit);
static void add_reasons(cJSON *items);

static void list_dead(http_request *req, void *ud) {
    const struct config *cfg = routes_config(ud);
    if (!admin_authorized(req, cfg)) return;
    long limit;
    if (!admin_read_limit(req, &limit)) return;
    dead_filter f;
    list_query q = list_filter(req, &f);
    if (q == LIST_ANSWERED) return;
    store *st = admin_redis(req, ud);
    if (!st) return;
    if (q == LIST_FILTERED) {
        list_dead_filtered(req, st, &f, limit);
        return;
    }
    char next[64], err[STORE_ERR_MAX];
    const char *cursor = http_req_query(req, "cursor");
    char *items = NULL;
    switch (store_dead_list(st, cursor ? cursor : "", limit, &items, next, sizeof next, err,
                            sizeof err)) {
    case STORE_DEAD_LIST_OK: break;
    case STORE_DEAD_LIST_NO_CURSOR:
        http_reply_error(req, 400, "invalid_parameter", "%s", err);
        return;
    case STORE_DEAD_LIST_ERROR: admin_unavailable(req, err); return;
    }
    cJSON *arr = cJSON_Parse(items);
    free(items);
    add_reasons(arr);
    admin_list_page(req, arr ? arr : cJSON_CreateArray(), next);
}

/* A dead letter replay found no event in: 409 when it holds a received item that never was
 * one (an unusable Salesforce notification: nothing to put back in the queue; the fix is in
 * Salesforce, whose next save of the record sends a new notification), else 404. */
static void refuse_unusable_or_404(http_request *req, store *st, const char *id) {
    char why[512], err[STORE_ERR_MAX];
    store_found rc = store_dead_unusable(st, id, why, sizeof why, err, sizeof err);
    if (rc == STORE_ERROR)
        admin_unavailable(req, err);
    else if (rc == STORE_NOT_FOUND)
        http_reply_error(req, 404, "not_found", "no dead letter %s", id);
    else
        http_reply_error(req, 409, "not_replayable",
                         "dead letter %s is a notification that never became an event (%s); "
                         "there is nothing to replay: correct the record or the Outbound "
                         "Message's fields in Salesforce and save the record again (its new "
                         "notification is synced), then delete this dead letter",
                         id, why);
}

static void replay_dead(http_request *req, void *ud) {
    const struct config *cfg = routes_config(ud);
    if (!admin_authorized(req, cfg)) return;
    store *st = admin_redis(req, ud);
    if (!st) return;
    const char *id = http_req_param(req, "id");
    char err[STORE_ERR_MAX];
    switch (store_dead_replay(st, id, err, sizeof err)) {
    case STORE_FOUND: break;
    case STORE_ERROR: admin_unavailable(req, err); return;
    case STORE_NOT_FOUND: refuse_unusable_or_404(req, st, id); return;
    }
    LOG_KV(LOG_INFO, "dead letter replayed", "id", id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "status", "queued");
    admin_reply_json(req, 202, o);
}

static void delete_dead(http_request *req, void *ud) {
    const struct config *cfg = routes_config(ud);
    if (!admin_authorized(req, cfg)) return;
    store *st = admin_redis(req, ud);
    if (!st) return;
    const char *id = http_req_param(req, "id");
    char err[STORE_ERR_MAX];
    store_found rc = store_dead_delete(st, id, err, sizeof err);
    if (rc == STORE_ERROR)
        admin_unavailable(req, err);
    else if (rc == STORE_NOT_FOUND)
        http_reply_error(req, 404, "not_found", "no dead letter %s", id);
    else
        http_reply(req, 204, NULL, NULL, 0);
}

#define DEAD_SCAN_MAX  5000 /* dead letters looked at per request, whatever the filter takes */
#define DEAD_SCAN_PAGE 500

/* Fills what the mappings add to a filter: the campaign of its program and the program of
 * its campaign. 0, or -1 with err. */
static int resolve_mappings(store *st, dead_filter *f, char *err, size_t errlen) {
    mapping m;
    store_found rc = STORE_NOT_FOUND;
    if (f->program_id[0] &&
        (rc = store_mapping_get(st, f->program_id, &m, err, errlen)) == STORE_FOUND)
        snprintf(f->program_campaign, sizeof f->program_campaign, "%s", m.campaign_id);
    if (rc == STORE_ERROR) return -1;
    if (f->campaign_id[0] &&
        (rc = store_mapping_by_campaign(st, f->campaign_id, &m, err, errlen)) == STORE_FOUND)
        snprintf(f->campaign_program, sizeof f->campaign_program, "%s", m.program_id);
    return rc == STORE_ERROR ? -1 : 0;
}

typedef int (*dead_take_fn)(const store_dead_entry *e, void *ud);

/* Walks the dead letters newest first, from f's cursor, handing each one the filter takes to
 * take, until f->limit were taken or DEAD_SCAN_MAX looked at: bounded work per request,
 * whatever the filter. *next gets the cursor of the last one looked at when more may
 * follow, "" at the end. 0, or -1 with err (Redis, or take's failure). */
static int walk_dead(store *st, const dead_filter *f, dead_take_fn take, void *ud, char *next,
                     size_t nextlen, char *err, size_t errlen) {
    store_dead_pos pos = {.at_ms = -1};
    if (f->has_cursor) {
        pos.at_ms = f->cursor_at_ms;
        snprintf(pos.id, sizeof pos.id, "%s", f->cursor_id);
    }
    long taken = 0, seen = 0;
    next[0] = '\0';
    for (;;) {
        size_t want =
            DEAD_SCAN_MAX - seen < DEAD_SCAN_PAGE ? (size_t)(DEAD_SCAN_MAX - seen) : DEAD_SCAN_PAGE;
        store_dead_entry *e = NULL;
        long n = store_dead_scan(st, f->from_ms, f->to_ms, pos.at_ms >= 0 ? &pos : NULL, want, &e,
                                 err, errlen);
        if (n < 0) return -1;
        long i = 0;
        int rc = 0;
        bool full = false;
        while (i < n && !full && rc == 0) {
            const store_dead_entry *x = &e[i++];
            seen++;
            pos.at_ms = x->at_ms;
            snprintf(pos.id, sizeof pos.id, "%s", x->id);
            if (!x->item || !dead_filter_match(f, x->item, x->len, x->unusable)) continue;
            rc = take(x, ud);
            full = ++taken >= f->limit;
        }
        store_dead_entries_free(e, (size_t)n);
        if (rc != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (i == n && (size_t)n < want) return 0; /* the end of the index */
        if (full || seen >= DEAD_SCAN_MAX) {
            dead_filter_cursor(pos.at_ms, pos.id, next, nextlen);
            return 0;
        }
    }
}

/* Adds each listed dead letter's kind ("reason"); without the unusable mark at hand, a dead
 * letter of 0 attempts is an unusable item (a worker's dead letters have 1 or more). */
static void add_reasons(cJSON *items) {
    cJSON *it;
    cJSON_ArrayForEach(it, items) {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(it, "error");
        const cJSON *att = cJSON_GetObjectItemCaseSensitive(it, "attempts");
        bool unusable = cJSON_IsNumber(att) && att->valuedouble == 0;
        dead_kind k = dead_filter_classify(cJSON_IsString(err) ? err->valuestring : "", unusable);
        cJSON_AddStringToObject(it, "reason", dead_kind_name(k));
    }
}

static int take_for_list(const store_dead_entry *e, void *ud) {
    cJSON *o = cJSON_ParseWithLength(e->item, e->len);
    if (!o) return 0;
    cJSON_ReplaceItemInObjectCaseSensitive(o, "id", cJSON_CreateString(e->id));
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(o, "error");
    dead_kind k = dead_filter_classify(cJSON_IsString(err) ? err->valuestring : "", e->unusable);
    cJSON_AddStringToObject(o, "reason", dead_kind_name(k));
    if (cJSON_AddItemToArray(ud, o)) return 0;
    cJSON_Delete(o);
    return -1;
}

/* Reads the filter of GET /v1/deadletters from the query. */
static list_query list_filter(http_request *req, dead_filter *f) {
    static const char *const names[] = {"programId",     "campaignId", "reason",
                                        "errorContains", "from",       "to"};
    char err[STORE_ERR_MAX];
    dead_filter_init(f);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = http_req_query(req, names[i]);
        if (v && dead_filter_set(f, names[i], v, err, sizeof err) != DEAD_FIELD_SET) {
            http_reply_error(req, 400, "invalid_parameter", "%s", err);
            return LIST_ANSWERED;
        }
    }
    if (dead_filter_check(f, err, sizeof err) != 0) {
        http_reply_error(req, 400, "invalid_parameter", "%s", err);
        return LIST_ANSWERED;
    }
    if (!dead_filter_narrows(f)) return LIST_ALL;
    const char *cursor = http_req_query(req, "cursor");
    if (cursor && *cursor) {
        if (!dead_filter_parse_cursor(cursor, &f->cursor_at_ms, f->cursor_id,
                                      sizeof f->cursor_id)) {
            http_reply_error(req, 400, "invalid_parameter",
                             "cursor must be the \"next\" of a previous page of the same "
                             "filter, unchanged");
            return LIST_ANSWERED;
        }
        f->has_cursor = true;
    }
    return LIST_FILTERED;
}

/* GET /v1/deadletters with a filter: the page holds what the filter takes among the next
 * DEAD_SCAN_MAX dead letters at most, so it may be short (even empty) with a "next". */
static void list_dead_filtered(http_request *req, store *st, dead_filter *f, long limit) {
    char err[STORE_ERR_MAX], next[80];
    f->limit = limit;
    cJSON *items = cJSON_CreateArray();
    if (!items) {
        http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    if (resolve_mappings(st, f, err, sizeof err) != 0 ||
        walk_dead(st, f, take_for_list, items, next, sizeof next, err, sizeof err) != 0) {
        cJSON_Delete(items);
        admin_unavailable(req, err);
        return;
    }
    admin_list_page(req, items, next);
}

typedef struct {
    char (*ids)[DEAD_ID_MAX];
    size_t n;
    long unusable;
} replay_batch;

static int take_for_replay(const store_dead_entry *e, void *ud) {
    replay_batch *b = ud;
    if (e->unusable)
        b->unusable++; /* nothing to put back (see refuse_unusable_or_404) */
    else
        snprintf(b->ids[b->n++], DEAD_ID_MAX, "%s", e->id);
    return 0;
}

/* Puts back the batch's dead letters (the single replay's script for each); *queued gets
 * how many were still there to be put back. 0, or -1 with err. */
static int replay_batch_run(store *st, const replay_batch *b, long *queued, char *err,
                            size_t errlen) {
    *queued = 0;
    if (b->n == 0) return 0;
    const char **ids = calloc(b->n, sizeof *ids);
    store_found *rc = calloc(b->n, sizeof *rc);
    int ret = -1;
    if (!ids || !rc) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < b->n; i++)
        ids[i] = b->ids[i];
    if (store_dead_replay_many(st, ids, b->n, rc, err, errlen) != 0) goto out;
    for (size_t i = 0; i < b->n; i++)
        *queued += rc[i] == STORE_FOUND;
    ret = 0;
out:
    free(ids);
    free(rc);
    return ret;
}

static void replay_filtered(http_request *req, void *ud) {
    const struct config *cfg = routes_config(ud);
    if (!admin_authorized(req, cfg)) return;
    size_t len;
    const char *body = http_req_body(req, &len);
    dead_filter f;
    char err[512], next[80];
    dead_filter_init(&f);
    if (dead_filter_from_json(&f, body, len, err, sizeof err) != 0) {
        http_reply_error(req, 400, "invalid_filter", "%s", err);
        return;
    }
    store *st = admin_redis(req, ud);
    if (!st) return;
    replay_batch b = {.ids = calloc((size_t)f.limit, DEAD_ID_MAX)};
    if (!b.ids) {
        http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    long queued = (long)b.n;
    if (resolve_mappings(st, &f, err, sizeof err) != 0 ||
        walk_dead(st, &f, take_for_replay, &b, next, sizeof next, err, sizeof err) != 0 ||
        (!f.dry_run && replay_batch_run(st, &b, &queued, err, sizeof err) != 0)) {
        free(b.ids);
        admin_unavailable(req, err);
        return;
    }
    if (f.dry_run) queued = (long)b.n;
    /* Skipped: unusable items, and those replayed or deleted by someone else meanwhile. */
    long skipped = b.unusable + (long)b.n - queued;
    free(b.ids);
    char q[24], sk[24];
    snprintf(q, sizeof q, "%ld", queued);
    snprintf(sk, sizeof sk, "%ld", skipped);
    LOG_KV(LOG_INFO, f.dry_run ? "dead letters counted (dry run)" : "dead letters replayed",
           "queued", q, "skipped", sk, "program_id", f.program_id, "campaign_id", f.campaign_id,
           "reason", dead_kind_name(f.reason), "more", next[0] ? "true" : "false");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "queued", (double)queued);
    cJSON_AddNumberToObject(o, "skipped", (double)skipped);
    if (next[0])
        cJSON_AddStringToObject(o, "next", next);
    else
        cJSON_AddNullToObject(o, "next");
    cJSON_AddBoolToObject(o, "dryRun", f.dry_run);
    admin_reply_json(req, f.dry_run ? 200 : 202, o);
}

/* DELETE /v1/deadletters/replay names the bulk replay, not a dead letter: 405, as the server
 * answers a method that a path does not have; any other id goes on to the token. */
static bool dead_letter_authorize(http_request *req, void *ud) {
    if (strcmp(http_req_param(req, "id"), "replay") == 0) {
        http_reply_header(req, "Allow", "POST");
        http_reply_error(req, 405, "method_not_allowed", "%s is not allowed on %s; use POST",
                         http_req_method(req), http_req_path(req));
        return false;
    }
    return admin_authorized(req, routes_config(ud));
}

size_t routes_deadletters(http_route *out, size_t max, const routes_ctx *ctx) {
    void *ud = (void *)ctx;
    const http_route r[] = {
        {"GET", "/v1/deadletters", list_dead, ud, NULL, routes_admin_authorize,
         ROUTES_ADMIN_MAX_BODY},
        {"POST", "/v1/deadletters/{id}/replay", replay_dead, ud, NULL, routes_admin_authorize,
         ROUTES_ADMIN_MAX_BODY},
        {"DELETE", "/v1/deadletters/{id}", delete_dead, ud, NULL, dead_letter_authorize,
         ROUTES_ADMIN_MAX_BODY},
        {"POST", "/v1/deadletters/replay", replay_filtered, ud, NULL, routes_admin_authorize,
         ROUTES_ADMIN_MAX_BODY},
    };
    size_t n = sizeof r / sizeof r[0];
    if (n > max) n = max;
    memcpy(out, r, sizeof r[0] * n);
    return n;
}
