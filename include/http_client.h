/* http_client — outbound HTTP to the CRMs over libcurl (the only module that includes curl).
 *
 * Owns one curl easy handle per client, so connections are reused; a client is used by one
 * thread at a time. Every request has a total timeout and a ceiling on the answer's size,
 * records campaign_sync_crm_requests_total{target,code} and _request_seconds{target}, and
 * keeps the headers callers need (Retry-After, Sforce-Limit-Info). A transport failure
 * (refused, reset, timeout, answer too large) is status 0 with curl's own sentence. */
#ifndef CS_HTTP_CLIENT_H
#define CS_HTTP_CLIENT_H

#include <stddef.h>

#define HTTP_CLIENT_MAX_BODY (32u * 1024 * 1024)

typedef struct http_client http_client;

typedef struct {
    long status; /* HTTP status; 0 when no answer came */
    char *body;  /* NUL-terminated, malloc'd (may be empty) */
    size_t len;
    char retry_after[64]; /* Retry-After header, if any */
    char limit_info[256]; /* Sforce-Limit-Info header, if any */
    char error[256];      /* transport failure sentence when status == 0 */
    double seconds;
} http_result;

/* Calls curl_global_init once; call from main before threads start. 0, or -1 when libcurl
 * cannot be set up (then call http_client_global_cleanup all the same). */
int http_client_global_init(void);
void http_client_global_cleanup(void);

/* target: metrics label ("salesforce", "marketo"); timeout_ms per request. */
http_client *http_client_new(const char *target, long timeout_ms);
void http_client_free(http_client *c);

/* Performs one request. headers: NULL-terminated "Name: value" list (may be NULL). body may
 * be NULL. Returns 0 when an HTTP answer arrived (any status), -1 on a transport failure;
 * out is filled either way and must be released with http_result_free. */
int http_client_request(http_client *c, const char *method, const char *url,
                        const char *const *headers, const char *body, size_t len, http_result *out);
void http_result_free(http_result *r);

/* Percent-encodes s for a URL query or form value; caller frees. */
char *http_client_escape(http_client *c, const char *s);

/* Milliseconds a Retry-After value asks for (seconds or an HTTP date); -1 when absent. */
long http_retry_after_ms(const char *value);

/* Skips the TLS peer and host name checks: only for the health check of this very process on
 * loopback (its certificate names the public host, not 127.0.0.1; nothing secret is sent). */
void http_client_trust_loopback(http_client *c);

/* A streamed GET (Salesforce Bulk API 2.0 results): a 2xx answer's body goes to on_data as it
 * arrives, nothing of it is kept (on_data returns n to go on, anything else aborts the
 * transfer: -1 with out->error "aborted by the reader"); another answer's body is kept in
 * out->body as http_client_request keeps it. on_header sees every header line as libcurl
 * hands it (with its CRLF). Retry-After and Sforce-Limit-Info are kept in out as usual. */
typedef size_t (*http_data_fn)(void *ud, const char *data, size_t n);
typedef void (*http_header_fn)(void *ud, const char *line, size_t n);
int http_client_stream(http_client *c, const char *url, const char *const *headers,
                       http_data_fn on_data, http_header_fn on_header, void *ud, http_result *out);

#endif
