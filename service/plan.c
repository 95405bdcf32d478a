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

void plan_event(const event *ev, const mapping *m, const member_state *st,
                const char *integration_user_id, plan_result *out) {
    memset(out, 0, sizeof *out);
    const member_state none = {0};
    if (!st) st = &none;
    bool removal = event_is_removal(ev);
    if (plan_roundtrip_person(ev->email)) integration_user_id = NULL;

    /* 1. Our own Salesforce write coming back (the round trip's test person is saved with
     * our credentials by the tool too: judged by rule 5 instead, see plan.h). */
    if (ev->source == SRC_SALESFORCE && integration_user_id && *integration_user_id &&
        ev->modified_by[0] && strncmp(ev->modified_by, integration_user_id, 15) == 0) {
        drop(out, DROP_ECHO);
        return;
    }

    /* 2. Which pair the event belongs to. */
    if (m && is_program_event(ev->type) && strcmp(m->program_id, ev->program_id) != 0) m = NULL;
    if (m && !is_program_event(ev->type) && strncmp(m->campaign_id, ev->campaign_id, 15) != 0)
        m = NULL;
    if (!m && !is_flow_action(ev->type)) {
        drop(out, DROP_UNMAPPED);
        return;
    }
    if (m && !m->enabled) {
        out->kind = PLAN_PARK;
        return;
    }
    snprintf(out->program_id, sizeof out->program_id, "%s", m ? m->program_id : "");
    snprintf(out->campaign_id, sizeof out->campaign_id, "%s", m ? m->campaign_id : ev->campaign_id);

    /* 3. Newest source time wins per member; a stale event needs no reading or translating. A
     * deleted CampaignMember that is not the one recorded ended a membership that a newer one
     * has replaced since (a remove and re-add): whatever its deletedDate, it is older. */
    if (ev->type == EV_SF_MEMBER_DELETED && st->known && st->cm_id[0] && ev->member_id[0] &&
        strncmp(st->cm_id, ev->member_id, 15) != 0) {
        drop(out, DROP_STALE);
        return;
    }
    if (st->known && event_time(ev) < st->ts) {
        drop(out, DROP_STALE);
        return;
    }

    /* 4. The wanted state on each side. */
    bool want_sf = false, sf_member = false, want_mk = false, mk_member = false;
    char sf_status[STATUS_LABEL_MAX] = "", mk_status[STATUS_LABEL_MAX] = "";
    if (is_program_event(ev->type)) {
        if (!removal && !ev->status[0]) {
            out->kind = PLAN_NEED_STATUS;
            out->need_from = SRC_MARKETO;
            return;
        }
        want_sf = true;
        sf_member = !removal;
        if (sf_member && !status_map_to_salesforce(m, ev->status, sf_status, sizeof sf_status)) {
            dead(out,
                 "Marketo program %s status \"%s\" has no counterpart in Salesforce campaign "
                 "%s: add a campaign member status \"%s\" to the campaign or a statusMap "
                 "entry to the mapping, then replay this dead letter",
                 m->program_id, ev->status, m->campaign_id, ev->status);
            return;
        }
        /* The Marketo side already is what the event says. */
        mk_member = !removal;
        snprintf(mk_status, sizeof mk_status, "%s", removal ? "" : ev->status);
    } else if (is_flow_action(ev->type)) {
        if (!removal && !ev->status[0]) {
            if (ev->type == EV_CHANGE_CAMPAIGN_STATUS) {
                dead(out,
                     "change_campaign_status for campaign %s has no status: give the "
                     "webhook a \"status\"",
                     ev->campaign_id);
                return;
            }
            out->kind = PLAN_NEED_STATUS; /* add_to_campaign: the campaign's default status */
            out->need_from = SRC_SALESFORCE;
            return;
        }
        want_sf = true;
        sf_member = !removal;
        snprintf(sf_status, sizeof sf_status, "%s", removal ? "" : ev->status);
        if (m) {
            want_mk = true;
            mk_member = !removal;
            if (mk_member && !to_marketo(m, ev, mk_status, sizeof mk_status, out)) return;
        }
    } else { /* Salesforce campaign member change or deletion */
        want_mk = true;
        mk_member = !removal;
        if (mk_member && !to_marketo(m, ev, mk_status, sizeof mk_status, out)) return;
        sf_member = !removal;
        snprintf(sf_status, sizeof sf_status, "%s", removal ? "" : ev->status);
    }

    int64_t t = event_time(ev);
    /* 4b. We wrote the event's own side after the event happened there (an older change from
     * the other side, applied late): that write overwrote this newer change, which must be
     * put back on its own side as well. */
    /* The marks count even without a record: a worker may have died between its write and
     * recording it. A write in the event's own millisecond may have landed after it as well
     * (chaos: our late "Attended" and the user's Marketo removal, both at 20:14:37.583). */
    int64_t mk_w =
        st->mkto_written_ms > st->mkto_pending_ms ? st->mkto_written_ms : st->mkto_pending_ms;
    int64_t sf_w = st->sf_written_ms > st->sf_pending_ms ? st->sf_written_ms : st->sf_pending_ms;
    if (ev->source == SRC_MARKETO && is_program_event(ev->type) && t <= mk_w) want_mk = true;
    if (ev->source == SRC_SALESFORCE && t <= sf_w) want_sf = true;

    /* 5. Nothing to write when every side already is as wanted. */
    bool sf_needed =
        want_sf && !same_side(sf_member, sf_status, st->known && st->sf_member, st->sf_status);
    bool mk_needed =
        want_mk && !same_side(mk_member, mk_status, st->known && st->mkto_member, st->mkto_status);
    /* A first sight has nothing recorded to compare with: apply it. */
    if (!st->known) {
        sf_needed = want_sf;
        mk_needed = want_mk;
    }
    /* A write of ours to the event's own side may have landed after the event without being
     * recorded (its worker died): what that side holds is unknown, so the event is put back
     * there whatever the record says (chaos: a re-asserted "Registered" landed after the
     * newer removal, which was then taken as already in place). */
    if (ev->source == SRC_MARKETO && is_program_event(ev->type) && t <= st->mkto_pending_ms)
        mk_needed = want_mk;
    if (ev->source == SRC_SALESFORCE && t <= st->sf_pending_ms) sf_needed = want_sf;

    member_state *n = &out->next;
    *n = *st;
    n->known = true;
    n->ts = t > st->ts ? t : st->ts;
    n->src = ev->source;
    /* A side is recorded when we write it, or when the event itself describes it (a
     * Salesforce change, a Marketo program change; not a flow action on an unmapped
     * campaign, which says nothing about any program). */
    if (want_sf || ev->source == SRC_SALESFORCE) {
        n->sf_member = sf_member;
        snprintf(n->sf_status, sizeof n->sf_status, "%s", sf_status);
    }
    if (want_mk || is_program_event(ev->type)) {
        n->mkto_member = mk_member;
        snprintf(n->mkto_status, sizeof n->mkto_status, "%s", mk_status);
    }
    if (ev->email[0]) snprintf(n->email, sizeof n->email, "%s", ev->email);
    if (ev->mkto_lead_id[0]) snprintf(n->mkto_lead, sizeof n->mkto_lead, "%s", ev->mkto_lead_id);
    if (ev->source == SRC_SALESFORCE) {
        if (ev->member_id[0]) snprintf(n->cm_id, sizeof n->cm_id, "%s", ev->member_id);
        const char *person = ev->sf_contact_id[0] ? ev->sf_contact_id : ev->sf_lead_id;
        if (*person) snprintf(n->sf_person, sizeof n->sf_person, "%s", person);
    }

    if (!sf_needed && !mk_needed) {
        /* Nothing to write, but the event's own side and its newer time still count: without
         * them an older event delivered later would look newer than what is recorded. */
        drop(out, st->src == ev->source ? DROP_DUPLICATE : DROP_ECHO);
        out->record = true;
        if (out->reason == DROP_ECHO) n->src = st->src;
        return;
    }
    out->kind = PLAN_APPLY;
    out->to_sf = sf_needed;
    out->sf_member = sf_member;
    snprintf(out->sf_status, sizeof out->sf_status, "%s", sf_status);
    out->to_mkto = mk_needed;
    out->mkto_member = mk_member;
    snprintf(out->mkto_status, sizeof out->mkto_status, "%s", mk_status);
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
