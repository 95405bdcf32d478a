/* worker_finish — the end of a batch's turn: the members' new states recorded (one round
 * trip), then per item a dead letter, a retry with its backoff, a deferral or a park; the
 * audit log, each person's trace and the time-zone evidence; and the acknowledgement, last,
 * of what is done. See service/worker_priv.h. */
#include "worker_priv.h"

#include "log.h"
#include "metrics.h"
#include "store_jobs.h"
#include "store_trace.h"
#include "trace.h"
#include "tzguard.h"
#include "tzwatch.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A drop whose plan asks for it still records the event's side and time. */
void batch_record_drop(wctx *w, item *it) {
    char err[STORE_ERR_MAX];
    if (!it->p.record || !it->lead[0]) return;
    member_state n = it->p.next;
    n.updated_ms = event_now_ms();
    int rc = store_member_put(w->st, it->campaign, it->lead, &n, 0, 0, err, sizeof err);
    if (rc == 0)
        it->state = IT_DEFER; /* recorded meanwhile by another worker: plan it again */
    else if (rc < 0)
        LOG_KV(LOG_WARN, "worker: could not record a dropped event's state", "error", err);
}

static void dead_letter(wctx *w, item *it) {
    char err[STORE_ERR_MAX];
    if (store_dead_letter(w->st, it->e, it->e->attempts + 1, it->error, it->dead_id,
                          sizeof it->dead_id, err, sizeof err) == 0) {
        metrics_add(M_DEAD_LETTERS, 1);
        LOG_KV(LOG_ERROR, "worker: dead-lettered", "event_id", it->parsed ? it->ev.id : it->e->id,
               "error", it->error);
    } else {
        LOG_KV(LOG_WARN, "worker: could not dead-letter; the entry stays pending", "error", err);
    }
}

/* One audit entry for a change applied (or found already applied) in one CRM. */
static char *audit_entry(const item *it, const char *target, int64_t now) {
    cJSON *o = cJSON_CreateObject();
    char at[40];
    event_format_time(now, at, sizeof at);
    bool to_sf = strcmp(target, "salesforce") == 0;
    bool member = to_sf ? it->p.sf_member : it->p.mkto_member;
    const char *status = to_sf ? it->p.sf_status : it->p.mkto_status;
    char rx[40];
    event_format_time(it->ev.received_ms, rx, sizeof rx);
    cJSON_AddStringToObject(o, "at", at);
    cJSON_AddStringToObject(o, "receivedAt", rx); /* at − receivedAt: this change's latency */
    cJSON_AddStringToObject(o, "eventId", it->ev.id);
    cJSON_AddStringToObject(o, "source", event_source_name(it->ev.source));
    cJSON_AddStringToObject(o, "target", target);
    cJSON_AddStringToObject(o, "programId", it->p.program_id);
    cJSON_AddStringToObject(o, "campaignId", it->campaign);
    cJSON_AddStringToObject(o, "email", it->ev.email[0] ? it->ev.email : it->st.email);
    cJSON_AddStringToObject(o, "action",
                            member ? (to_sf ? "upsert_member" : "set_status") : "remove_member");
    if (member) cJSON_AddStringToObject(o, "status", status);
    cJSON_AddStringToObject(o, "result",
                            !to_sf && it->backward ? "skipped_backward_progression" : "applied");
    /* What the CRM answered, as ids a person can look up there. */
    if (to_sf && it->cm_id[0]) cJSON_AddStringToObject(o, "campaignMemberId", it->cm_id);
    if (to_sf && it->sf_person[0]) cJSON_AddStringToObject(o, "salesforceId", it->sf_person);
    if (!to_sf && it->lead[0]) cJSON_AddStringToObject(o, "marketoLeadId", it->lead);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Records what each applied item wrote (the member's new state, one round trip for the
 * batch): rc[i] as store_member_put answers for item i (1 when it has nothing to record). */
static void record_members(batch *b, int64_t now, int *rc, char *err, size_t errlen) {
    member_state *ns = calloc(b->n, sizeof *ns);
    store_member_write *wr = calloc(b->n, sizeof *wr);
    size_t *idx = calloc(b->n, sizeof *idx);
    size_t nw = 0;
    for (size_t i = 0; i < b->n; i++)
        rc[i] = 1;
    if (!ns || !wr || !idx) {
        snprintf(err, errlen, "out of memory");
        for (size_t i = 0; i < b->n; i++)
            rc[i] = -1;
        goto out;
    }
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->state == IT_PENDING && it->p.kind == PLAN_APPLY) {
            member_state n;
            plan_applied a = {it->sf_person, it->cm_id, it->lead, it->backward, it->mkto_now};
            plan_record_applied(&it->p, &it->st, &a, now, &n);
            const char *lead = it->lead[0] ? it->lead : it->ev.mkto_lead_id;
            if (!lead[0]) continue;
            ns[nw] = n;
            /* The writes completed: their pending marks go. */
            wr[nw] = (store_member_write){it->campaign, lead, &ns[nw], it->p.to_sf ? b->sf_mark : 0,
                                          it->p.to_mkto ? b->mkto_mark : 0};
            idx[nw++] = i;
        }
    }
    int *got = calloc(nw ? nw : 1, sizeof *got);
    if (!got || (nw && store_member_put_many(b->w->st, nw, wr, got, err, errlen) != 0)) {
        for (size_t k = 0; k < nw; k++)
            rc[idx[k]] = -1;
    } else {
        for (size_t k = 0; k < nw; k++)
            rc[idx[k]] = got[k];
    }
    free(got);
    /* Person links of the members recorded, also in one round trip. */
    const char **ll = calloc(nw ? nw : 1, sizeof *ll), **pp = calloc(nw ? nw : 1, sizeof *pp);
    size_t nl = 0;
    for (size_t k = 0; ll && pp && k < nw; k++)
        if (rc[idx[k]] == 1 && ns[k].sf_person[0]) {
            ll[nl] = wr[k].lead;
            pp[nl++] = ns[k].sf_person;
        }
    char e2[STORE_ERR_MAX];
    if (nl && store_link_put_many(b->w->st, nl, ll, pp, e2, sizeof e2) != 0)
        LOG_KV(LOG_WARN, "worker: could not record person links", "error", e2);
    free(ll);
    free(pp);
out:
    free(ns);
    free(wr);
    free(idx);
}

/* The parking place of entries waiting for a CRM's allowance (cs:parked:quota:<crm>). */
static void quota_park_key(const char *target, char *buf, size_t size) {
    snprintf(buf, size, "quota:%s",
             target && !strcmp(target, "marketo") ? "marketo" : "salesforce");
}

void worker_park_for_quota(wctx *w, const store_entry *e, const char *target) {
    char key[32], err[STORE_ERR_MAX];
    quota_park_key(target, key, sizeof key);
    if (store_park(w->st, e, key, err, sizeof err) != 0)
        LOG_KV(LOG_WARN, "worker: could not park; the entry stays pending", "error", err);
}

/* The person of an item as the worker knows it now. */
static void trace_person(const item *it, trace_record *r) {
    const event *ev = &it->ev;
    r->email = ev->email[0] ? ev->email : it->st.email;
    r->mkto_lead = it->lead[0]           ? it->lead
                   : ev->mkto_lead_id[0] ? ev->mkto_lead_id
                                         : it->st.mkto_lead;
    r->sf_person = it->sf_person[0]       ? it->sf_person
                   : ev->sf_contact_id[0] ? ev->sf_contact_id
                   : ev->sf_lead_id[0]    ? ev->sf_lead_id
                                          : it->st.sf_person;
}

/* The trace entry of an item whose turn ended in an outcome; false when it has none
 * (deferred, still pending, or not an event). */
static bool trace_of(const item *it, int64_t now, trace_record *r) {
    memset(r, 0, sizeof *r);
    if (!it->parsed) return false;
    r->at_ms = now;
    r->ev = &it->ev;
    trace_person(it, r);
    r->program_id = it->p.program_id[0] ? it->p.program_id
                    : it->map           ? it->map->program_id
                                        : it->ev.program_id;
    r->campaign_id = it->campaign[0] ? it->campaign : it->ev.campaign_id;
    r->attempt = it->e->attempts + 1;
    switch (it->state) {
    case IT_DONE:
        r->outcome = TRACE_APPLIED;
        r->to_sf = it->p.to_sf;
        r->to_mkto = it->p.to_mkto && !it->backward;
        r->sf_member = it->p.sf_member;
        r->mkto_member = it->p.mkto_member;
        r->sf_status = it->p.sf_status;
        r->mkto_status = it->p.mkto_status;
        r->cm_id = it->cm_id;
        if (it->backward) { /* Marketo kept its status (one-way progression) */
            r->reason = plan_drop_reason_name(DROP_BACKWARD);
            if (!r->to_sf) r->outcome = TRACE_DROPPED;
        }
        return true;
    case IT_DROP:
        r->outcome = TRACE_DROPPED;
        /* A planned drop has its reason; a drop after the plan is a newer Salesforce save. */
        r->reason = it->p.kind == PLAN_DROP ? plan_drop_reason_name(it->p.reason) : "stale";
        return true;
    case IT_RETRY:
        r->outcome = TRACE_RETRY;
        r->error = it->error;
        return true;
    case IT_DEAD:
        r->outcome = TRACE_DEAD_LETTER;
        r->error = it->error;
        r->dead_id = it->dead_id;
        return it->dead_id[0] != '\0'; /* not stored: still pending */
    case IT_PARKED:
        r->outcome = TRACE_PARKED;
        r->reason = "mapping_disabled";
        return true;
    case IT_QUOTA:
        r->outcome = TRACE_PARKED;
        r->reason = "daily_allowance_spent";
        return true;
    case IT_PENDING:
    case IT_DEFER: return false;
    }
    return false;
}

/* Corrections queued by a reconciliation or a resync (reconcile.c names them rec:...):
 * their times are the CRMs' stored ones, not a webhook's. */
static bool restated(const event *ev) {
    return strncmp(ev->id, "rec:", 4) == 0;
}

/* A Marketo webhook's first outcome whose occurredAt is whole hours from its receive time
 * (tzguard.h): counted, warned about, and the last one kept as evidence in *tz. */
static bool timezone_suspect(const wctx *w, const item *it, store_tz_suspect *tz, int64_t now) {
    if (!it->parsed || it->ev.source != SRC_MARKETO || it->e->attempts != 0 || restated(&it->ev))
        return false;
    if (it->state != IT_DONE && it->state != IT_DROP && it->state != IT_RETRY &&
        it->state != IT_DEAD)
        return false;
    int hours = tzguard_offset_hours(it->ev.source_ts_ms, it->ev.received_ms);
    if (hours == 0) return false;
    tzwatch_seen(w->cfg->marketo_timezone, &it->ev, hours);
    tz->offset_hours = hours;
    tz->last_ms = now;
    snprintf(tz->event_id, sizeof tz->event_id, "%s", it->ev.id);
    tz->occurred_ms = it->ev.source_ts_ms;
    tz->received_ms = it->ev.received_ms;
    return true;
}

/* The audit log (applied changes), each person's trace (every outcome) and the time-zone
 * evidence, in one round trip, before the acknowledgement: a crash between them re-applies
 * (a no-op) and logs twice rather than not at all. */
static void write_audit_and_traces(batch *b, int64_t now) {
    wctx *w = b->w;
    char err[STORE_ERR_MAX];
    char **audit = calloc(2 * b->n, sizeof *audit), **entries = calloc(b->n, sizeof *entries);
    trace_record *recs = calloc(b->n, sizeof *recs);
    store_trace_item *items = calloc(b->n, sizeof *items);
    size_t nau = 0, nt = 0;
    store_tz_suspect tz = {0};
    bool suspect = false;
    if (!audit || !entries || !recs || !items) goto out;
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        char *e;
        if (it->state == IT_DONE && it->p.to_sf && (e = audit_entry(it, "salesforce", now)))
            audit[nau++] = e;
        if (it->state == IT_DONE && it->p.to_mkto && (e = audit_entry(it, "marketo", now)))
            audit[nau++] = e;
        suspect = timezone_suspect(w, it, &tz, now) || suspect;
        if (!trace_of(it, now, &recs[nt]) || !(entries[nt] = trace_entry_json(&recs[nt]))) continue;
        items[nt] = (store_trace_item){recs[nt].email, recs[nt].mkto_lead, recs[nt].sf_person, now,
                                       entries[nt]};
        nt++;
    }
    store_trace_limits lim = store_trace_limits_of(w->cfg);
    if ((nau || nt || suspect) &&
        store_trace_write(w->st, (const char *const *)audit, nau, items, nt, suspect ? &tz : NULL,
                          &lim, err, sizeof err) != 0)
        LOG_KV(LOG_WARN, "worker: could not write the audit log and traces", "error", err);
out:
    for (size_t i = 0; audit && i < nau; i++)
        free(audit[i]);
    for (size_t i = 0; entries && i < nt; i++)
        free(entries[i]);
    free(audit);
    free(entries);
    free(recs);
    free(items);
}

/* What became of jobs' corrections in this batch, counted on their jobs (jobs.h waits for
 * them), before the acknowledgement: a crash between them counts one twice, never none.
 * False when Redis could not count them: the batch is then not acknowledged (its entries are
 * claimed back and counted when applied again, idempotently). */
static bool count_job_outcomes(batch *b) {
    store_job_outcome *o = calloc(b->n ? b->n : 1, sizeof *o);
    size_t no = 0;
    char err[STORE_ERR_MAX];
    for (size_t i = 0; o && i < b->n; i++) {
        const item *it = &b->items[i];
        if (!it->parsed || !it->ev.job[0]) continue;
        bool applied = it->state == IT_DONE && !it->backward;
        bool skipped = it->state == IT_DROP || it->state == IT_PENDING ||
                       (it->state == IT_DONE && it->backward);
        bool dead = it->state == IT_DEAD && it->dead_id[0];
        if (!applied && !skipped && !dead) continue; /* no outcome yet: retried, parked */
        size_t k = 0;
        while (k < no && strcmp(o[k].id, it->ev.job) != 0)
            k++;
        if (k == no) o[no++].id = it->ev.job;
        o[k].applied += applied;
        o[k].skipped += skipped;
        o[k].dead += dead;
    }
    bool ok = o != NULL;
    if (no && store_job_outcomes(b->w->st, o, no, err, sizeof err) != 0) {
        LOG_KV(LOG_WARN, "worker: could not count jobs' corrections; they will be claimed again",
               "error", err);
        ok = false;
    }
    free(o);
    return ok;
}

void batch_finish(batch *b) {
    wctx *w = b->w;
    char err[STORE_ERR_MAX];
    const char **acks = calloc(b->n, sizeof *acks);
    int *put = calloc(b->n ? b->n : 1, sizeof *put);
    size_t na = 0;
    int64_t now = event_now_ms();
    if (!acks || !put) {
        /* Nothing acknowledged: the entries stay pending and are claimed back later. */
        free(acks);
        free(put);
        return;
    }
    record_members(b, now, put, err, sizeof err);
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->state == IT_PENDING && it->p.kind == PLAN_APPLY) {
            int rc = put[i];
            if (rc < 0) {
                item_fail(it, IT_RETRY, it->p.to_sf ? "salesforce" : "marketo", -1, "Redis: %s",
                          err);
            } else if (rc == 0) {
                /* Another worker recorded this member meanwhile (its lock expired during an
                 * outage): the writes are done and idempotent; plan again on the new record so
                 * the newest change still wins on both sides. */
                it->state = IT_DEFER;
            } else {
                metrics_observe(M_APPLY_LATENCY, (double)(now - it->ev.received_ms) / 1000.0,
                                it->p.to_sf ? "salesforce" : "marketo");
                if (log_enabled(LOG_DEBUG))
                    LOG_KV(LOG_DEBUG, "applied", "event_id", it->ev.id, "campaign_id", it->campaign,
                           "program_id", it->p.program_id);
                it->state = IT_DONE;
            }
        }
        switch (it->state) {
        case IT_PARKED: break;
        case IT_QUOTA: worker_park_for_quota(w, it->e, it->target); break;
        case IT_DONE:
        case IT_DROP: acks[na++] = it->e->id; break;
        case IT_PENDING:
            /* Planned to nothing left to write (both sides already there). */
            acks[na++] = it->e->id;
            break;
        case IT_DEFER:
            if (store_defer(w->st, it->e, it->defer_until > now ? it->defer_until : now + DEFER_MS,
                            err, sizeof err) != 0)
                LOG_KV(LOG_WARN, "worker: could not defer; the entry stays pending", "error", err);
            break;
        case IT_RETRY: {
            int attempts = it->e->attempts + 1;
            if (plan_retry(attempts, w->cfg->max_attempts) == IT_DEAD) {
                char why[sizeof it->error];
                snprintf(why, sizeof why, "gave up after %d attempts: %.640s", attempts, it->error);
                memcpy(it->error, why, sizeof why);
                it->state = IT_DEAD;
                dead_letter(w, it);
                break;
            }
            long d = plan_backoff_ms(attempts, w->cfg->retry_base_ms, w->cfg->retry_max_ms,
                                     it->retry_after_ms, (unsigned)rand_r(&w->rnd));
            if (store_retry(w->st, it->e, attempts, now + d, it->error, err, sizeof err) == 0) {
                metrics_add(M_RETRIES, 1, it->target ? it->target : "salesforce");
                LOG_KV(LOG_WARN, "worker: will retry", "event_id", it->ev.id, "error", it->error);
            } else {
                it->state = IT_DEFER; /* still pending, claimed back later: no outcome yet */
            }
            break;
        }
        case IT_DEAD: dead_letter(w, it); break;
        }
    }
    write_audit_and_traces(b, now);
    bool counted = count_job_outcomes(b);
    /* A batch holds entries of one queue (process_by_queue). */
    if (na && counted && store_ack(w->st, b->items[0].e->q, acks, na, err, sizeof err) != 0)
        LOG_KV(LOG_WARN, "worker: could not acknowledge; entries will be claimed again", "error",
               err);
    free(acks);
    free(put);
}
