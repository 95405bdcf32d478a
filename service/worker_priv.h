/* worker_priv — what the worker's files share: the pool, a thread's context, one batch and its
 * items, and the helpers every step uses.
 *
 * It sits beside the worker's sources, not in include/, on purpose: no other module may
 * depend on the shape of a batch (include/worker.h is the worker's interface). The walk of one
 * read, file by file:
 *   worker.c             the pool, the scheduler loop and its reader slots, the heartbeat
 *   worker_batch.c       one batch: parse, mapping, member locks, recorded state, plan, the
 *                        statuses a plan needs read first
 *   worker_people_sf.c   who each change's Salesforce person is (found, or created as a Lead)
 *   worker_write_sf.c    the CampaignMember writes toward Salesforce
 *   worker_people_mkto.c who each change's Marketo lead is (found or created), then the plan
 *                        again under the lead's member lock
 *   worker_write_mkto.c  the Marketo pace and the program status writes toward Marketo
 *   worker_finish.c      record, retry or dead-letter, park, audit, trace, acknowledge
 * Every decision is plan's (plan.h, pace.h); these files read, lock, write and record. */
#ifndef CS_WORKER_PRIV_H
#define CS_WORKER_PRIV_H

#include "worker.h"

#include "config.h"
#include "crm.h"
#include "event.h"
#include "marketo.h"
#include "plan.h"
#include "salesforce.h"
#include "status_map.h"
#include "store.h"
#include "store_budget.h"
#include "store_dead.h"
#include "store_mappings.h"
#include "store_members.h"
#include "store_queue.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define READ_MAX            1200  /* events per read under load: 6 x 200 (Salesforce), 4 x 300 */
#define DEFER_MS            20    /* a busy member's event is tried again this soon */
#define BUDGET_WAIT_MS      5000  /* longest wait for a Marketo permit before deferring */
#define FIX_BUDGET_WAIT_MS  15000 /* the same for jobs' corrections (within CLAIM_IDLE_MS) */
#define FIX_BUSY_WAIT_MS    1     /* and for them while live changes stream toward Marketo */
#define PEOPLE_READ_WAIT_MS 250   /* and for reading leads' sfdc ids toward Salesforce */
#define MKTO_BATCH          300   /* leads per Marketo call (leads.json, members/status.json) */

struct worker_pool {
    const struct config *cfg;
    int n, cap; /* threads started; contexts made */
    int live;   /* the live threads (WORKERS), ctx[0..live); then the job threads */
    pthread_t *threads;
    struct wctx *ctx;
    atomic_bool stop;
    atomic_int mkto_readers; /* threads now reading or applying the queue toward Marketo */
    int mkto_readers_max;
    atomic_int sf_readers;      /* threads now reading or applying the queue toward Salesforce */
    atomic_bool mkto_keeper;    /* a thread keeps itself free for a paced read due soon */
    atomic_bool sf_backlog;     /* the last read toward Salesforce filled a call or more */
    _Atomic int64_t sf_last_ms; /* when the last read toward Salesforce took something */
    pthread_t heartbeat;
    bool heartbeat_running;
    store *hb_store;
    sf_usage *sf_usage; /* the org's API usage as the pool's clients see it */
};

/* What a worker holds while it works on a batch, for the heartbeat to keep alive. */
typedef struct {
    pthread_mutex_t lock;
    char **ids, **keys;
    store_queue *qs; /* the queue of each id */
    size_t nids, nkeys, capkeys;
    char token[200];
} held;

/* The member statuses of campaigns, as a worker keeps them (worker_write_sf.c). */
#define STATUS_CACHE_MAX  64   /* campaigns whose member statuses a worker keeps */
#define STATUS_LABELS_MAX 1000 /* member statuses kept per campaign */
#define STATUS_ASK_MAX    50   /* campaigns read per batch (<= the cache, <= one query) */

/* A campaign's member status labels as last read. */
typedef struct {
    char campaign[16]; /* 15-character id; "" for a free slot */
    int64_t read_ms;
    char **labels;
    size_t n;
    bool complete; /* false: the campaign has more than STATUS_LABELS_MAX, a miss decides nothing */
} status_cache;

/* One worker thread. */
typedef struct wctx {
    worker_pool *pool;
    const struct config *cfg;
    int index;
    int job_q; /* a job thread: the corrections queue it reads (store_queue); -1: a live thread */
    store *st;
    crm *c; /* this thread's CRM clients, paced by the shared Marketo budget */
    char consumer[128];
    unsigned long seq;
    unsigned rnd;
    bool keeping;  /* this thread is the pool's mkto_keeper */
    bool fix_busy; /* its corrections were read while live changes stream toward Marketo */
    held hold;
    status_cache statuses[STATUS_CACHE_MAX];
} wctx;

/* One queued change in a batch: its event, plan, what the worker learned, where it stands. */
typedef struct {
    store_entry *e;
    event ev;
    bool parsed;
    const mapping *map; /* the batch's copy of the event's mapping; NULL: none */
    char campaign[EV_SFID_MAX];
    char lead[EV_NUMID_MAX]; /* Marketo lead id when known */
    char lock_key[160];
    bool locked;
    char lead_lock[160]; /* taken once a Salesforce item learns its Marketo lead */
    int mk_chunk;        /* the lead-resolution chunk this item was looked up in (0: none) */
    bool mk_lead_sure;   /* its lead, found by email, is linked to its person or to nobody */
    int64_t defer_until; /* IT_DEFER: not before this time (0: at once) */
    bool mk_grouped;     /* already part of a Marketo write call of this batch */
    member_state st;
    plan_result p;
    it_state state;
    const char *target; /* CRM that failed, for retries_total */
    char error[700];
    long retry_after_ms;
    /* resolution */
    char sf_person[EV_SFID_MAX];
    char cm_id[EV_SFID_MAX];
    bool backward;
    char mkto_now[STATUS_LABEL_MAX]; /* Marketo's status as read after its 1037 */
    char dead_id[40];                /* IT_DEAD: the dead letter's id, once stored */
    /* The Salesforce ids Marketo's own sync keeps on the item's Marketo lead (as read). */
    char sfdc_contact[EV_SFID_MAX], sfdc_lead[EV_SFID_MAX];
} item;

/* The changes of one queue that one thread applies together. */
typedef struct {
    wctx *w;
    item *items;
    size_t n;
    const char *token; /* this batch's lock token */
    mapping **maps;    /* the mappings this batch read, one copy each */
    size_t nmaps;
    int64_t sf_mark, mkto_mark; /* this batch's pending-write marks (0: none set) */
    long paced_ms;              /* a paced read toward Marketo: its pace (else 0) */
    int paced_calls;            /* and the calls the pace has room for */
} batch;

/* ---- worker.c: what the heartbeat keeps alive */
void worker_hold_set(held *h, const store_entry *e, size_t n, const char *const *keys, size_t nk,
                     const char *token);
void worker_hold_add_key(held *h, const char *key);
void worker_hold_clear(held *h);

/* ---- worker_batch.c */
/* Applies one read: the changes toward Salesforce, then those toward Marketo, each as a batch;
 * *sf_slot (a reader slot toward Salesforce) is given back as soon as that side is done. */
void worker_process_read(wctx *w, store_entry *entries, size_t n, bool *sf_slot, long paced_ms,
                         int paced_calls);
/* Sets an item's outcome (state s, the CRM that failed, a Retry-After, the reason); the first
 * permanent reason stays. */
void item_fail(item *it, it_state s, const char *target, long retry_after_ms, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* What a failed call means for its items (plan_after_failure). */
it_state item_mk_failed(const mk_error *e);
it_state item_sf_failed(const sf_error *e);
/* Plans an item again on its recorded state (waiting for a write of ours still landing). */
void item_replan(batch *b, item *it);
/* Reads the recorded state of the items idx[0..n) in one round trip: 0, or -1 with err. */
int batch_read_states(batch *b, const size_t *idx, size_t n, char *err, size_t errlen);
/* Marks the members about to be written on one side, before the write (store.h). */
void batch_mark_writes(batch *b, bool salesforce);
/* How long member and person locks live (explicitly released; this only for a dead worker). */
long worker_lock_ttl_ms(const wctx *w);
/* src in lower case into dst (size). */
void worker_lower(char *dst, size_t size, const char *src);
/* The status of lead among a program's members, or NULL when it is not a member. */
const char *worker_member_status(const mk_member *m, size_t n, const char *lead);
/* An sf_error for running out of memory (retried). */
void worker_sf_oom(sf_error *err);

/* ---- worker_people_sf.c: who each change toward Salesforce is about */
void batch_sf_people(batch *b);

/* ---- worker_write_sf.c */
void batch_write_salesforce(batch *b);
void worker_status_cache_clear(status_cache *c);

/* ---- worker_people_mkto.c: who each change toward Marketo is about, then planned again */
void batch_mkto_people(batch *b);
bool item_needs_lead(const item *it);
const char *item_sf_person(const item *it);

/* ---- worker_write_mkto.c */
bool item_to_marketo(const item *it);
void batch_pace_marketo(batch *b);
void batch_write_marketo(batch *b);

/* ---- worker_finish.c */
/* Records, dead-letters, retries, parks, audits, traces and acknowledges every item. */
void batch_finish(batch *b);
/* A drop whose plan asks for it still records the event's side and time. */
void batch_record_drop(wctx *w, item *it);
/* Parks an entry until the CRM's daily allowance has room (cs:parked:quota:<crm>). */
void worker_park_for_quota(wctx *w, const store_entry *e, const char *target);

#endif
