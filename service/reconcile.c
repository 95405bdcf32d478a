/* reconcile — which side of a person wins, and the correction that says so. See
 * include/reconcile.h. */
#include "reconcile.h"

#include <stdio.h>
#include <string.h>

/* Fills an event that re-states one side's current membership. */
static void correction(const mapping *m, const reconcile_person *p, const member_state *rec,
                       bool from_mk, int64_t now, event *ev) {
    memset(ev, 0, sizeof *ev);
    ev->received_ms = now;
    snprintf(ev->email, sizeof ev->email, "%s", p->email);
    snprintf(ev->first_name, sizeof ev->first_name, "%s", p->first);
    snprintf(ev->last_name, sizeof ev->last_name, "%s", p->last);
    snprintf(ev->company, sizeof ev->company, "%s", p->company);
    snprintf(ev->mkto_lead_id, sizeof ev->mkto_lead_id, "%s",
             p->lead[0] ? p->lead : rec->mkto_lead);
    int64_t t = from_mk ? p->mk_ts : p->sf_ts;
    if (!t) t = now;
    /* The decision is made here; an event no newer than the record would be dropped. */
    if (rec->known && t <= rec->ts) t = rec->ts + 1;
    ev->source_ts_ms = t;
    if (from_mk) {
        ev->source = SRC_MARKETO;
        ev->type = p->in_mk ? EV_MEMBER_STATUS_CHANGED : EV_MEMBER_REMOVED;
        snprintf(ev->program_id, sizeof ev->program_id, "%s", m->program_id);
        if (p->in_mk) snprintf(ev->status, sizeof ev->status, "%s", p->mk_status);
        snprintf(ev->id, sizeof ev->id, "rec:%s:%s:%lld", m->program_id, ev->mkto_lead_id,
                 (long long)t);
    } else {
        ev->source = SRC_SALESFORCE;
        ev->type = p->in_sf ? EV_SF_MEMBER_CHANGED : EV_SF_MEMBER_DELETED;
        snprintf(ev->campaign_id, sizeof ev->campaign_id, "%s", m->campaign_id);
        snprintf(ev->member_id, sizeof ev->member_id, "%s", p->in_sf ? p->cm_id : rec->cm_id);
        const char *who = p->in_sf ? p->sf_person : rec->sf_person;
        if (strncmp(who, "003", 3) == 0)
            snprintf(ev->sf_contact_id, sizeof ev->sf_contact_id, "%s", who);
        else
            snprintf(ev->sf_lead_id, sizeof ev->sf_lead_id, "%s", who);
        if (p->in_sf) snprintf(ev->status, sizeof ev->status, "%s", p->sf_status);
        snprintf(ev->id, sizeof ev->id, "rec:%.18s:%.18s:%lld", m->campaign_id, who, (long long)t);
    }
}

const char *reconcile_difference(const mapping *m, const reconcile_person *p) {
    char want_sf[STATUS_LABEL_MAX] = "";
    bool mapped = p->in_mk && status_map_to_salesforce(m, p->mk_status, want_sf, sizeof want_sf);
    if (p->in_mk && p->in_sf && mapped && strcmp(want_sf, p->sf_status) == 0) return NULL;
    if (!p->in_mk && !p->in_sf) return NULL;
    return !p->in_sf   ? "missing_in_salesforce"
           : !p->in_mk ? "missing_in_marketo"
                       : "status_differs";
}

bool reconcile_decide(const mapping *m, const reconcile_person *p, const member_state *rec,
                      int64_t now, event *ev, char *action, size_t alen) {
    const char *lead = p->lead;
    /* Which side moved since what was recorded? */
    bool mk_changed = !rec->known || rec->mkto_member != p->in_mk ||
                      (p->in_mk && strcmp(rec->mkto_status, p->mk_status) != 0);
    bool sf_changed = !rec->known || rec->sf_member != p->in_sf ||
                      (p->in_sf && strcmp(rec->sf_status, p->sf_status) != 0);
    enum { WIN_NONE, WIN_MARKETO, WIN_SALESFORCE } winner = WIN_NONE;
    if (mk_changed && !sf_changed)
        winner = WIN_MARKETO;
    else if (sf_changed && !mk_changed)
        winner = WIN_SALESFORCE;
    else if (mk_changed && sf_changed)
        /* A membership with a time beats an absence without one. */
        winner =
            (p->in_mk ? p->mk_ts : 0) >= (p->in_sf ? p->sf_ts : 0) ? WIN_MARKETO : WIN_SALESFORCE;
    /* Salesforce deletions need the member we recorded; without it, Marketo's side wins. */
    if (winner == WIN_SALESFORCE && !p->in_sf && !rec->cm_id[0]) winner = WIN_MARKETO;
    if (winner == WIN_MARKETO && !p->in_mk && !lead[0]) winner = WIN_SALESFORCE;
    if (winner == WIN_MARKETO)
        snprintf(action, alen,
                 p->in_mk ? "Salesforce set to Marketo's \"%s\"" : "removed from Salesforce%s",
                 p->in_mk ? p->mk_status : "");
    else if (winner == WIN_SALESFORCE)
        snprintf(action, alen,
                 p->in_sf ? "Marketo set to Salesforce's \"%s\"" : "removed from Marketo%s",
                 p->in_sf ? p->sf_status : "");
    else
        snprintf(action, alen,
                 "none: neither side changed since recorded (e.g. a "
                 "backward move Marketo keeps)");
    if (winner == WIN_NONE ||
        !(winner == WIN_MARKETO ? p->email[0] || lead[0]
                                : p->email[0] || p->sf_person[0] || rec->sf_person[0]))
        return false;
    correction(m, p, rec, winner == WIN_MARKETO, now, ev);
    return true;
}
