/* reconcile — compare both member lists and queue corrections. See include/reconcile.h. */
#include "reconcile.h"

#include "event.h"
#include "log.h"
#include "metrics.h"
#include "store_members.h"
#include "store_queue.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DETAILS_MAX    1000
#define LEADS_PER_CALL 300
#define QUEUE_BATCH    100

/* One person as seen on both sides; the email (lower case) is the join key. */
typedef reconcile_person person;

typedef struct {
    person *p;
    size_t n, cap;
} people;

static person *add_person(people *ps) {
    if (ps->n == ps->cap) {
        size_t ncap = ps->cap ? ps->cap * 2 : 256;
        person *np = realloc(ps->p, ncap * sizeof *np);
        if (!np) return NULL;
        ps->p = np;
        ps->cap = ncap;
    }
    person *p = &ps->p[ps->n++];
    memset(p, 0, sizeof *p);
    return p;
}

static person *by_lead(people *ps, const char *lead) {
    for (size_t i = 0; i < ps->n; i++)
        if (ps->p[i].in_mk && strcmp(ps->p[i].lead, lead) == 0) return &ps->p[i];
    return NULL;
}

static person *by_email(people *ps, const char *email) {
    if (!*email) return NULL;
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->p[i].email, email) == 0) return &ps->p[i];
    return NULL;
}

static void lower_copy(char *dst, size_t size, const char *src) {
    size_t i = 0;
    for (; src && src[i] && i + 1 < size; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

/* The program's members, one listing per channel status (the endpoint needs a filter). */
static int read_marketo(crm *c, const mapping *m, people *ps, char *err, size_t errlen) {
    mk_program prog;
    mk_error e;
    if (mkto_get_program(crm_marketo(c), m->program_id, &prog, &e) != 0) {
        snprintf(err, errlen, "Marketo: reading program %s failed: %s %s", m->program_id, e.code,
                 e.message);
        return -1;
    }
    if (!prog.found) {
        snprintf(err, errlen, "Marketo has no program %s", m->program_id);
        return -1;
    }
    char **names = NULL;
    size_t nn = 0;
    if (mkto_channel_statuses(crm_marketo(c), prog.channel, &names, &nn, &e) != 0) {
        snprintf(err, errlen, "Marketo: channel \"%s\": %s %s", prog.channel, e.code, e.message);
        return -1;
    }
    int rc = 0;
    for (size_t s = 0; s < nn && rc == 0; s++) {
        if (strcmp(names[s], NOT_IN_PROGRAM) == 0) continue;
        char token[1024] = "";
        do {
            mk_member *page = NULL;
            size_t np = 0;
            if (mkto_members_page(crm_marketo(c), m->program_id, names[s], token, sizeof token,
                                  &page, &np, &e) != 0) {
                snprintf(err, errlen, "Marketo: members of program %s: %s %s", m->program_id,
                         e.code, e.message);
                rc = -1;
                break;
            }
            for (size_t k = 0; k < np; k++) {
                person *p = add_person(ps);
                if (!p) break;
                p->in_mk = true;
                snprintf(p->lead, sizeof p->lead, "%s", page[k].lead_id);
                snprintf(p->mk_status, sizeof p->mk_status, "%s", names[s]);
                p->mk_ts = page[k].updated_ms;
            }
            mkto_members_free(page, np);
        } while (token[0]);
    }
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    if (rc) return rc;
    /* Emails and names, 300 leads a call. */
    for (size_t start = 0; start < ps->n; start += LEADS_PER_CALL) {
        const char *ids[LEADS_PER_CALL];
        size_t k = 0;
        for (size_t i = start; i < ps->n && k < LEADS_PER_CALL; i++)
            ids[k++] = ps->p[i].lead;
        mk_lead *leads = NULL;
        size_t nl = 0;
        if (mkto_leads_by(crm_marketo(c), MK_BY_ID, ids, k, MK_LEAD_EMAIL | MK_LEAD_NAMES, &leads,
                          &nl, &e) != 0) {
            snprintf(err, errlen, "Marketo: leads: %s %s", e.code, e.message);
            return -1;
        }
        for (size_t j = 0; j < nl; j++) {
            const mk_lead *l = &leads[j];
            person *p = l->id[0] ? by_lead(ps, l->id) : NULL;
            if (!p) continue;
            lower_copy(p->email, sizeof p->email, l->email ? l->email : "");
            snprintf(p->first, sizeof p->first, "%s", l->first_name ? l->first_name : "");
            snprintf(p->last, sizeof p->last, "%s", l->last_name ? l->last_name : "");
            snprintf(p->company, sizeof p->company, "%s", l->company ? l->company : "");
        }
        mkto_leads_free(leads, nl);
    }
    return 0;
}

static int read_salesforce(crm *c, store *st, const mapping *m, people *ps, char *err,
                           size_t errlen) {
    sf_member_row *rows = NULL;
    size_t nrows = 0;
    sf_error e;
    if (sf_campaign_member_list(crm_salesforce(c), m->campaign_id, &rows, &nrows, &e) != 0) {
        snprintf(err, errlen, "Salesforce: members of campaign %s: %s: %s", m->campaign_id, e.code,
                 e.message);
        return -1;
    }
    for (size_t i = 0; i < nrows; i++) {
        const sf_member_row *r = &rows[i];
        const char *who = r->contact_id[0] ? r->contact_id : r->lead_id;
        char email[EV_TEXT_MAX], lead[EV_NUMID_MAX] = "", e2[STORE_ERR_MAX];
        lower_copy(email, sizeof email, r->email);
        /* Join through the recorded link first, then by email. */
        person *p = NULL;
        if (*who && store_link_by_sf(st, who, lead, e2, sizeof e2) == 1) p = by_lead(ps, lead);
        if (!p) p = by_email(ps, email);
        if (!p && !(p = add_person(ps))) break;
        if (!p->email[0]) snprintf(p->email, sizeof p->email, "%s", email);
        if (!p->lead[0] && lead[0]) snprintf(p->lead, sizeof p->lead, "%s", lead);
        if (!p->first[0]) snprintf(p->first, sizeof p->first, "%s", r->first_name);
        if (!p->last[0]) snprintf(p->last, sizeof p->last, "%s", r->last_name);
        if (!p->company[0]) snprintf(p->company, sizeof p->company, "%s", r->company);
        p->in_sf = true;
        snprintf(p->cm_id, sizeof p->cm_id, "%s", r->id);
        snprintf(p->sf_person, sizeof p->sf_person, "%s", who);
        snprintf(p->sf_status, sizeof p->sf_status, "%s", r->status);
        p->sf_ts = r->modified_ms;
    }
    sf_member_rows_free(rows, nrows);
    return 0;
}

/* Fills an event that re-states one side's current membership. */
static void correction(const mapping *m, const person *p, const member_state *rec, bool from_mk,
                       int64_t now, event *ev) {
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
    int winner = 0; /* 1 Marketo, 2 Salesforce, 0 none */
    if (mk_changed && !sf_changed)
        winner = 1;
    else if (sf_changed && !mk_changed)
        winner = 2;
    else if (mk_changed && sf_changed)
        /* A membership with a time beats an absence without one. */
        winner = (p->in_mk ? p->mk_ts : 0) >= (p->in_sf ? p->sf_ts : 0) ? 1 : 2;
    /* Salesforce deletions need the member we recorded; without it, Marketo's side wins. */
    if (winner == 2 && !p->in_sf && !rec->cm_id[0]) winner = 1;
    if (winner == 1 && !p->in_mk && !lead[0]) winner = 2;
    if (winner == 1)
        snprintf(action, alen,
                 p->in_mk ? "Salesforce set to Marketo's \"%s\"" : "removed from Salesforce%s",
                 p->in_mk ? p->mk_status : "");
    else if (winner == 2)
        snprintf(action, alen,
                 p->in_sf ? "Marketo set to Salesforce's \"%s\"" : "removed from Marketo%s",
                 p->in_sf ? p->sf_status : "");
    else
        snprintf(action, alen,
                 "none: neither side changed since recorded (e.g. a "
                 "backward move Marketo keeps)");
    if (!winner || !(winner == 1 ? p->email[0] || lead[0]
                                 : p->email[0] || p->sf_person[0] || rec->sf_person[0]))
        return false;
    correction(m, p, rec, winner == 1, now, ev);
    return true;
}

char *reconcile_mapping(crm *c, store *st, const mapping *m, char *err, size_t errlen) {
    people ps = {0};
    char *out = NULL;
    event *queue = calloc(QUEUE_BATCH, sizeof *queue);
    bool added[QUEUE_BATCH];
    size_t nq = 0;
    long compared = 0, differences = 0, queued = 0;
    cJSON *details = cJSON_CreateArray();
    if (!queue || !details) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (read_marketo(c, m, &ps, err, errlen) != 0 ||
        read_salesforce(c, st, m, &ps, err, errlen) != 0)
        goto done;
    int64_t now = event_now_ms();
    for (size_t i = 0; i < ps.n; i++) {
        person *p = &ps.p[i];
        compared++;
        const char *kind = reconcile_difference(m, p);
        if (!kind) continue;
        differences++;
        metrics_add(M_RECONCILE_DIFFS, 1, kind);
        member_state rec = {0};
        char e2[STORE_ERR_MAX];
        const char *lead = p->lead;
        if (*lead && store_member_get(st, m->campaign_id, lead, &rec, e2, sizeof e2) < 0) {
            snprintf(err, errlen, "Redis: %s", e2);
            goto done;
        }
        char action[300];
        if (reconcile_decide(m, p, &rec, now, &queue[nq], action, sizeof action)) {
            nq++;
            if (nq == QUEUE_BATCH) {
                if (store_enqueue(st, queue, nq, added, e2, sizeof e2) != 0) {
                    snprintf(err, errlen, "Redis: %s", e2);
                    goto done;
                }
                for (size_t k = 0; k < nq; k++)
                    queued += added[k];
                nq = 0;
            }
        }
        if (cJSON_GetArraySize(details) < DETAILS_MAX) {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "email", p->email);
            if (p->in_mk)
                cJSON_AddStringToObject(d, "marketo", p->mk_status);
            else
                cJSON_AddNullToObject(d, "marketo");
            if (p->in_sf)
                cJSON_AddStringToObject(d, "salesforce", p->sf_status);
            else
                cJSON_AddNullToObject(d, "salesforce");
            cJSON_AddStringToObject(d, "action", action);
            cJSON_AddItemToArray(details, d);
        }
    }
    if (nq) {
        char e2[STORE_ERR_MAX];
        if (store_enqueue(st, queue, nq, added, e2, sizeof e2) != 0) {
            snprintf(err, errlen, "Redis: %s", e2);
            goto done;
        }
        for (size_t k = 0; k < nq; k++)
            queued += added[k];
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "programId", m->program_id);
    cJSON_AddStringToObject(o, "campaignId", m->campaign_id);
    cJSON_AddNumberToObject(o, "compared", (double)compared);
    cJSON_AddNumberToObject(o, "differences", (double)differences);
    cJSON_AddNumberToObject(o, "queued", (double)queued);
    cJSON_AddItemToObject(o, "details", details);
    details = NULL;
    out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char line[160];
    snprintf(line, sizeof line, "reconciled program %s: %ld compared, %ld differences, %ld queued",
             m->program_id, compared, differences, queued);
    LOG_KV(LOG_INFO, line);
done:
    cJSON_Delete(details);
    free(queue);
    free(ps.p);
    return out;
}
