/* salesforce — OAuth, REST calls, Collections and records. See include/salesforce.h. The
 * SOQL queries are in salesforce_query.c. */
#include "salesforce.h"

#include "salesforce_priv.h"

#include "http_client.h"
#include "log.h"
#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sf_client {
    http_client *http;
    char login_url[512];
    char client_id[256];
    char client_secret[256];
    char version[16];
    char token[1024];
    char instance[512];
    sf_gate_fn gate;
    sf_spent_fn spent;
    void *gate_ud;
    sf_usage *usage; /* borrowed; NULL: not reported */
};

/* The last usage share seen, in millionths (atomic: every worker thread's client sets it). */
struct sf_usage {
    _Atomic long share_ppm;
};

sf_usage *sf_usage_new(void) {
    return calloc(1, sizeof(sf_usage));
}

void sf_usage_free(sf_usage *u) {
    free(u);
}

double sf_usage_share(const sf_usage *u) {
    return u ? (double)atomic_load(&u->share_ppm) / 1e6 : 0;
}

sf_client *sf_client_new(const struct config *cfg, sf_usage *usage) {
    sf_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->usage = usage;
    c->http = http_client_new("salesforce", cfg->crm_timeout_ms);
    if (!c->http) {
        free(c);
        return NULL;
    }
    snprintf(c->login_url, sizeof c->login_url, "%s", cfg->sf_login_url ? cfg->sf_login_url : "");
    size_t n = strlen(c->login_url);
    while (n && c->login_url[n - 1] == '/')
        c->login_url[--n] = '\0';
    snprintf(c->client_id, sizeof c->client_id, "%s", cfg->sf_client_id ? cfg->sf_client_id : "");
    snprintf(c->client_secret, sizeof c->client_secret, "%s",
             cfg->sf_client_secret ? cfg->sf_client_secret : "");
    snprintf(c->version, sizeof c->version, "%s", cfg->sf_api_version);
    return c;
}

void sf_client_free(sf_client *c) {
    if (!c) return;
    http_client_free(c->http);
    free(c);
}

void sf_client_set_gate(sf_client *c, sf_gate_fn gate, sf_spent_fn spent, void *ud) {
    c->gate = gate;
    c->spent = spent;
    c->gate_ud = ud;
}

void sf_set_error(sf_error *e, sf_outcome o, long status, const char *code, const char *msg) {
    e->outcome = o;
    e->status = status;
    snprintf(e->code, sizeof e->code, "%s", code);
    snprintf(e->message, sizeof e->message, "%s", msg);
    if (o != SF_OK) metrics_add(M_CRM_ERRORS, 1, "salesforce", e->code);
}

crm_failure sf_failure(const sf_error *e) {
    switch (e->outcome) {
    case SF_RETRY: return CRM_RETRY;
    case SF_BUSY: return CRM_SPENT;
    case SF_OK:
    case SF_PERMANENT: return CRM_REFUSED;
    }
    return CRM_REFUSED;
}

/* Sforce-Limit-Info: api-usage=18/5000[; per-app-api-usage=...] (REST API Developer Guide,
 * "Limit Info Header"). */
static void export_limits(sf_usage *u, const char *v) {
    const char *p = strstr(v, "api-usage=");
    if (!p || (p > v && p[-1] == '-')) return; /* not "per-app-api-usage" */
    long used, limit;
    if (sscanf(p + 10, "%ld/%ld", &used, &limit) == 2) {
        metrics_set(M_SF_API_USAGE, (double)used, "used");
        metrics_set(M_SF_API_USAGE, (double)limit, "limit");
        if (u && limit > 0 && used >= 0)
            atomic_store(&u->share_ppm, used >= limit ? 1000000L : (long)(used * 1e6 / limit));
    }
}

int sf_authenticate(sf_client *c, sf_error *err) {
    char *id = http_client_escape(c->http, c->client_id);
    char *secret = http_client_escape(c->http, c->client_secret);
    char url[600], *body = NULL;
    int rc = -1;
    http_result res = {0};
    if (!id || !secret) {
        sf_set_error(err, SF_RETRY, 0, "internal", "out of memory");
        goto out;
    }
    size_t blen = strlen(id) + strlen(secret) + 80;
    body = malloc(blen);
    if (!body) {
        sf_set_error(err, SF_RETRY, 0, "internal", "out of memory");
        goto out;
    }
    snprintf(body, blen, "grant_type=client_credentials&client_id=%s&client_secret=%s", id, secret);
    snprintf(url, sizeof url, "%s/services/oauth2/token", c->login_url);
    const char *hdr[] = {"Content-Type: application/x-www-form-urlencoded",
                         "Accept: application/json", NULL};
    if (http_client_request(c->http, "POST", url, hdr, body, strlen(body), &res) != 0) {
        sf_set_error(err, SF_RETRY, 0, "network", res.error);
        goto out;
    }
    cJSON *o = cJSON_ParseWithLength(res.body, res.len);
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(o, "access_token");
    const cJSON *inst = cJSON_GetObjectItemCaseSensitive(o, "instance_url");
    if (res.status == 200 && cJSON_IsString(tok) && cJSON_IsString(inst)) {
        snprintf(c->token, sizeof c->token, "%s", tok->valuestring);
        snprintf(c->instance, sizeof c->instance, "%s", inst->valuestring);
        rc = 0;
    } else {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "error_description");
        char msg[400];
        snprintf(msg, sizeof msg,
                 "Salesforce refused the client credentials at %.200s: %.80s%s%.100s", url,
                 cJSON_IsString(e) ? e->valuestring : "HTTP error", cJSON_IsString(d) ? ": " : "",
                 cJSON_IsString(d) ? d->valuestring : "");
        /* Credentials are fixed by an operator, not by the event: retry, never drop. */
        sf_set_error(err, SF_RETRY, res.status, cJSON_IsString(e) ? e->valuestring : "auth", msg);
    }
    cJSON_Delete(o);
out:
    free(id);
    free(secret);
    free(body);
    http_result_free(&res);
    return rc;
}

/* The first error of a Salesforce error array [{"message","errorCode"}]. */
static void first_error(const cJSON *o, char *code, size_t cl, char *msg, size_t ml) {
    const cJSON *e = cJSON_IsArray(o) ? cJSON_GetArrayItem(o, 0) : o;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "errorCode");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    snprintf(code, cl, "%s", cJSON_IsString(c) ? c->valuestring : "");
    snprintf(msg, ml, "%s", cJSON_IsString(m) ? m->valuestring : "");
}

/* "<instance>/services/data/<version>/<path>" (or "<instance><path>" for an absolute path),
 * malloc'd; *target_len is the length of the request target (the URL without the instance). */
static char *request_url(const sf_client *c, const char *path, size_t *target_len) {
    bool absolute = strncmp(path, "/services/", 10) == 0;
    size_t target =
        absolute ? strlen(path) : strlen("/services/data//") + strlen(c->version) + strlen(path);
    size_t len = strlen(c->instance) + target + 1;
    char *url = malloc(len);
    if (!url) return NULL;
    if (absolute)
        snprintf(url, len, "%s%s", c->instance, path);
    else
        snprintf(url, len, "%s/services/data/%s/%s", c->instance, c->version, path);
    *target_len = target;
    return url;
}

/* sf_call; when errbody is not NULL, an error answer's parsed body (HTTP 400 and up) goes
 * there (caller frees) instead of being dropped. */
static int call(sf_client *c, const char *method, const char *path, const char *body, cJSON **out,
                cJSON **errbody, sf_error *err) {
    *out = NULL;
    if (errbody) *errbody = NULL;
    memset(err, 0, sizeof *err);
    err->retry_after_ms = -1;
    if (!c->token[0] && sf_authenticate(c, err) != 0) return -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t target = 0;
        char *url = request_url(c, path, &target);
        char auth[1100];
        if (!url) {
            sf_set_error(err, SF_RETRY, 0, "internal", "out of memory");
            return -1;
        }
        if (target > SF_URI_MAX) {
            /* Salesforce answers 414 URI Too Long (Salesforce Help 000386264): never cut a
             * URI to fit, say so and send nothing. */
            char msg[200];
            snprintf(msg, sizeof msg,
                     "the request URI would be %zu bytes, over Salesforce's limit of %d; "
                     "nothing was sent",
                     target, SF_URI_MAX);
            free(url);
            sf_set_error(err, SF_PERMANENT, 414, "URI_TOO_LONG", msg);
            return -1;
        }
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
        const char *hdr[] = {auth, "Accept: application/json", "Content-Type: application/json",
                             NULL};
        http_result res;
        int rc =
            http_client_request(c->http, method, url, hdr, body, body ? strlen(body) : 0, &res);
        free(url);
        if (res.limit_info[0]) export_limits(c->usage, res.limit_info);
        err->retry_after_ms = http_retry_after_ms(res.retry_after);
        if (rc != 0) {
            sf_set_error(err, SF_RETRY, 0, strstr(res.error, "imeout") ? "timeout" : "network",
                         res.error);
            http_result_free(&res);
            return -1;
        }
        cJSON *o = res.len ? cJSON_ParseWithLength(res.body, res.len) : NULL;
        long st = res.status;
        char code[64] = "", msg[512] = "";
        if (st >= 400) first_error(o, code, sizeof code, msg, sizeof msg);
        if (!msg[0] && st >= 400) snprintf(msg, sizeof msg, "HTTP %ld: %.300s", st, res.body);
        http_result_free(&res);
        if (st < 300) {
            *out = o;
            return 0;
        }
        if (st == 401 && attempt == 0) {
            /* Expired or revoked token: fetch a new one and retry at once, once. */
            cJSON_Delete(o);
            c->token[0] = '\0';
            if (sf_authenticate(c, err) != 0) return -1;
            continue;
        }
        if (errbody && st >= 400)
            *errbody = o;
        else
            cJSON_Delete(o);
        sf_outcome kind = SF_PERMANENT;
        if (st >= 500 || st == 401 || st == 429 || strcmp(code, "UNABLE_TO_LOCK_ROW") == 0 ||
            strcmp(code, "SERVER_UNAVAILABLE") == 0)
            kind = SF_RETRY;
        /* REST API guide, "Status Codes and Error Responses": 403 REQUEST_LIMIT_EXCEEDED is the
         * org's rolling 24-hour allowance: wait for room, never give up on the change. */
        if (strcmp(code, "REQUEST_LIMIT_EXCEEDED") == 0) kind = SF_BUSY;
        if (!code[0]) snprintf(code, sizeof code, "HTTP_%ld", st);
        sf_set_error(err, kind, st, code, msg);
        return -1;
    }
    return -1;
}

/* How long after a REQUEST_LIMIT_EXCEEDED the allowance is probed again. */
#define SPENT_WAIT_MS (5 * 60 * 1000L)

/* call, unless the gate holds calls (a spent allowance: SF_BUSY, nothing sent); tells the
 * gate when Salesforce answered REQUEST_LIMIT_EXCEEDED. */
static int gated_call(sf_client *c, const char *method, const char *path, const char *body,
                      cJSON **out, cJSON **errbody, sf_error *err) {
    long wait = c->gate ? c->gate(c->gate_ud) : 0;
    if (wait > 0) {
        *out = NULL;
        if (errbody) *errbody = NULL;
        memset(err, 0, sizeof *err);
        err->outcome = SF_BUSY;
        err->retry_after_ms = wait;
        snprintf(err->code, sizeof err->code, "REQUEST_LIMIT_EXCEEDED");
        snprintf(err->message, sizeof err->message,
                 "the org's daily API allowance is spent; calls wait for room (next look in "
                 "%ld s)",
                 wait / 1000);
        return -1;
    }
    int rc = call(c, method, path, body, out, errbody, err);
    if (rc != 0 && err->outcome == SF_BUSY) {
        if (c->spent) c->spent(c->gate_ud);
        if (err->retry_after_ms < SPENT_WAIT_MS) err->retry_after_ms = SPENT_WAIT_MS;
    }
    return rc;
}

int sf_daily_requests(sf_client *c, long *max, long *remaining, sf_error *err) {
    cJSON *o = NULL;
    /* REST API guide, "Limits": DailyApiRequests {Max, Remaining}. */
    if (call(c, "GET", "limits", NULL, &o, NULL, err) != 0) return -1;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "DailyApiRequests");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(d, "Max");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(d, "Remaining");
    int rc = 0;
    if (cJSON_IsNumber(m) && cJSON_IsNumber(r)) {
        *max = (long)m->valuedouble;
        *remaining = (long)r->valuedouble;
    } else {
        sf_set_error(err, SF_RETRY, 200, "unexpected", "limits answered without DailyApiRequests");
        rc = -1;
    }
    cJSON_Delete(o);
    return rc;
}

int sf_call(sf_client *c, const char *method, const char *path, const char *body, cJSON **out,
            sf_error *err) {
    return gated_call(c, method, path, body, out, NULL, err);
}

int sf_query_pages(sf_client *c, const char *soql, sf_records_fn fn, void *ud, sf_error *err) {
    char *q = http_client_escape(c->http, soql);
    size_t plen = q ? strlen(q) + 16 : 0;
    char *path = q ? malloc(plen) : NULL;
    if (!path) {
        free(q);
        sf_set_error(err, SF_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    snprintf(path, plen, "query?q=%s", q);
    free(q);
    int guard = 0, rc = 0;
    while (path && rc == 0 && guard++ < 100000) {
        cJSON *page = NULL;
        if (sf_call(c, "GET", path, NULL, &page, err) != 0) {
            free(path);
            return -1;
        }
        free(path);
        path = NULL;
        /* REST API guide, "Query More Results": more records are at nextRecordsUrl. */
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(page, "nextRecordsUrl");
        if (cJSON_IsString(next)) path = strdup(next->valuestring);
        cJSON *recs = cJSON_DetachItemFromObjectCaseSensitive(page, "records");
        cJSON_Delete(page);
        rc = fn(ud, recs ? recs : cJSON_CreateArray());
    }
    free(path);
    return rc;
}

/* sf_query's page callback: moves the page's records to the array ud. */
static int collect_records(void *ud, cJSON *recs) {
    cJSON *all = ud, *r;
    while (recs && (r = cJSON_DetachItemFromArray(recs, 0)) != NULL)
        cJSON_AddItemToArray(all, r);
    cJSON_Delete(recs);
    return 0;
}

int sf_query(sf_client *c, const char *soql, cJSON **records, sf_error *err) {
    *records = cJSON_CreateArray();
    if (!*records) {
        sf_set_error(err, SF_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    return sf_query_pages(c, soql, collect_records, *records, err) == 0 ? 0 : -1;
}

/* A Collections call answers an array of SaveResults; anything else is retried. */
static int expect_results(int rc, cJSON **results, sf_error *err) {
    if (rc == 0 && !cJSON_IsArray(*results)) {
        cJSON_Delete(*results);
        *results = NULL;
        sf_set_error(err, SF_RETRY, 200, "unexpected",
                     "sObject Collections answered without a "
                     "result array");
        return -1;
    }
    return rc;
}

/* sObject Collections create (POST) or update (PATCH) of up to 200 records (a JSON array of
 * objects with attributes.type); *results is the array of SaveResults in request order. */
static int collection_save(sf_client *c, const char *method, const cJSON *records, cJSON **results,
                           sf_error *err) {
    *results = NULL;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddBoolToObject(req, "allOrNone", false);
    cJSON_AddItemToObject(req, "records", cJSON_Duplicate(records, true));
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (!body) {
        sf_set_error(err, SF_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    int rc = sf_call(c, method, "composite/sobjects", body, results, err);
    free(body);
    return expect_results(rc, results, err);
}

/* sObject Collections delete of up to 200 ids. */
static int collection_delete(sf_client *c, const char *const *ids, size_t n, cJSON **results,
                             sf_error *err) {
    *results = NULL;
    size_t len = 64 + n * 20;
    char *path = malloc(len);
    if (!path) {
        sf_set_error(err, SF_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    size_t off = (size_t)snprintf(path, len, "composite/sobjects?allOrNone=false&ids=");
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(path + off, len - off, "%s%s", i ? "," : "", ids[i]);
    int rc = sf_call(c, "DELETE", path, NULL, results, err);
    free(path);
    return expect_results(rc, results, err);
}

/* Creates one record (POST sobjects/<type>; record is a JSON object, attributes ignored).
 * *result is a SaveResult: {"id","success":true} or, when Salesforce refused the record
 * (HTTP 400), {"success":false,"errors":[...]} holding its error objects as sent (with
 * "statusCode" added from "errorCode"); the caller frees it. 0, or -1 with err when the call
 * itself failed (transport, token, 5xx, limits). */
static int create_record(sf_client *c, const char *type, const cJSON *record, cJSON **result,
                         sf_error *err) {
    *result = NULL;
    cJSON *rec = cJSON_Duplicate(record, true);
    cJSON_DeleteItemFromObjectCaseSensitive(rec, "attributes");
    char *body = rec ? cJSON_PrintUnformatted(rec) : NULL;
    cJSON_Delete(rec);
    char path[128];
    snprintf(path, sizeof path, "sobjects/%.100s", type);
    cJSON *out = NULL, *errbody = NULL;
    if (!body) {
        sf_set_error(err, SF_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    int rc = gated_call(c, "POST", path, body, &out, &errbody, err);
    free(body);
    if (rc == 0) {
        *result = out ? out : cJSON_CreateObject();
        return 0;
    }
    if (err->status != 400 || !cJSON_IsArray(errbody)) {
        cJSON_Delete(errbody);
        return -1;
    }
    /* The record itself was refused: the error array as a SaveResult's errors, with the
     * Collections key "statusCode" beside the REST key "errorCode". */
    cJSON *e;
    cJSON_ArrayForEach(e, errbody) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "errorCode");
        if (cJSON_IsString(code) && !cJSON_GetObjectItemCaseSensitive(e, "statusCode"))
            cJSON_AddStringToObject(e, "statusCode", code->valuestring);
    }
    *result = cJSON_CreateObject();
    cJSON_AddBoolToObject(*result, "success", false);
    cJSON_AddItemToObject(*result, "errors", errbody);
    return 0;
}

/* The duplicateResult of a DUPLICATES_DETECTED error object, under either spelling. */
static const cJSON *duplicate_result(const cJSON *e) {
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "statusCode");
    if (!cJSON_IsString(code)) code = cJSON_GetObjectItemCaseSensitive(e, "errorCode");
    if (!cJSON_IsString(code) || strcmp(code->valuestring, "DUPLICATES_DETECTED") != 0) return NULL;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "duplicateResult");
    return cJSON_IsObject(d) ? d : cJSON_GetObjectItemCaseSensitive(e, "duplicateResut");
}

bool sf_duplicate_match(const cJSON *result, char *id, size_t idlen) {
    char lead[19] = ""; /* an 18-character id */
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(result, "errors")) {
        const cJSON *mr;
        cJSON_ArrayForEach(mr,
                           cJSON_GetObjectItemCaseSensitive(duplicate_result(e), "matchResults")) {
            const cJSON *rec;
            cJSON_ArrayForEach(rec, cJSON_GetObjectItemCaseSensitive(mr, "matchRecords")) {
                const cJSON *rid = cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(rec, "record"), "Id");
                if (!cJSON_IsString(rid)) continue;
                size_t len = strlen(rid->valuestring);
                if ((len != 15 && len != 18) || len >= idlen) continue;
                /* Key prefixes: 003 Contact, 00Q Lead; other objects are not people. */
                if (strncmp(rid->valuestring, "003", 3) == 0) {
                    snprintf(id, idlen, "%s", rid->valuestring);
                    return true;
                }
                if (strncmp(rid->valuestring, "00Q", 3) == 0 && !lead[0])
                    snprintf(lead, sizeof lead, "%s", rid->valuestring);
            }
        }
    }
    if (!lead[0]) return false;
    snprintf(id, idlen, "%s", lead);
    return true;
}

/* ---------------------------------------------------------------- records */

/* The SaveResult statusCodes that say something about the record itself; any other refusal
 * is SF_REC_FAILED, retried when the code is transient. REST API Developer Guide, "Status
 * Codes and Error Responses"; SOAP API Developer Guide, "StatusCode". */
static const struct {
    const char *code;
    sf_record_outcome outcome;
} record_codes[] = {
    {"DUPLICATES_DETECTED", SF_REC_DUPLICATE_PERSON}, /* a duplicate rule matched a person */
    {"DUPLICATE_VALUE", SF_REC_EXISTS},               /* e.g. the person is a member already */
    /* A Status that is not one of the campaign's member statuses. */
    {"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", SF_REC_BAD_STATUS},
    {"INVALID_STATUS", SF_REC_BAD_STATUS},
    {"BAD_STATUS", SF_REC_BAD_STATUS},
    /* The record is gone (a delete's "already gone"). */
    {"ENTITY_IS_DELETED", SF_REC_GONE},
    {"NOT_FOUND", SF_REC_GONE},
    {"INVALID_CROSS_REFERENCE_KEY", SF_REC_GONE},
};

/* Transient per-record refusals: the same record may be saved when tried again. */
static const char *const retry_codes[] = {"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED",
                                          "SERVER_UNAVAILABLE",
                                          "ALL_OR_NONE_OPERATION_ROLLED_BACK"};

/* Classifies one SaveResult into out. `what` says which outcomes the call can have: a code
 * whose outcome does not apply to it (e.g. INVALID_CROSS_REFERENCE_KEY on a create, where it
 * names a missing campaign or person) is a plain refusal. */
static void record_of(const cJSON *result, unsigned what, sf_record *out) {
    memset(out, 0, sizeof *out);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "success"))) {
        out->outcome = SF_REC_OK;
        snprintf(out->id, sizeof out->id, "%s", sf_text(result, "id"));
        return;
    }
    const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(result, "errors"), 0);
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(e, "statusCode");
    if (!cJSON_IsString(sc)) sc = cJSON_GetObjectItemCaseSensitive(e, "errorCode");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    snprintf(out->code, sizeof out->code, "%s", cJSON_IsString(sc) ? sc->valuestring : "UNKNOWN");
    snprintf(out->message, sizeof out->message, "%s",
             cJSON_IsString(m) ? m->valuestring : "no message");
    metrics_add(M_CRM_ERRORS, 1, "salesforce", out->code);
    out->outcome = SF_REC_FAILED;
    out->failure = CRM_REFUSED;
    for (size_t i = 0; i < sizeof retry_codes / sizeof retry_codes[0]; i++)
        if (!strcmp(out->code, retry_codes[i])) out->failure = CRM_RETRY;
    for (size_t i = 0; i < sizeof record_codes / sizeof record_codes[0]; i++)
        if (!strcmp(out->code, record_codes[i].code) && (what & (1u << record_codes[i].outcome)))
            out->outcome = record_codes[i].outcome;
}

#define MAY(o) (1u << (o))

/* A failed call as the record's result (each record of the call failed with it). */
static void record_failed(const sf_error *e, sf_record *out) {
    memset(out, 0, sizeof *out);
    out->outcome = SF_REC_FAILED;
    out->failure = sf_failure(e);
    snprintf(out->code, sizeof out->code, "%s", e->code);
    snprintf(out->message, sizeof out->message, "%s", e->message);
}

/* The Lead for one person. FirstName may stay empty; LastName and Company are filled by the
 * caller (Object Reference for the Salesforce Platform, "Lead": both Required). */
static cJSON *lead_json(const sf_new_lead *l) {
    cJSON *r = cJSON_CreateObject();
    cJSON *a = cJSON_AddObjectToObject(r, "attributes");
    cJSON_AddStringToObject(a, "type", "Lead");
    cJSON_AddStringToObject(r, "Email", l->email);
    if (l->first_name && l->first_name[0]) cJSON_AddStringToObject(r, "FirstName", l->first_name);
    cJSON_AddStringToObject(r, "LastName", l->last_name);
    cJSON_AddStringToObject(r, "Company", l->company);
    return r;
}

/* A Lead creation refused with DUPLICATES_DETECTED: an active duplicate rule matched an
 * existing Lead or Contact, which is then the person (the error's duplicateResult names it;
 * Salesforce docs, "DuplicateError" / "MatchRecord"). When the Collections answer carries no
 * match details (its documented example has none), one single-record create asks again: a
 * REST error answer carries them, and the Lead is created if the rule no longer matches. */
static void resolve_duplicate(sf_client *c, const sf_new_lead *l, const cJSON *result,
                              sf_record *out) {
    char id[CRM_SFID_MAX] = "";
    if (sf_duplicate_match(result, id, sizeof id)) {
        snprintf(out->id, sizeof out->id, "%s", id);
        return;
    }
    cJSON *rec = lead_json(l), *single = NULL;
    sf_error e;
    int rc = create_record(c, "Lead", rec, &single, &e);
    cJSON_Delete(rec);
    if (rc != 0) {
        record_failed(&e, out);
    } else if (sf_duplicate_match(single, id, sizeof id)) {
        snprintf(out->id, sizeof out->id, "%s", id);
    } else {
        record_of(single, MAY(SF_REC_OK), out);
        if (out->outcome == SF_REC_OK && !out->id[0]) { /* created, but no id answered */
            out->outcome = SF_REC_FAILED;
            out->failure = CRM_REFUSED;
        }
    }
    cJSON_Delete(single);
}

int sf_create_leads(sf_client *c, const sf_new_lead *leads, size_t n, sf_record *out,
                    sf_error *err) {
    cJSON *recs = cJSON_CreateArray(), *res = NULL;
    for (size_t k = 0; recs && k < n; k++)
        cJSON_AddItemToArray(recs, lead_json(&leads[k]));
    if (!recs) {
        sf_set_error(err, SF_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    int rc = collection_save(c, "POST", recs, &res, err);
    cJSON_Delete(recs);
    for (size_t k = 0; rc == 0 && k < n; k++) {
        const cJSON *r = cJSON_GetArrayItem(res, (int)k);
        record_of(r, MAY(SF_REC_OK) | MAY(SF_REC_DUPLICATE_PERSON), &out[k]);
        if (out[k].outcome == SF_REC_OK && !out[k].id[0]) {
            out[k].outcome = SF_REC_FAILED; /* success without an id: not usable */
            out[k].failure = CRM_REFUSED;
        }
        if (out[k].outcome == SF_REC_DUPLICATE_PERSON) resolve_duplicate(c, &leads[k], r, &out[k]);
    }
    cJSON_Delete(res);
    return rc;
}

/* A Contact's id starts with 003 (key prefix); anything else here is a Lead's. */
static bool is_contact(const char *id) {
    return strncmp(id, "003", 3) == 0;
}

static cJSON *member_json(const sf_member_write *w, bool create) {
    cJSON *r = cJSON_CreateObject();
    cJSON *a = cJSON_AddObjectToObject(r, "attributes");
    cJSON_AddStringToObject(a, "type", "CampaignMember");
    if (create) {
        cJSON_AddStringToObject(r, "CampaignId", w->campaign_id);
        cJSON_AddStringToObject(r, is_contact(w->person_id) ? "ContactId" : "LeadId", w->person_id);
    } else {
        cJSON_AddStringToObject(r, "id", w->member_id);
    }
    if (w->status && w->status[0]) cJSON_AddStringToObject(r, "Status", w->status);
    return r;
}

int sf_save_members(sf_client *c, bool create, const sf_member_write *w, size_t n, sf_record *out,
                    sf_error *err) {
    cJSON *recs = cJSON_CreateArray(), *res = NULL;
    for (size_t k = 0; recs && k < n; k++)
        cJSON_AddItemToArray(recs, member_json(&w[k], create));
    if (!recs) {
        sf_set_error(err, SF_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    int rc = collection_save(c, create ? "POST" : "PATCH", recs, &res, err);
    cJSON_Delete(recs);
    unsigned may = MAY(SF_REC_OK) | MAY(SF_REC_BAD_STATUS) | (create ? MAY(SF_REC_EXISTS) : 0);
    for (size_t k = 0; rc == 0 && k < n; k++)
        record_of(cJSON_GetArrayItem(res, (int)k), may, &out[k]);
    cJSON_Delete(res);
    return rc;
}

int sf_delete_records(sf_client *c, const char *const *ids, size_t n, sf_record *out,
                      sf_error *err) {
    cJSON *res = NULL;
    int rc = collection_delete(c, ids, n, &res, err);
    for (size_t k = 0; rc == 0 && k < n; k++)
        record_of(cJSON_GetArrayItem(res, (int)k), MAY(SF_REC_OK) | MAY(SF_REC_GONE), &out[k]);
    cJSON_Delete(res);
    return rc;
}

int sf_update_campaign(sf_client *c, const char *campaign_id, const char *type, double cost,
                       sf_error *err) {
    cJSON *body = cJSON_CreateObject();
    if (type[0]) cJSON_AddStringToObject(body, "Type", type);
    cJSON_AddNumberToObject(body, "ActualCost", cost);
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!text) {
        sf_set_error(err, SF_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    char path[128];
    snprintf(path, sizeof path, "sobjects/Campaign/%s", campaign_id);
    cJSON *out = NULL;
    int rc = sf_call(c, "PATCH", path, text, &out, err);
    free(text);
    cJSON_Delete(out);
    return rc;
}

int sf_object_rights(sf_client *c, const char *object, sf_rights *out, sf_error *err) {
    char path[96];
    snprintf(path, sizeof path, "sobjects/%s/describe", object);
    cJSON *d = NULL;
    memset(out, 0, sizeof *out);
    if (sf_call(c, "GET", path, NULL, &d, err) != 0) return -1;
    out->queryable = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "queryable"));
    out->createable = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "createable"));
    out->updateable = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "updateable"));
    cJSON_Delete(d);
    return 0;
}

/* A time as getDeleted's start and end parameters take it, percent-encoded. */
static void deleted_param(int64_t ms, char *buf, size_t size) {
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(buf, size, "%Y-%m-%dT%H%%3A%M%%3A%S%%2B00%%3A00", &tm);
}

void sf_deleted_free(sf_deleted *d) {
    free(d->records);
    d->records = NULL;
    d->n = 0;
}

/* REST API Developer Guide, "sObject Get Deleted": GET sobjects/<type>/deleted/?start=&end=
 * answers deletedRecords [{id, deletedDate}], earliestDateAvailable and latestDateCovered. */
int sf_deleted_members(sf_client *c, int64_t start_ms, int64_t end_ms, sf_deleted *out,
                       sf_error *err) {
    char path[256], s[80], e[80];
    memset(out, 0, sizeof *out);
    deleted_param(start_ms, s, sizeof s);
    deleted_param(end_ms, e, sizeof e);
    snprintf(path, sizeof path, "sobjects/CampaignMember/deleted/?start=%s&end=%s", s, e);
    cJSON *res = NULL;
    if (sf_call(c, "GET", path, NULL, &res, err) != 0) return -1;
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(res, "deletedRecords"), *r;
    int count = cJSON_GetArraySize(recs);
    out->records = calloc(count > 0 ? (size_t)count : 1, sizeof *out->records);
    if (!out->records) {
        cJSON_Delete(res);
        sf_set_error(err, SF_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    cJSON_ArrayForEach(r, recs) {
        sf_deleted_record *d = &out->records[out->n];
        if (strlen(sf_text(r, "id")) >= sizeof d->id ||
            strlen(sf_text(r, "deletedDate")) >= sizeof d->deleted_date)
            continue; /* not an id, not a date: nothing the service wrote */
        snprintf(d->id, sizeof d->id, "%s", sf_text(r, "id"));
        snprintf(d->deleted_date, sizeof d->deleted_date, "%s", sf_text(r, "deletedDate"));
        if (d->id[0] && d->deleted_date[0]) out->n++;
    }
    snprintf(out->earliest, sizeof out->earliest, "%.63s", sf_text(res, "earliestDateAvailable"));
    snprintf(out->latest, sizeof out->latest, "%.63s", sf_text(res, "latestDateCovered"));
    cJSON_Delete(res);
    return 0;
}

const char *sf_text(const cJSON *record, const char *field) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(record, field);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* ---------------------------------------------------------------- streamed GET */

/* The failure of an answered call, as call() classifies it. */
static void answer_failed(sf_error *err, long st, const char *body, size_t len) {
    cJSON *o = len ? cJSON_ParseWithLength(body, len) : NULL;
    char code[64] = "", msg[512] = "";
    first_error(o, code, sizeof code, msg, sizeof msg);
    cJSON_Delete(o);
    if (!msg[0]) snprintf(msg, sizeof msg, "HTTP %ld: %.300s", st, body);
    sf_outcome kind = SF_PERMANENT;
    if (st >= 500 || st == 401 || st == 429) kind = SF_RETRY;
    if (strcmp(code, "REQUEST_LIMIT_EXCEEDED") == 0) kind = SF_BUSY;
    if (!code[0]) snprintf(code, sizeof code, "HTTP_%ld", st);
    sf_set_error(err, kind, st, code, msg);
}

int sf_stream_get(sf_client *c, const char *path, http_data_fn on_data, http_header_fn on_header,
                  void *ud, sf_error *err) {
    memset(err, 0, sizeof *err);
    err->retry_after_ms = -1;
    long wait = c->gate ? c->gate(c->gate_ud) : 0;
    if (wait > 0) {
        err->retry_after_ms = wait;
        sf_set_error(err, SF_BUSY, 0, "REQUEST_LIMIT_EXCEEDED",
                     "the org's daily API allowance is spent; calls wait for room");
        return -1;
    }
    if (!c->token[0] && sf_authenticate(c, err) != 0) return -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t target = 0;
        char *url = request_url(c, path, &target), auth[1100];
        if (!url || target > SF_URI_MAX) {
            free(url);
            sf_set_error(err, SF_PERMANENT, 0, "internal", "the results URL cannot be built");
            return -1;
        }
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
        const char *hdr[] = {auth, "Accept: text/csv", NULL};
        http_result res;
        int rc = http_client_stream(c->http, url, hdr, on_data, on_header, ud, &res);
        free(url);
        if (res.limit_info[0]) export_limits(c->usage, res.limit_info);
        err->retry_after_ms = http_retry_after_ms(res.retry_after);
        long st = res.status;
        if (rc != 0)
            sf_set_error(err, SF_RETRY, 0,
                         strcmp(res.error, "aborted by the reader") == 0 ? "aborted"
                         : strstr(res.error, "imeout")                   ? "timeout"
                                                                         : "network",
                         res.error);
        else if (st == 401 && attempt == 0) {
            /* Expired or revoked token: fetch a new one and retry at once, once. */
            http_result_free(&res);
            c->token[0] = '\0';
            if (sf_authenticate(c, err) != 0) return -1;
            continue;
        } else if (st >= 300)
            answer_failed(err, st, res.body, res.len);
        http_result_free(&res);
        if (rc == 0 && st < 300) return 0;
        if (err->outcome == SF_BUSY && c->spent) c->spent(c->gate_ud);
        return -1;
    }
    return -1;
}
