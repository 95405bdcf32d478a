/* plan — the sync rules for one event. See include/plan.h. */
#include "plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *plan_drop_reason_name(drop_reason r) {
    switch (r) {
    case DROP_NONE: return "none";
    case DROP_DUPLICATE: return "duplicate";
    case DROP_ECHO: return "echo";
    case DROP_STALE: return "stale";
    case DROP_UNMAPPED: return "unmapped";
    case DROP_BACKWARD: return "backward_progression";
    }
    return "none";
}

static void drop(plan_result *out, drop_reason r) {
    out->kind = PLAN_DROP;
    out->reason = r;
}

static void dead(plan_result *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dead(plan_result *out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof out->message, fmt, ap);
    va_end(ap);
    out->kind = PLAN_DEAD;
}

/* A Salesforce status for the program; false (and a dead letter naming all three) when it
 * has no counterpart (F11: never guessed). */
static bool to_marketo(const mapping *m, const event *ev, char *out_status, size_t size,
                       plan_result *out) {
    if (status_map_to_marketo(m, ev->status, out_status, size)) return true;
    dead(out,
         "Salesforce campaign %s status \"%s\" has no counterpart in Marketo program %s: "
         "add the status to the program's channel or a statusMap entry to the mapping, "
         "then replay this dead letter",
         m->campaign_id, ev->status, m->program_id);
    return false;
}

static bool same_side(bool member_a, const char *status_a, bool member_b, const char *status_b) {
    if (member_a != member_b) return false;
    return !member_a || strcmp(status_a, status_b) == 0;
}

static bool is_program_event(event_type t) {
    return t == EV_MEMBER_STATUS_CHANGED || t == EV_MEMBER_REMOVED;
}

static bool is_flow_action(event_type t) {
    return t == EV_ADD_TO_CAMPAIGN || t == EV_CHANGE_CAMPAIGN_STATUS ||
           t == EV_REMOVE_FROM_CAMPAIGN;
}

/* Rules 1 to 3: our own write, the pair the event belongs to (out->program_id, campaign_id;
 * *m becomes NULL when the event is not the mapping's), the newest time. False when the plan
 * is made (a drop or a park). */
static bool pair_and_order(const event *ev, const mapping **mp, const member_state *st,
                           const char *integration_user_id, plan_result *out) {
    const mapping *m = *mp;
    /* 1. Our own Salesforce write coming back (the round trip's test person is saved with
     * our credentials by the tool too: judged by rule 5 instead, see plan.h). */
    if (ev->source == SRC_SALESFORCE && integration_user_id && *integration_user_id &&
        ev->modified_by[0] && strncmp(ev->modified_by, integration_user_id, 15) == 0) {
        drop(out, DROP_ECHO);
        return false;
    }

    /* 2. Which pair the event belongs to. */
    if (m && is_program_event(ev->type) && strcmp(m->program_id, ev->program_id) != 0) m = NULL;
    if (m && !is_program_event(ev->type) && strncmp(m->campaign_id, ev->campaign_id, 15) != 0)
        m = NULL;
    if (!m && !is_flow_action(ev->type)) {
        drop(out, DROP_UNMAPPED);
        return false;
    }
    if (m && !m->enabled) {
        out->kind = PLAN_PARK;
        return false;
    }
    *mp = m;
    snprintf(out->program_id, sizeof out->program_id, "%s", m ? m->program_id : "");
    snprintf(out->campaign_id, sizeof out->campaign_id, "%s", m ? m->campaign_id : ev->campaign_id);

    /* 3. Newest source time wins per member; a stale event needs no reading or translating. A
     * deleted CampaignMember that is not the one recorded ended a membership that a newer one
     * has replaced since (a remove and re-add): whatever its deletedDate, it is older. */
    if (ev->type == EV_SF_MEMBER_DELETED && st->known && st->cm_id[0] && ev->member_id[0] &&
        strncmp(st->cm_id, ev->member_id, 15) != 0) {
        drop(out, DROP_STALE);
        return false;
    }
    if (st->known && event_time(ev) < st->ts) {
        drop(out, DROP_STALE);
        return false;
    }

    return true;
}

/* What an event wants on each side: want_*: that side is to be written (or compared). */
typedef struct {
    bool want_sf, sf_member, want_mk, mk_member;
    char sf_status[STATUS_LABEL_MAX], mk_status[STATUS_LABEL_MAX];
} want_state;

/* Rule 4: the wanted state on each side, statuses translated through the mapping. False when
 * the plan is made (a status to read first, or a dead letter). */
static bool wanted_state(const event *ev, const mapping *m, plan_result *out, want_state *w) {
    bool removal = event_is_removal(ev);
    memset(w, 0, sizeof *w);
    if (is_program_event(ev->type)) {
        if (!removal && !ev->status[0]) {
            out->kind = PLAN_NEED_STATUS;
            out->need_from = SRC_MARKETO;
            return false;
        }
        w->want_sf = true;
        w->sf_member = !removal;
        if (w->sf_member &&
            !status_map_to_salesforce(m, ev->status, w->sf_status, sizeof w->sf_status)) {
            dead(out,
                 "Marketo program %s status \"%s\" has no counterpart in Salesforce campaign "
                 "%s: add a campaign member status \"%s\" to the campaign or a statusMap "
                 "entry to the mapping, then replay this dead letter",
                 m->program_id, ev->status, m->campaign_id, ev->status);
            return false;
        }
        /* The Marketo side already is what the event says. */
        w->mk_member = !removal;
        snprintf(w->mk_status, sizeof w->mk_status, "%s", removal ? "" : ev->status);
    } else if (is_flow_action(ev->type)) {
        if (!removal && !ev->status[0]) {
            if (ev->type == EV_CHANGE_CAMPAIGN_STATUS) {
                dead(out,
                     "change_campaign_status for campaign %s has no status: give the "
                     "webhook a \"status\"",
                     ev->campaign_id);
                return false;
            }
            out->kind = PLAN_NEED_STATUS; /* add_to_campaign: the campaign's default status */
            out->need_from = SRC_SALESFORCE;
            return false;
        }
        w->want_sf = true;
        w->sf_member = !removal;
        snprintf(w->sf_status, sizeof w->sf_status, "%s", removal ? "" : ev->status);
        if (m) {
            w->want_mk = true;
            w->mk_member = !removal;
            if (w->mk_member && !to_marketo(m, ev, w->mk_status, sizeof w->mk_status, out))
                return false;
        }
    } else { /* Salesforce campaign member change or deletion */
        w->want_mk = true;
        w->mk_member = !removal;
        if (w->mk_member && !to_marketo(m, ev, w->mk_status, sizeof w->mk_status, out))
            return false;
        w->sf_member = !removal;
        snprintf(w->sf_status, sizeof w->sf_status, "%s", removal ? "" : ev->status);
    }

    return true;
}

/* The member state to record for the event (out->next): its time and side, each side it
 * writes or describes, the people it names. */
static void next_state(const event *ev, const member_state *st, const want_state *w, int64_t t,
                       plan_result *out) {
    member_state *n = &out->next;
    *n = *st;
    n->known = true;
    n->ts = t > st->ts ? t : st->ts;
    n->src = ev->source;
    /* A side is recorded when we write it, or when the event itself describes it (a
     * Salesforce change, a Marketo program change; not a flow action on an unmapped
     * campaign, which says nothing about any program). */
    if (w->want_sf || ev->source == SRC_SALESFORCE) {
        n->sf_member = w->sf_member;
        snprintf(n->sf_status, sizeof n->sf_status, "%s", w->sf_status);
    }
    if (w->want_mk || is_program_event(ev->type)) {
        n->mkto_member = w->mk_member;
        snprintf(n->mkto_status, sizeof n->mkto_status, "%s", w->mk_status);
    }
    if (ev->email[0]) snprintf(n->email, sizeof n->email, "%s", ev->email);
    if (ev->mkto_lead_id[0]) snprintf(n->mkto_lead, sizeof n->mkto_lead, "%s", ev->mkto_lead_id);
    if (ev->source == SRC_SALESFORCE) {
        if (ev->member_id[0]) snprintf(n->cm_id, sizeof n->cm_id, "%s", ev->member_id);
        const char *person = ev->sf_contact_id[0] ? ev->sf_contact_id : ev->sf_lead_id;
        if (*person) snprintf(n->sf_person, sizeof n->sf_person, "%s", person);
    }
}

void plan_event(const event *ev, const mapping *m, const member_state *st,
                const char *integration_user_id, plan_result *out) {
    memset(out, 0, sizeof *out);
    const member_state none = {0};
    want_state w;
    if (!st) st = &none;
    if (plan_roundtrip_person(ev->email)) integration_user_id = NULL;
    if (!pair_and_order(ev, &m, st, integration_user_id, out) || !wanted_state(ev, m, out, &w))
        return;

    int64_t t = event_time(ev);
    /* 4b. We wrote the event's own side after the event happened there (an older change from
     * the other side, applied late): that write overwrote this newer change, which must be
     * put back on its own side as well. */
    /* The marks count even without a record: a worker may have died between its write and
     * recording it. A write in the event's own millisecond may have landed after it as well
     * (RELIABILITY.md, "Cases behind the rules in code"). */
    int64_t mk_w =
        st->mkto_written_ms > st->mkto_pending_ms ? st->mkto_written_ms : st->mkto_pending_ms;
    int64_t sf_w = st->sf_written_ms > st->sf_pending_ms ? st->sf_written_ms : st->sf_pending_ms;
    if (ev->source == SRC_MARKETO && is_program_event(ev->type) && t <= mk_w) w.want_mk = true;
    if (ev->source == SRC_SALESFORCE && t <= sf_w) w.want_sf = true;

    /* 5. Nothing to write when every side already is as wanted. */
    bool sf_needed = w.want_sf && !same_side(w.sf_member, w.sf_status, st->known && st->sf_member,
                                             st->sf_status);
    bool mk_needed = w.want_mk && !same_side(w.mk_member, w.mk_status, st->known && st->mkto_member,
                                             st->mkto_status);
    /* A first sight has nothing recorded to compare with: apply it. */
    if (!st->known) {
        sf_needed = w.want_sf;
        mk_needed = w.want_mk;
    }
    /* A write of ours to the event's own side may have landed after the event without being
     * recorded (its worker died): what that side holds is unknown, so the event is put back
     * there whatever the record says (RELIABILITY.md, "Cases behind the rules in code"). */
    if (ev->source == SRC_MARKETO && is_program_event(ev->type) && t <= st->mkto_pending_ms)
        mk_needed = w.want_mk;
    if (ev->source == SRC_SALESFORCE && t <= st->sf_pending_ms) sf_needed = w.want_sf;

    next_state(ev, st, &w, t, out);

    if (!sf_needed && !mk_needed) {
        /* Nothing to write, but the event's own side and its newer time still count: without
         * them an older event delivered later would look newer than what is recorded. */
        drop(out, st->src == ev->source ? DROP_DUPLICATE : DROP_ECHO);
        out->record = true;
        if (out->reason == DROP_ECHO) out->next.src = st->src;
        return;
    }
    out->kind = PLAN_APPLY;
    out->to_sf = sf_needed;
    out->sf_member = w.sf_member;
    snprintf(out->sf_status, sizeof out->sf_status, "%s", w.sf_status);
    out->to_mkto = mk_needed;
    out->mkto_member = w.mk_member;
    snprintf(out->mkto_status, sizeof out->mkto_status, "%s", w.mk_status);
}

bool plan_superseded_by_salesforce(const event *ev, const member_state *st, int64_t modified_ms,
                                   const char *modified_by, const char *integration_user_id) {
    if (modified_ms <= event_time(ev)) return false;
    if (plan_roundtrip_person(ev->email)) integration_user_id = NULL;
    if (integration_user_id && *integration_user_id)
        return !modified_by || strncmp(modified_by, integration_user_id, 15) != 0;
    int64_t ours_until =
        st->sf_written_ms > st->sf_pending_ms ? st->sf_written_ms : st->sf_pending_ms;
    return modified_ms > ours_until;
}

bool plan_roundtrip_person(const char *email) {
    size_t np = strlen(PLAN_ROUNDTRIP_PREFIX);
    if (!email || strncasecmp(email, PLAN_ROUNDTRIP_PREFIX, np) != 0) return false;
    const char *p = email + np;
    size_t digits = strspn(p, "0123456789");
    return digits > 0 && digits <= 20 && strcasecmp(p + digits, PLAN_ROUNDTRIP_DOMAIN) == 0;
}

/* ---------------------------------------------------------------- a worker's turn */

it_state plan_after_failure(crm_failure f) {
    switch (f) {
    case CRM_RETRY: return IT_RETRY;
    case CRM_REFUSED: return IT_DEAD;
    case CRM_NO_PERMIT: return IT_DEFER; /* a wait for the budget, not a failure */
    case CRM_SPENT: return IT_QUOTA;     /* a wait for the allowance, not a failure */
    }
    return IT_DEAD;
}

it_state plan_after_sf_record(sf_record_outcome o, crm_failure f, plan_sf_write w) {
    switch (o) {
    case SF_REC_OK: return IT_PENDING;
    case SF_REC_FAILED: return plan_after_failure(f);
    case SF_REC_EXISTS: /* created meanwhile by someone else: look it up, then update it */
        return w == PLAN_SF_CREATE_MEMBER ? IT_DEFER : IT_DEAD;
    case SF_REC_GONE: /* already gone is what a removal wants */
        return w == PLAN_SF_DELETE_MEMBER ? IT_PENDING : IT_DEAD;
    case SF_REC_DUPLICATE_PERSON: /* the existing person the rule names is the person */
        return w == PLAN_SF_CREATE_LEAD ? IT_PENDING : IT_DEAD;
    case SF_REC_BAD_STATUS: return IT_DEAD;
    }
    return IT_DEAD;
}

it_state plan_after_mk_record(mk_record_outcome o, crm_failure f, bool creating) {
    switch (o) {
    case MK_REC_OK: return IT_PENDING;
    case MK_REC_AT_OR_PAST:
    case MK_REC_NOT_MEMBER: return creating ? IT_DEAD : IT_PENDING;
    case MK_REC_FAILED: return !creating && f == CRM_RETRY ? IT_RETRY : IT_DEAD;
    }
    return IT_DEAD;
}

bool plan_skip_needs_read(const member_state *st, const plan_result *p) {
    return !(st->known && st->mkto_member && strcmp(st->mkto_status, p->mkto_status) == 0);
}

bool plan_backward(const char *now, const char *wanted) {
    return !now || strcmp(now, wanted) != 0;
}

void plan_record_applied(const plan_result *p, const member_state *st, const plan_applied *a,
                         int64_t now, member_state *out) {
    *out = p->next;
    if (a->sf_person[0]) snprintf(out->sf_person, sizeof out->sf_person, "%s", a->sf_person);
    if (p->to_sf) snprintf(out->cm_id, sizeof out->cm_id, "%s", a->cm_id);
    if (a->mkto_lead[0]) snprintf(out->mkto_lead, sizeof out->mkto_lead, "%s", a->mkto_lead);
    if (a->backward) {
        /* Marketo kept its status: record the one it answered with, not ours nor the record's
         * old Marketo side (on a first sight that says "not a member", and a later removal in
         * Marketo would be taken as already in place there). */
        bool read = a->mkto_now[0] != '\0';
        out->mkto_member = read || st->mkto_member;
        snprintf(out->mkto_status, sizeof out->mkto_status, "%s",
                 read ? a->mkto_now : st->mkto_status);
    }
    /* When each side was last written by us (rule 4b). Also after a backward move: an earlier
     * try of it may have landed (a timeout) before Marketo moved on, so a newer Marketo change
     * may need putting back. */
    if (p->to_sf) out->sf_written_ms = now;
    if (p->to_mkto) out->mkto_written_ms = now;
    out->updated_ms = now;
}

int64_t plan_wait_for_own_write(const event *ev, const member_state *st, const plan_result *p,
                                int64_t now) {
    bool marketo = ev->source == SRC_MARKETO;
    int64_t mark = marketo ? st->mkto_pending_ms : st->sf_pending_ms;
    if (p->kind == PLAN_APPLY && mark > now && event_time(ev) < mark &&
        (marketo ? p->to_mkto : p->to_sf))
        return mark + PLAN_DEFER_MS;
    return 0;
}

/* Whether lead id a is lower (older) than b: numeric ids as text, no leading zeros. */
static bool id_lower(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    return la != lb ? la < lb : strcmp(a, b) < 0;
}

/* Whether lead l is linked (by Marketo's own sync) to sf_person (1), to another person (-1),
 * or to nobody (0). */
static int linked_to(const mk_lead *l, const char *sf_person) {
    int mine = 0;
    const char *links[] = {l->sfdc_contact_id, l->sfdc_lead_id};
    for (int k = 0; k < 2; k++) {
        if (!links[k] || !links[k][0]) continue;
        if (strncmp(links[k], sf_person, 15) != 0) return -1;
        mine = 1;
    }
    return mine;
}

int plan_pick_lead_by_email(const mk_lead *leads, size_t n, const char *email,
                            const char *sf_person, bool *sure) {
    int best[3] = {-1, -1, -1}; /* linked elsewhere or any, free, mine */
    for (size_t i = 0; i < n; i++) {
        const mk_lead *l = &leads[i];
        if (!l->email || !l->id[0] || strcasecmp(l->email, email) != 0) continue;
        int kind = linked_to(l, sf_person) + 1; /* 0 elsewhere, 1 free, 2 mine */
        for (int k = 0; k <= kind; k++)
            if (k != 1 || kind == 1) /* the "any" slot takes every lead; "free" only free ones */
                if (best[k] < 0 || id_lower(l->id, leads[best[k]].id)) best[k] = (int)i;
    }
    *sure = best[2] >= 0 || best[1] >= 0;
    return best[2] >= 0 ? best[2] : best[1] >= 0 ? best[1] : best[0];
}

int plan_pick_lead_by_sfdc(const mk_lead *leads, size_t n, bool contact, const char *sf_id) {
    int best = -1;
    for (size_t i = 0; i < n; i++) {
        const char *v = contact ? leads[i].sfdc_contact_id : leads[i].sfdc_lead_id;
        if (v && leads[i].id[0] && strncmp(v, sf_id, 15) == 0 &&
            (best < 0 || id_lower(leads[i].id, leads[best].id)))
            best = (int)i;
    }
    return best;
}

sf_new_lead plan_new_lead(const event *ev, const char *placeholder_last_name,
                          const char *placeholder_company) {
    return (sf_new_lead){ev->email, ev->first_name,
                         ev->last_name[0] ? ev->last_name : placeholder_last_name,
                         ev->company[0] ? ev->company : placeholder_company};
}

bool plan_nothing_to_remove(bool wants_member, bool person_found) {
    return !wants_member && !person_found;
}

it_state plan_retry(int attempts, int max_attempts) {
    return attempts >= max_attempts ? IT_DEAD : IT_RETRY;
}

long plan_backoff_ms(int attempt, long base_ms, long max_ms, long retry_after_ms, unsigned r) {
    long d = base_ms;
    for (int i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms) d = max_ms;
    /* Jitter spreads retries of many events that failed together. */
    long jittered = d / 2 + (long)(r % (unsigned)(d / 2 + 1));
    if (retry_after_ms >= 0 && jittered < retry_after_ms) jittered = retry_after_ms;
    return jittered;
}

plan_status plan_campaign_has_status(const char *const *labels, size_t n, bool complete,
                                     int64_t read_ms, int64_t now, const char *status) {
    if (now - read_ms > PLAN_STATUSES_FRESH_MS) return PLAN_STATUS_UNKNOWN;
    for (size_t i = 0; i < n; i++)
        if (strcmp(labels[i], status) == 0) return PLAN_STATUS_PRESENT;
    return complete ? PLAN_STATUS_ABSENT : PLAN_STATUS_UNKNOWN;
}

bool plan_writes_sf_status(const plan_result *p, bool member_exists, const char *member_status) {
    return p->kind == PLAN_APPLY && p->to_sf && p->sf_member && p->sf_status[0] &&
           (!member_exists || strcmp(member_status, p->sf_status) != 0);
}

const char *plan_marketo_status(const char *read) {
    return read ? read : NOT_IN_PROGRAM;
}

bool plan_read_sfdc_ids(bool needed, bool marketo_busy) {
    return needed || !marketo_busy;
}
