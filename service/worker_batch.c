/* worker_batch — one read of a worker: entries parsed once, split by queue into batches; for
 * each batch the mappings, the member locks, the recorded states, the plan of every change and
 * the statuses a plan needs read first; then the steps toward each CRM (worker_people_*.c,
 * worker_write_*.c) and the end of the turn (worker_finish.c). See service/worker_priv.h. */
#include "worker_priv.h"

#include "log.h"
#include "metrics.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A queued entry parsed once per read: its event, or why it could not be read. */
typedef struct {
    event ev;
    char why[128]; /* empty: parsed */
} parsed_entry;

/* Member and person locks are released explicitly; their expiry only matters when a worker
 * died holding them, and then it should come no later than the claim of its events. */
long worker_lock_ttl_ms(const wctx *w) {
    return w->cfg->claim_idle_ms;
}

void item_fail(item *it, it_state s, const char *target, long retry_after_ms, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void item_fail(item *it, it_state s, const char *target, long retry_after_ms, const char *fmt,
               ...) {
    if (it->state == IT_DEAD) return; /* the first permanent reason stays */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->error, sizeof it->error, fmt, ap);
    va_end(ap);
    it->state = s;
    it->target = target;
    it->retry_after_ms = retry_after_ms;
    if (s == IT_DEFER && retry_after_ms > 0) it->defer_until = event_now_ms() + retry_after_ms;
}

/* What a failed CRM call makes of the items it was for. */
it_state item_mk_failed(const mk_error *e) {
    return plan_after_failure(mkto_failure(e));
}

it_state item_sf_failed(const sf_error *e) {
    return plan_after_failure(sf_failure(e));
}

void worker_lower(char *dst, size_t size, const char *src) {
    size_t i = 0;
    for (; src[i] && i + 1 < size; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

static int load_mapping(batch *b, item *it, char *err, size_t errlen) {
    bool by_program = it->ev.type == EV_MEMBER_STATUS_CHANGED || it->ev.type == EV_MEMBER_REMOVED;
    /* Events of a batch mostly share a few mappings: one copy each. */
    for (size_t i = 0; i < b->nmaps; i++) {
        const mapping *m = b->maps[i];
        if (by_program ? strcmp(m->program_id, it->ev.program_id) == 0
                       : strncmp(m->campaign_id, it->ev.campaign_id, 15) == 0) {
            it->map = m;
            return 0;
        }
    }
    mapping *m = malloc(sizeof *m);
    mapping **grown = m ? realloc(b->maps, (b->nmaps + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(m);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    b->maps = grown;
    store_found rc = by_program
                         ? store_mapping_get(b->w->st, it->ev.program_id, m, err, errlen)
                         : store_mapping_by_campaign(b->w->st, it->ev.campaign_id, m, err, errlen);
    if (rc != STORE_FOUND) {
        free(m);
        return rc == STORE_ERROR ? -1 : 0; /* no mapping: it->map stays NULL */
    }
    b->maps[b->nmaps++] = m;
    it->map = m;
    return 0;
}

static void member_key(item *it) {
    snprintf(it->campaign, sizeof it->campaign, "%s",
             it->map ? it->map->campaign_id : it->ev.campaign_id);
    if (it->lead[0])
        snprintf(it->lock_key, sizeof it->lock_key, "cs:lock:member:%.15s:%s", it->campaign,
                 it->lead);
    else {
        const char *p = it->ev.sf_contact_id[0] ? it->ev.sf_contact_id : it->ev.sf_lead_id;
        snprintf(it->lock_key, sizeof it->lock_key, "cs:lock:member:%.15s:sf:%.15s", it->campaign,
                 p);
    }
}

void item_replan(batch *b, item *it) {
    /* The state goes in even when not known: its write marks still count. */
    plan_event(&it->ev, it->map, &it->st, b->w->cfg->sf_integration_user_id, &it->p);
    /* A write of ours to this event's own side may still be landing (see mark_writes). */
    int64_t until = plan_wait_for_own_write(&it->ev, &it->st, &it->p, event_now_ms());
    if (until) {
        it->state = IT_DEFER;
        it->defer_until = until;
    }
}

/* Reads the recorded state of the items idx[0..n) (each with its campaign and lead) in one
 * round trip: 0, or -1 with err (then no item's state changed). */
int batch_read_states(batch *b, const size_t *idx, size_t n, char *err, size_t errlen) {
    if (n == 0) return 0;
    const char **camps = calloc(n, sizeof *camps), **leads = calloc(n, sizeof *leads);
    member_state *sts = calloc(n, sizeof *sts);
    int rc = -1;
    if (!camps || !leads || !sts) {
        snprintf(err, errlen, "out of memory");
    } else {
        for (size_t k = 0; k < n; k++) {
            camps[k] = b->items[idx[k]].campaign;
            leads[k] = b->items[idx[k]].lead;
        }
        rc = store_member_get_many(b->w->st, n, camps, leads, sts, err, errlen);
        for (size_t k = 0; rc == 0 && k < n; k++)
            b->items[idx[k]].st = sts[k];
    }
    free(camps);
    free(leads);
    free(sts);
    return rc;
}

/* The status of lead among a program's members, or NULL when it is not a member. */
const char *worker_member_status(const mk_member *m, size_t n, const char *lead) {
    const char *status = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(m[i].lead_id, lead) == 0 && m[i].status) status = m[i].status;
    return status;
}

/* Reads the Marketo statuses that webhooks without "status" left out. */
static void fill_marketo_statuses(batch *b) {
    for (size_t i = 0; i < b->n; i++) {
        item *first = &b->items[i];
        if (first->state != IT_PENDING || first->p.kind != PLAN_NEED_STATUS ||
            first->p.need_from != SRC_MARKETO)
            continue;
        const char *pid = first->ev.program_id;
        const char *ids[MKTO_BATCH];
        item *group[MKTO_BATCH];
        size_t n = 0;
        for (size_t j = i; j < b->n && n < MKTO_BATCH; j++) {
            item *it = &b->items[j];
            if (it->state == IT_PENDING && it->p.kind == PLAN_NEED_STATUS &&
                it->p.need_from == SRC_MARKETO && strcmp(it->ev.program_id, pid) == 0) {
                group[n] = it;
                ids[n++] = it->ev.mkto_lead_id;
            }
        }
        mk_member *res = NULL;
        size_t nres = 0;
        mk_error err;
        if (mkto_member_statuses(crm_marketo(b->w->c), pid, ids, n, &res, &nres, &err) != 0) {
            for (size_t k = 0; k < n; k++)
                item_fail(group[k], item_mk_failed(&err), "marketo", err.retry_after_ms,
                          "reading the member status from Marketo program %s: "
                          "%s %s",
                          pid, err.code, err.message);
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            /* Not a member: the lead left the program. */
            const char *status =
                plan_marketo_status(worker_member_status(res, nres, group[k]->ev.mkto_lead_id));
            if (!event_set(group[k]->ev.status, sizeof group[k]->ev.status, status))
                item_fail(group[k], IT_DEAD, "marketo", -1,
                          "Marketo status \"%.60s...\" is too long", status);
            else
                item_replan(b, group[k]);
        }
        mkto_members_free(res, nres);
    }
}

/* add_to_campaign without a status: the campaign's default member status. */
static void fill_default_statuses(batch *b) {
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->state != IT_PENDING || it->p.kind != PLAN_NEED_STATUS ||
            it->p.need_from != SRC_SALESFORCE)
            continue;
        char *label = NULL;
        sf_error err;
        if (sf_default_status(crm_salesforce(b->w->c), it->ev.campaign_id, &label, &err) != 0) {
            item_fail(it, item_sf_failed(&err), "salesforce", err.retry_after_ms,
                      "reading campaign %s's default status: %s: %s", it->ev.campaign_id, err.code,
                      err.message);
            continue;
        }
        /* Every other item of the batch for the same campaign gets the same answer. */
        for (size_t j = i; j < b->n; j++) {
            item *o = &b->items[j];
            if (o->state != IT_PENDING || o->p.kind != PLAN_NEED_STATUS ||
                o->p.need_from != SRC_SALESFORCE ||
                strncmp(o->ev.campaign_id, it->ev.campaign_id, 15) != 0)
                continue;
            if (!label)
                item_fail(o, IT_DEAD, "salesforce", -1,
                          "campaign %s has no default member status "
                          "(or does not exist)",
                          o->ev.campaign_id);
            else if (!event_set(o->ev.status, sizeof o->ev.status, label))
                item_fail(o, IT_DEAD, "salesforce", -1, "campaign %s's default status is too long",
                          o->ev.campaign_id);
            else
                item_replan(b, o);
        }
        free(label);
    }
}

/* Marks the members about to be written on one side, before the write (see store.h). */
void batch_mark_writes(batch *b, bool salesforce) {
    const char **camps = calloc(b->n, sizeof *camps), **leads = calloc(b->n, sizeof *leads);
    size_t n = 0;
    char err[STORE_ERR_MAX];
    for (size_t i = 0; camps && leads && i < b->n; i++) {
        item *it = &b->items[i];
        const char *lead = it->lead[0] ? it->lead : it->ev.mkto_lead_id;
        if (it->state != IT_PENDING || it->p.kind != PLAN_APPLY || !lead[0] ||
            !(salesforce ? it->p.to_sf : it->p.to_mkto))
            continue;
        camps[n] = it->campaign;
        leads[n++] = lead;
    }
    /* The latest time our write may land: a call that times out can still be applied by the
     * CRM a little later. Marking too late only costs an idempotent re-assertion; too early
     * would let an older change of ours win. */
    int64_t until = event_now_ms() + 2 * b->w->cfg->crm_timeout_ms;
    if (n) *(salesforce ? &b->sf_mark : &b->mkto_mark) = until;
    if (n &&
        store_mark_written(b->w->st, camps, leads, n, salesforce ? "sf_pending" : "mkto_pending",
                           until, err, sizeof err) != 0) {
        /* Without the mark a write could go unrecorded: do not write this round. */
        for (size_t i = 0; i < b->n; i++) {
            item *it = &b->items[i];
            if (it->state == IT_PENDING && it->p.kind == PLAN_APPLY &&
                (salesforce ? it->p.to_sf : it->p.to_mkto))
                item_fail(it, IT_RETRY, salesforce ? "salesforce" : "marketo", -1, "Redis: %s",
                          err);
        }
    }
    free(camps);
    free(leads);
}

/* A batch whose target CRM's allowance is spent waits parked, whole, without a call
 * (entries of one queue: Marketo's go toward Salesforce, Salesforce's toward Marketo). */
static bool park_while_spent(wctx *w, const store_entry *entries, size_t n) {
    bool to_sf = n && store_queue_to_salesforce(entries[0].q);
    if (n == 0 || !(to_sf ? crm_salesforce_spent(w->c) : crm_marketo_spent(w->c))) return false;
    for (size_t i = 0; i < n; i++)
        worker_park_for_quota(w, &entries[i], to_sf ? "salesforce" : "marketo");
    return true;
}

/* Parses the batch's entries (pe: each parsed once), finds each event's mapping and the
 * Marketo lead of each Salesforce person (one round trip for all). 0, or -1 with err when
 * Redis failed. */
static int prepare_items(batch *b, store_entry *entries, const parsed_entry *const *pe, char *err,
                         size_t errlen) {
    size_t *idx = calloc(b->n, sizeof *idx), np = 0;
    const char **persons = calloc(b->n, sizeof *persons);
    char(*leads)[EV_NUMID_MAX] = calloc(b->n, sizeof *leads);
    int rc = -1;
    if (!idx || !persons || !leads) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        it->e = &entries[i];
        if (pe[i]->why[0]) {
            item_fail(it, IT_DEAD, NULL, -1, "unreadable queued event: %s", pe[i]->why);
            continue;
        }
        it->ev = pe[i]->ev;
        it->parsed = true;
        if (load_mapping(b, it, err, errlen) != 0) goto out;
        /* Marketo events (and deletions found by the poller) name the Marketo lead; a
         * Salesforce person's lead is known once linked (all looked up at once below). */
        if (it->ev.mkto_lead_id[0]) {
            snprintf(it->lead, sizeof it->lead, "%s", it->ev.mkto_lead_id);
        } else {
            const char *p = it->ev.sf_contact_id[0] ? it->ev.sf_contact_id : it->ev.sf_lead_id;
            if (*p) {
                idx[np] = i;
                persons[np++] = p;
            }
        }
    }
    if (np && store_link_by_sf_many(b->w->st, np, persons, leads, err, errlen) != 0) goto out;
    for (size_t k = 0; k < np; k++)
        snprintf(b->items[idx[k]].lead, sizeof b->items[idx[k]].lead, "%s", leads[k]);
    rc = 0;
out:
    free(idx);
    free(persons);
    free(leads);
    return rc;
}

/* Locks each item's member (one event per member per batch: later ones wait for the next
 * round, in order), publishes what the batch holds (nhold entries) to the heartbeat, and reads
 * the recorded state of every locked member. keys (room for 2n) receive the locks taken, *nk
 * of them. 0, or -1 with err when Redis failed. */
static int lock_members(batch *b, size_t nhold, const char **keys, size_t *nk, char *err,
                        size_t errlen) {
    wctx *w = b->w;
    bool *got = calloc(b->n, sizeof *got);
    size_t *idx = calloc(b->n, sizeof *idx), nm = 0;
    int rc = -1;
    if (!got || !idx) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (!it->parsed) continue;
        member_key(it);
        for (size_t j = 0; j < i; j++)
            if (b->items[j].parsed && !strcmp(b->items[j].lock_key, it->lock_key)) {
                it->state = IT_DEFER;
                break;
            }
    }
    for (size_t i = 0; i < b->n; i++)
        if (b->items[i].state == IT_PENDING) keys[(*nk)++] = b->items[i].lock_key;
    if (store_lock_many(w->st, keys, *nk, b->token, worker_lock_ttl_ms(w), got, err, errlen) != 0)
        goto out; /* the keys are released all the same: a key not ours is left alone */
    worker_hold_set(&w->hold, b->items[0].e, nhold, keys, *nk, b->token);
    for (size_t i = 0, k = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->state != IT_PENDING) continue;
        it->locked = got[k++];
        if (!it->locked)
            it->state = IT_DEFER; /* another worker holds this member */
        else if (it->lead[0])
            idx[nm++] = i;
    }
    rc = batch_read_states(b, idx, nm, err, errlen);
out:
    free(got);
    free(idx);
    return rc;
}

/* Acts on every plan that is not an application: a drop (recorded when the plan says so), a
 * park (the park script acknowledges the entry itself), a dead letter. */
static void settle_plans(batch *b) {
    char err[STORE_ERR_MAX];
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->state != IT_PENDING) continue;
        switch (it->p.kind) {
        case PLAN_APPLY: break;
        case PLAN_DROP:
            it->state = IT_DROP;
            metrics_add(M_EVENTS_DROPPED, 1, plan_drop_reason_name(it->p.reason));
            batch_record_drop(b->w, it);
            if (log_enabled(LOG_DEBUG))
                LOG_KV(LOG_DEBUG, "dropped", "event_id", it->ev.id, "reason",
                       plan_drop_reason_name(it->p.reason));
            break;
        case PLAN_PARK:
            if (store_park(b->w->st, it->e, it->map->program_id, err, sizeof err) == 0)
                it->state = IT_PARKED;
            else
                item_fail(it, IT_DEFER, NULL, -1, "Redis: %s", err);
            break;
        case PLAN_DEAD: item_fail(it, IT_DEAD, NULL, -1, "%s", it->p.message); break;
        case PLAN_NEED_STATUS: break; /* a read failed: its state says what to do */
        }
    }
}

/* Applies entries[0..n) (parsed as *pe[0..n)); the heartbeat keeps entries[0..nhold) alive
 * meanwhile (nhold >= n: the rest of the read waits its turn, not claimed by another worker). */
static void run_batch(wctx *w, store_entry *entries, const parsed_entry *const *pe, size_t n,
                      size_t nhold, long paced_ms, int paced_calls) {
    char err[STORE_ERR_MAX];
    char token[200];
    batch b = {w, calloc(n, sizeof(item)), n, token, NULL, 0, 0, 0, paced_ms, paced_calls};
    const char **keys = calloc(2 * n, sizeof *keys); /* member locks, then lead locks */
    size_t nk = 0;
    snprintf(token, sizeof token, "%s:b%lu", w->consumer, ++w->seq);
    if (!b.items || !keys || park_while_spent(w, entries, n)) goto out;
    if (prepare_items(&b, entries, pe, err, sizeof err) != 0 ||
        lock_members(&b, nhold, keys, &nk, err, sizeof err) != 0) {
        /* Nothing was written; the entries stay pending and are claimed back later. */
        LOG_KV(LOG_WARN, "worker: Redis failed mid-batch; entries will be claimed again", "error",
               err);
        goto unlock;
    }
    /* Plan each change on its member's recorded state, with the statuses it lacks read. */
    for (size_t i = 0; i < n; i++)
        if (b.items[i].state == IT_PENDING) item_replan(&b, &b.items[i]);
    fill_marketo_statuses(&b);
    fill_default_statuses(&b);
    settle_plans(&b);
    /* Toward Salesforce: the people, then the members. */
    batch_sf_people(&b);
    batch_write_salesforce(&b);
    /* Toward Marketo: what the pace holds back, the leads (and the plan again), the writes. */
    batch_pace_marketo(&b);
    batch_mkto_people(&b);
    batch_write_marketo(&b);
    batch_finish(&b);
    if (store_progress_mark(w->st, err, sizeof err) != 0)
        LOG_KV_LIMITED(LOG_WARN, "worker: could not mark progress", "error", err);
unlock:
    worker_hold_clear(&w->hold);
    for (size_t i = 0; i < n; i++)
        if (b.items[i].lead_lock[0]) keys[nk++] = b.items[i].lead_lock;
    if (nk && store_unlock_many(w->st, keys, nk, token, err, sizeof err) != 0)
        LOG_KV_LIMITED(LOG_WARN, "worker: could not unlock; the locks expire", "error", err);
out:
    for (size_t i = 0; i < b.nmaps; i++)
        free(b.maps[i]);
    free(b.maps);
    free(b.items);
    free(keys);
}

/* The order in which a read's queues are applied: toward Salesforce first (live changes, then
 * corrections: a read holds one kind or the other), then toward Marketo. */
static int queue_rank(store_queue q) {
    switch (q) {
    case STORE_Q_MKTO: return 0;
    case STORE_Q_FIX_MKTO: return 1;
    case STORE_Q_SF: return 2;
    case STORE_Q_FIX_SF: return 3;
    }
    return 2;
}

/* Runs one batch of the entries of one queue (entries[0..n) of a read whose entries
 * [0..nhold) are still to do), its Marketo calls counted among the corrections' share of the
 * budget when they are a job's corrections. */
static void run_queue_batch(wctx *w, store_entry *entries, const parsed_entry *const *pe, size_t n,
                            size_t nhold, long paced_ms, int paced_calls) {
    bool fix = store_queue_is_fix(entries[0].q);
    long wait = crm_budget_wait(w->c);
    if (fix) {
        crm_set_budget_share(w->c, w->cfg->backfill_marketo_share);
        /* A full read of corrections needs several of the share's permits: its job thread
         * waits for them rather than deferring its calls. Not while live changes stream
         * toward Marketo: the share is one call a window then (pace.h), and the batch defers
         * what it cannot send at once rather than hold its entries and its members' locks
         * (which a live change of the same person would wait for) for a window. */
        crm_set_budget_wait(w->c, w->fix_busy ? FIX_BUSY_WAIT_MS : FIX_BUDGET_WAIT_MS,
                            &w->pool->stop);
    }
    run_batch(w, entries, pe, n, nhold, fix ? 0 : paced_ms, fix ? 0 : paced_calls);
    if (fix) {
        crm_set_budget_share(w->c, 0);
        crm_set_budget_wait(w->c, wait, &w->pool->stop);
    }
}

/* The changes toward Salesforce (read from Marketo's queues) first, then those toward
 * Marketo, each in queue order and each queue as a batch of its own: the Salesforce side is
 * acknowledged without waiting for Marketo's slower, rate-limited calls. Every entry is
 * parsed once here; *sf_slot, when held, is given back as soon as the Salesforce side is
 * done. (Out of memory, the read is left pending: the claim loop hands it out again.) */
void worker_process_read(wctx *w, store_entry *entries, size_t n, bool *sf_slot, long paced_ms,
                         int paced_calls) {
    parsed_entry *pe = malloc(n * sizeof *pe);
    const parsed_entry **order = malloc(n * sizeof *order);
    store_entry *sorted = malloc(n * sizeof *sorted);
    if (pe && order && sorted) {
        size_t start[5] = {0}; /* where each rank begins in the sorted read */
        for (size_t i = 0; i < n; i++) {
            pe[i].why[0] = '\0';
            if (event_from_json(entries[i].json, entries[i].len, &pe[i].ev, pe[i].why,
                                sizeof pe[i].why) != 0 &&
                !pe[i].why[0])
                snprintf(pe[i].why, sizeof pe[i].why, "not an event");
            start[queue_rank(entries[i].q) + 1]++;
        }
        for (int r = 1; r < 5; r++)
            start[r] += start[r - 1];
        /* A stable partition by rank. */
        size_t at[4] = {start[0], start[1], start[2], start[3]};
        for (size_t i = 0; i < n; i++) {
            size_t to = at[queue_rank(entries[i].q)]++;
            sorted[to] = entries[i];
            order[to] = &pe[i];
        }
        memcpy(entries, sorted, n * sizeof *entries); /* the same entries, reordered */
        bool ran = false; /* a stopping pool finishes the batch it began, no more */
        for (int r = 0; r < 4 && !(ran && atomic_load(&w->pool->stop)); r++) {
            if (r == 2 && *sf_slot) { /* the next batch toward Salesforce need not wait */
                atomic_fetch_sub(&w->pool->sf_readers, 1);
                *sf_slot = false;
            }
            size_t k = start[r + 1] - start[r];
            if (!k) continue;
            run_queue_batch(w, entries + start[r], order + start[r], k, n - start[r], paced_ms,
                            paced_calls);
            ran = true;
        }
        if (*sf_slot) {
            atomic_fetch_sub(&w->pool->sf_readers, 1);
            *sf_slot = false;
        }
    }
    free(pe);
    free(order);
    free(sorted);
}
