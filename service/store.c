/* store — Redis connection, key layout and scripts. See include/store.h. */
#include "store.h"

#include "log.h"

#include <errno.h>
#include <hiredis.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONNECT_TIMEOUT_MS 1000
#define COMMAND_TIMEOUT_MS 3000
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000

struct store {
    struct redis_target target;
    redisContext *c;
    int64_t next_try_ms; /* monotonic; no reconnect before this after a failure */
    int backoff_ms;
    struct store *next; /* per-thread registry */
};

/* ---- scripts ---- */

typedef struct {
    const char *text;
    char sha[41];
} script;

/* Appends events whose de-duplication key is absent, and sets that key to the new entry's
 * id, in one atomic step. KEYS: stream, dedup keys...; ARGV: ttl, event JSON... */
static script enqueue_script = {
    "local out = {}\n"
    "for i = 2, #KEYS do\n"
    "  if redis.call('EXISTS', KEYS[i]) == 1 then\n"
    "    out[i - 1] = false\n"
    "  else\n"
    "    local id = redis.call('XADD', KEYS[1], '*', 'event', ARGV[i], 'attempts', '0')\n"
    "    redis.call('SET', KEYS[i], id, 'EX', ARGV[1])\n"
    "    out[i - 1] = id\n"
    "  end\n"
    "end\n"
    "return out\n",
    ""};

static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void hash_script(script *sc) {
    unsigned char d[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)sc->text, strlen(sc->text), d);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++) snprintf(sc->sha + 2 * i, 3, "%02x", d[i]);
}

static void hash_scripts(void) { hash_script(&enqueue_script); }

/* ---- connection ---- */

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval tv_ms(int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

store *store_open(const struct redis_target *target) {
    pthread_once(&sha_once, hash_scripts);
    store *s = calloc(1, sizeof *s);
    if (s) s->target = *target;
    return s;
}

void store_free(store *s) {
    if (!s) return;
    if (s->c) redisFree(s->c);
    free(s);
}

static void fail_connect(store *s) {
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (s->backoff_ms > BACKOFF_MAX_MS) s->backoff_ms = BACKOFF_MAX_MS;
    s->next_try_ms = mono_ms() + s->backoff_ms;
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
    if (mono_ms() < s->next_try_ms) {
        snprintf(err, errlen, "Redis at %s:%d is unreachable (next attempt in %d ms)",
                 s->target.host, s->target.port, (int)(s->next_try_ms - mono_ms()));
        return -1;
    }
    redisContext *c = redisConnectWithTimeout(s->target.host, s->target.port,
                                              tv_ms(CONNECT_TIMEOUT_MS));
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
    return 0;
}

/* A connection that Redis closed (restart) is worth one immediate retry on a fresh one. */
static bool stale_connection(const redisContext *c) {
    return c->err == REDIS_ERR_EOF ||
           (c->err == REDIS_ERR_IO && (errno == ECONNRESET || errno == EPIPE));
}

/* Sends one command; NULL with err on a connection problem. Error replies are returned as
 * replies (type REDIS_REPLY_ERROR) for the caller to judge. */
static redisReply *run(store *s, int argc, const char **argv, const size_t *lens, char *err,
                       size_t errlen) {
    for (int attempt = 0; attempt < 2; attempt++) {
        bool was_connected = s->c != NULL;
        if (ensure(s, err, errlen) != 0) return NULL;
        redisReply *r = redisCommandArgv(s->c, argc, argv, lens);
        if (r) return r;
        snprintf(err, errlen, "Redis at %s:%d: %s", s->target.host, s->target.port,
                 s->c->errstr);
        bool retry = was_connected && stale_connection(s->c);
        redisFree(s->c);
        s->c = NULL;
        if (!retry) {
            fail_connect(s);
            return NULL;
        }
    }
    return NULL;
}

/* EVALSHA, falling back to EVAL when Redis lost its script cache (restart, SCRIPT FLUSH). */
static redisReply *run_script(store *s, script *sc, int nkeys, int argc, const char **argv,
                              const size_t *lens, char *err, size_t errlen) {
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
    a[1] = sc->sha;
    a[2] = nk;
    l[0] = 7;
    l[1] = 40;
    l[2] = strlen(nk);
    memcpy(a + 3, argv, sizeof *a * (size_t)argc);
    memcpy(l + 3, lens, sizeof *l * (size_t)argc);
    r = run(s, argc + 3, a, l, err, errlen);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        a[0] = "EVAL";
        l[0] = 4;
        a[1] = sc->text;
        l[1] = strlen(sc->text);
        r = run(s, argc + 3, a, l, err, errlen);
    }
out:
    free(a);
    free(l);
    return r;
}

int store_ping(store *s, int timeout_ms, char *err, size_t errlen) {
    if (ensure(s, err, errlen) != 0) return -1;
    redisSetTimeout(s->c, tv_ms(timeout_ms));
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    redisReply *r = run(s, 1, argv, lens, err, errlen);
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

int store_enqueue(store *s, const event *evs, size_t n, bool *added, char *err, size_t errlen) {
    if (n == 0) return 0;
    size_t argc = 1 + n + 1 + n; /* stream, keys, ttl, payloads */
    const char **argv = calloc(argc, sizeof *argv);
    size_t *lens = calloc(argc, sizeof *lens);
    char **owned = calloc(2 * n, sizeof *owned);
    char ttl[16];
    int rc = -1;
    redisReply *r = NULL;
    if (!argv || !lens || !owned) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    snprintf(ttl, sizeof ttl, "%d", STORE_DEDUP_TTL_S);
    argv[0] = STORE_STREAM;
    argv[n + 1] = ttl;
    for (size_t i = 0; i < n; i++) {
        size_t klen = strlen(evs[i].id) + 32;
        owned[i] = malloc(klen);
        owned[n + i] = event_to_json(&evs[i]);
        if (!owned[i] || !owned[n + i]) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        snprintf(owned[i], klen, "cs:dedup:%s:%s",
                 evs[i].source == SRC_SALESFORCE ? "sf" : "mkto", evs[i].id);
        argv[1 + i] = owned[i];
        argv[n + 2 + i] = owned[n + i];
    }
    for (size_t i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    r = run_script(s, &enqueue_script, (int)(n + 1), (int)argc, argv, lens, err, errlen);
    if (!r) goto out;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        snprintf(err, errlen, "Redis refused the events: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected answer");
        goto out;
    }
    for (size_t i = 0; i < n; i++) added[i] = r->element[i]->type == REDIS_REPLY_STRING;
    rc = 0;
out:
    if (r) freeReplyObject(r);
    if (owned)
        for (size_t i = 0; i < 2 * n; i++) free(owned[i]);
    free(owned);
    free(argv);
    free(lens);
    return rc;
}

int store_queue_stats(store *s, long long *depth, double *oldest_age_s, char *err,
                      size_t errlen) {
    const char *xlen[] = {"XLEN", STORE_STREAM};
    size_t xlen_l[] = {4, strlen(STORE_STREAM)};
    redisReply *r = run(s, 2, xlen, xlen_l, err, errlen);
    if (!r) return -1;
    *depth = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    *oldest_age_s = 0;
    if (*depth == 0) return 0;
    const char *xr[] = {"XRANGE", STORE_STREAM, "-", "+", "COUNT", "1"};
    size_t xr_l[] = {6, strlen(STORE_STREAM), 1, 1, 5, 1};
    r = run(s, 6, xr, xr_l, err, errlen);
    if (!r) return -1;
    /* The entry id starts with the millisecond time it was added. */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements >= 1) {
        long long added_ms = strtoll(r->element[0]->element[0]->str, NULL, 10);
        double age = (double)(event_now_ms() - added_ms) / 1000.0;
        *oldest_age_s = age > 0 ? age : 0;
    }
    freeReplyObject(r);
    return 0;
}

/* ---- per-thread handles ---- */

static struct redis_target thread_target;
static pthread_mutex_t thread_lock = PTHREAD_MUTEX_INITIALIZER;
static store *thread_stores;
static _Thread_local store *thread_store;

void store_thread_setup(const struct redis_target *target) { thread_target = *target; }

store *store_thread(void) {
    if (thread_store) return thread_store;
    store *s = store_open(&thread_target);
    if (!s) return NULL;
    pthread_mutex_lock(&thread_lock);
    s->next = thread_stores;
    thread_stores = s;
    pthread_mutex_unlock(&thread_lock);
    thread_store = s;
    return s;
}

void store_thread_cleanup(void) {
    pthread_mutex_lock(&thread_lock);
    store *s = thread_stores;
    thread_stores = NULL;
    pthread_mutex_unlock(&thread_lock);
    while (s) {
        store *next = s->next;
        store_free(s);
        s = next;
    }
    thread_store = NULL;
}
