/* worker — the pool of worker threads (WORKERS live ones and one job thread per direction for
 * jobs' corrections), the scheduler loop that gives each read a thread and a reader slot, and
 * the heartbeat. One read's walk is in worker_batch.c; see
 * service/worker_priv.h for the map and include/worker.h for the interface. */
#include "worker_priv.h"

#include "log.h"
#include "metrics.h"
#include "pace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK_MS        500 /* an idle read waits this long (and then checks the switch) */
#define CLAIM_EVERY_MS  2000
#define UNPARK_EVERY_MS 2000
#define SF_FILL_MS      50  /* under load, batches toward Salesforce start this far apart */
#define MKTO_SOON_MS    100 /* a paced read due this soon keeps its thread free for it */
#define FIX_READ_MAX                                                                               \
    200                 /* corrections per queue and read: a live change that arrives while        \
                           a thread applies them waits for one such batch at most */
#define JOB_THREADS 2   /* threads for jobs' corrections, one per direction, beside WORKERS */
#define JOB_IDLE_MS 200 /* a job thread with no correction to read waits this long */
#define FIX_SF_USAGE                                                                               \
    0.8 /* corrections toward Salesforce wait while the org's allowance is                         \
           used beyond this (live changes need what is left) */

void worker_hold_clear(held *h) {
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->nids; i++)
        free(h->ids[i]);
    for (size_t i = 0; i < h->nkeys; i++)
        free(h->keys[i]);
    free(h->ids);
    free(h->keys);
    free(h->qs);
    h->qs = NULL;
    h->ids = h->keys = NULL;
    h->nids = h->nkeys = h->capkeys = 0;
    pthread_mutex_unlock(&h->lock);
}

/* Publishes the entries and locks of the batch now in progress. */
void worker_hold_set(held *h, const store_entry *e, size_t n, const char *const *keys, size_t nk,
                     const char *token) {
    worker_hold_clear(h);
    pthread_mutex_lock(&h->lock);
    h->ids = calloc(n ? n : 1, sizeof *h->ids);
    h->qs = calloc(n ? n : 1, sizeof *h->qs);
    h->capkeys = 2 * (nk + 1);
    h->keys = calloc(h->capkeys, sizeof *h->keys);
    for (size_t i = 0; h->ids && h->qs && i < n; i++)
        if ((h->ids[h->nids] = strdup(e[i].id)) != NULL) h->qs[h->nids++] = e[i].q;
    for (size_t i = 0; h->keys && i < nk; i++)
        if ((h->keys[h->nkeys] = strdup(keys[i])) != NULL) h->nkeys++;
    snprintf(h->token, sizeof h->token, "%s", token);
    pthread_mutex_unlock(&h->lock);
}

void worker_hold_add_key(held *h, const char *key) {
    pthread_mutex_lock(&h->lock);
    if (h->keys && h->nkeys < h->capkeys && (h->keys[h->nkeys] = strdup(key)) != NULL) h->nkeys++;
    pthread_mutex_unlock(&h->lock);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* How far apart batches toward Salesforce start under load (a full call's worth goes at
 * once), by the share of the org's API allowance used (sf_api_usage_share). */
static long sf_fill_ms(double api_share) {
    if (api_share >= 0.9) return 5000;
    if (api_share >= 0.8) return 1000;
    if (api_share >= 0.5) return 250;
    return SF_FILL_MS;
}

/* Whether the events parked under `pid` may go back into their queues: a program's once its
 * mapping is enabled again (or gone: its events are then unmapped and dropped as such), a
 * spent allowance's once the CRM has room again (quota.h). */
static bool may_unpark(wctx *w, const char *pid) {
    char err[STORE_ERR_MAX];
    if (strncmp(pid, "quota:", 6) == 0)
        return !(strcmp(pid + 6, "marketo") == 0 ? crm_marketo_spent(w->c)
                                                 : crm_salesforce_spent(w->c));
    mapping m;
    store_found rc = store_mapping_get(w->st, pid, &m, err, sizeof err);
    return rc == STORE_NOT_FOUND || (rc == STORE_FOUND && m.enabled);
}

static void unpark_ready(wctx *w) {
    char err[STORE_ERR_MAX];
    char **pids = NULL;
    long n = store_parked_programs(w->st, &pids, err, sizeof err);
    for (long i = 0; i < n; i++) {
        if (may_unpark(w, pids[i])) {
            long moved = store_unpark(w->st, pids[i], err, sizeof err);
            if (moved > 0)
                LOGF(LOG_INFO, "worker: %ld parked events of %s are queued again", moved, pids[i]);
        }
        free(pids[i]);
    }
    free(pids);
}

/* What the loop keeps between turns. */
typedef struct {
    bool failing, seeded; /* Redis failed last time; the sync switch has its first value */
    int64_t last_claim, last_unpark;
    long backoff; /* the next wait while Redis fails */
} loop_state;

/* What one read holds: its reader slots and, toward Marketo, its pace. */
typedef struct {
    bool reader;     /* a slot toward Marketo (the pool's mkto_readers) */
    bool sf_slot;    /* the slot toward Salesforce (sf_readers) */
    long paced_ms;   /* the pace, when this read toward Marketo is a paced one */
    int paced_calls; /* and the calls it has room for */
    int block;       /* how long an idle read waits */
    bool want[STORE_NQUEUES];
} read_slots;

/* Whether the loop may read now: Redis answers (else waits, doubling up to 5 s) and sync is
 * on (else waits 250 ms: events wait in the queue). */
static bool may_read(wctx *w, loop_state *ls) {
    char err[STORE_ERR_MAX];
    bool enabled = true;
    if (store_group_ensure(w->st, err, sizeof err) != 0 ||
        store_sync_get(w->st, &enabled, err, sizeof err) != 0) {
        if (!ls->failing) LOG_KV(LOG_WARN, "worker: Redis unavailable; waiting", "error", err);
        ls->failing = true;
        sleep_ms(ls->backoff);
        ls->backoff = ls->backoff * 2 > 5000 ? 5000 : ls->backoff * 2;
        return false;
    }
    if (ls->failing || !ls->seeded) {
        if (ls->failing) LOG_KV(LOG_INFO, "worker: Redis is back");
        /* The switch's first value (a Redis that lost its data gets it again). */
        ls->seeded = store_sync_init(w->st, w->cfg->sync_enabled, err, sizeof err) == 0;
        bool now_on = enabled;
        if (ls->seeded && store_sync_get(w->st, &now_on, err, sizeof err) == 0) enabled = now_on;
    }
    ls->failing = false;
    ls->backoff = 100;
    if (!enabled) sleep_ms(250);
    return enabled;
}

/* Entries a stopped worker held (every CLAIM_EVERY_MS), and parked events whose wait is over
 * (every UNPARK_EVERY_MS). Returns how many entries it claimed into *entries (<= 0: none). */
static long claim_and_unpark(wctx *w, loop_state *ls, int64_t now, store_entry **entries) {
    char err[STORE_ERR_MAX];
    long n = 0;
    if (store_promote_due(w->st, now, 1000, err, sizeof err) < 0)
        LOG_KV_LIMITED(LOG_WARN, "worker: moving due retries failed", "error", err);
    if (now - ls->last_claim >= CLAIM_EVERY_MS) {
        ls->last_claim = now;
        for (int q = 0; q < STORE_NQUEUES && n <= 0; q++) {
            store_entries_free(*entries, 0);
            *entries = NULL;
            n = store_claim(w->st, (store_queue)q, w->consumer, w->cfg->claim_idle_ms, READ_MAX,
                            entries, err, sizeof err);
        }
        if (n > 0) LOGF(LOG_INFO, "worker: claimed %ld events held by a stopped worker", n);
    }
    if (now - ls->last_unpark >= UNPARK_EVERY_MS) {
        ls->last_unpark = now;
        unpark_ready(w);
    }
    return n;
}

/* A slot toward Marketo (Salesforce's queue) only when the Marketo budget and pace let a read
 * go now: otherwise its changes gather in the stream, in order, for a fuller call. */
static void take_marketo_slot(wctx *w, read_slots *s, long *gate) {
    char err[STORE_ERR_MAX];
    *gate = -1; /* -1: another thread reads toward Marketo */
    if (atomic_fetch_add(&w->pool->mkto_readers, 1) < w->pool->mkto_readers_max) {
        *gate =
            store_mkto_gate(w->st, w->cfg->marketo_calls_per_20s, w->cfg->marketo_max_concurrent,
                            PACE_LIGHT_RATE, &s->paced_ms, &s->paced_calls, err, sizeof err);
        s->reader = *gate == 0;
        if (*gate > 0 && *gate < s->block) s->block = (int)*gate;
    }
    if (!s->reader) atomic_fetch_sub(&w->pool->mkto_readers, 1);
    s->want[STORE_Q_SF] = s->reader;
}

/* Toward Salesforce one batch at a time while a batch is not full: what arrives meanwhile
 * waits for that batch's calls and goes in the next one, so that a steady stream is written in
 * fuller (fewer) calls, not in one small batch per thread; a backlog of a full call or more is
 * worked on by every thread. A paced read toward Marketo, due now or soon (gate), is not made
 * to wait for such a batch (the wait would be added to every change of the read): one thread
 * keeps itself free for it, the others take the batch (BENCHMARKS.md, "Reader slots"). */
static void take_salesforce_slot(wctx *w, read_slots *s, long gate) {
    bool soon = gate > 0 && gate <= MKTO_SOON_MS && w->pool->live > 1;
    if (soon && !w->keeping) { /* one thread waits for it; the others go on */
        bool none = false;
        w->keeping = atomic_compare_exchange_strong(&w->pool->mkto_keeper, &none, true);
    } else if (!soon && w->keeping) {
        atomic_store(&w->pool->mkto_keeper, false);
        w->keeping = false;
    }
    /* A batch that would start right after the last one lets the next changes gather a
     * moment (each batch costs a query and a write of the org's API allowance); an isolated
     * change is not held. The moment grows as the allowance is used up: spending it stops
     * every integration of the org. */
    bool sf_due =
        atomic_load(&w->pool->sf_backlog) || event_now_ms() - atomic_load(&w->pool->sf_last_ms) >=
                                                 sf_fill_ms(sf_usage_share(w->pool->sf_usage));
    bool paced_soon = (s->reader && s->paced_ms) || w->keeping;
    if (!paced_soon && sf_due) {
        s->sf_slot =
            atomic_fetch_add(&w->pool->sf_readers, 1) == 0 || atomic_load(&w->pool->sf_backlog);
        if (!s->sf_slot) atomic_fetch_sub(&w->pool->sf_readers, 1);
    }
    s->want[STORE_Q_MKTO] = s->sf_slot;
}

/* Notes the read's entries toward Salesforce: whether they fill a call (a backlog), and when
 * the last read took some. */
static void note_salesforce_read(wctx *w, const store_entry *entries, long n) {
    long k = 0;
    for (long i = 0; i < n; i++)
        k += entries[i].q == STORE_Q_MKTO;
    atomic_store(&w->pool->sf_backlog, k >= SF_COLLECTION_MAX);
    if (k) atomic_store(&w->pool->sf_last_ms, event_now_ms());
}

/* Jobs' corrections (backfill, reconciliation) of the job thread's direction (its queue),
 * read by one of the pool's job threads, never by a live one: only when some wait and the
 * direction's live queue has nothing unread, toward Marketo within the jobs' share of the
 * budget (store_fix_gate), toward Salesforce while the org's allowance has room for live
 * changes. The count; 0 when none are to be read now; -1 with err. */
static long read_fixes(wctx *w, read_slots *s, store_entry **entries, char *err, size_t errlen) {
    int room = 0;
    bool to_sf = false, busy = false;
    if (store_fix_gate(w->st, w->cfg->marketo_calls_per_20s, w->cfg->marketo_max_concurrent,
                       w->cfg->backfill_marketo_share, &room, &to_sf, &busy, err, errlen) != 0)
        return -1;
    to_sf = to_sf && sf_usage_share(w->pool->sf_usage) < FIX_SF_USAGE;
    memset(s->want, 0, sizeof s->want);
    if (w->job_q == STORE_Q_FIX_SF) {
        if (room <= 0) return 0;
        w->fix_busy = busy;
        s->want[STORE_Q_FIX_SF] = true;
        /* A full read (READ_MAX), so that a batch spread over a channel's statuses still
         * fills its status calls; its calls wait for the share's permits (run_queue_batch).
         * While the share is shrunk for a live stream (pace.h), what one call carries. */
        return store_read(w->st, w->consumer, s->want, busy ? MKTO_BATCH : READ_MAX, -1, entries,
                          err, errlen);
    }
    if (!to_sf) return 0;
    s->want[STORE_Q_FIX_MKTO] = true;
    return store_read(w->st, w->consumer, s->want, FIX_READ_MAX, -1, entries, err, errlen);
}

/* Reads what the slots allow into *entries: the count, 0 when nothing is to be read here now
 * (after a short sleep), -1 with err. What waits in the live queues the slots allow, at once;
 * when none, the live queues again, waiting a moment for a change. A paced read takes what waits,
 * not what comes next, and no more than the calls with room carry (it never reads toward Salesforce
 * as well). */
static long read_queue(wctx *w, read_slots *s, store_entry **entries, char *err, size_t errlen) {
    long gate;
    s->block = BLOCK_MS;
    take_marketo_slot(w, s, &gate);
    take_salesforce_slot(w, s, gate);
    bool live = s->want[STORE_Q_SF] || s->want[STORE_Q_MKTO];
    bool paced = s->reader && s->paced_ms;
    size_t max = paced ? (size_t)s->paced_calls * MKTO_BATCH : READ_MAX;
    long n = live ? store_read(w->st, w->consumer, s->want, max, -1, entries, err, errlen) : 0;
    if (n == 0 && live && !paced) { /* nothing ready anywhere: wait a moment for a change */
        store_entries_free(*entries, 0);
        *entries = NULL;
        n = store_read(w->st, w->consumer, s->want, max, s->block, entries, err, errlen);
    } else if (n == 0) {
        sleep_ms(s->block < 10 ? s->block : 10); /* nothing to read now, or not here */
    }
    if (s->sf_slot && n > 0) note_salesforce_read(w, *entries, n);
    return n;
}

static void give_back(wctx *w, read_slots *s) {
    if (s->reader) atomic_fetch_sub(&w->pool->mkto_readers, 1);
    if (s->sf_slot) atomic_fetch_sub(&w->pool->sf_readers, 1);
    s->reader = s->sf_slot = false;
}

/* The switch may have been turned off while the read waited: then nothing of it is applied;
 * the entries wait outside the stream until sync is on again. Returns true when so. */
static bool switched_off(wctx *w, store_entry *entries, long n) {
    char err[STORE_ERR_MAX];
    bool enabled = true;
    if (store_sync_get(w->st, &enabled, err, sizeof err) != 0 || enabled) return false;
    for (long i = 0; i < n; i++)
        if (store_defer(w->st, &entries[i], event_now_ms(), err, sizeof err) != 0)
            LOG_KV_LIMITED(LOG_WARN, "worker: could not set an entry aside; it stays pending",
                           "error", err);
    return true;
}

/* A read failed (Redis): logs it once per outage and waits the loop's backoff. */
static void read_failed(loop_state *ls, const char *err) {
    if (!ls->failing) LOG_KV(LOG_WARN, "worker: reading the queue failed", "error", err);
    ls->failing = true;
    sleep_ms(ls->backoff);
}

/* One worker thread: claims, reads, applies (worker_process_read), until the pool stops. */
static void *worker_main(void *arg) {
    wctx *w = arg;
    char err[STORE_ERR_MAX];
    loop_state ls = {.backoff = 100};
    while (!atomic_load(&w->pool->stop)) {
        if (!may_read(w, &ls)) continue;
        store_entry *entries = NULL;
        read_slots s = {0};
        long n = claim_and_unpark(w, &ls, event_now_ms(), &entries);
        if (n <= 0) {
            store_entries_free(entries, 0);
            entries = NULL;
            n = read_queue(w, &s, &entries, err, sizeof err);
        }
        if (n < 0) {
            give_back(w, &s);
            read_failed(&ls, err);
            continue;
        }
        if (n > 0 && !switched_off(w, entries, n))
            worker_process_read(w, entries, (size_t)n, &s.sf_slot, s.reader ? s.paced_ms : 0,
                                s.paced_calls);
        give_back(w, &s);
        store_entries_free(entries, (size_t)n);
    }
    return NULL;
}

/* One job thread: reads and applies jobs' corrections of its direction (read_fixes), until the
 * pool stops. Corrections have threads of their own so that a job never takes a thread from
 * live changes, and a correction toward Marketo that waits for the jobs' share of the budget
 * does not hold up those toward Salesforce. */
static void *job_main(void *arg) {
    wctx *w = arg;
    char err[STORE_ERR_MAX];
    loop_state ls = {.backoff = 100};
    while (!atomic_load(&w->pool->stop)) {
        if (!may_read(w, &ls)) continue;
        store_entry *entries = NULL;
        read_slots s = {0};
        long n = read_fixes(w, &s, &entries, err, sizeof err);
        if (n < 0) {
            read_failed(&ls, err);
            continue;
        }
        if (n == 0) sleep_ms(JOB_IDLE_MS);
        if (n > 0 && !switched_off(w, entries, n))
            worker_process_read(w, entries, (size_t)n, &s.sf_slot, 0, 0);
        store_entries_free(entries, (size_t)n);
    }
    return NULL;
}

/* Keeps every batch in progress alive: its entries' idle time and its locks are renewed
 * three times per CLAIM_IDLE_MS, so only a worker that really stopped loses them. */
static void *heartbeat_main(void *arg) {
    worker_pool *p = arg;
    long every = p->cfg->claim_idle_ms / 3 > 50 ? p->cfg->claim_idle_ms / 3 : 50;
    char err[STORE_ERR_MAX];
    while (!atomic_load(&p->stop)) {
        for (long slept = 0; slept < every && !atomic_load(&p->stop); slept += 50)
            sleep_ms(50);
        for (int i = 0; i < p->n; i++) {
            held *h = &p->ctx[i].hold;
            pthread_mutex_lock(&h->lock);
            if (h->nids) {
                /* XCLAIM names one stream: the ids of each queue apart. */
                const char **ids = calloc(h->nids, sizeof *ids);
                for (int q = 0; ids && q < STORE_NQUEUES; q++) {
                    size_t k = 0;
                    for (size_t j = 0; j < h->nids; j++)
                        if (h->qs[j] == (store_queue)q) ids[k++] = h->ids[j];
                    if (k && store_touch(p->hb_store, (store_queue)q, p->ctx[i].consumer, ids, k,
                                         err, sizeof err) != 0)
                        LOG_KV_LIMITED(LOG_WARN, "worker: heartbeat could not renew entries",
                                       "error", err);
                }
                free(ids);
                bool *got = calloc(h->nkeys ? h->nkeys : 1, sizeof *got);
                if (got && h->nkeys &&
                    store_lock_many(p->hb_store, (const char *const *)h->keys, h->nkeys, h->token,
                                    p->cfg->claim_idle_ms, got, err, sizeof err) != 0)
                    LOG_KV_LIMITED(LOG_WARN, "worker: heartbeat could not renew locks", "error",
                                   err);
                free(got);
            }
            pthread_mutex_unlock(&h->lock);
        }
    }
    return NULL;
}

/* Starts thread i of the pool: a live one (job_q < 0) or the job thread of queue job_q. 0, or
 * -1 with err. */
static int start_thread(worker_pool *p, int i, int job_q, char *err, size_t errlen) {
    char host[64] = "host";
    if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "host");
    wctx *w = &p->ctx[i];
    w->pool = p;
    w->cfg = p->cfg;
    w->index = i;
    w->job_q = job_q;
    w->rnd = (unsigned)(time(NULL) ^ (getpid() << 8) ^ i);
    snprintf(w->consumer, sizeof w->consumer, "%s-%d-%d", host, (int)getpid(), i);
    w->st = store_new(&p->cfg->redis);
    w->c = w->st ? crm_new(p->cfg, w->st, w->consumer, p->sf_usage) : NULL;
    if (!w->c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* A stopping worker does not wait for a permit, nor long for one: after that,
     * Marketo-bound events wait outside the queue for the budget (without spending an
     * attempt) while the thread goes on. */
    crm_set_budget_wait(w->c, BUDGET_WAIT_MS, &p->stop);
    if (pthread_create(&p->threads[i], NULL, job_q < 0 ? worker_main : job_main, w) != 0) {
        snprintf(err, errlen, "cannot start worker thread %d", i);
        return -1;
    }
    p->n++;
    return 0;
}

worker_pool *worker_pool_start(const struct config *cfg, int threads, char *err, size_t errlen) {
    worker_pool *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->cfg = cfg;
    p->sf_usage = sf_usage_new();
    /* Threads that may work on the queue toward Marketo at once: all but one (so that one
     * is always free for changes toward Salesforce), and no more than Marketo calls may be
     * in flight. A single thread does both. */
    p->mkto_readers_max = threads <= 1 ? 1 : threads - 1;
    if (p->mkto_readers_max > cfg->marketo_max_concurrent)
        p->mkto_readers_max = cfg->marketo_max_concurrent;
    /* The live threads, then one job thread per direction. */
    int all = threads + JOB_THREADS;
    p->threads = calloc((size_t)all, sizeof *p->threads);
    p->ctx = calloc((size_t)all, sizeof *p->ctx);
    /* cap: the contexts whose lock is made (worker_pool_stop destroys those). */
    while (p->ctx && p->cap < all && pthread_mutex_init(&p->ctx[p->cap].hold.lock, NULL) == 0)
        p->cap++;
    if (!p->threads || !p->ctx || !p->sf_usage || p->cap < all) {
        snprintf(err, errlen, "out of memory");
        worker_pool_stop(p);
        return NULL;
    }
    p->live = threads;
    for (int i = 0; i < all; i++) {
        store_queue job_q = i == threads ? STORE_Q_FIX_SF : STORE_Q_FIX_MKTO;
        if (start_thread(p, i, i < threads ? -1 : (int)job_q, err, errlen) != 0) {
            worker_pool_stop(p);
            return NULL;
        }
    }
    p->hb_store = store_new(&cfg->redis);
    if (!p->hb_store || pthread_create(&p->heartbeat, NULL, heartbeat_main, p) != 0) {
        snprintf(err, errlen, "cannot start the worker heartbeat");
        worker_pool_stop(p);
        return NULL;
    }
    p->heartbeat_running = true;
    return p;
}

void worker_pool_stop(worker_pool *p) {
    if (!p) return;
    atomic_store(&p->stop, true);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    if (p->heartbeat_running) pthread_join(p->heartbeat, NULL);
    store_free(p->hb_store);
    /* Also the clients of a thread that failed to start. */
    for (int i = 0; p->ctx && i < p->cap; i++) {
        crm_free(p->ctx[i].c);
        store_free(p->ctx[i].st);
        worker_hold_clear(&p->ctx[i].hold);
        for (int k = 0; k < STATUS_CACHE_MAX; k++)
            worker_status_cache_clear(&p->ctx[i].statuses[k]);
        pthread_mutex_destroy(&p->ctx[i].hold.lock);
    }
    free(p->threads);
    free(p->ctx);
    sf_usage_free(p->sf_usage);
    free(p);
}

int worker_ready_check(void *ud, store *st, char *detail, size_t len) {
    const struct config *cfg = ud;
    char err[STORE_ERR_MAX];
    bool enabled = true;
    int64_t last = 0;
    long long depth = 0;
    double age = 0;
    if (!st || store_sync_get(st, &enabled, err, sizeof err) != 0 ||
        store_progress_get(st, &last, err, sizeof err) != 0 ||
        store_queue_stats(st, &depth, &age, err, sizeof err) != 0) {
        snprintf(detail, len, "cannot read worker progress: %s", st ? err : "out of memory");
        return -1;
    }
    if (!enabled || depth == 0) return 0;
    int64_t idle = event_now_ms() - (last ? last : event_now_ms() - (int64_t)(age * 1000));
    if (idle > (int64_t)cfg->ready_stall_s * 1000 && age > cfg->ready_stall_s) {
        snprintf(detail, len, "%lld events wait and no worker finished one for %lld s", depth,
                 (long long)(idle / 1000));
        return -1;
    }
    return 0;
}
