/* poller — deleted-records poll and program fields copy. See include/poller.h. */
#include "poller.h"

#include "crm.h"
#include "event.h"
#include "log.h"
#include "marketo.h"
#include "metrics.h"
#include "jobs.h"
#include "salesforce.h"
#include "status_map.h"
#include "store.h"
#include "store_mappings.h"
#include "store_members.h"
#include "store_queue.h"
#include "store_trace.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS           500
#define PROGRAM_DEFER_MAX 12 /* times a periodic copy yields to waiting events */
#define DELETED_BATCH     100
#define MINUTE_MS         60000
/* REST API guide, "sObject Get Deleted": results reach back no more than 15 days (an hour of
 * margin for clocks and the call's own day boundary). */
#define DELETED_MAX_BACK_MS (15 * 86400000LL - 3600000LL)
/* SOAP API guide, getDeleted(): start must precede end by more than one minute, and the
 * seconds are ignored; two whole minutes satisfy both readings. */
#define DELETED_MIN_WINDOW_MS (2 * MINUTE_MS)

struct poller {
    const struct config *cfg;
    pthread_t thread;
    atomic_bool stop;
    store *st;
    crm *c;
    char token[128];
    int64_t deleted_span_ms;  /* after EXCEEDED_ID_LIMIT: the shorter window to ask (0: all) */
    int64_t deleted_earliest; /* the delete log's last earliestDateAvailable (0: unknown) */
    unsigned rnd;             /* jitter of program copy retries */
};

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Takes the job's lock for ttl_ms (left to expire: that spaces the runs of all processes). */
static bool take_turn(poller *p, const char *job, long ttl_ms) {
    char key[96], err[STORE_ERR_MAX];
    snprintf(key, sizeof key, "cs:lock:poll:%s", job);
    const char *keys[] = {key};
    bool got = false;
    if (store_lock_many(p->st, keys, 1, p->token, ttl_ms, &got, err, sizeof err) != 0) return false;
    return got;
}

/* ---- Salesforce deletions ---- */

/* The deleted-records poll's cursor: where the delete log has been read up to (the last
 * latestDateCovered), as an ISO time in cs:kv:sf-deleted-start. 0 when none yet. */
static int64_t deleted_cursor(poller *p) {
    char err[STORE_ERR_MAX], text[40] = "";
    int64_t ms = 0;
    if (store_kv_get(p->st, "sf-deleted-start", text, sizeof text, err, sizeof err) !=
            STORE_FOUND ||
        event_parse_time(text, &ms) != 0)
        return 0;
    return ms;
}

/* Stores one of the poller's values (cs:kv:<key>); a failure is logged: the value is written
 * again at the next turn that changes it (a cursor left behind only reads a window again). */
static void kv_set(poller *p, const char *key, const char *value) {
    char err[STORE_ERR_MAX];
    if (store_kv_set(p->st, key, value, err, sizeof err) != 0)
        LOG_KV_LIMITED(LOG_WARN, "poller: could not store a value", "key", key, "error", err);
}

static void deleted_cursor_set(poller *p, int64_t ms) {
    char text[40];
    event_format_time(ms, text, sizeof text);
    kv_set(p, "sf-deleted-start", text);
}

/* Deletions the service never saw (the delete log no longer reaches back to the cursor):
 * every mapping is compared again soon (the poller's reconciliation). */
static void deleted_gap(poller *p, const char *why) {
    metrics_add(M_SF_DELETED_GAPS, 1);
    kv_set(p, "reconcile-due", "1");
    LOG_KV(LOG_WARN,
           "poller: Salesforce's delete log no longer reaches back to the last poll; removals "
           "in between may be missed, so every mapping is reconciled",
           "reason", why);
}

/* What became of one deleted CampaignMember. */
typedef enum {
    DELETED_QUEUE,  /* ev filled: a removal to queue */
    DELETED_SKIP,   /* never synced by the service, or deleted by it (an echo) */
    DELETED_FAILED, /* Redis failed: the window is read again */
} deleted_verdict;

/* One deleted CampaignMember as a removal event, unless the service never synced it or
 * deleted it itself (an echo). */
static deleted_verdict deleted_event(poller *p, const sf_deleted_record *r, int64_t now,
                                     event *ev) {
    char err[STORE_ERR_MAX], campaign[EV_SFID_MAX], lead[EV_NUMID_MAX];
    if (!event_valid_sfid(r->id)) return DELETED_SKIP;
    switch (store_cm_lookup(p->st, r->id, campaign, sizeof campaign, lead, sizeof lead, err,
                            sizeof err)) {
    case STORE_ERROR: return DELETED_FAILED;
    case STORE_NOT_FOUND: return DELETED_SKIP; /* a member this service never synced */
    case STORE_FOUND: break;
    }
    switch (store_sf_deleted_ours(p->st, r->id, err, sizeof err)) {
    case STORE_ERROR: return DELETED_FAILED;
    case STORE_FOUND:
        metrics_add(M_EVENTS_DROPPED, 1, "echo");
        if (store_trace_own_deletion(p->st, p->cfg, campaign, lead, r->id, r->deleted_date, err,
                                     sizeof err) != 0)
            LOG_KV(LOG_WARN, "poller: could not trace an own deletion", "error", err);
        return DELETED_SKIP;
    case STORE_NOT_FOUND: break;
    }
    member_state st;
    if (store_member_get(p->st, campaign, lead, &st, err, sizeof err) == STORE_ERROR)
        return DELETED_FAILED;
    memset(ev, 0, sizeof *ev);
    ev->source = SRC_SALESFORCE;
    ev->type = EV_SF_MEMBER_DELETED;
    ev->received_ms = now;
    event_parse_time(r->deleted_date, &ev->source_ts_ms);
    snprintf(ev->id, sizeof ev->id, "del:%.18s:%lld", r->id, (long long)ev->source_ts_ms);
    snprintf(ev->campaign_id, sizeof ev->campaign_id, "%s", campaign);
    snprintf(ev->member_id, sizeof ev->member_id, "%.18s", r->id);
    snprintf(ev->mkto_lead_id, sizeof ev->mkto_lead_id, "%s", lead);
    if (strncmp(st.sf_person, "003", 3) == 0)
        snprintf(ev->sf_contact_id, sizeof ev->sf_contact_id, "%s", st.sf_person);
    else
        snprintf(ev->sf_lead_id, sizeof ev->sf_lead_id, "%s", st.sf_person);
    snprintf(ev->email, sizeof ev->email, "%s", st.email);
    return DELETED_QUEUE;
}

/* Stores n events; adds how many were new to *queued. */
static bool deleted_store(poller *p, const event *evs, size_t n, size_t *queued) {
    char err[STORE_ERR_MAX];
    bool added[DELETED_BATCH];
    if (n == 0) return true;
    if (store_enqueue(p->st, evs, n, added, err, sizeof err) != 0) return false;
    for (size_t i = 0; i < n; i++)
        *queued += added[i];
    return true;
}

/* Queues the removals of one getDeleted answer, DELETED_BATCH at a time; false when Redis
 * failed (the window is then read again). */
static bool deleted_enqueue(poller *p, const sf_deleted *d, int64_t now) {
    event *evs = calloc(DELETED_BATCH, sizeof *evs);
    size_t n = 0, queued = 0;
    bool ok = evs != NULL;
    for (size_t i = 0; i < d->n; i++) {
        deleted_verdict v = ok ? deleted_event(p, &d->records[i], now, &evs[n]) : DELETED_FAILED;
        if (v == DELETED_FAILED) ok = false;
        if (v == DELETED_QUEUE && ++n == DELETED_BATCH) {
            ok = deleted_store(p, evs, n, &queued);
            n = 0;
        }
    }
    ok = ok && deleted_store(p, evs, n, &queued);
    free(evs);
    if (queued) {
        metrics_add(M_EVENTS_RECEIVED, (double)queued, "salesforce", "accepted");
        LOGF(LOG_INFO, "poller: %zu CampaignMember deletions queued", queued);
    }
    return ok;
}

/* The window of the next poll: from the cursor (at least two whole minutes back, so that a
 * poll every SF_DELETED_POLL_INTERVAL_S always has a valid window, overlapping the last one
 * where needed: the queue drops what it has seen), never further back than the delete log
 * reaches. True when the cursor was further back than that (a gap, already counted). */
static bool deleted_window(poller *p, int64_t now, int64_t *start, int64_t *end) {
    int64_t cursor = deleted_cursor(p);
    int64_t latest_start = now - now % MINUTE_MS - DELETED_MIN_WINDOW_MS;
    *start = cursor && cursor < latest_start ? cursor : latest_start;
    /* The overlap never reaches before the log's start (a cursor before it is a gap, which
     * the answer shows). */
    if (*start < p->deleted_earliest && (!cursor || cursor >= p->deleted_earliest))
        *start = p->deleted_earliest;
    bool gap = *start < now - DELETED_MAX_BACK_MS;
    if (gap) {
        deleted_gap(p, "the service's cursor is older than the 15 days Salesforce keeps");
        *start = now - DELETED_MAX_BACK_MS;
    }
    *end = now;
    if (p->deleted_span_ms && *end - *start > p->deleted_span_ms)
        *end = *start + p->deleted_span_ms;
    return gap;
}

/* What a failed getDeleted call means for the cursor; logs it. */
static void deleted_failed(poller *p, const sf_error *e, int64_t start, int64_t end) {
    if (e->outcome == SF_BUSY) return; /* the allowance is spent: quota.c says so */
    if (!strcmp(e->code, "EXCEEDED_ID_LIMIT")) {
        /* REST "sObject Get Deleted": more than 600,000 ids; ask for a shorter window. */
        int64_t span = (end - start) / 2;
        p->deleted_span_ms = span > DELETED_MIN_WINDOW_MS ? span : DELETED_MIN_WINDOW_MS;
    } else if (!strcmp(e->code, "INVALID_REPLICATION_DATE")) {
        /* SOAP getDeleted(): the delete log was purged past start. Start afresh from now. */
        deleted_gap(p, e->message);
        deleted_cursor_set(p, event_now_ms() - DELETED_MIN_WINDOW_MS);
    }
    LOG_KV_LIMITED(LOG_WARN, "poller: reading deleted CampaignMembers failed", "code", e->code,
                   "error", e->message);
}

static void poll_deleted(poller *p) {
    int64_t now = event_now_ms(), start, end, cursor = deleted_cursor(p);
    bool gap = deleted_window(p, now, &start, &end);
    sf_deleted res;
    sf_error err;
    if (sf_deleted_members(crm_salesforce(p->c), start, end, &res, &err) != 0) {
        deleted_failed(p, &err, start, end);
        return;
    }
    int64_t earliest_ms = 0, latest_ms = 0;
    /* GetDeletedResult: an earliestDateAvailable after where we had read up to means
     * deletions were lost. */
    if (res.earliest[0] && event_parse_time(res.earliest, &earliest_ms) == 0) {
        if (cursor && earliest_ms > cursor && !gap)
            deleted_gap(p, "earliestDateAvailable is later than the last poll's end");
        p->deleted_earliest = earliest_ms;
    }
    bool ok = deleted_enqueue(p, &res, now);
    /* GetDeletedResult: the next call starts at latestDateCovered. */
    if (ok && res.latest[0] && event_parse_time(res.latest, &latest_ms) == 0) {
        deleted_cursor_set(p, latest_ms);
        if (p->deleted_span_ms && latest_ms >= end - MINUTE_MS) p->deleted_span_ms = 0;
    }
    sf_deleted_free(&res);
}

/* ---- program channel and costs (F2/F3) ---- */

#define COPY_RETRY_BASE_MS 2000 /* first pause after a program copy failed transiently */
#define COPY_TAKE_MAX      20   /* program copies started per tick and list */

/* A copy that failed: which CRM refused what, and whether trying again can help. */
typedef struct {
    const char *crm;
    char code[64];
    char message[512];
    bool permanent;
    long retry_after_ms; /* -1 when the CRM did not say */
} copy_failure;

static void marketo_failure(copy_failure *f, const mk_error *e) {
    f->crm = "marketo";
    snprintf(f->code, sizeof f->code, "%s", e->code);
    snprintf(f->message, sizeof f->message, "%s", e->message);
    /* 603 access denied, 1013 object not found: permanent (Marketo "Error Codes",
     * experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/error-codes). */
    f->permanent = e->outcome == MK_PERMANENT;
    f->retry_after_ms = e->retry_after_ms;
}

/* The pause before the next try after `failures` failures in a row. A failure that does not
 * mend itself (the CRM refused the request: a deleted record, a value outside a restricted
 * picklist, missing rights) waits a full poll interval; any other doubles from
 * COPY_RETRY_BASE_MS up to it. Jitter (75-100 %) spreads mappings that failed together; never
 * shorter than the CRM's Retry-After. */
static long copy_backoff_ms(int failures, bool permanent, long retry_after_ms, long interval_ms,
                            unsigned r) {
    long d = interval_ms;
    if (!permanent) {
        d = COPY_RETRY_BASE_MS;
        for (int i = 1; i < failures && d < interval_ms; i++)
            d *= 2;
        if (d > interval_ms) d = interval_ms;
    }
    d = d - d / 4 + (long)(r % (unsigned)(d / 4 + 1));
    return retry_after_ms > d ? retry_after_ms : d;
}

/* Reads the program's channel and the sum of its cost entries. 0, or -1 with f filled. */
static int read_program(poller *p, const char *program_id, char *type, size_t tsize, double *total,
                        copy_failure *f) {
    mk_program prog;
    mk_error me;
    if (mkto_get_program(crm_marketo(p->c), program_id, &prog, &me) != 0) {
        marketo_failure(f, &me);
        return -1;
    }
    if (!prog.found) {
        f->crm = "marketo";
        snprintf(f->code, sizeof f->code, "not_found");
        snprintf(f->message, sizeof f->message,
                 "Marketo has no program %s (deleted?): map an existing program or delete the "
                 "mapping",
                 program_id);
        f->permanent = true;
        return -1;
    }
    *total = prog.cost;
    snprintf(type, tsize, "%s", prog.channel);
    return 0;
}

/* PATCHes the campaign's Type and ActualCost. 0, or -1 with f filled. */
static int write_campaign(poller *p, const char *campaign_id, const char *type, double total,
                          copy_failure *f) {
    sf_error se;
    if (sf_update_campaign(crm_salesforce(p->c), campaign_id, type, total, &se) == 0) return 0;
    f->crm = "salesforce";
    snprintf(f->code, sizeof f->code, "%s", se.code);
    snprintf(f->message, sizeof f->message, "%s", se.message);
    /* A deleted campaign (ENTITY_IS_DELETED, NOT_FOUND), missing rights or a Type outside a
     * restricted picklist stay refused until a person acts; salesforce.c classes them permanent.
     * Restricted: "only an admin can add or change values" (Metadata API,
     * Picklist.restrictedPicklist). */
    f->permanent = se.outcome == SF_PERMANENT;
    f->retry_after_ms = se.retry_after_ms;
    return -1;
}

/* Records a failed copy, counts it and schedules the next try (copy_backoff_ms). */
static void copy_failed(poller *p, const char *program_id, const char *campaign_id,
                        store_copy_state *st, const copy_failure *f) {
    char err[STORE_ERR_MAX];
    int64_t now = event_now_ms();
    long wait =
        copy_backoff_ms(st->failures + 1, f->permanent, f->retry_after_ms,
                        (long)p->cfg->program_poll_interval_s * 1000, (unsigned)rand_r(&p->rnd));
    st->failures++;
    st->next_ms = now + wait;
    st->at_ms = now;
    snprintf(st->crm, sizeof st->crm, "%s", f->crm);
    snprintf(st->code, sizeof st->code, "%s", f->code);
    snprintf(st->message, sizeof st->message, "%s", f->message);
    metrics_add(M_PROGRAM_COPY_ERRORS, 1, f->crm, f->code);
    if (store_copy_failed(p->st, program_id, st, err, sizeof err) != 0)
        LOG_KV(LOG_WARN, "poller: recording a failed program copy failed", "program_id", program_id,
               "error", err);
    char next[24];
    snprintf(next, sizeof next, "%ld", wait / 1000);
    LOG_KV(LOG_WARN, "poller: copying the program's channel and costs to the campaign failed",
           "program_id", program_id, "campaign_id", campaign_id, "crm", f->crm, "code", f->code,
           "error", f->message, "permanent", f->permanent ? "true" : "false", "next_try_s", next);
}

/* Copies one mapping's program channel and costs to its campaign (F2/F3), written only when
 * they changed. A mapping whose earlier copies failed waits for its next try (the schedule
 * brings it back); `scheduled` says this is that try. */
/* Forgets a program's copy failures; a failure is logged. */
static void copy_clear(poller *p, const char *program_id) {
    char err[STORE_ERR_MAX];
    if (store_copy_clear(p->st, program_id, err, sizeof err) != 0)
        LOG_KV_LIMITED(LOG_WARN, "poller: could not clear a program's copy failures", "program_id",
                       program_id, "error", err);
}

static void copy_program(poller *p, const char *program_id, bool scheduled) {
    char err[STORE_ERR_MAX];
    mapping m;
    store_found found = store_mapping_get(p->st, program_id, &m, err, sizeof err);
    if (found == STORE_NOT_FOUND) copy_clear(p, program_id); /* mapping gone */
    if (found != STORE_FOUND || !m.enabled) return;
    store_copy_state st;
    if (store_copy_state_get(p->st, program_id, &st, err, sizeof err) != 0) return;
    if (!scheduled && st.next_ms > event_now_ms()) return; /* backing off */

    copy_failure f = {0};
    char type[256];
    double total = 0;
    if (read_program(p, program_id, type, sizeof type, &total, &f) != 0) {
        copy_failed(p, program_id, m.campaign_id, &st, &f);
        return;
    }
    char key[96], want[320], have[320] = "";
    snprintf(key, sizeof key, "program:%s:%.15s", program_id, m.campaign_id);
    snprintf(want, sizeof want, "%s\x1f%.2f", type, total);
    if (store_kv_get(p->st, key, have, sizeof have, err, sizeof err) == STORE_ERROR) return;
    bool changed = strcmp(have, want) != 0; /* unchanged: no write */
    if (changed && write_campaign(p, m.campaign_id, type, total, &f) != 0) {
        copy_failed(p, program_id, m.campaign_id, &st, &f);
        return;
    }
    if (st.failures || st.at_ms) copy_clear(p, program_id);
    if (!changed) return;
    kv_set(p, key, want);
    char cost[32];
    snprintf(cost, sizeof cost, "%.2f", total);
    LOG_KV(LOG_INFO, "poller: campaign Type/ActualCost updated from the program", "program_id",
           program_id, "campaign_id", m.campaign_id, "type", type, "actual_cost", cost);
}

/* The copies due now: new or enabled mappings and periodic polls (cs:programs:due), then
 * the tries that failed copies scheduled (cs:programs:backoff). */
static void copy_due_programs(poller *p) {
    char err[STORE_ERR_MAX];
    for (int scheduled = 0; scheduled < 2; scheduled++) {
        char **ids = NULL;
        long n = scheduled ? store_copy_due_take(p->st, event_now_ms(), COPY_TAKE_MAX, &ids, err,
                                                 sizeof err)
                           : store_program_due_take(p->st, COPY_TAKE_MAX, &ids, err, sizeof err);
        for (long i = 0; i < n; i++) {
            copy_program(p, ids[i], scheduled);
            free(ids[i]);
        }
        free(ids);
    }
}

static bool queue_busy(poller *p) {
    long long depth = 0;
    double age = 0;
    char err[STORE_ERR_MAX];
    return store_queue_stats(p->st, &depth, &age, err, sizeof err) == 0 && depth > 0;
}

static void copy_all_programs(poller *p) {
    char err[STORE_ERR_MAX], next[EV_NUMID_MAX], cursor[EV_NUMID_MAX] = "";
    mapping *ms = calloc(100, sizeof *ms);
    if (!ms) return;
    for (;;) {
        long n = store_mapping_list(p->st, cursor, 100, ms, next, sizeof next, err, sizeof err);
        for (long i = 0; i < n; i++)
            if (ms[i].enabled) store_program_due_add(p->st, ms[i].program_id, err, sizeof err);
        if (n <= 0 || !next[0]) break;
        snprintf(cursor, sizeof cursor, "%s", next);
    }
    free(ms);
}

/* A reconciliation job for every enabled mapping (RECONCILE_INTERVAL_S, or a gap in the
 * delete log), unless the mapping has a job unfinished; worker processes run them (jobs.h). */
static void reconcile_all(poller *p, job_trigger trigger) {
    char err[STORE_ERR_MAX * 2], next[EV_NUMID_MAX], cursor[EV_NUMID_MAX] = "";
    mapping *ms = calloc(100, sizeof *ms);
    if (!ms) return;
    for (;;) {
        long n = store_mapping_list(p->st, cursor, 100, ms, next, sizeof next, err, sizeof err);
        for (long i = 0; i < n && !atomic_load(&p->stop); i++) {
            if (!ms[i].enabled) continue;
            char id[JOB_ID_MAX];
            bool created = false;
            if (jobs_create(p->st, p->cfg, &ms[i], JOB_RECONCILE, trigger, id, &created, err,
                            sizeof err) != 0)
                LOG_KV(LOG_WARN, "poller: queueing a reconciliation failed", "program_id",
                       ms[i].program_id, "error", err);
        }
        if (n <= 0 || !next[0]) break;
        snprintf(cursor, sizeof cursor, "%s", next);
    }
    free(ms);
}

/* The deleted-records poll, every SF_DELETED_POLL_INTERVAL_S, by one process at a time; it
 * runs while sync is disabled too (the removals then wait in the queue like other events). */
static void deleted_tick(poller *p, int64_t now, int64_t *next) {
    if (now < *next) return;
    long iv = (long)p->cfg->sf_deleted_poll_interval_s * 1000;
    *next = now + iv;
    if (take_turn(p, "sf-deleted", iv - TICK_MS > 0 ? iv - TICK_MS : iv)) poll_deleted(p);
}

/* A reconciliation of every mapping asked for by a gap in the delete log. */
static void reconcile_when_due(poller *p) {
    char err[STORE_ERR_MAX], v[8] = "";
    if (store_kv_get(p->st, "reconcile-due", v, sizeof v, err, sizeof err) != STORE_FOUND ||
        v[0] != '1')
        return;
    if (!take_turn(p, "reconcile-due", 60000)) return;
    kv_set(p, "reconcile-due", "0");
    reconcile_all(p, JOB_BY_GAP);
}

static void *poller_main(void *arg) {
    poller *p = arg;
    int64_t start = event_now_ms();
    int64_t next_deleted = 0, next_programs = 0;
    /* The first reconciliation waits a full interval: at start-up the queue has priority. */
    int64_t next_reconcile = start + (int64_t)p->cfg->reconcile_interval_s * 1000;
    int deferred = 0;
    while (!atomic_load(&p->stop)) {
        int64_t now = event_now_ms();
        bool enabled = true;
        char err[STORE_ERR_MAX];
        if (store_sync_get(p->st, &enabled, err, sizeof err) != 0) {
            sleep_ms(TICK_MS);
            continue;
        }
        deleted_tick(p, now, &next_deleted);
        if (!enabled) { /* F10: nothing else reaches a CRM while sync is off */
            sleep_ms(TICK_MS);
            continue;
        }
        if (now >= next_programs) {
            long iv = (long)p->cfg->program_poll_interval_s * 1000;
            /* Member changes first: a periodic copy waits while events wait (a while). */
            if (queue_busy(p) && deferred < PROGRAM_DEFER_MAX) {
                deferred++;
                next_programs = now + 5000;
            } else {
                deferred = 0;
                next_programs = now + iv;
                if (take_turn(p, "programs", iv - TICK_MS > 0 ? iv - TICK_MS : iv))
                    copy_all_programs(p);
            }
        }
        if (now >= next_reconcile) {
            long iv = (long)p->cfg->reconcile_interval_s * 1000;
            next_reconcile = now + iv;
            if (take_turn(p, "reconcile", iv - TICK_MS > 0 ? iv - TICK_MS : iv))
                reconcile_all(p, JOB_BY_SCHEDULE);
        }
        reconcile_when_due(p);
        copy_due_programs(p);
        sleep_ms(TICK_MS);
    }
    return NULL;
}

poller *poller_start(const struct config *cfg, char *err, size_t errlen) {
    poller *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->cfg = cfg;
    char host[64] = "host";
    if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "host");
    snprintf(p->token, sizeof p->token, "%s-%d-poller", host, (int)getpid());
    p->rnd = (unsigned)time(NULL) ^ (unsigned)getpid();
    p->st = store_new(&cfg->redis);
    /* Program reads share the Marketo budget with the workers. */
    p->c = p->st ? crm_new(cfg, p->st, p->token, NULL) : NULL;
    if (p->c) crm_set_budget_wait(p->c, 0, &p->stop);
    if (!p->c || pthread_create(&p->thread, NULL, poller_main, p) != 0) {
        snprintf(err, errlen, "cannot start the poller");
        crm_free(p->c);
        store_free(p->st);
        free(p);
        return NULL;
    }
    return p;
}

void poller_stop(poller *p) {
    if (!p) return;
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    crm_free(p->c);
    store_free(p->st);
    free(p);
}
