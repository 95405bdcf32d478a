/* resync — one person re-read on both sides. See include/resync.h. */
#include "resync.h"

#include "event.h"
#include "log.h"
#include "metrics.h"
#include "reconcile.h"
#include "store_mappings.h"
#include "store_members.h"
#include "store_queue.h"

#include <cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAPPINGS_PAGE 50
#define QUEUE_BATCH   100

/* What one resync read of both sides. */
typedef struct {
    char email[EV_TEXT_MAX]; /* lower case */
    mk_lead *leads;          /* the Marketo leads with the email */
    size_t nall;
    const char *lead_ids[RESYNC_LEADS_MAX];
    size_t nleads;
    char sf_ids[RESYNC_LEADS_MAX * 3][EV_SFID_MAX]; /* Contacts, then Leads */
    size_t nsf;
    sf_member_row *members; /* the CampaignMembers of those people, in every campaign */
    size_t nmembers;
} person_sides;

static void add_sf_id(person_sides *ps, const char *id) {
    if (!id || !event_valid_sfid(id) || ps->nsf == sizeof ps->sf_ids / sizeof ps->sf_ids[0]) return;
    for (size_t i = 0; i < ps->nsf; i++)
        if (strncmp(ps->sf_ids[i], id, 15) == 0) return;
    snprintf(ps->sf_ids[ps->nsf++], EV_SFID_MAX, "%s", id);
}

/* The Marketo leads with the email, and the Salesforce ids Marketo's own sync set on them. */
static int read_marketo_leads(crm *c, person_sides *ps, char *err, size_t errlen) {
    const char *emails[] = {ps->email};
    mk_error e;
    if (mkto_leads_by(crm_marketo(c), MK_BY_EMAIL, emails, 1,
                      MK_LEAD_EMAIL | MK_LEAD_NAMES | MK_LEAD_SFDC_IDS, &ps->leads, &ps->nall,
                      &e) != 0) {
        snprintf(err, errlen, "Marketo: looking up leads by email: %s %s", e.code, e.message);
        return -1;
    }
    for (size_t i = 0; i < ps->nall; i++) {
        const mk_lead *l = &ps->leads[i];
        if (!l->id[0] || ps->nleads == RESYNC_LEADS_MAX) continue;
        ps->lead_ids[ps->nleads++] = l->id;
        add_sf_id(ps, l->sfdc_contact_id);
        add_sf_id(ps, l->sfdc_lead_id);
    }
    return 0;
}

/* The ids of the `kind` records with the email. */
static int query_ids(crm *c, sf_person_kind kind, person_sides *ps, char *err, size_t errlen) {
    char ids[RESYNC_LEADS_MAX * 3][CRM_SFID_MAX];
    size_t n = 0;
    sf_error e;
    if (sf_people_with_email(crm_salesforce(c), kind, ps->email, ids, sizeof ids / sizeof ids[0],
                             &n, &e) != 0) {
        snprintf(err, errlen, "Salesforce: %s: %s", e.code, e.message);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        add_sf_id(ps, ids[i]);
    return 0;
}

/* The CampaignMembers (every campaign) of the people ids[0..n), all Contacts or all Leads. */
static int query_members(crm *c, sf_person_kind kind, const char *const *ids, size_t n,
                         person_sides *ps, char *err, size_t errlen) {
    sf_member_row *rows = NULL;
    size_t nrows = 0;
    sf_error e;
    if (n == 0) return 0;
    if (sf_person_memberships(crm_salesforce(c), kind, ids, n, &rows, &nrows, &e) != 0) {
        if (!strcmp(e.code, "UNUSABLE"))
            snprintf(err, errlen, "Salesforce: %s", e.message);
        else
            snprintf(err, errlen, "Salesforce: campaign members: %s: %s", e.code, e.message);
        return -1;
    }
    sf_member_row *all = realloc(ps->members, (ps->nmembers + nrows + 1) * sizeof *all);
    if (!all) {
        sf_member_rows_free(rows, nrows);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ps->members = all;
    memcpy(all + ps->nmembers, rows, nrows * sizeof *rows);
    ps->nmembers += nrows;
    free(rows); /* the rows' strings now belong to ps->members */
    return 0;
}

static int read_salesforce(crm *c, person_sides *ps, char *err, size_t errlen) {
    if (query_ids(c, SF_CONTACT, ps, err, errlen) != 0 ||
        query_ids(c, SF_LEAD, ps, err, errlen) != 0)
        return -1;
    const char *contacts[RESYNC_LEADS_MAX * 3], *leads[RESYNC_LEADS_MAX * 3];
    size_t nc = 0, nl = 0;
    for (size_t i = 0; i < ps->nsf; i++) {
        if (strncmp(ps->sf_ids[i], "003", 3) == 0)
            contacts[nc++] = ps->sf_ids[i];
        else
            leads[nl++] = ps->sf_ids[i];
    }
    return query_members(c, SF_CONTACT, contacts, nc, ps, err, errlen) ||
                   query_members(c, SF_LEAD, leads, nl, ps, err, errlen)
               ? -1
               : 0;
}

/* The Marketo side of one mapping: the first lead (lowest id) that is a member of the program,
 * else the lowest lead id. */
static int marketo_side(crm *c, const mapping *m, const person_sides *ps, reconcile_person *p,
                        char *err, size_t errlen) {
    if (ps->nleads == 0) return 0;
    snprintf(p->lead, sizeof p->lead, "%s", ps->lead_ids[0]);
    mk_member *res = NULL;
    size_t nres = 0;
    mk_error e;
    if (mkto_member_statuses(crm_marketo(c), m->program_id, ps->lead_ids, ps->nleads, &res, &nres,
                             &e) != 0) {
        snprintf(err, errlen, "Marketo: members of program %s: %s %s", m->program_id, e.code,
                 e.message);
        return -1;
    }
    for (size_t i = 0; i < ps->nleads && !p->in_mk; i++) {
        for (size_t k = 0; k < nres; k++) {
            const mk_member *r = &res[k];
            if (strcmp(r->lead_id, ps->lead_ids[i]) != 0 || !r->status || !r->status[0]) continue;
            p->in_mk = true;
            snprintf(p->lead, sizeof p->lead, "%s", r->lead_id);
            snprintf(p->mk_status, sizeof p->mk_status, "%s", r->status);
            p->mk_ts = r->updated_ms;
        }
    }
    mkto_members_free(res, nres);
    /* Names for a Lead the worker may create, from the lead chosen. */
    for (size_t i = 0; i < ps->nall; i++) {
        const mk_lead *l = &ps->leads[i];
        if (strcmp(l->id, p->lead) != 0) continue;
        snprintf(p->first, sizeof p->first, "%s", l->first_name ? l->first_name : "");
        snprintf(p->last, sizeof p->last, "%s", l->last_name ? l->last_name : "");
        snprintf(p->company, sizeof p->company, "%s", l->company ? l->company : "");
    }
    return 0;
}

/* The Salesforce side of one mapping: the person's CampaignMember of the campaign, a
 * Contact's before a Lead's (SPEC section 8). */
static void salesforce_side(const mapping *m, const person_sides *ps, reconcile_person *p) {
    const sf_member_row *best = NULL;
    for (size_t i = 0; i < ps->nmembers; i++) {
        const sf_member_row *r = &ps->members[i];
        if (strncmp(r->campaign_id, m->campaign_id, 15) != 0) continue;
        if (!best || (r->contact_id[0] && !best->contact_id[0])) best = r;
    }
    if (!best) return;
    const char *who = best->contact_id[0] ? best->contact_id : best->lead_id;
    p->in_sf = true;
    snprintf(p->cm_id, sizeof p->cm_id, "%s", best->id);
    snprintf(p->sf_person, sizeof p->sf_person, "%s", who);
    snprintf(p->sf_status, sizeof p->sf_status, "%s", best->status);
    p->sf_ts = best->modified_ms;
}

typedef struct {
    event queue[QUEUE_BATCH];
    size_t nq;
    long compared, differences, queued;
    cJSON *details;
} outcome;

static int flush(store *st, outcome *o, char *err, size_t errlen) {
    bool added[QUEUE_BATCH];
    char e2[STORE_ERR_MAX];
    if (o->nq == 0) return 0;
    if (store_enqueue(st, o->queue, o->nq, added, e2, sizeof e2) != 0) {
        snprintf(err, errlen, "Redis: %s", e2);
        return -1;
    }
    for (size_t k = 0; k < o->nq; k++)
        o->queued += added[k];
    o->nq = 0;
    return 0;
}

/* Compares one enabled mapping's two sides of the person; queues the correction. */
static int resync_mapping(crm *c, store *st, const mapping *m, const person_sides *ps, outcome *o,
                          char *err, size_t errlen) {
    reconcile_person p;
    memset(&p, 0, sizeof p);
    snprintf(p.email, sizeof p.email, "%s", ps->email);
    if (marketo_side(c, m, ps, &p, err, errlen) != 0) return -1;
    salesforce_side(m, ps, &p);
    o->compared++;
    const char *kind = reconcile_difference(m, &p);
    char action[300] = "none: both sides agree";
    if (!p.in_mk && !p.in_sf) snprintf(action, sizeof action, "none: a member on neither side");
    if (kind) {
        o->differences++;
        metrics_add(M_RECONCILE_DIFFS, 1, kind);
        member_state rec = {0};
        char e2[STORE_ERR_MAX];
        if (p.lead[0] &&
            store_member_get(st, m->campaign_id, p.lead, &rec, e2, sizeof e2) == STORE_ERROR) {
            snprintf(err, errlen, "Redis: %s", e2);
            return -1;
        }
        if (reconcile_decide(m, &p, &rec, event_now_ms(), &o->queue[o->nq], action,
                             sizeof action) &&
            ++o->nq == QUEUE_BATCH && flush(st, o, err, errlen) != 0)
            return -1;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "programId", m->program_id);
    cJSON_AddStringToObject(d, "campaignId", m->campaign_id);
    if (p.in_mk)
        cJSON_AddStringToObject(d, "marketo", p.mk_status);
    else
        cJSON_AddNullToObject(d, "marketo");
    if (p.in_sf)
        cJSON_AddStringToObject(d, "salesforce", p.sf_status);
    else
        cJSON_AddNullToObject(d, "salesforce");
    cJSON_AddStringToObject(d, "action", action);
    cJSON_AddItemToArray(o->details, d);
    return 0;
}

/* Every enabled mapping, a page at a time. */
static int resync_mappings(crm *c, store *st, const person_sides *ps, outcome *o, char *err,
                           size_t errlen) {
    mapping *page = calloc(MAPPINGS_PAGE, sizeof *page);
    char cursor[EV_NUMID_MAX] = "", next[EV_NUMID_MAX], e2[STORE_ERR_MAX];
    int rc = 0;
    long seen = 0;
    if (!page) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    do {
        long n =
            store_mapping_list(st, cursor, MAPPINGS_PAGE, page, next, sizeof next, e2, sizeof e2);
        if (n < 0) {
            snprintf(err, errlen, "Redis: %s", e2);
            rc = -1;
            break;
        }
        for (long i = 0; i < n && rc == 0 && seen < RESYNC_MAPPINGS_MAX; i++, seen++)
            if (page[i].enabled) rc = resync_mapping(c, st, &page[i], ps, o, err, errlen);
        snprintf(cursor, sizeof cursor, "%s", next);
    } while (rc == 0 && cursor[0] && seen < RESYNC_MAPPINGS_MAX);
    free(page);
    return rc;
}

static char *report(const person_sides *ps, outcome *o) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "email", ps->email);
    cJSON *leads = cJSON_AddArrayToObject(r, "marketoLeadIds");
    for (size_t i = 0; i < ps->nleads; i++)
        cJSON_AddItemToArray(leads, cJSON_CreateString(ps->lead_ids[i]));
    cJSON *sf = cJSON_AddArrayToObject(r, "salesforceIds");
    for (size_t i = 0; i < ps->nsf; i++)
        cJSON_AddItemToArray(sf, cJSON_CreateString(ps->sf_ids[i]));
    cJSON_AddNumberToObject(r, "compared", (double)o->compared);
    cJSON_AddNumberToObject(r, "differences", (double)o->differences);
    cJSON_AddNumberToObject(r, "queued", (double)o->queued);
    cJSON_AddItemToObject(r, "details", o->details);
    o->details = NULL;
    char *js = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    return js;
}

char *resync_person(crm *c, store *st, const char *email, bool *not_found, char *err,
                    size_t errlen) {
    person_sides *ps = calloc(1, sizeof *ps);
    outcome *o = calloc(1, sizeof *o);
    char *out = NULL;
    *not_found = false;
    if (!ps || !o || !(o->details = cJSON_CreateArray())) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (size_t i = 0; email[i] && i + 1 < sizeof ps->email; i++)
        ps->email[i] = (char)tolower((unsigned char)email[i]);
    if (read_marketo_leads(c, ps, err, errlen) != 0 || read_salesforce(c, ps, err, errlen) != 0)
        goto done;
    if (ps->nleads == 0 && ps->nsf == 0) {
        *not_found = true;
        snprintf(err, errlen, "neither Marketo nor Salesforce has a person with the email %s",
                 ps->email);
        goto done;
    }
    if (resync_mappings(c, st, ps, o, err, errlen) != 0 || flush(st, o, err, errlen) != 0)
        goto done;
    out = report(ps, o);
    if (!out) snprintf(err, errlen, "out of memory");
    LOGF(LOG_INFO, "resynced a person: %ld mappings compared, %ld differences, %ld queued",
         o->compared, o->differences, o->queued);
done:
    if (ps) {
        mkto_leads_free(ps->leads, ps->nall);
        sf_member_rows_free(ps->members, ps->nmembers);
    }
    if (o) cJSON_Delete(o->details);
    free(ps);
    free(o);
    return out;
}
