/* salesforce — OAuth, REST calls, SOQL and Collections. See include/salesforce.h. */
#include "salesforce.h"

#include "http_client.h"
#include "log.h"
#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL_MAX 16384

struct sf_client {
    http_client *http;
    char login_url[512];
    char client_id[256];
    char client_secret[256];
    char version[16];
    char token[1024];
    char instance[512];
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

int sf_call(sf_client *c, const char *method, const char *path, const char *body, cJSON **out,
            sf_error *err) {
    *out = NULL;
    memset(err, 0, sizeof *err);
    err->retry_after_ms = -1;
    if (!c->token[0] && sf_authenticate(c, err) != 0) return -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        char *url = malloc(URL_MAX);
        char auth[1100];
        if (!url) {
            set_err(err, SF_RETRY, 0, "internal", "out of memory");
            return -1;
        }
        if (strncmp(path, "/services/", 10) == 0)
            snprintf(url, URL_MAX, "%s%s", c->instance, path);
        else
            snprintf(url, URL_MAX, "%s/services/data/%s/%s", c->instance, c->version, path);
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
        cJSON_Delete(o);
        if (st == 401 && attempt == 0) {
            /* Expired or revoked token: fetch a new one and retry at once, once. */
            c->token[0] = '\0';
            if (sf_authenticate(c, err) != 0) return -1;
            continue;
        }
        sf_outcome kind = SF_PERMANENT;
        if (st >= 500 || st == 401 || st == 429 || strcmp(code, "REQUEST_LIMIT_EXCEEDED") == 0 ||
            strcmp(code, "UNABLE_TO_LOCK_ROW") == 0 || strcmp(code, "SERVER_UNAVAILABLE") == 0)
            kind = SF_RETRY;
        if (!code[0]) snprintf(code, sizeof code, "HTTP_%ld", st);
        set_err(err, kind, st, code, msg);
        return -1;
    }
    return -1;
}

void sf_soql_quote(char *buf, size_t size, const char *s) {
    size_t n = strlen(buf);
    if (n + 1 < size) buf[n++] = '\'';
    for (; *s && n + 3 < size; s++) {
        if (*s == '\'' || *s == '\\') buf[n++] = '\\';
        buf[n++] = *s;
    }
    if (n + 1 < size) buf[n++] = '\'';
    buf[n] = '\0';
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
