/* marketo — identity token, envelope, paging and error classification. See include/marketo.h;
 * the typed calls are in marketo_calls.c. */
#include "marketo.h"

#include "marketo_priv.h"

#include "event.h"
#include "http_client.h"
#include "log.h"
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Marketo answers 414 to a URI over 8 KB; a longer query goes as POST with _method=GET and
 * the query string as a form body (Adobe developer docs, "Leads", Query section). */
#define URI_MAX     8192
#define GET_URL_MAX 7168 /* a GET whose URL would pass this goes as POST _method=GET */
#define QUERY_PAGES 10   /* pages of one lookup (each up to 300 records) before giving up */

struct mkto_client {
    http_client *http;
    char base[512];
    char client_id[256];
    char client_secret[256];
    char token[512];
    mk_acquire_fn acquire;
    mk_release_fn release;
    void *limiter;
    mk_gate_fn gate;
    mk_quota_fn spent;
    void *quota_ud;
};

mkto_client *mkto_client_new(const struct config *cfg) {
    mkto_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->http = http_client_new("marketo", cfg->crm_timeout_ms);
    if (!c->http) {
        free(c);
        return NULL;
    }
    snprintf(c->base, sizeof c->base, "%s", cfg->marketo_base_url ? cfg->marketo_base_url : "");
    size_t n = strlen(c->base);
    while (n && c->base[n - 1] == '/')
        c->base[--n] = '\0';
    snprintf(c->client_id, sizeof c->client_id, "%s",
             cfg->marketo_client_id ? cfg->marketo_client_id : "");
    snprintf(c->client_secret, sizeof c->client_secret, "%s",
             cfg->marketo_client_secret ? cfg->marketo_client_secret : "");
    return c;
}

void mkto_client_free(mkto_client *c) {
    if (!c) return;
    http_client_free(c->http);
    free(c);
}

void mkto_client_set_limiter(mkto_client *c, mk_acquire_fn acquire, mk_release_fn release,
                             void *ud) {
    c->acquire = acquire;
    c->release = release;
    c->limiter = ud;
}

void mkto_client_set_quota(mkto_client *c, mk_gate_fn gate, mk_quota_fn spent, void *ud) {
    c->gate = gate;
    c->spent = spent;
    c->quota_ud = ud;
}

crm_failure mkto_failure(const mk_error *e) {
    switch (e->outcome) {
    case MK_RETRY: return CRM_RETRY;
    /* Adobe "Error Codes": 607 "Daily quota reached" waits for the reset; any other busy
     * answer is the shared budget's, which had no permit in time. */
    case MK_BUSY: return strcmp(e->code, "607") == 0 ? CRM_SPENT : CRM_NO_PERMIT;
    case MK_OK:
    case MK_PERMANENT: return CRM_REFUSED;
    }
    return CRM_REFUSED;
}

/* Adobe "Error Codes": 1025 "Program status not found". */
bool mkto_unknown_status(const mk_error *e) {
    return strcmp(e->code, "1025") == 0;
}

/* Adobe "Program Members", Query: a filter other than leadId fails with 1003 when the program
 * has more than 100,000 members; the bulk program member extract serves those. */
bool mkto_members_too_many(const mk_error *e) {
    return strcmp(e->code, "1003") == 0;
}

mk_outcome mkto_classify(const char *code) {
    /* Adobe "Error Codes": 607 "Daily quota reached" is a wait, not a failure. */
    if (strcmp(code, "607") == 0) return MK_BUSY;
    static const char *const retry[] = {"502", "604", "606", "608", "611",
                                        "614", "615", "713", "719"};
    for (size_t i = 0; i < sizeof retry / sizeof retry[0]; i++)
        if (strcmp(code, retry[i]) == 0) return MK_RETRY;
    return MK_PERMANENT;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian calendar). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* The year of a day since the epoch. */
static int64_t year_of_day(int64_t day) {
    int64_t z = day + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    return yoe + era * 400 + (mp >= 10);
}

/* The day (since the epoch) of the n-th Sunday of a month. */
static int64_t nth_sunday(int64_t y, int m, int n) {
    int64_t first = days_from_civil(y, m, 1);
    int64_t dow = ((first + 4) % 7 + 7) % 7; /* 1970-01-01 was a Thursday; 0 = Sunday */
    return first + (7 - dow) % 7 + 7 * (n - 1);
}

/* Whether US Central time is on daylight saving time at the midnight that starts local day
 * `day`: from the second Sunday of March to the first Sunday of November, both at 02:00
 * (US Energy Policy Act of 2005), so the midnight of a change day is still on the old side. */
static bool central_dst_at_midnight(int64_t day) {
    int64_t y = year_of_day(day);
    return day > nth_sunday(y, 3, 2) && day <= nth_sunday(y, 11, 1);
}

int64_t mkto_quota_reset_ms(int64_t now_ms) {
    /* Adobe "Error Codes", 607: the daily quota resets at 12:00 AM US Central time. */
    const int64_t day_ms = 86400000, hour_ms = 3600000;
    for (int64_t day = (now_ms - 6 * hour_ms) / day_ms;; day++) {
        int64_t behind = central_dst_at_midnight(day + 1) ? 5 : 6; /* hours behind UTC */
        int64_t midnight = (day + 1) * day_ms + behind * hour_ms;
        if (midnight > now_ms) return midnight;
    }
}

void mk_set_error(mk_error *e, mk_outcome o, long status, const char *code, const char *msg) {
    e->outcome = o;
    e->status = status;
    snprintf(e->code, sizeof e->code, "%s", code);
    snprintf(e->message, sizeof e->message, "%s", msg);
    if (o != MK_OK) metrics_add(M_CRM_ERRORS, 1, "marketo", e->code);
}

/* 607: nothing more can be done today; every process waits for the reset (the hook). */
static void quota_spent(mkto_client *c, mk_error *err) {
    int64_t now = event_now_ms(), reset = mkto_quota_reset_ms(now);
    err->retry_after_ms = (long)(reset - now);
    snprintf(err->message, sizeof err->message,
             "Marketo's daily API quota is spent (607); calls resume after its reset at "
             "midnight US Central time, in %ld min",
             err->retry_after_ms / 60000);
    if (c->spent) c->spent(c->quota_ud, reset);
}

int mkto_authenticate(mkto_client *c, mk_error *err) {
    memset(err, 0, sizeof *err);
    err->retry_after_ms = -1;
    char *id = http_client_escape(c->http, c->client_id);
    char *secret = http_client_escape(c->http, c->client_secret);
    size_t ulen = strlen(c->base) + (id ? strlen(id) : 0) + (secret ? strlen(secret) : 0) + 96;
    char *url = malloc(ulen);
    int rc = -1;
    http_result res = {0};
    if (!id || !secret || !url) {
        mk_set_error(err, MK_RETRY, 0, "internal", "out of memory");
        goto out;
    }
    snprintf(url, ulen,
             "%s/identity/oauth/token?grant_type=client_credentials&client_id=%s&"
             "client_secret=%s",
             c->base, id, secret);
    const char *hdr[] = {"Accept: application/json", NULL};
    if (http_client_request(c->http, "GET", url, hdr, NULL, 0, &res) != 0) {
        mk_set_error(err, MK_RETRY, 0, "network", res.error);
        goto out;
    }
    cJSON *o = cJSON_ParseWithLength(res.body, res.len);
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(o, "access_token");
    if (res.status == 200 && cJSON_IsString(tok)) {
        snprintf(c->token, sizeof c->token, "%s", tok->valuestring);
        rc = 0;
    } else {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "error_description");
        char msg[300];
        snprintf(msg, sizeof msg, "Marketo refused the client credentials (HTTP %ld): %.200s",
                 res.status, cJSON_IsString(d) ? d->valuestring : res.body);
        mk_set_error(err, MK_RETRY, res.status, "auth", msg);
    }
    cJSON_Delete(o);
out:
    free(id);
    free(secret);
    free(url);
    http_result_free(&res);
    return rc;
}

/* One call under a budget permit: *o is the parsed answer of an HTTP 200 that is a JSON object
 * (the caller frees it). 0, or -1 with err (no permit, transport, HTTP status, not JSON). */
static int send_once(mkto_client *c, const char *method, const char *url, const char *body,
                     const char *content_type, cJSON **o, mk_error *err) {
    *o = NULL;
    int permit = c->acquire ? c->acquire(c->limiter) : 0;
    if (permit > 0) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "the shared Marketo call budget is spent; the next permit frees up in %d ms",
                 permit);
        mk_set_error(err, MK_BUSY, 0, "budget", msg);
        err->retry_after_ms = permit;
        return -1;
    }
    if (permit != 0) {
        mk_set_error(err, MK_RETRY, 0, "limiter",
                     "the shared Marketo call budget is unavailable (Redis unreachable)");
        return -1;
    }
    char auth[600], ctype[96];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
    snprintf(ctype, sizeof ctype, "Content-Type: %s", content_type);
    const char *hdr[] = {auth, "Accept: application/json", ctype, NULL};
    http_result res;
    int rc = http_client_request(c->http, method, url, hdr, body, body ? strlen(body) : 0, &res);
    if (c->release) c->release(c->limiter);
    if (rc != 0) {
        mk_set_error(err, MK_RETRY, 0, strstr(res.error, "imeout") ? "timeout" : "network",
                     res.error);
    } else if (res.status != 200) {
        char code[16], msg[400];
        snprintf(code, sizeof code, "HTTP_%ld", res.status);
        snprintf(msg, sizeof msg, "Marketo answered HTTP %ld: %.300s", res.status, res.body);
        long ra = http_retry_after_ms(res.retry_after);
        mk_set_error(err, res.status >= 500 || res.status == 429 ? MK_RETRY : MK_PERMANENT,
                     res.status, code, msg);
        err->retry_after_ms = ra;
    } else if (!cJSON_IsObject(*o = cJSON_ParseWithLength(res.body, res.len))) {
        cJSON_Delete(*o);
        *o = NULL;
        mk_set_error(err, MK_RETRY, 200, "unexpected",
                     "Marketo answered something that is not a JSON object");
    }
    http_result_free(&res);
    return *o ? 0 : -1;
}

/* The first error of an envelope with success:false (Adobe "Error Codes": errors arrive as
 * HTTP 200): its code as text ("unknown" when none) and its message. */
static void envelope_error(const cJSON *o, char *code, size_t clen, char *text, size_t tlen) {
    const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "errors"), 0);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (cJSON_IsString(c))
        snprintf(code, clen, "%s", c->valuestring);
    else if (cJSON_IsNumber(c))
        snprintf(code, clen, "%d", c->valueint);
    else
        snprintf(code, clen, "unknown");
    snprintf(text, tlen, "%.380s", cJSON_IsString(m) ? m->valuestring : "");
}

/* Before a call (JSON or file): a token when there is none, then the daily quota's gate. 0, or
 * -1 with err: the credentials refused, or the quota spent (code "607"; nothing was sent, so
 * it is not counted as a Marketo error). */
static int ready_to_send(mkto_client *c, mk_error *err) {
    if (!c->token[0] && mkto_authenticate(c, err) != 0) return -1;
    long wait = c->gate ? c->gate(c->quota_ud) : 0;
    if (wait <= 0) return 0;
    err->outcome = MK_BUSY;
    snprintf(err->code, sizeof err->code, "607");
    snprintf(err->message, sizeof err->message,
             "Marketo's daily API quota is spent; calls resume after its reset (in %ld min)",
             wait / 60000);
    err->retry_after_ms = wait;
    return -1;
}

/* What an error envelope o (success:false) means for a call (JSON or file) on its attempt-th
 * try (0 or 1): true when the token was invalid or expired (601/602) on the first try and a new
 * one is in hand, so the caller sends the same request again at once; false with err filled
 * otherwise (a 607 also starts the wait for the quota's reset). */
static bool send_again(mkto_client *c, const cJSON *o, int attempt, mk_error *err) {
    char cs[32], text[400];
    envelope_error(o, cs, sizeof cs, text, sizeof text);
    bool auth_again = strcmp(cs, "601") == 0 || strcmp(cs, "602") == 0;
    if (auth_again && attempt == 0) {
        /* Expired or invalid token (601/602): get a new one and retry at once, once. */
        metrics_add(M_CRM_ERRORS, 1, "marketo", cs);
        c->token[0] = '\0';
        return mkto_authenticate(c, err) == 0;
    }
    mk_set_error(err, auth_again ? MK_RETRY : mkto_classify(cs), 200, cs, text);
    if (strcmp(cs, "607") == 0) quota_spent(c, err);
    return false;
}

/* mkto_call with the body's content type. */
static int request(mkto_client *c, const char *method, const char *path, const char *body,
                   const char *content_type, cJSON **envelope, mk_error *err) {
    *envelope = NULL;
    memset(err, 0, sizeof *err);
    err->retry_after_ms = -1;
    size_t ulen = strlen(c->base) + strlen(path) + 1;
    if (ulen - 1 > URI_MAX) {
        /* Never cut a URL to fit: the values past the cut would look missing. */
        char msg[160];
        snprintf(msg, sizeof msg,
                 "the request URL would be %zu bytes, over Marketo's 8 KB limit; nothing "
                 "was sent",
                 ulen - 1);
        mk_set_error(err, MK_PERMANENT, 414, "URI_TOO_LONG", msg);
        return -1;
    }
    if (ready_to_send(c, err) != 0) return -1;
    char *url = malloc(ulen);
    if (!url) {
        mk_set_error(err, MK_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    snprintf(url, ulen, "%s%s", c->base, path);
    int rc = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        cJSON *o = NULL;
        if (send_once(c, method, url, body, content_type, &o, err) != 0) break;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "success"))) {
            *envelope = o;
            rc = 0;
            break;
        }
        bool again = send_again(c, o, attempt, err);
        cJSON_Delete(o);
        if (!again) break;
    }
    free(url);
    return rc;
}

int mkto_call(mkto_client *c, const char *method, const char *path, const char *body,
              cJSON **envelope, mk_error *err) {
    return request(c, method, path, body, "application/json", envelope, err);
}

/* "a,b,c" of up to n values, each URL-escaped, into a malloc'd string. */
char *mk_joined(mkto_client *c, const char *const *values, size_t n) {
    size_t cap = 64, len = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char *e = http_client_escape(c->http, values[i]);
        if (!e) {
            free(out);
            return NULL;
        }
        size_t el = strlen(e);
        if (len + el + 4 > cap) {
            while (len + el + 4 > cap)
                cap *= 2;
            char *nb = realloc(out, cap);
            if (!nb) {
                free(e);
                free(out);
                return NULL;
            }
            out = nb;
        }
        len += (size_t)sprintf(out + len, "%s%s", i ? "," : "", e);
        free(e);
    }
    return out;
}

/* printf into a malloc'd string; NULL when out of memory. */
char *mk_format(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *out = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!out) return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}

/* One page of GET path?query: as a GET while the URL stays within GET_URL_MAX, else as
 * POST path?_method=GET with the query as an application/x-www-form-urlencoded body. */
int mk_get_page(mkto_client *c, const char *path, const char *query, cJSON **envelope,
                mk_error *err) {
    bool as_post = strlen(c->base) + strlen(path) + 1 + strlen(query) > GET_URL_MAX;
    char *target = as_post ? mk_format("%s?_method=GET", path) : mk_format("%s?%s", path, query);
    if (!target) {
        mk_set_error(err, MK_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    int rc = as_post ? request(c, "POST", target, query, "application/x-www-form-urlencoded",
                               envelope, err)
                     : request(c, "GET", target, NULL, "application/json", envelope, err);
    free(target);
    return rc;
}

/* GET path?query and every further page (nextPageToken); *result holds the records of all
 * pages (caller frees). */
int mk_get_all(mkto_client *c, const char *path, const char *query, cJSON **result, mk_error *err) {
    *result = cJSON_CreateArray();
    char *q = strdup(query);
    int rc = *result && q ? 0 : -1;
    if (rc) mk_set_error(err, MK_RETRY, 0, "internal", "out of memory");
    for (int page = 0; rc == 0; page++) {
        cJSON *env = NULL;
        if (mk_get_page(c, path, q, &env, err) != 0) {
            rc = -1;
            break;
        }
        cJSON *recs = cJSON_DetachItemFromObjectCaseSensitive(env, "result");
        cJSON *r;
        while (recs && (r = cJSON_DetachItemFromArray(recs, 0)) != NULL)
            cJSON_AddItemToArray(*result, r);
        cJSON_Delete(recs);
        const cJSON *more = cJSON_GetObjectItemCaseSensitive(env, "moreResult");
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(env, "nextPageToken");
        char *tok = cJSON_IsTrue(more) && cJSON_IsString(next)
                        ? http_client_escape(c->http, next->valuestring)
                        : NULL;
        cJSON_Delete(env);
        if (!tok) break;
        if (page + 1 >= QUERY_PAGES) {
            free(tok);
            mk_set_error(err, MK_PERMANENT, 200, "too_many_pages",
                         "the lookup matched more records than campaign-sync reads in one call");
            rc = -1;
            break;
        }
        free(q);
        q = mk_format("%s&nextPageToken=%s", query, tok);
        free(tok);
        if (!q) {
            mk_set_error(err, MK_RETRY, 0, "internal", "out of memory");
            rc = -1;
        }
    }
    free(q);
    if (rc != 0) {
        cJSON_Delete(*result);
        *result = NULL;
    }
    return rc;
}

int mk_get_result(mkto_client *c, const char *path, cJSON **result, mk_error *err) {
    cJSON *env = NULL;
    if (mkto_call(c, "GET", path, NULL, &env, err) != 0) return -1;
    *result = cJSON_DetachItemFromObjectCaseSensitive(env, "result");
    if (!*result) *result = cJSON_CreateArray();
    cJSON_Delete(env);
    return 0;
}

/* POST with a JSON body; *result is the envelope's result array. */
int mk_post_result(mkto_client *c, const char *path, cJSON *body, cJSON **result, mk_error *err) {
    *result = NULL;
    char *text = cJSON_PrintUnformatted(body);
    if (!text) {
        mk_set_error(err, MK_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    cJSON *env = NULL;
    int rc = mkto_call(c, "POST", path, text, &env, err);
    free(text);
    if (rc != 0) return -1;
    *result = cJSON_DetachItemFromObjectCaseSensitive(env, "result");
    if (!*result) *result = cJSON_CreateArray();
    cJSON_Delete(env);
    return 0;
}

char *mk_escape(mkto_client *c, const char *s) {
    return http_client_escape(c->http, s);
}

/* One GET of a file's byte range under a budget permit: 0 with the raw answer of a 200 or
 * 206, else -1 with err (transport, another HTTP status, no permit). */
static int get_range_once(mkto_client *c, const char *url, long long first, long long last,
                          http_result *out, mk_error *err) {
    int permit = c->acquire ? c->acquire(c->limiter) : 0;
    if (permit != 0) {
        mk_set_error(err, permit > 0 ? MK_BUSY : MK_RETRY, 0, permit > 0 ? "budget" : "limiter",
                     permit > 0 ? "the shared Marketo call budget is spent"
                                : "the shared Marketo call budget is unavailable (Redis "
                                  "unreachable)");
        err->retry_after_ms = permit > 0 ? permit : -1;
        return -1;
    }
    char auth[600], range[80];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
    snprintf(range, sizeof range, "Range: bytes=%lld-%lld", first, last);
    /* Byte offsets are the file's own: no content coding that would shift them. */
    const char *hdr[] = {auth, range, "Accept-Encoding: identity", NULL};
    int rc = http_client_request(c->http, "GET", url, hdr, NULL, 0, out);
    if (c->release) c->release(c->limiter);
    if (rc != 0) {
        mk_set_error(err, MK_RETRY, 0, strstr(out->error, "imeout") ? "timeout" : "network",
                     out->error);
    } else if (out->status != 200 && out->status != 206) {
        char code[16], msg[400];
        snprintf(code, sizeof code, "HTTP_%ld", out->status);
        snprintf(msg, sizeof msg, "Marketo answered HTTP %ld: %.300s", out->status, out->body);
        mk_set_error(err, out->status >= 500 || out->status == 429 ? MK_RETRY : MK_PERMANENT,
                     out->status, code, msg);
        err->retry_after_ms = http_retry_after_ms(out->retry_after);
    } else {
        return 0;
    }
    http_result_free(out);
    return -1;
}

/* The error envelope a file's answer is in fact (a call refused before the file was read:
 * token, rate, quota), parsed (the caller frees it); NULL for the file itself. The file's CSV
 * is never a JSON object with success:false. */
static cJSON *error_envelope(const http_result *res) {
    if (res->len == 0 || res->body[0] != '{') return NULL;
    cJSON *o = cJSON_ParseWithLength(res->body, res->len);
    if (cJSON_IsObject(o) && cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "success")))
        return o;
    cJSON_Delete(o);
    return NULL;
}

/* A byte range of a bulk export's file (marketo_bulk.c). Adobe "Bulk Extract", Retrieving
 * Your Data: the file endpoints answer the file itself (not an envelope), 206 for a Range of
 * bytes, and 404 with a plaintext message for a bad id or a job not completed. */
int mk_get_file(mkto_client *c, const char *path, long long first, long long last, http_result *out,
                mk_error *err) {
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    err->retry_after_ms = -1;
    if (ready_to_send(c, err) != 0) return -1;
    char *url = mk_format("%s%s", c->base, path);
    if (!url) {
        mk_set_error(err, MK_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    int rc = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (get_range_once(c, url, first, last, out, err) != 0) break;
        cJSON *o = error_envelope(out);
        if (!o) {
            rc = 0;
            break;
        }
        http_result_free(out);
        bool again = send_again(c, o, attempt, err);
        cJSON_Delete(o);
        if (!again) break;
    }
    free(url);
    return rc;
}
