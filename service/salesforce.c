/* salesforce — OAuth, REST calls, SOQL and Collections. See include/salesforce.h. */
#include "salesforce.h"

#include "http_client.h"
#include "log.h"
#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
};

sf_client *sf_client_new(const struct config *cfg) {
    sf_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
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

static void set_err(sf_error *e, sf_outcome o, long status, const char *code, const char *msg) {
    e->outcome = o;
    e->status = status;
    snprintf(e->code, sizeof e->code, "%s", code);
    snprintf(e->message, sizeof e->message, "%s", msg);
    if (o != SF_OK) metrics_add(M_CRM_ERRORS, 1, "salesforce", e->code);
}

/* The last usage share seen, in millionths (atomic: every worker thread's client sets it). */
static _Atomic long api_share_ppm;

double sf_api_usage_share(void) {
    return (double)atomic_load(&api_share_ppm) / 1e6;
}

/* Sforce-Limit-Info: api-usage=18/5000[; per-app-api-usage=...] */
static void export_limits(const char *v) {
    const char *p = strstr(v, "api-usage=");
    if (!p || (p > v && p[-1] == '-')) return; /* not "per-app-api-usage" */
    long used, limit;
    if (sscanf(p + 10, "%ld/%ld", &used, &limit) == 2) {
        metrics_set(M_SF_API_USAGE, (double)used, "used");
        metrics_set(M_SF_API_USAGE, (double)limit, "limit");
        if (limit > 0 && used >= 0)
            atomic_store(&api_share_ppm, used >= limit ? 1000000L : (long)(used * 1e6 / limit));
    }
}

int sf_authenticate(sf_client *c, sf_error *err) {
    char *id = http_client_escape(c->http, c->client_id);
    char *secret = http_client_escape(c->http, c->client_secret);
    char url[600], *body = NULL;
    int rc = -1;
    http_result res = {0};
    if (!id || !secret) {
        set_err(err, SF_RETRY, 0, "internal", "out of memory");
        goto out;
    }
    size_t blen = strlen(id) + strlen(secret) + 80;
    body = malloc(blen);
    if (!body) {
        set_err(err, SF_RETRY, 0, "internal", "out of memory");
        goto out;
    }
    snprintf(body, blen, "grant_type=client_credentials&client_id=%s&client_secret=%s", id, secret);
    snprintf(url, sizeof url, "%s/services/oauth2/token", c->login_url);
    const char *hdr[] = {"Content-Type: application/x-www-form-urlencoded",
                         "Accept: application/json", NULL};
    if (http_client_request(c->http, "POST", url, hdr, body, strlen(body), &res) != 0) {
        set_err(err, SF_RETRY, 0, "network", res.error);
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
        set_err(err, SF_RETRY, res.status, cJSON_IsString(e) ? e->valuestring : "auth", msg);
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
            set_err(err, SF_RETRY, 0, "internal", "out of memory");
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
            set_err(err, SF_PERMANENT, 414, "URI_TOO_LONG", msg);
            return -1;
        }
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
        const char *hdr[] = {auth, "Accept: application/json", "Content-Type: application/json",
                             NULL};
        http_result res;
        int rc =
            http_client_request(c->http, method, url, hdr, body, body ? strlen(body) : 0, &res);
        free(url);
        if (res.limit_info[0]) export_limits(res.limit_info);
        err->retry_after_ms = http_retry_after_ms(res.retry_after);
        if (rc != 0) {
            set_err(err, SF_RETRY, 0, strstr(res.error, "imeout") ? "timeout" : "network",
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
        set_err(err, kind, st, code, msg);
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
        set_err(err, SF_RETRY, 200, "unexpected", "limits answered without DailyApiRequests");
        rc = -1;
    }
    cJSON_Delete(o);
    return rc;
}

int sf_call(sf_client *c, const char *method, const char *path, const char *body, cJSON **out,
            sf_error *err) {
    return gated_call(c, method, path, body, out, NULL, err);
}

/* The escape sequence SOQL defines for a character, or NULL when it needs none. \b is left
 * out: the reference calls it "Bell" in English and backspace elsewhere; neither can be in a
 * Salesforce text value we look up. */
static const char *soql_escape(unsigned char ch) {
    switch (ch) {
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    case '\f': return "\\f";
    case '"': return "\\\"";
    case '\'': return "\\'";
    case '\\': return "\\\\";
    default: return NULL;
    }
}

long sf_soql_literal(char *out, size_t size, const char *s) {
    size_t n = 0;
    if (size < 3) return -1;
    out[n++] = '\'';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *esc = soql_escape(*p);
        if (!esc && (*p < 0x20 || *p == 0x7f)) return -1;
        size_t len = esc ? strlen(esc) : 1;
        if (n + len + 2 > size) return -1; /* room for the closing quote and the NUL */
        if (esc)
            memcpy(out + n, esc, len);
        else
            out[n] = (char)*p;
        n += len;
    }
    out[n++] = '\'';
    out[n] = '\0';
    return (long)n;
}

int sf_soql_quote(char *buf, size_t size, const char *s) {
    size_t used = strlen(buf);
    if (used >= size) return -1;
    long n = sf_soql_literal(buf + used, size - used, s);
    if (n < 0) {
        buf[used] = '\0';
        return -1;
    }
    return 0;
}

size_t sf_url_escaped_len(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        n += plain ? 1 : 3;
    }
    return n;
}

/* "/services/data/vNN.N/query?q=" with room for a longer version. */
#define QUERY_PREFIX_LEN 32

long sf_soql_in(const char *head, const char *tail, const char *const *values, size_t n, size_t max,
                char **soql) {
    *soql = NULL;
    static const char sep[] = ", ";
    size_t url = QUERY_PREFIX_LEN + sf_url_escaped_len(head) + sf_url_escaped_len(tail);
    size_t text = strlen(head) + strlen(tail);
    size_t sep_url = sf_url_escaped_len(sep);
    /* First pass: how many values fit, and how long the text is. */
    size_t k = 0;
    char lit[2 * 4096 + 3];
    for (; k < n && k < max; k++) {
        long len = sf_soql_literal(lit, sizeof lit, values[k]);
        if (len < 0) break;
        size_t add = sf_url_escaped_len(lit) + (k ? sep_url : 0);
        if (url + add > SF_QUERY_URI_BUDGET) break;
        url += add;
        text += (size_t)len + (k ? strlen(sep) : 0);
    }
    if (k == 0) return 0;
    char *out = malloc(text + 1);
    if (!out) return -1;
    size_t off = (size_t)sprintf(out, "%s", head);
    for (size_t i = 0; i < k; i++) {
        if (i) off += (size_t)sprintf(out + off, "%s", sep);
        off += (size_t)sf_soql_literal(out + off, text + 1 - off, values[i]);
    }
    sprintf(out + off, "%s", tail);
    *soql = out;
    return (long)k;
}

int sf_email_check(const char *email, char *why, size_t whylen) {
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)email; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            snprintf(why, whylen,
                     "it contains the control character U+%04X, which no Salesforce email "
                     "address can hold",
                     *p);
            return -1;
        }
        if ((*p & 0xC0) != 0x80) chars++; /* count UTF-8 characters, not bytes */
    }
    if (chars == 0) {
        snprintf(why, whylen, "it is empty");
        return -1;
    }
    if (chars > SF_EMAIL_MAX) {
        snprintf(why, whylen,
                 "it is %zu characters long and Salesforce's Email field holds at most %d", chars,
                 SF_EMAIL_MAX);
        return -1;
    }
    return 0;
}

int sf_query(sf_client *c, const char *soql, cJSON **records, sf_error *err) {
    *records = cJSON_CreateArray();
    char *q = http_client_escape(c->http, soql);
    if (!q || !*records) {
        free(q);
        set_err(err, SF_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    size_t plen = strlen(q) + 16;
    char *path = malloc(plen);
    if (!path) {
        free(q);
        set_err(err, SF_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    snprintf(path, plen, "query?q=%s", q);
    free(q);
    int guard = 0;
    while (path && guard++ < 10000) {
        cJSON *page = NULL;
        if (sf_call(c, "GET", path, NULL, &page, err) != 0) {
            free(path);
            return -1;
        }
        free(path);
        path = NULL;
        cJSON *recs = cJSON_DetachItemFromObjectCaseSensitive(page, "records");
        cJSON *r;
        while (recs && (r = cJSON_DetachItemFromArray(recs, 0)) != NULL)
            cJSON_AddItemToArray(*records, r);
        cJSON_Delete(recs);
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(page, "nextRecordsUrl");
        if (cJSON_IsString(next)) path = strdup(next->valuestring);
        cJSON_Delete(page);
    }
    free(path);
    return 0;
}

/* A Collections call answers an array of SaveResults; anything else is retried. */
static int expect_results(int rc, cJSON **results, sf_error *err) {
    if (rc == 0 && !cJSON_IsArray(*results)) {
        cJSON_Delete(*results);
        *results = NULL;
        set_err(err, SF_RETRY, 200, "unexpected",
                "sObject Collections answered without a "
                "result array");
        return -1;
    }
    return rc;
}

int sf_collection_save(sf_client *c, const char *method, const cJSON *records, cJSON **results,
                       sf_error *err) {
    *results = NULL;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddBoolToObject(req, "allOrNone", false);
    cJSON_AddItemToObject(req, "records", cJSON_Duplicate(records, true));
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (!body) {
        set_err(err, SF_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    int rc = sf_call(c, method, "composite/sobjects", body, results, err);
    free(body);
    return expect_results(rc, results, err);
}

int sf_collection_delete(sf_client *c, const char *const *ids, size_t n, cJSON **results,
                         sf_error *err) {
    *results = NULL;
    size_t len = 64 + n * 20;
    char *path = malloc(len);
    if (!path) {
        set_err(err, SF_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    size_t off = (size_t)snprintf(path, len, "composite/sobjects?allOrNone=false&ids=");
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(path + off, len - off, "%s%s", i ? "," : "", ids[i]);
    int rc = sf_call(c, "DELETE", path, NULL, results, err);
    free(path);
    return expect_results(rc, results, err);
}

int sf_create_record(sf_client *c, const char *type, const cJSON *record, cJSON **result,
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
        set_err(err, SF_RETRY, 0, "internal", "out of memory");
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

int sf_duplicate_match(const cJSON *result, char *id, size_t idlen) {
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
                    return 1;
                }
                if (strncmp(rid->valuestring, "00Q", 3) == 0 && !lead[0])
                    snprintf(lead, sizeof lead, "%s", rid->valuestring);
            }
        }
    }
    if (!lead[0]) return 0;
    snprintf(id, idlen, "%s", lead);
    return 1;
}

sf_outcome sf_save_result(const cJSON *result, char *code, size_t codelen, char *msg,
                          size_t msglen) {
    code[0] = msg[0] = '\0';
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "success"))) return SF_OK;
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(result, "errors");
    const cJSON *e = cJSON_GetArrayItem(errs, 0);
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(e, "statusCode");
    if (!cJSON_IsString(sc)) sc = cJSON_GetObjectItemCaseSensitive(e, "errorCode");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    snprintf(code, codelen, "%s", cJSON_IsString(sc) ? sc->valuestring : "UNKNOWN");
    snprintf(msg, msglen, "%s", cJSON_IsString(m) ? m->valuestring : "no message");
    metrics_add(M_CRM_ERRORS, 1, "salesforce", code);
    if (!strcmp(code, "UNABLE_TO_LOCK_ROW") || !strcmp(code, "REQUEST_LIMIT_EXCEEDED") ||
        !strcmp(code, "SERVER_UNAVAILABLE") || !strcmp(code, "ALL_OR_NONE_OPERATION_ROLLED_BACK"))
        return SF_RETRY;
    return SF_PERMANENT;
}

void sf_member_statuses_free(sf_member_status *s, size_t n) {
    for (size_t i = 0; s && i < n; i++)
        free(s[i].label);
    free(s);
}

/* A campaign's member statuses are its CampaignMemberStatus records (object reference,
 * sforce_api_objects_campaignmemberstatus.htm). */
int sf_campaign_statuses(sf_client *c, const char *const *campaign_ids, size_t ncampaigns,
                         sf_member_status **out, size_t *n, sf_error *err) {
    *out = NULL;
    *n = 0;
    if (ncampaigns == 0) return 0;
    if (ncampaigns > SF_STATUS_CAMPAIGNS_MAX) ncampaigns = SF_STATUS_CAMPAIGNS_MAX;
    size_t size = 160 + ncampaigns * 48; /* an id quoted and escaped takes at most 40 */
    char *soql = malloc(size);
    cJSON *recs = NULL;
    if (!soql) {
        set_err(err, SF_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    snprintf(soql, size,
             "SELECT CampaignId, Label FROM CampaignMemberStatus WHERE CampaignId IN (");
    for (size_t i = 0; i < ncampaigns; i++) {
        if (i) strcat(soql, ", ");
        sf_soql_quote(soql, size, campaign_ids[i]);
    }
    strcat(soql, ") ORDER BY SortOrder");
    int rc = sf_query(c, soql, &recs, err);
    free(soql);
    int count = rc == 0 ? cJSON_GetArraySize(recs) : 0;
    sf_member_status *s = calloc(count ? (size_t)count : 1, sizeof *s);
    if (rc == 0 && !s) {
        set_err(err, SF_RETRY, 0, "internal", "out of memory");
        rc = -1;
    }
    const cJSON *list = rc == 0 ? recs : NULL, *r;
    cJSON_ArrayForEach(r, list) {
        const cJSON *cid = cJSON_GetObjectItemCaseSensitive(r, "CampaignId");
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(r, "Label");
        if (!cJSON_IsString(cid) || !cJSON_IsString(label)) continue;
        s[*n].label = strdup(label->valuestring);
        if (!s[*n].label) {
            set_err(err, SF_RETRY, 0, "internal", "out of memory");
            rc = -1;
            break;
        }
        snprintf(s[*n].campaign_id, sizeof s[*n].campaign_id, "%s", cid->valuestring);
        (*n)++;
    }
    cJSON_Delete(recs);
    if (rc != 0) {
        sf_member_statuses_free(s, *n);
        *n = 0;
        return -1;
    }
    *out = s;
    return 0;
}
