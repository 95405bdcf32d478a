/* store — the Redis connection: connecting and reconnecting with a growing pause, one
 * command, the scripts of service/lua/ and pipelines for the store_* files (store_priv.h),
 * locks and the pool of per-thread handles. See include/store.h. */
#include "store.h"

#include "store_priv.h"
#include "per_thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONNECT_TIMEOUT_MS 1000
#define COMMAND_TIMEOUT_MS 3000
#define BACKOFF_MIN_MS     50
#define BACKOFF_MAX_MS     2000

struct store {
    struct redis_target target;
    redisContext *c;
    int64_t next_try_ms; /* monotonic; no reconnect before this after a failure */
    int64_t failed_ms;   /* monotonic time of the last failed connect */
    int backoff_ms;
    struct store *next; /* in its store_pool */
};

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval tv_ms(int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

store *store_new(const struct redis_target *target) {
    store *s = calloc(1, sizeof *s);
    if (s) s->target = *target;
    return s;
}

void store_free(store *s) {
    if (!s) return;
    if (s->c) redisFree(s->c);
    free(s);
}

/* When any handle of this process last connected: once Redis is back for one thread, the
 * others need not sit out their backoff. Process-wide on purpose: every handle of a process
 * talks to the one Redis of its REDIS_URL, and only a hint is shared (no handle's state). */
static _Atomic int64_t last_connect_ms;

static void fail_connect(store *s) {
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (s->backoff_ms > BACKOFF_MAX_MS) s->backoff_ms = BACKOFF_MAX_MS;
    s->failed_ms = mono_ms();
    s->next_try_ms = s->failed_ms + s->backoff_ms;
}

/* Runs AUTH/SELECT on a fresh connection; 0 or -1 with err. */
static int handshake(store *s, redisContext *c, char *err, size_t errlen) {
    redisReply *r = NULL;
    if (s->target.password[0]) {
        if (s->target.user[0])
            r = redisCommand(c, "AUTH %s %s", s->target.user, s->target.password);
        else
            r = redisCommand(c, "AUTH %s", s->target.password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            /* Redis's own text, never our password. */
            snprintf(err, errlen, "Redis refused AUTH: %s",
                     r ? r->str : (c->errstr[0] ? c->errstr : "no answer"));
            if (r) freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
    }
    if (s->target.db) {
        r = redisCommand(c, "SELECT %d", s->target.db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "Redis refused SELECT %d: %s", s->target.db,
                     r ? r->str : "no answer");
            if (r) freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
    }
    return 0;
}

static int ensure(store *s, char *err, size_t errlen) {
    if (s->c && !s->c->err) return 0;
    if (s->c) {
        redisFree(s->c);
        s->c = NULL;
    }
    if (mono_ms() < s->next_try_ms && last_connect_ms <= s->failed_ms) {
        snprintf(err, errlen, "Redis at %s:%d is unreachable (next attempt in %d ms)",
                 s->target.host, s->target.port, (int)(s->next_try_ms - mono_ms()));
        return -1;
    }
    redisContext *c =
        redisConnectWithTimeout(s->target.host, s->target.port, tv_ms(CONNECT_TIMEOUT_MS));
    if (!c || c->err) {
        snprintf(err, errlen, "cannot connect to Redis at %s:%d: %s", s->target.host,
                 s->target.port, c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        fail_connect(s);
        return -1;
    }
    redisSetTimeout(c, tv_ms(COMMAND_TIMEOUT_MS));
    if (handshake(s, c, err, errlen) != 0) {
        redisFree(c);
        fail_connect(s);
        return -1;
    }
    s->c = c;
    s->backoff_ms = 0;
    last_connect_ms = mono_ms();
    return 0;
}

/* A connection that Redis closed (restart) is worth one immediate retry on a fresh one. */
static bool stale_connection(const redisContext *c) {
    return c->err == REDIS_ERR_EOF ||
           (c->err == REDIS_ERR_IO && (errno == ECONNRESET || errno == EPIPE));
}

/* After a failure on s->c (err set to its reason): drops the connection and says whether
 * to try once more at once (Redis closed a connection that had worked: a restart), or backs
 * off (false). */
static bool drop_connection(store *s, bool was_connected) {
    bool retry = was_connected && stale_connection(s->c);
    redisFree(s->c);
    s->c = NULL;
    if (!retry) fail_connect(s);
    return retry;
}

/* One command, sent by send() on a live connection: a connection that Redis closed (a
 * restart) gets one immediate retry on a fresh one; any other failure backs off. NULL with
 * err on a connection problem; error replies are returned for the caller to judge. */
typedef redisReply *(*sender)(redisContext *c, void *arg);

static redisReply *with_reconnect(store *s, sender send, void *arg, char *err, size_t errlen) {
    for (int attempt = 0; attempt < 2; attempt++) {
        bool was_connected = s->c != NULL;
        if (ensure(s, err, errlen) != 0) return NULL;
        redisReply *r = send(s->c, arg);
        if (r) return r;
        snprintf(err, errlen, "Redis at %s:%d: %s", s->target.host, s->target.port, s->c->errstr);
        if (!drop_connection(s, was_connected)) return NULL;
    }
    return NULL;
}

typedef struct {
    int argc;
    const char **argv;
    const size_t *lens;
} argv_cmd;

static redisReply *send_argv(redisContext *c, void *arg) {
    argv_cmd *a = arg;
    return redisCommandArgv(c, a->argc, a->argv, a->lens);
}

redisReply *store_priv_argv(store *s, int argc, const char **argv, const size_t *lens, char *err,
                            size_t errlen) {
    argv_cmd a = {argc, argv, lens};
    return with_reconnect(s, send_argv, &a, err, errlen);
}

typedef struct {
    const char *fmt;
    va_list *ap;
} fmt_cmd;

static redisReply *send_fmt(redisContext *c, void *arg) {
    fmt_cmd *f = arg;
    va_list ap;
    va_copy(ap, *f->ap); /* a retry formats again from the start */
    redisReply *r = redisvCommand(c, f->fmt, ap);
    va_end(ap);
    return r;
}

redisReply *store_priv_cmd(store *s, char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fmt_cmd f = {fmt, &ap};
    redisReply *r = with_reconnect(s, send_fmt, &f, err, errlen);
    va_end(ap);
    return r;
}

int store_priv_reply_error(redisReply *r, char *err, size_t errlen) {
    if (!r) return -1;
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "Redis: %s", r->str);
        freeReplyObject(r);
        return -1;
    }
    return 0;
}

store_found store_priv_get_string(store *s, char *out, size_t size, char *err, size_t errlen,
                                  const char *fmt, const char *arg) {
    redisReply *r = store_priv_cmd(s, err, errlen, fmt, arg);
    if (!r || store_priv_reply_error(r, err, errlen)) return STORE_ERROR;
    store_found rc = STORE_NOT_FOUND;
    out[0] = '\0';
    if (r->type == REDIS_REPLY_STRING && r->len < size) {
        memcpy(out, r->str, r->len + 1);
        rc = STORE_FOUND;
    }
    freeReplyObject(r);
    return rc;
}

long store_priv_strings(const redisReply *r, char ***out, char *err, size_t errlen) {
    *out = NULL;
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) return 0;
    char **v = calloc(r->elements, sizeof *v);
    long n = 0;
    for (size_t i = 0; v && i < r->elements; i++) {
        if (!r->element[i]->str) continue;
        if (!(v[n] = strdup(r->element[i]->str))) {
            while (n > 0)
                free(v[--n]);
            free(v);
            v = NULL;
            break;
        }
        n++;
    }
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *out = v;
    return n;
}

void store_priv_c15(char out[16], const char *sf_id) {
    snprintf(out, 16, "%.15s", sf_id);
}

static bool is_noscript(const redisReply *r) {
    return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

redisReply *store_priv_eval(store *s, store_lua_id id, int nkeys, int argc, const char **argv,
                            const size_t *lens, char *err, size_t errlen) {
    const store_lua_script *sc = &store_lua_scripts[id];
    char nk[16];
    snprintf(nk, sizeof nk, "%d", nkeys);
    const char **a = malloc(sizeof *a * (size_t)(argc + 3));
    size_t *l = malloc(sizeof *l * (size_t)(argc + 3));
    redisReply *r = NULL;
    if (!a || !l) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    a[0] = "EVALSHA";
    a[1] = sc->sha1;
    a[2] = nk;
    l[0] = 7;
    l[1] = 40;
    l[2] = strlen(nk);
    memcpy(a + 3, argv, sizeof *a * (size_t)argc);
    memcpy(l + 3, lens, sizeof *l * (size_t)argc);
    r = store_priv_argv(s, argc + 3, a, l, err, errlen);
    if (is_noscript(r)) { /* EVAL runs it and puts it back in the cache */
        freeReplyObject(r);
        a[0] = "EVAL";
        l[0] = 4;
        a[1] = sc->text;
        l[1] = sc->len;
        r = store_priv_argv(s, argc + 3, a, l, err, errlen);
    }
out:
    free(a);
    free(l);
    return r;
}

redisReply *store_priv_eval_strs(store *s, store_lua_id id, int nkeys, const char *const *args,
                                 int n, char *err, size_t errlen) {
    size_t *lens = malloc(sizeof *lens * (size_t)(n ? n : 1));
    if (!lens) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        lens[i] = strlen(args[i]);
    redisReply *r = store_priv_eval(s, id, nkeys, n, (const char **)args, lens, err, errlen);
    free(lens);
    if (r && r->type == REDIS_REPLY_ERROR) {
        store_priv_reply_error(r, err, errlen);
        return NULL;
    }
    return r;
}

/* ---- argument lists ---- */

static void args_push(store_priv_args *a, const char *arg, char *owned) {
    if (!arg) {
        a->oom = true;
        return;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 16;
        const char **v = realloc(a->v, cap * sizeof *v);
        if (v) a->v = v;
        char **o = v ? realloc(a->owned, cap * sizeof *o) : NULL;
        if (o) a->owned = o;
        if (!v || !o) {
            free(owned);
            a->oom = true;
            return;
        }
        a->cap = cap;
    }
    a->v[a->n] = arg;
    a->owned[a->n++] = owned;
}

void store_priv_args_add(store_priv_args *a, const char *arg) {
    args_push(a, arg, NULL);
}

void store_priv_args_take(store_priv_args *a, char *arg) {
    args_push(a, arg, arg);
}

void store_priv_args_addf(store_priv_args *a, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *arg = NULL;
    if (vasprintf(&arg, fmt, ap) < 0) arg = NULL;
    va_end(ap);
    args_push(a, arg, arg);
}

void store_priv_args_free(store_priv_args *a) {
    for (size_t i = 0; i < a->n; i++)
        free(a->owned[i]);
    free(a->v);
    free(a->owned);
    memset(a, 0, sizeof *a);
}

/* ---- pipelines ----
 * A worker's batch reads and records hundreds of members; one round trip per member would
 * make Redis's latency, not its work, the limit. */

static void pipe_push(store_priv_pipe *p, char *cmd, long long len, int lua) {
    if (!cmd || len < 0) {
        p->oom = true;
        return;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        char **c = realloc(p->cmd, cap * sizeof *c);
        if (c) p->cmd = c;
        size_t *l = c ? realloc(p->len, cap * sizeof *l) : NULL;
        if (l) p->len = l;
        int *u = l ? realloc(p->lua, cap * sizeof *u) : NULL;
        if (u) p->lua = u;
        if (!c || !l || !u) {
            redisFreeCommand(cmd);
            p->oom = true;
            return;
        }
        p->cap = cap;
    }
    p->cmd[p->n] = cmd;
    p->lua[p->n] = lua;
    p->len[p->n++] = (size_t)len;
}

void store_priv_pipe_addf(store_priv_pipe *p, const char *fmt, ...) {
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    pipe_push(p, cmd, len, -1);
}

void store_priv_pipe_add_argv(store_priv_pipe *p, int argc, const char **argv, const size_t *lens) {
    char *cmd = NULL;
    long long len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    pipe_push(p, cmd, len, -1);
}

void store_priv_pipe_add_eval(store_priv_pipe *p, store_lua_id id, int nkeys,
                              const char *const *args, int n) {
    const char **argv = malloc(sizeof *argv * (size_t)(n + 3));
    char nk[16];
    char *cmd = NULL;
    long long len = -1;
    snprintf(nk, sizeof nk, "%d", nkeys);
    if (argv) {
        argv[0] = "EVALSHA";
        argv[1] = store_lua_scripts[id].sha1;
        argv[2] = nk;
        memcpy(argv + 3, args, sizeof *argv * (size_t)n);
        len = redisFormatCommandArgv(&cmd, n + 3, argv, NULL);
    }
    free(argv);
    pipe_push(p, cmd, len, (int)id);
}

void store_priv_pipe_free(store_priv_pipe *p) {
    for (size_t i = 0; i < p->n; i++)
        redisFreeCommand(p->cmd[i]);
    free(p->cmd);
    free(p->len);
    free(p->lua);
    memset(p, 0, sizeof *p);
}

/* Sends the n formatted commands cmd (lengths len) and reads their replies into out: 0, or -1
 * with err (then out holds nothing). A connection Redis closed gets one retry, as in
 * with_reconnect. */
static int send_all(store *s, char *const *cmd, const size_t *len, size_t n, redisReply **out,
                    char *err, size_t errlen) {
    for (int attempt = 0; attempt < 2; attempt++) {
        bool was_connected = s->c != NULL;
        if (ensure(s, err, errlen) != 0) return -1;
        size_t got = 0;
        bool ok = true;
        for (size_t i = 0; ok && i < n; i++)
            ok = redisAppendFormattedCommand(s->c, cmd[i], len[i]) == REDIS_OK;
        for (; ok && got < n; got++) {
            void *r = NULL;
            ok = redisGetReply(s->c, &r) == REDIS_OK && r;
            out[got] = r;
        }
        if (ok) return 0;
        for (size_t i = 0; i < got; i++) {
            if (out[i]) freeReplyObject(out[i]);
            out[i] = NULL;
        }
        snprintf(err, errlen, "Redis at %s:%d: %s", s->target.host, s->target.port,
                 s->c->errstr[0] ? s->c->errstr : "no answer");
        if (!drop_connection(s, was_connected)) return -1;
    }
    return -1;
}

/* The commands of p whose script Redis had lost (their replies in out are NOSCRIPT: they did
 * not run): loads each such script, sends those commands again and puts their new replies in
 * out. 0, or -1 with err. */
static int resend_noscript(store *s, store_priv_pipe *p, redisReply **out, char *err,
                           size_t errlen) {
    size_t *idx = NULL, k = 0;
    char **cmd = NULL;
    size_t *len = NULL;
    redisReply **again = NULL;
    bool loaded[STORE_LUA_COUNT] = {false};
    int rc = -1;
    for (size_t i = 0; i < p->n; i++)
        if (p->lua[i] >= 0 && is_noscript(out[i])) k++;
    if (k == 0) return 0;
    idx = malloc(sizeof *idx * k);
    cmd = malloc(sizeof *cmd * k);
    len = malloc(sizeof *len * k);
    again = calloc(k, sizeof *again);
    if (!idx || !cmd || !len || !again) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    k = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->lua[i] < 0 || !is_noscript(out[i])) continue;
        const store_lua_script *sc = &store_lua_scripts[p->lua[i]];
        if (!loaded[p->lua[i]]) {
            const char *argv[] = {"SCRIPT", "LOAD", sc->text};
            size_t lens[] = {6, 4, sc->len};
            redisReply *r = store_priv_argv(s, 3, argv, lens, err, errlen);
            if (!r || store_priv_reply_error(r, err, errlen)) goto out;
            freeReplyObject(r);
            loaded[p->lua[i]] = true;
        }
        idx[k] = i;
        cmd[k] = p->cmd[i];
        len[k++] = p->len[i];
    }
    if (send_all(s, cmd, len, k, again, err, errlen) != 0) goto out;
    for (size_t j = 0; j < k; j++) {
        freeReplyObject(out[idx[j]]);
        out[idx[j]] = again[j];
    }
    rc = 0;
out:
    free(idx);
    free(cmd);
    free(len);
    free(again);
    return rc;
}

int store_priv_pipe_run(store *s, store_priv_pipe *p, redisReply **out, char *err, size_t errlen) {
    if (p->oom) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (p->n == 0) return 0;
    if (send_all(s, p->cmd, p->len, p->n, out, err, errlen) != 0) return -1;
    if (resend_noscript(s, p, out, err, errlen) == 0) return 0;
    for (size_t i = 0; i < p->n; i++) {
        freeReplyObject(out[i]);
        out[i] = NULL;
    }
    return -1;
}

int store_priv_pipe_each(store *s, store_priv_pipe *p, bool tolerate_errors,
                         int (*each)(size_t i, redisReply *r, void *ud), void *ud, char *err,
                         size_t errlen) {
    if (p->oom) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (p->n == 0) return 0;
    redisReply **out = calloc(p->n, sizeof *out);
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = store_priv_pipe_run(s, p, out, err, errlen);
    for (size_t i = 0; i < p->n; i++) {
        if (rc == 0 && !tolerate_errors && out[i]->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "Redis: %s", out[i]->str);
            rc = -1;
        }
        if (rc == 0 && each(i, out[i], ud) != 0) rc = -1;
        if (out[i]) freeReplyObject(out[i]);
    }
    free(out);
    return rc;
}

int store_priv_ignore_reply(size_t i, redisReply *r, void *ud) {
    (void)i, (void)r, (void)ud;
    return 0;
}

int store_ping(store *s, int timeout_ms, char *err, size_t errlen) {
    if (ensure(s, err, errlen) != 0) return -1;
    redisSetTimeout(s->c, tv_ms(timeout_ms));
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    redisReply *r = store_priv_argv(s, 1, argv, lens, err, errlen);
    int rc = -1;
    if (r) {
        if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0)
            rc = 0;
        else
            snprintf(err, errlen, "Redis answered PING with %s",
                     r->type == REDIS_REPLY_ERROR ? r->str : "something else");
        freeReplyObject(r);
    }
    if (s->c) redisSetTimeout(s->c, tv_ms(COMMAND_TIMEOUT_MS));
    return rc;
}

int store_lock_many(store *s, const char *const *keys, size_t n, const char *token, long ttl_ms,
                    bool *got, char *err, size_t errlen) {
    if (n == 0) return 0;
    const char **args = malloc(sizeof *args * (n + 2));
    char ttl[24];
    if (!args) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(ttl, sizeof ttl, "%ld", ttl_ms);
    memcpy(args, keys, sizeof *keys * n);
    args[n] = token;
    args[n + 1] = ttl;
    redisReply *r = store_priv_eval_strs(s, STORE_LUA_LOCK, (int)n, args, (int)n + 2, err, errlen);
    free(args);
    if (!r) return -1;
    for (size_t i = 0; i < n; i++)
        got[i] = r->type == REDIS_REPLY_ARRAY && i < r->elements && r->element[i]->integer == 1;
    freeReplyObject(r);
    return 0;
}

int store_unlock_many(store *s, const char *const *keys, size_t n, const char *token, char *err,
                      size_t errlen) {
    if (n == 0) return 0;
    const char **args = malloc(sizeof *args * (n + 1));
    if (!args) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(args, keys, sizeof *keys * n);
    args[n] = token;
    redisReply *r =
        store_priv_eval_strs(s, STORE_LUA_UNLOCK, (int)n, args, (int)n + 1, err, errlen);
    free(args);
    if (!r) return -1;
    freeReplyObject(r);
    return 0;
}

int store_aof_status(store *s, bool *aof, char *fsync, size_t size, char *err, size_t errlen) {
    *aof = false;
    fsync[0] = '\0';
    redisReply *r = store_priv_cmd(s, err, errlen, "INFO persistence");
    if (!r || store_priv_reply_error(r, err, errlen)) return -1;
    if (r->type == REDIS_REPLY_STRING) *aof = strstr(r->str, "aof_enabled:1") != NULL;
    freeReplyObject(r);
    /* Managed Redis services may refuse CONFIG: an error reply leaves fsync "". */
    r = store_priv_cmd(s, err, errlen, "CONFIG GET appendfsync");
    if (!r) return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->str)
        snprintf(fsync, size, "%s", r->element[1]->str);
    freeReplyObject(r);
    return 0;
}

/* ---------------------------------------------------------------- the per-thread pool */

struct store_pool {
    struct redis_target target;
    pthread_key_t mine; /* the calling thread's handle */
    pthread_mutex_t lock;
    store *all; /* every thread's handle, linked by next */
};

store_pool *store_pool_new(const struct redis_target *target) {
    store_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->target = *target;
    if (per_thread_init(&p->mine, &p->lock) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

store *store_pool_get(store_pool *p) {
    store *s = pthread_getspecific(p->mine);
    if (s) return s;
    s = store_new(&p->target);
    if (!s) return NULL;
    if (pthread_setspecific(p->mine, s) != 0) {
        store_free(s);
        return NULL;
    }
    pthread_mutex_lock(&p->lock);
    s->next = p->all;
    p->all = s;
    pthread_mutex_unlock(&p->lock);
    return s;
}

void store_pool_free(store_pool *p) {
    if (!p) return;
    store *s = p->all;
    while (s) {
        store *next = s->next;
        store_free(s);
        s = next;
    }
    per_thread_cleanup(p->mine, &p->lock);
    free(p);
}
