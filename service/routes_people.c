/* routes_people — a person's trace and resync. See include/routes_people.h. */
#include "routes_people.h"

#include "routes_admin.h"

#include "crm.h"
#include "event.h"
#include "log.h"
#include "resync.h"
#include "secure.h"
#include "store.h"
#include "store_trace.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LIMIT_DEFAULT 100
#define LIMIT_MAX     1000
#define EMAIL_MAX     254 /* RFC 5321's longest path less its brackets */
#define LEAD_ID_MAX   20
#define REDIS_PING_MS 500

/* This thread's Redis handle, once Redis answers (before the parameters are judged, as every
 * admin endpoint answers 503 first while Redis is away); NULL after answering. */
static store *redis_or_503(http_request *req, const void *ud) {
    store *st = store_pool_get(((const routes_ctx *)ud)->stores);
    char err[STORE_ERR_MAX];
    if (!st) {
        http_reply_error(req, 503, "unavailable", "out of memory");
        return NULL;
    }
    if (store_ping(st, REDIS_PING_MS, err, sizeof err) != 0) {
        http_reply_error(req, 503, "unavailable", "Redis is unavailable: %s", err);
        return NULL;
    }
    return st;
}

static void reply_json(http_request *req, int status, cJSON *o) {
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s) {
        http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    http_reply_owned(req, status, "application/json", s, strlen(s));
}

static bool valid_email(const char *v) {
    size_t n = v ? strlen(v) : 0;
    return n > 0 && n <= EMAIL_MAX && event_text_ok(v) && !strpbrk(v, "\t\r\n");
}

/* ?email= (required); false after answering 400. */
static bool read_email(http_request *req, const char **email) {
    *email = http_req_query(req, "email");
    if (valid_email(*email)) return true;
    http_reply_error(req, 400, "invalid_parameter",
                     "email must be the person's email address (1 to %d characters of text)",
                     EMAIL_MAX);
    return false;
}

/* Exactly one of ?email=, ?marketoLeadId=, ?salesforceId=; false after answering 400. */
static bool read_person(http_request *req, store_trace_by *by, const char **value) {
    const char *email = http_req_query(req, "email");
    const char *lead = http_req_query(req, "marketoLeadId");
    const char *sf = http_req_query(req, "salesforceId");
    int given = (email != NULL) + (lead != NULL) + (sf != NULL);
    if (given != 1) {
        http_reply_error(req, 400, "invalid_parameter",
                         "name the person with exactly one of email, marketoLeadId or "
                         "salesforceId");
        return false;
    }
    if (email) {
        *by = STORE_TRACE_BY_EMAIL;
        *value = email;
        return read_email(req, value);
    }
    if (lead) {
        size_t n = strlen(lead);
        if (n == 0 || n > LEAD_ID_MAX || strspn(lead, "0123456789") != n) {
            http_reply_error(req, 400, "invalid_parameter",
                             "marketoLeadId must be a Marketo lead id (digits)");
            return false;
        }
        *by = STORE_TRACE_BY_MKTO;
        *value = lead;
        return true;
    }
    /* A Lead (00Q) or a Contact (003), in its 15- or 18-character form. */
    if (!event_valid_sfid(sf) || (strncmp(sf, "00Q", 3) != 0 && strncmp(sf, "003", 3) != 0)) {
        http_reply_error(req, 400, "invalid_parameter",
                         "salesforceId must be a Salesforce Lead (00Q...) or Contact (003...) id "
                         "of 15 or 18 characters");
        return false;
    }
    *by = STORE_TRACE_BY_SF;
    *value = sf;
    return true;
}

static bool read_limit(http_request *req, long *limit) {
    const char *l = http_req_query(req, "limit");
    *limit = LIMIT_DEFAULT;
    if (!l) return true;
    char *end;
    long v = strtol(l, &end, 10);
    if (!*l || *end || v < 1 || v > LIMIT_MAX) {
        http_reply_error(req, 400, "invalid_parameter", "limit must be an integer from 1 to %d",
                         LIMIT_MAX);
        return false;
    }
    *limit = v;
    return true;
}

/* Adds s to the array unless it is there (ids compared on their first 15 characters). */
static void add_unique(cJSON *arr, const char *s, size_t cmp) {
    const cJSON *v;
    if (!s || !*s) return;
    cJSON_ArrayForEach(v, arr) if (strncmp(v->valuestring, s, cmp) == 0) return;
    cJSON_AddItemToArray(arr, cJSON_CreateString(s));
}

/* {"email", "marketoLeadIds", "salesforceIds"}: who the entries say the person is. */
static cJSON *person_of(const cJSON *items, store_trace_by by, const char *value) {
    cJSON *p = cJSON_CreateObject();
    cJSON *emails = cJSON_CreateArray(), *leads = cJSON_CreateArray(), *sf = cJSON_CreateArray();
    if (by == STORE_TRACE_BY_MKTO) add_unique(leads, value, 64);
    if (by == STORE_TRACE_BY_SF) add_unique(sf, value, 15);
    const cJSON *it;
    cJSON_ArrayForEach(it, items) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(it, "email");
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(it, "marketoLeadId");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(it, "salesforceId");
        if (cJSON_IsString(e) && !cJSON_GetArraySize(emails))
            add_unique(emails, e->valuestring, 256);
        if (cJSON_IsString(l)) add_unique(leads, l->valuestring, 64);
        if (cJSON_IsString(s)) add_unique(sf, s->valuestring, 15);
    }
    const cJSON *first = cJSON_GetArrayItem(emails, 0);
    if (by == STORE_TRACE_BY_EMAIL)
        cJSON_AddStringToObject(p, "email", value);
    else if (first)
        cJSON_AddStringToObject(p, "email", first->valuestring);
    else
        cJSON_AddNullToObject(p, "email");
    cJSON_Delete(emails);
    cJSON_AddItemToObject(p, "marketoLeadIds", leads);
    cJSON_AddItemToObject(p, "salesforceIds", sf);
    return p;
}

static void get_person(http_request *req, void *ud) {
    const struct config *cfg = routes_config(ud);
    store_trace_by by;
    const char *value;
    long limit;
    store *st;
    if (!(st = redis_or_503(req, ud)) || !read_person(req, &by, &value) || !read_limit(req, &limit))
        return;
    char err[STORE_ERR_MAX];
    int64_t since = event_now_ms() - cfg->trace_retention_days * 86400000LL;
    char *js = cfg->trace_retention_days > 0
                   ? store_trace_read(st, by, value, limit, since, err, sizeof err)
                   : strdup("[]");
    if (!js) {
        http_reply_error(req, 503, "unavailable", "Redis is unavailable: %s", err);
        return;
    }
    cJSON *items = cJSON_Parse(js);
    free(js);
    if (!items) items = cJSON_CreateArray();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "person", person_of(items, by, value));
    cJSON_AddNumberToObject(o, "retentionDays", cfg->trace_retention_days);
    cJSON_AddItemToObject(o, "items", items);
    cJSON_AddNullToObject(o, "next"); /* a person's trace is bounded: one page holds it */
    reply_json(req, 200, o);
}

static void resync(http_request *req, void *ud) {
    const struct config *cfg = routes_config(ud);
    const char *email;
    store *st;
    char missing[200], err[STORE_ERR_MAX * 2];
    if (!(st = redis_or_503(req, ud)) || !read_email(req, &email)) return;
    if (!crm_configured(cfg, missing, sizeof missing)) {
        http_reply_error(req, 503, "crm_not_configured",
                         "this process has no CRM credentials: set %s", missing);
        return;
    }
    crm *c = crm_pool_get(((const routes_ctx *)ud)->crms);
    if (!c) {
        http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    bool not_found = false;
    char *report = resync_person(c, st, email, &not_found, err, sizeof err);
    if (!report && not_found) {
        http_reply_error(req, 404, "not_found", "%s", err);
        return;
    }
    if (!report) {
        http_reply_error(req, 503, "crm_unavailable", "%s", err);
        return;
    }
    http_reply_owned(req, 202, "application/json", report, strlen(report));
}

size_t routes_people(http_route *out, size_t max, const routes_ctx *ctx) {
    void *ud = (void *)ctx;
    const http_route r[] = {
        /* The admin API's token, checked before any of the body is read. */
        {"GET", "/v1/people", get_person, ud, NULL, routes_admin_authorize, ROUTES_ADMIN_MAX_BODY},
        {"POST", "/v1/people/resync", resync, ud, NULL, routes_admin_authorize,
         ROUTES_ADMIN_MAX_BODY},
    };
    size_t n = sizeof r / sizeof r[0];
    if (n > max) n = max;
    memcpy(out, r, sizeof r[0] * n);
    return n;
}
