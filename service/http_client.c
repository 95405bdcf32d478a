/* http_client — libcurl wrapper with metrics. See include/http_client.h. */
#include "http_client.h"

#include "log.h"
#include "metrics.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct http_client {
    CURL *curl;
    char target[32];
    long timeout_ms;
    bool trust_loopback; /* http_client_trust_loopback */
};

typedef struct {
    http_result *out;
    size_t cap;
    bool too_big;
} sink;

int http_client_global_init(void) {
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}
void http_client_global_cleanup(void) {
    curl_global_cleanup();
}

http_client *http_client_new(const char *target, long timeout_ms) {
    http_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->curl = curl_easy_init();
    if (!c->curl) {
        free(c);
        return NULL;
    }
    snprintf(c->target, sizeof c->target, "%s", target);
    c->timeout_ms = timeout_ms;
    return c;
}

void http_client_free(http_client *c) {
    if (!c) return;
    curl_easy_cleanup(c->curl);
    free(c);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
    sink *s = ud;
    size_t n = size * nmemb;
    http_result *r = s->out;
    if (r->len + n > HTTP_CLIENT_MAX_BODY) {
        s->too_big = true;
        return 0; /* aborts the transfer */
    }
    if (r->len + n + 1 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 8192;
        while (ncap < r->len + n + 1)
            ncap *= 2;
        char *nb = realloc(r->body, ncap);
        if (!nb) return 0;
        r->body = nb;
        s->cap = ncap;
    }
    memcpy(r->body + r->len, ptr, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

/* Keeps the value of a header we care about, without its trailing CRLF. */
static void keep(const char *line, size_t n, const char *name, char *dst, size_t size) {
    size_t nl = strlen(name);
    if (n <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':') return;
    const char *v = line + nl + 1;
    const char *end = line + n;
    while (v < end && isspace((unsigned char)*v))
        v++;
    while (end > v && isspace((unsigned char)end[-1]))
        end--;
    size_t len = (size_t)(end - v) < size - 1 ? (size_t)(end - v) : size - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud) {
    http_result *r = ud;
    size_t n = size * nmemb;
    keep(line, n, "Retry-After", r->retry_after, sizeof r->retry_after);
    keep(line, n, "Sforce-Limit-Info", r->limit_info, sizeof r->limit_info);
    return n;
}

/* A fresh request on c's handle: the options every request shares. */
static void start(http_client *c, const char *url) {
    CURL *h = c->curl;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms < 5000 ? c->timeout_ms : 5000L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "campaign-sync");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->trust_loopback) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

/* Runs the request with headers hl (freed), timed and counted in the metrics; out->status and
 * out->error as http_client_request says. failure: the transport error's sentence when the
 * caller knows better than curl (an answer too large, a reader that stopped), else NULL. */
static CURLcode perform(http_client *c, struct curl_slist *hl, http_result *out,
                        const char *(*failure)(const void *), const void *ud) {
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CURLcode rc = curl_easy_perform(h);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    out->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    curl_slist_free_all(hl);
    if (!out->body) out->body = calloc(1, 1);
    char code[16];
    if (rc != CURLE_OK) {
        const char *why = failure(ud);
        snprintf(out->error, sizeof out->error, "%s", why ? why : curl_easy_strerror(rc));
        out->status = 0;
        snprintf(code, sizeof code, "%s", rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "error");
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
        snprintf(code, sizeof code, "%ld", out->status);
    }
    metrics_add(M_CRM_REQUESTS, 1, c->target, code);
    metrics_observe(M_CRM_SECONDS, out->seconds, c->target);
    return rc;
}

static const char *sink_failure(const void *ud) {
    const sink *s = ud;
    return s->too_big ? "the answer exceeded 32 MiB" : NULL;
}

int http_client_request(http_client *c, const char *method, const char *url,
                        const char *const *headers, const char *body, size_t len,
                        http_result *out) {
    memset(out, 0, sizeof *out);
    sink s = {out, 0, false};
    CURL *h = c->curl;
    start(c, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, out);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    struct curl_slist *hl = NULL;
    /* No "Expect: 100-continue" round trip on larger bodies. */
    hl = curl_slist_append(hl, "Expect:");
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    CURLcode rc = perform(c, hl, out, sink_failure, &s);
    if (log_enabled(LOG_DEBUG)) {
        char st[16];
        snprintf(st, sizeof st, "%ld", out->status);
        LOG_KV(LOG_DEBUG, "crm call", "target", c->target, "method", method, "status", st);
    }
    return rc == CURLE_OK ? 0 : -1;
}

void http_result_free(http_result *r) {
    if (!r) return;
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

char *http_client_escape(http_client *c, const char *s) {
    char *e = curl_easy_escape(c->curl, s, 0);
    char *copy = e ? strdup(e) : NULL;
    curl_free(e);
    return copy;
}

long http_retry_after_ms(const char *v) {
    if (!v || !*v) return -1;
    char *end;
    long secs = strtol(v, &end, 10);
    if (*end == '\0' && secs >= 0) return secs * 1000;
    time_t when = curl_getdate(v, NULL);
    if (when < 0) return -1;
    long ms = (long)(when - time(NULL)) * 1000;
    return ms > 0 ? ms : 0;
}

void http_client_trust_loopback(http_client *c) {
    c->trust_loopback = true;
}

/* ---------------------------------------------------------------- streamed answers */

typedef struct {
    CURL *curl;
    sink keep; /* an error answer's body */
    http_data_fn on_data;
    http_header_fn on_line;
    void *ud;
    bool aborted;
} stream;

static size_t on_stream_body(char *ptr, size_t size, size_t nmemb, void *ud) {
    stream *s = ud;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300) return on_body(ptr, size, nmemb, &s->keep);
    if (s->on_data(s->ud, ptr, n) == n) return n;
    s->aborted = true;
    return 0;
}

static size_t on_stream_header(char *line, size_t size, size_t nmemb, void *ud) {
    stream *s = ud;
    size_t n = on_header(line, size, nmemb, s->keep.out);
    if (s->on_line) s->on_line(s->ud, line, n);
    return n;
}

static const char *stream_failure(const void *ud) {
    const stream *s = ud;
    return s->aborted ? "aborted by the reader" : sink_failure(&s->keep);
}

int http_client_stream(http_client *c, const char *url, const char *const *headers,
                       http_data_fn on_data, http_header_fn on_line, void *ud, http_result *out) {
    memset(out, 0, sizeof *out);
    CURL *h = c->curl;
    stream s = {h, {out, 0, false}, on_data, on_line, ud, false};
    start(c, url);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_stream_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_stream_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &s);
    struct curl_slist *hl = NULL;
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    CURLcode rc = perform(c, hl, out, stream_failure, &s);
    return rc == CURLE_OK ? 0 : -1;
}
