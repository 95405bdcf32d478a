/* http_server — the libmicrohttpd daemon: route table, bounded request bodies, JSON or SOAP
 * error answers, per-route metrics and graceful shutdown.
 *
 * Owns every libmicrohttpd detail (no other module includes microhttpd.h). A route is a
 * method, a path template whose `{name}` segments become parameters, a handler, an error
 * renderer, an authorizer and a body cap: the server itself answers 404 (JSON), 405 and 413
 * (in the matched route's error format, so the Salesforce webhook answers them as SOAP
 * Faults) before a handler runs. The authorizer runs on the request's first callback, with
 * the request line and headers only: a request it refuses is answered before any byte of
 * its body is read (and its connection closed), so a stranger can neither make the server
 * buffer a body nor hold it while sending one; its 401s are counted
 * (campaign_sync_auth_failures_total{route}) and logged, rate-limited, with the client's
 * address. Each request must arrive whole (TLS handshake, headers and body) within the
 * request deadline of its connection's start or of the previous answer on that connection,
 * and an answer must be taken within the deadline too; a client that trickles bytes is cut
 * off then, whatever its pace. Time the server spends on a request (its handler, a deferred
 * wait) does not count. Handlers run on the
 * daemon's pool threads with the whole body in memory, capped per route, and answer with
 * http_reply. With a certificate it serves HTTPS (GnuTLS); with a client CA it asks every
 * client for a certificate, and a route's authorizer decides with
 * http_req_client_certified whether the request needs one (chained to that CA and, with
 * pins, one of the pinned certificates). */
#ifndef CS_HTTP_SERVER_H
#define CS_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct http_server http_server;
typedef struct http_request http_request;

typedef void (*http_handler)(http_request *req, void *ud);

/* Builds an error body for status/code/message; sets *content_type to a static string.
 * Returns a malloc'd body (caller frees) with its length in *len. */
typedef char *(*http_error_renderer)(int status, const char *code, const char *message,
                                     const char **content_type, size_t *len);

/* Decides from the request line and headers alone, on the request's first callback, before
 * any byte of the body is read. Returns true to let the request go on to the handler;
 * false after answering it (http_reply_error): the body is then never read. ud is the
 * route's. Runs on a pool thread; must not block. */
typedef bool (*http_authorizer)(http_request *req, void *ud);

typedef struct {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/v1/mappings/{programId}"; also the metrics label */
    http_handler handler;
    void *ud;
    http_error_renderer on_error; /* NULL: JSON errors */
    http_authorizer authorize;    /* NULL: anyone may call the route */
    size_t max_body_bytes;        /* larger bodies get 413; 0 (or more than the server's
                                     max_body_bytes): the server's */
} http_route;

typedef struct {
    const char *bind_addr; /* IPv4 or IPv6 literal */
    int port;
    size_t max_body_bytes; /* larger bodies get 413; the ceiling of every route's cap */
    int threads;           /* pool size */
    int connection_limit;
    int per_ip_limit;         /* connections from one address (0: no limit) */
    int timeout_s;            /* idle connection timeout (slow clients) */
    int request_timeout_s;    /* a request must arrive whole within this (0: no deadline) */
    const char *tls_cert_pem; /* serve HTTPS when set (with tls_key_pem) */
    const char *tls_key_pem;
    const char *tls_ca_pem; /* ask clients for a certificate, verified against this CA */
    /* SHA-256 digests (32 bytes each) of the only client certificates accepted by
     * http_req_client_certified; n_cert_pins == 0: any certificate the CA signed. */
    const unsigned char *cert_pins;
    size_t n_cert_pins;
    const char *name; /* in log lines: "public", "management" */
} http_server_options;

/* Starts listening; routes are copied. NULL with a sentence in err on failure. */
http_server *http_server_start(const http_server_options *opt, const http_route *routes,
                               size_t nroutes, char *err, size_t errlen);

/* Stops accepting, waits up to grace_ms for requests in flight, then stops and frees. */
void http_server_stop(http_server *srv, int grace_ms);

/* Number of requests between their first byte and their completion. */
int http_server_in_flight(const http_server *srv);

/* --- request accessors (valid during the handler) --- */
const char *http_req_method(const http_request *req);
const char *http_req_path(const http_request *req);
const char *http_req_route(const http_request *req);                    /* the pattern */
const char *http_req_param(const http_request *req, const char *name);  /* {name} segment */
const char *http_req_query(const http_request *req, const char *name);  /* ?name= */
const char *http_req_header(const http_request *req, const char *name); /* case-insensitive */
const char *http_req_body(const http_request *req, size_t *len);        /* NUL-terminated copy */
const char *http_req_client_ip(const http_request *req);
/* Every line of header name (case-insensitive), in the order received: up to max of them in
 * out (valid during the request); returns how many lines there are, which may exceed max. */
size_t http_req_header_lines(const http_request *req, const char *name, const char **out,
                             size_t max);
/* True when the connection is TLS with the client CA and the client presented a certificate
 * that verifies against it and, when pins are set, is one of the pinned certificates (its
 * SHA-256 fingerprint); false with the reason in why (fit for the client's answer). */
bool http_req_client_certified(const http_request *req, char *why, size_t len);

/* --- answering later --- */
/* Lets the handler answer after work done on another thread: it calls http_req_defer and
 * returns without a reply; that work calls http_req_resume once (from any thread, also
 * before the handler returned); the route's handler then runs again on a pool thread, with
 * http_req_state() == state, and answers. The connection holds no thread meanwhile. state is
 * freed with free_state (if not NULL) when the request ends. */
void http_req_defer(http_request *req, void *state, void (*free_state)(void *));
void *http_req_state(const http_request *req); /* NULL on a request's first run */
void http_req_resume(http_request *req);
/* --- answering (exactly one reply per request; a second one is ignored) --- */

/* Copies body; content_type must outlive the request (a literal). */
void http_reply(http_request *req, int status, const char *content_type, const char *body,
                size_t len);
/* Takes ownership of a malloc'd body. */
void http_reply_owned(http_request *req, int status, const char *content_type, char *body,
                      size_t len);
/* Error in the route's format: JSON {"error": code, "message": message} or a SOAP Fault. */
void http_reply_error(http_request *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Adds a header to the reply (name and value are copied). Call before http_reply*. */
void http_reply_header(http_request *req, const char *name, const char *value);

/* The default JSON error renderer; exposed for routes that want it explicitly. */
char *http_json_error(int status, const char *code, const char *message, const char **content_type,
                      size_t *len);

#define HTTP_MAX_PARAMS 4
typedef struct {
    char name[32];
    char value[256];
} http_param;

/* Matches a path against a template segment by segment; a `{name}` segment matches one
 * non-empty segment of at most 255 bytes. Returns the number of parameters filled, or -1
 * when the path does not match. Exposed for unit tests. */
int http_match(const char *pattern, const char *path, http_param *params, int maxp);

#endif
