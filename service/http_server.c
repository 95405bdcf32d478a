/* http_server — libmicrohttpd daemon with a route table. See include/http_server.h. */
#include "http_server.h"

#include "log.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <cJSON.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_REPLY_HEADERS 8
#define METHOD_MAX        16
#define REAPER_TICK_MS    250
#define PIN_BYTES         32

/* A connection, for the request deadline: libmicrohttpd's timeout counts idle time only, so
 * a client sending a byte every few seconds would hold its connection for ever. The reaper
 * thread shuts down the socket of a connection whose current request has not arrived whole
 * within the deadline; libmicrohttpd then sees the end of the stream and closes it. */
typedef struct conn_track {
    struct conn_track *prev, *next;
    int fd;
    atomic_llong since_ms; /* start of the connection, or end of our part of its last
                              request (the answer being sent, or the next request coming) */
    atomic_bool waiting;   /* the request is ours: its handler runs or it waits deferred */
    bool cut;              /* shut down by the reaper (under conns_lock) */
    char ip[INET6_ADDRSTRLEN];
} conn_track;

struct http_server {
    struct MHD_Daemon *daemon;
    http_route *routes;
    size_t nroutes;
    http_server_options opt;
    atomic_int in_flight;
    atomic_int suspended; /* deferred requests whose connection is suspended */
    atomic_bool stopping;
    /* Orders a deferred request's suspension before its resumption (a resume may come from
     * another thread before the handler has returned). Server-wide, not per request: the
     * request may end, and be freed, as soon as its connection is resumed. */
    pthread_mutex_t defer_lock;
    unsigned char *pins; /* a copy of opt.cert_pins */
    /* Live connections, for the reaper; a connection leaves the list (under conns_lock)
     * before libmicrohttpd closes its socket, so the reaper never touches a reused fd. */
    pthread_mutex_t conns_lock;
    pthread_cond_t reaper_wake;
    conn_track *conns;
    pthread_t reaper;
    bool reaper_running, reaper_stop; /* reaper_stop under conns_lock */
};

struct http_request {
    http_server *srv;
    struct MHD_Connection *conn;
    const http_route *route; /* the matched path's route (its handler runs only on a method
                                match); NULL: unknown path, JSON errors */
    char method[METHOD_MAX];
    char *path;
    http_param params[HTTP_MAX_PARAMS];
    int nparams;
    char *body;
    size_t len, cap;
    size_t discarded; /* bytes of an oversized body read past the limit */
    bool too_large;   /* answer 413 once the body has ended */
    bool replied;
    bool deferred;  /* the handler called http_req_defer and awaits http_req_resume */
    bool suspended; /* its connection is suspended (under defer_lock) */
    bool resumed;   /* http_req_resume came before the suspension (under defer_lock) */
    void *state;    /* http_req_defer's state, freed with free_state when the request ends */
    void (*free_state)(void *);
    int status;
    char *hdr_name[MAX_REPLY_HEADERS], *hdr_value[MAX_REPLY_HEADERS];
    int nhdrs;
    struct timespec start;
    char ip[INET6_ADDRSTRLEN];
    conn_track *track; /* the connection's, for the deadline; NULL without one */
};

/* ---- routing ---- */

int http_match(const char *pattern, const char *path, http_param *params, int maxp) {
    int n = 0;
    const char *p = pattern, *u = path;
    while (*p && *u) {
        if (*p != '/' || *u != '/') return -1;
        p++;
        u++;
        size_t plen = strcspn(p, "/"), ulen = strcspn(u, "/");
        if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
            if (ulen == 0 || ulen >= sizeof params[0].value || n >= maxp) return -1;
            size_t nlen =
                plen - 2 < sizeof params[0].name - 1 ? plen - 2 : sizeof params[0].name - 1;
            memcpy(params[n].name, p + 1, nlen);
            params[n].name[nlen] = '\0';
            memcpy(params[n].value, u, ulen);
            params[n].value[ulen] = '\0';
            n++;
        } else if (plen != ulen || strncmp(p, u, plen) != 0) {
            return -1;
        }
        p += plen;
        u += ulen;
    }
    return (*p == '\0' && *u == '\0') ? n : -1;
}

/* ---- error bodies ---- */

char *http_json_error(int status, const char *code, const char *message, const char **content_type,
                      size_t *len) {
    (void)status;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", code);
    cJSON_AddStringToObject(o, "message", message);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    *content_type = "application/json";
    *len = s ? strlen(s) : 0;
    return s;
}

/* ---- replies ---- */

static void queue(http_request *r, int status, const char *ctype, char *body, size_t len) {
    if (r->replied) {
        free(body);
        return;
    }
    r->replied = true;
    r->status = status;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body ? body : (void *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return;
    }
    if (ctype) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    for (int i = 0; i < r->nhdrs; i++)
        MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
    /* While shutting down, ask keep-alive clients to go so in-flight work can drain. */
    if (atomic_load(&r->srv->stopping))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (MHD_queue_response(r->conn, (unsigned)status, resp) != MHD_YES)
        LOG_KV_LIMITED(LOG_WARN, "http: could not queue response", "route", http_req_route(r));
    MHD_destroy_response(resp);
}

void http_reply_owned(http_request *r, int status, const char *content_type, char *body,
                      size_t len) {
    queue(r, status, content_type, body, len);
}

void http_reply(http_request *r, int status, const char *content_type, const char *body,
                size_t len) {
    char *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy) {
            queue(r, 500, NULL, NULL, 0);
            return;
        }
        memcpy(copy, body, len);
    }
    queue(r, status, content_type, copy, len);
}

void http_reply_header(http_request *r, const char *name, const char *value) {
    if (r->nhdrs >= MAX_REPLY_HEADERS) return;
    r->hdr_name[r->nhdrs] = strdup(name);
    r->hdr_value[r->nhdrs] = strdup(value);
    if (r->hdr_name[r->nhdrs] && r->hdr_value[r->nhdrs])
        r->nhdrs++;
    else {
        free(r->hdr_name[r->nhdrs]);
        free(r->hdr_value[r->nhdrs]);
    }
}

void http_reply_error(http_request *r, int status, const char *code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_error_renderer render =
        r->route && r->route->on_error ? r->route->on_error : http_json_error;
    const char *ctype = NULL;
    size_t len = 0;
    char *body = render(status, code, msg, &ctype, &len);
    queue(r, status, ctype, body, len);
}

/* ---- accessors ---- */

const char *http_req_method(const http_request *r) {
    return r->method;
}
const char *http_req_path(const http_request *r) {
    return r->path;
}
/* A 405 on a known path keeps that path's template; only unknown paths are "other". */
const char *http_req_route(const http_request *r) {
    return r->route ? r->route->pattern : "other";
}
const char *http_req_param(const http_request *r, const char *name) {
    for (int i = 0; i < r->nparams; i++)
        if (strcmp(r->params[i].name, name) == 0) return r->params[i].value;
    return NULL;
}
const char *http_req_query(const http_request *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}
const char *http_req_header(const http_request *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}
const char *http_req_body(const http_request *r, size_t *len) {
    if (len) *len = r->len;
    return r->body ? r->body : "";
}
const char *http_req_client_ip(const http_request *r) {
    return r->ip;
}

typedef struct {
    const char *name;
    const char **out;
    size_t max, n;
} header_walk;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value) {
    (void)kind;
    header_walk *w = cls;
    if (!key || strcasecmp(key, w->name) != 0) return MHD_YES;
    if (w->n < w->max) w->out[w->n] = value ? value : "";
    w->n++;
    return MHD_YES;
}

size_t http_req_header_lines(const http_request *r, const char *name, const char **out,
                             size_t max) {
    header_walk w = {name, out, max, 0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_header, &w);
    return w.n;
}

/* ---- deferred answers ---- */

void http_req_defer(http_request *r, void *state, void (*free_state)(void *)) {
    r->deferred = true;
    r->state = state;
    r->free_state = free_state;
}

void *http_req_state(const http_request *r) {
    return r->state;
}

void http_req_resume(http_request *r) {
    http_server *srv = r->srv;
    pthread_mutex_lock(&srv->defer_lock);
    if (r->suspended) {
        r->suspended = false;
        atomic_fetch_sub(&srv->suspended, 1);
        MHD_resume_connection(r->conn); /* r may be gone once the lock is released */
    } else {
        r->resumed = true;
    }
    pthread_mutex_unlock(&srv->defer_lock);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* While the request is ours (its handler runs, or it waits deferred) the deadline does not
 * count: a slow CRM or Redis is not the client's doing. Once answered, sending the answer
 * gets a deadline of its own. */
static void track_ours(conn_track *t, bool ours) {
    if (!t) return;
    if (!ours) atomic_store(&t->since_ms, now_ms());
    atomic_store(&t->waiting, ours);
}

/* Runs the route's handler; a deferred request is suspended until http_req_resume, or runs
 * again at once when that came first. */
static void run_handler(http_request *r) {
    track_ours(r->track, true);
    for (;;) {
        r->deferred = false;
        r->route->handler(r, r->route->ud);
        if (r->replied || !r->deferred) break;
        http_server *srv = r->srv;
        pthread_mutex_lock(&srv->defer_lock);
        bool again = r->resumed;
        r->resumed = false;
        if (!again) {
            MHD_suspend_connection(r->conn);
            r->suspended = true;
            atomic_fetch_add(&srv->suspended, 1);
        }
        pthread_mutex_unlock(&srv->defer_lock);
        if (!again) return;
    }
    if (!r->replied) {
        LOG_KV(LOG_ERROR, "http: handler gave no answer", "route", r->route->pattern);
        http_reply_error(r, 500, "internal", "the server could not answer this request");
    }
    track_ours(r->track, false);
}

/* ---- daemon callbacks ---- */

static void resolve_route(http_request *r) {
    const http_server *srv = r->srv;
    const http_route *same_path = NULL;
    char allow[64] = "";
    for (size_t i = 0; i < srv->nroutes; i++) {
        const http_route *rt = &srv->routes[i];
        http_param tmp[HTTP_MAX_PARAMS];
        int n = http_match(rt->pattern, r->path, tmp, HTTP_MAX_PARAMS);
        if (n < 0) continue;
        /* HEAD is GET without a body; libmicrohttpd leaves the body out itself. */
        bool head_as_get = strcmp(r->method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0;
        if (strcmp(rt->method, r->method) == 0 || head_as_get) {
            r->route = rt;
            memcpy(r->params, tmp, sizeof(http_param) * (size_t)n);
            r->nparams = n;
            return;
        }
        if (!same_path) same_path = rt;
        if (strlen(allow) + strlen(rt->method) + 3 < sizeof allow) {
            if (*allow) strcat(allow, ", ");
            strcat(allow, rt->method);
        }
    }
    if (same_path) {
        r->route = same_path;
        http_reply_header(r, "Allow", allow);
        http_reply_error(r, 405, "method_not_allowed", "%s is not allowed on %s; use %s", r->method,
                         r->path, allow);
    } else {
        http_reply_error(r, 404, "not_found", "no endpoint at %s", r->path);
    }
}

static void client_ip(http_request *r) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, r->ip,
                  sizeof r->ip);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, r->ip,
                  sizeof r->ip);
}

/* The SHA-256 fingerprint of the peer's own certificate is one of the pins. */
static bool pinned(const http_server *srv, const gnutls_datum_t *cert) {
    unsigned char digest[PIN_BYTES];
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, cert->data, cert->size, digest) != 0) return false;
    for (size_t i = 0; i < srv->opt.n_cert_pins; i++)
        if (memcmp(digest, srv->pins + i * PIN_BYTES, PIN_BYTES) == 0) return true;
    return false;
}

bool http_req_client_certified(const http_request *r, char *why, size_t len) {
    if (!r->srv->opt.tls_ca_pem) {
        snprintf(why, len, "client certificates are not configured (TLS_CLIENT_CA_FILE)");
        return false;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session) {
        snprintf(why, len, "no TLS session");
        return false;
    }
    gnutls_session_t session = (gnutls_session_t)ci->tls_session;
    unsigned int n = 0;
    const gnutls_datum_t *chain = gnutls_certificate_get_peers(session, &n);
    if (!chain || n == 0) {
        snprintf(why, len, "a client certificate is required");
        return false;
    }
    unsigned int status = 0;
    int rc = gnutls_certificate_verify_peers2(session, &status);
    if (rc < 0 || status != 0) {
        snprintf(why, len, "the client certificate is not signed by TLS_CLIENT_CA_FILE's CA");
        return false;
    }
    /* A CA, public ones above all, signs certificates for many: with pins only those. */
    if (r->srv->opt.n_cert_pins && !pinned(r->srv, &chain[0])) {
        snprintf(why, len, "the client certificate is not one of TLS_CLIENT_CERT_PINS");
        return false;
    }
    return true;
}

/* The route's cap, within the server's (MAX_BODY_BYTES is the ceiling of every route). */
static size_t route_max_body(const http_request *r) {
    size_t max = r->srv->opt.max_body_bytes;
    if (r->route && r->route->max_body_bytes && r->route->max_body_bytes < max)
        return r->route->max_body_bytes;
    return max;
}

/* How much of an oversized body is read and dropped so the 413 reaches clients that write
 * their whole body before reading: the limit again, at least 1 MiB. */
static size_t discard_slack(const http_request *r) {
    size_t max = route_max_body(r);
    return max > (1u << 20) ? max : (1u << 20);
}

/* A 401 from an authorizer: counted per route and logged (rate-limited) with the client's
 * address; the route's template is the label, never the path (which may hold a token). */
static void auth_failed(const http_request *r) {
    metrics_add(M_AUTH_FAILURES, 1, r->route->pattern);
    LOG_KV_LIMITED(LOG_WARN, "http: authentication failed", "route", r->route->pattern, "client",
                   r->ip);
}

static void too_large(http_request *r) {
    http_reply_error(r, 413, "payload_too_large", "the request body exceeds %zu bytes",
                     route_max_body(r));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
    (void)version;
    http_server *srv = cls;
    http_request *r = *req_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *req_cls = r;
        atomic_fetch_add(&srv->in_flight, 1);
        r->srv = srv;
        r->conn = conn;
        clock_gettime(CLOCK_MONOTONIC, &r->start);
        snprintf(r->method, sizeof r->method, "%s", method);
        r->path = strdup(url);
        if (!r->path) return MHD_NO;
        client_ip(r);
        const union MHD_ConnectionInfo *sc =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        r->track = sc ? sc->socket_context : NULL;
        resolve_route(r);
        if (r->replied) return MHD_YES;
        /* A declared body far over the limit is refused before any of it is read (the
         * connection closes); one a little over is read, dropped and answered 413, so a
         * client that writes its whole body before reading still sees the answer. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (*end == '\0' && n > route_max_body(r) + discard_slack(r)) {
                too_large(r);
                return MHD_YES;
            }
        }
        /* Before any of the body: who may call the route (its answer closes the connection
         * without reading what the client still sends). */
        if (r->route->authorize && !r->route->authorize(r, r->route->ud)) {
            if (!r->replied) http_reply_error(r, 403, "forbidden", "not allowed");
            if (r->status == 401) auth_failed(r);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t chunk = *upload_data_size;
        *upload_data_size = 0;
        if (r->replied) return MHD_YES;
        size_t max = route_max_body(r);
        if (r->too_large || r->len + chunk > max) {
            /* libmicrohttpd takes a reply only before or after the body, so an oversized
             * body is read and dropped up to a slack past the limit, then answered 413; one
             * that goes on further is cut off by closing the connection. */
            r->too_large = true;
            r->discarded += chunk;
            free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
            return r->discarded > discard_slack(r) ? MHD_NO : MHD_YES;
        }
        if (r->len + chunk + 1 > r->cap) {
            size_t ncap = r->cap ? r->cap : 4096;
            while (ncap < r->len + chunk + 1)
                ncap *= 2;
            if (ncap > max + 1) ncap = max + 1;
            char *nb = realloc(r->body, ncap);
            if (!nb) return MHD_NO;
            r->body = nb;
            r->cap = ncap;
        }
        memcpy(r->body + r->len, upload_data, chunk);
        r->len += chunk;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    if (r->replied) return MHD_YES;
    if (r->too_large) {
        too_large(r);
        return MHD_YES;
    }
    run_handler(r);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)conn;
    (void)toe;
    http_server *srv = cls;
    http_request *r = *req_cls;
    if (!r) return;
    *req_cls = NULL;
    /* A kept-alive connection's next request gets the whole deadline. */
    track_ours(r->track, false);
    if (r->replied) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double secs =
            (double)(now.tv_sec - r->start.tv_sec) + (double)(now.tv_nsec - r->start.tv_nsec) / 1e9;
        char code[8];
        snprintf(code, sizeof code, "%d", r->status);
        const char *route = http_req_route(r);
        metrics_add(M_HTTP_REQUESTS, 1, route, code);
        metrics_observe(M_HTTP_SECONDS, secs, route);
    }
    for (int i = 0; i < r->nhdrs; i++) {
        free(r->hdr_name[i]);
        free(r->hdr_value[i]);
    }
    if (r->free_state) r->free_state(r->state);
    free(r->body);
    free(r->path);
    free(r);
    atomic_fetch_sub(&srv->in_flight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    if (!log_enabled(LOG_DEBUG)) return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n'))
        msg[--n] = '\0';
    LOG_KV(LOG_DEBUG, "libmicrohttpd", "detail", msg);
}

/* ---- the request deadline ---- */

static void track_ip(conn_track *t, struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, t->ip,
                  sizeof t->ip);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, t->ip,
                  sizeof t->ip);
}

/* Keeps the list of live connections: in at accept, out before the socket is closed. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    http_server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_track *t = ci ? calloc(1, sizeof *t) : NULL;
        *socket_context = t;
        if (!t) return; /* no deadline for this one; the idle timeout still applies */
        t->fd = ci->connect_fd;
        atomic_store(&t->since_ms, now_ms());
        track_ip(t, conn);
        pthread_mutex_lock(&srv->conns_lock);
        t->next = srv->conns;
        if (srv->conns) srv->conns->prev = t;
        srv->conns = t;
        pthread_mutex_unlock(&srv->conns_lock);
        return;
    }
    conn_track *t = *socket_context;
    if (!t) return;
    *socket_context = NULL;
    pthread_mutex_lock(&srv->conns_lock);
    if (t->prev)
        t->prev->next = t->next;
    else
        srv->conns = t->next;
    if (t->next) t->next->prev = t->prev;
    pthread_mutex_unlock(&srv->conns_lock);
    free(t);
}

/* Cuts connections whose request has not arrived whole within the deadline. */
static void *reaper_main(void *arg) {
    http_server *srv = arg;
    long long limit = (long long)srv->opt.request_timeout_s * 1000;
    pthread_mutex_lock(&srv->conns_lock);
    while (!srv->reaper_stop) {
        long long now = now_ms();
        for (conn_track *t = srv->conns; t; t = t->next) {
            if (t->cut || atomic_load(&t->waiting) || now - atomic_load(&t->since_ms) <= limit)
                continue;
            /* The socket stays open (libmicrohttpd closes it); reading and writing end. */
            shutdown(t->fd, SHUT_RDWR);
            t->cut = true;
            LOG_KV_LIMITED(LOG_WARN,
                           "http: connection cut: its request did not arrive whole within "
                           "HTTP_REQUEST_TIMEOUT_S",
                           "server", srv->opt.name ? srv->opt.name : "http", "client", t->ip);
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += REAPER_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&srv->reaper_wake, &srv->conns_lock, &until);
    }
    pthread_mutex_unlock(&srv->conns_lock);
    return NULL;
}

static void stop_reaper(http_server *srv) {
    if (!srv->reaper_running) return;
    pthread_mutex_lock(&srv->conns_lock);
    srv->reaper_stop = true;
    pthread_cond_signal(&srv->reaper_wake);
    pthread_mutex_unlock(&srv->conns_lock);
    pthread_join(srv->reaper, NULL);
    srv->reaper_running = false;
}

/* Frees what http_server_start allocated, daemon stopped or never started. */
static void server_free(http_server *srv) {
    stop_reaper(srv);
    pthread_mutex_destroy(&srv->defer_lock);
    pthread_mutex_destroy(&srv->conns_lock);
    pthread_cond_destroy(&srv->reaper_wake);
    free(srv->pins);
    free(srv->routes);
    free(srv);
}

/* Once the server stops, a new connection is closed as soon as it is accepted. This stands in
 * for MHD_quiesce_daemon, which races with the epoll workers of the libmicrohttpd we run
 * (both remove the listen socket from the epoll set, and the loser aborts the process: a
 * SIGTERM during CI's tests did so). */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t len) {
    (void)addr;
    (void)len;
    const http_server *srv = cls;
    return atomic_load(&srv->stopping) ? MHD_NO : MHD_YES;
}

/* A server not yet listening: its copies of the routes and pins, and its locks. NULL with a
 * sentence in err when memory or a lock cannot be had. */
static http_server *server_new(const http_server_options *opt, const http_route *routes,
                               size_t nroutes, char *err, size_t errlen) {
    int rc = 0; /* a pthread error; 0 with srv incomplete: out of memory */
    http_server *srv = calloc(1, sizeof *srv);
    if (!srv) goto fail;
    srv->opt = *opt;
    srv->routes = malloc(sizeof *routes * (nroutes ? nroutes : 1));
    if (!srv->routes) goto fail;
    memcpy(srv->routes, routes, sizeof *routes * nroutes);
    srv->nroutes = nroutes;
    if (opt->n_cert_pins) {
        srv->pins = malloc(opt->n_cert_pins * PIN_BYTES);
        if (!srv->pins) goto fail;
        memcpy(srv->pins, opt->cert_pins, opt->n_cert_pins * PIN_BYTES);
    }
    if ((rc = pthread_mutex_init(&srv->defer_lock, NULL)) != 0) goto fail;
    if ((rc = pthread_mutex_init(&srv->conns_lock, NULL)) != 0) {
        pthread_mutex_destroy(&srv->defer_lock);
        goto fail;
    }
    if ((rc = pthread_cond_init(&srv->reaper_wake, NULL)) != 0) {
        pthread_mutex_destroy(&srv->conns_lock);
        pthread_mutex_destroy(&srv->defer_lock);
        goto fail;
    }
    return srv;
fail:
    if (rc != 0)
        snprintf(err, errlen, "cannot create the server's locks: %s", strerror(rc));
    else
        snprintf(err, errlen, "out of memory");
    if (srv) {
        free(srv->pins);
        free(srv->routes);
        free(srv);
    }
    return NULL;
}

http_server *http_server_start(const http_server_options *opt, const http_route *routes,
                               size_t nroutes, char *err, size_t errlen) {
    http_server *srv = server_new(opt, routes, nroutes, err, errlen);
    if (!srv) return NULL;
    /* Every route that checks callers starts its failure count at 0. */
    for (size_t i = 0; i < nroutes; i++)
        if (routes[i].authorize) metrics_add(M_AUTH_FAILURES, 0, routes[i].pattern);

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, opt->bind_addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)opt->port);
    } else if (inet_pton(AF_INET6, opt->bind_addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)opt->port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "\"%s\" is not an IPv4 or IPv6 address", opt->bind_addr);
        server_free(srv);
        return NULL;
    }
    errno = 0;
    /* TLS options go first (an empty key/cert pair ends the list early when TLS is off). */
    struct MHD_OptionItem tls[4];
    int nt = 0;
    if (opt->tls_cert_pem && opt->tls_key_pem) {
        flags |= MHD_USE_TLS;
        tls[nt++] =
            (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)opt->tls_cert_pem};
        tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)opt->tls_key_pem};
        if (opt->tls_ca_pem)
            tls[nt++] =
                (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, (void *)opt->tls_ca_pem};
    }
    tls[nt] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    /* The logger must come first so that every message goes through it. */
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)opt->port, accept_policy, srv, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, NULL, MHD_OPTION_ARRAY, tls, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        srv, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)opt->threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)opt->connection_limit, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)opt->timeout_s,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)opt->per_ip_limit,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, errlen, "cannot listen on %s port %d: %s", opt->bind_addr, opt->port,
                 errno ? strerror(errno) : "libmicrohttpd refused the options");
        server_free(srv);
        return NULL;
    }
    if (opt->request_timeout_s > 0) {
        if (pthread_create(&srv->reaper, NULL, reaper_main, srv) != 0) {
            snprintf(err, errlen, "cannot start the request deadline thread");
            MHD_stop_daemon(srv->daemon);
            server_free(srv);
            return NULL;
        }
        srv->reaper_running = true;
    }
    return srv;
}

int http_server_in_flight(const http_server *srv) {
    return atomic_load(&((http_server *)srv)->in_flight);
}

void http_server_stop(http_server *srv, int grace_ms) {
    if (!srv) return;
    atomic_store(&srv->stopping, true); /* accept_policy turns new connections away */
    struct timespec tick = {0, 10 * 1000000L};
    for (int waited = 0; atomic_load(&srv->in_flight) > 0 && waited < grace_ms; waited += 10)
        nanosleep(&tick, NULL);
    if (atomic_load(&srv->in_flight) > 0)
        LOGF(LOG_WARN, "http: %d requests still in flight after %d ms; closing them",
             atomic_load(&srv->in_flight), grace_ms);
    /* libmicrohttpd cannot stop with a connection suspended; a deferred request's work ends
     * within Redis's timeouts, so wait for it. */
    while (atomic_load(&srv->suspended) > 0)
        nanosleep(&tick, NULL);
    stop_reaper(srv); /* before the daemon: connections leave its list as they close */
    MHD_stop_daemon(srv->daemon);
    server_free(srv);
}
