/* worker_people_sf — who each change toward Salesforce is about: the person the service
 * already knows, the Salesforce ids Marketo's own sync keeps on the lead, then the email
 * (Contact first, then a Lead not converted), and a Lead created when none exists (one
 * creation per email at a time across workers). See service/worker_priv.h. */
#include "worker_priv.h"

#include "log.h"
#include "pace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void worker_sf_oom(sf_error *err) {
    memset(err, 0, sizeof *err);
    err->outcome = SF_RETRY;
    err->retry_after_ms = -1;
    snprintf(err->code, sizeof err->code, "internal");
    snprintf(err->message, sizeof err->message, "out of memory");
}

/* Who each item's Salesforce person is, from what the service holds: the recorded member,
 * the Salesforce event's own ids (an event re-asserted on its own side, plan.h 4b), the person
 * link of its Marketo lead (store_link_*). */
static void sf_people_known(batch *b) {
    char err[STORE_ERR_MAX];
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->state != IT_PENDING || it->p.kind != PLAN_APPLY || !it->p.to_sf) continue;
        if (!it->sf_person[0] && it->st.sf_person[0])
            snprintf(it->sf_person, sizeof it->sf_person, "%s", it->st.sf_person);
        if (!it->sf_person[0] && it->ev.source == SRC_SALESFORCE)
            snprintf(it->sf_person, sizeof it->sf_person, "%s",
                     it->ev.sf_contact_id[0] ? it->ev.sf_contact_id : it->ev.sf_lead_id);
        if (!it->sf_person[0] && it->ev.mkto_lead_id[0] &&
            store_link_by_mkto(b->w->st, it->ev.mkto_lead_id, it->sf_person, err, sizeof err) ==
                STORE_ERROR)
            item_fail(it, IT_RETRY, "salesforce", -1, "Redis: %s", err);
    }
}

/* Copies a lead's text field into dst (size) unless dst has a value already. */
static void fill_from(const char *v, char *dst, size_t size) {
    if (v && !dst[0]) event_set(dst, size, v);
}

/* Reads the Marketo lead of every item whose Salesforce person is not known yet, in one call
 * for the batch: the Salesforce ids Marketo's own sync set on it (sfdcContactId,
 * sfdcLeadId: matched before the email), and the email and names the webhook left out. When
 * every such item has its email, the read is a refinement that must not take Marketo's budget
 * from changes toward Marketo nor hold changes toward Salesforce behind it
 * (plan_read_sfdc_ids): it is skipped while changes toward Marketo flow, waits
 * PEOPLE_READ_WAIT_MS at most for a permit, and without one (or when Marketo fails) the items
 * go on by their email. */
static void read_marketo_people(batch *b) {
    crm *c = b->w->c;
    const char *ids[MKTO_BATCH];
    item *group[MKTO_BATCH];
    size_t n = 0;
    bool needed = false; /* some addition has no email: it cannot go on without the read */
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->state == IT_PENDING && it->p.kind == PLAN_APPLY && it->p.to_sf &&
            !it->sf_person[0] && it->ev.mkto_lead_id[0] && n < MKTO_BATCH) {
            group[n] = it;
            ids[n++] = it->ev.mkto_lead_id;
            needed = needed || (it->p.sf_member && !it->ev.email[0]);
        }
    }
    if (n == 0) return;
    char serr[STORE_ERR_MAX];
    bool marketo_busy = true; /* when Redis cannot say, the budget is left to the writes */
    if (!needed)
        store_mkto_busy(b->w->st, b->w->cfg->marketo_calls_per_20s, PACE_LIGHT_RATE, &marketo_busy,
                        serr, sizeof serr);
    if (!plan_read_sfdc_ids(needed, marketo_busy)) return;
    mk_lead *res = NULL;
    size_t nres = 0;
    mk_error err;
    long wait = crm_budget_wait(c);
    if (!needed) crm_set_budget_wait(c, PEOPLE_READ_WAIT_MS, &b->w->pool->stop);
    int rc = mkto_leads_by(crm_marketo(c), MK_BY_ID, ids, n,
                           MK_LEAD_EMAIL | MK_LEAD_NAMES | MK_LEAD_SFDC_IDS, &res, &nres, &err);
    crm_set_budget_wait(c, wait, &b->w->pool->stop);
    if (rc != 0) {
        for (size_t k = 0; k < n; k++)
            if (group[k]->p.sf_member && !group[k]->ev.email[0])
                item_fail(group[k], item_mk_failed(&err), "marketo", err.retry_after_ms,
                          "reading Marketo lead %s: %s %s", group[k]->ev.mkto_lead_id, err.code,
                          err.message);
        if (!needed)
            LOG_KV_LIMITED(LOG_INFO, "worker: Marketo leads not read now; people matched by email",
                           "code", err.code, "error", err.message);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        item *it = group[k];
        bool found = false;
        for (size_t j = 0; j < nres; j++) {
            const mk_lead *l = &res[j];
            if (strcmp(l->id, it->ev.mkto_lead_id) != 0) continue;
            found = true;
            fill_from(l->email, it->ev.email, sizeof it->ev.email);
            fill_from(l->first_name, it->ev.first_name, sizeof it->ev.first_name);
            fill_from(l->last_name, it->ev.last_name, sizeof it->ev.last_name);
            fill_from(l->company, it->ev.company, sizeof it->ev.company);
            fill_from(l->sfdc_contact_id, it->sfdc_contact, sizeof it->sfdc_contact);
            fill_from(l->sfdc_lead_id, it->sfdc_lead, sizeof it->sfdc_lead);
        }
        /* A removal needs no lead: there is nothing to add, and a member is looked up by
         * email if there is one. */
        if (!it->p.sf_member) continue;
        if (!found)
            item_fail(it, IT_DEAD, "marketo", -1,
                      "Marketo lead %s does not exist (deleted or "
                      "merged?); nothing to add to campaign %s",
                      it->ev.mkto_lead_id, it->campaign);
        else if (!it->ev.email[0] && !it->sfdc_contact[0] && !it->sfdc_lead[0])
            item_fail(it, IT_DEAD, "marketo", -1,
                      "Marketo lead %s has no email address, so no "
                      "Salesforce person can be found or created for it",
                      it->ev.mkto_lead_id);
    }
    mkto_leads_free(res, nres);
}

/* The Salesforce person named by the item's Marketo lead (sfdcContactId, then sfdcLeadId):
 * taken when it exists there (a Contact; a Lead not converted), before any email lookup. A
 * Contact wins over a Lead (SPEC section 8). */
static void resolve_sf_by_ids(batch *b) {
    const char **ids = calloc(b->n ? b->n : 1, sizeof *ids);
    item **its = calloc(b->n ? b->n : 1, sizeof *its);
    bool *exists = calloc(b->n ? b->n : 1, sizeof *exists);
    for (int contacts = 1; ids && its && exists && contacts >= 0; contacts--) {
        size_t n = 0;
        for (size_t i = 0; i < b->n; i++) {
            item *it = &b->items[i];
            const char *id = contacts ? it->sfdc_contact : it->sfdc_lead;
            if (it->state != IT_PENDING || it->p.kind != PLAN_APPLY || !it->p.to_sf ||
                it->sf_person[0] || !event_valid_sfid(id))
                continue;
            its[n] = it;
            ids[n] = id;
            exists[n++] = false;
        }
        sf_error e;
        if (n && sf_people_exist(crm_salesforce(b->w->c), contacts ? SF_CONTACT : SF_LEAD, ids, n,
                                 exists, &e) != 0) {
            for (size_t k = 0; k < n; k++)
                item_fail(its[k], item_sf_failed(&e), "salesforce", e.retry_after_ms,
                          "looking up the Salesforce %s of Marketo lead %s: %s: %s",
                          contacts ? "Contact" : "Lead", its[k]->ev.mkto_lead_id, e.code,
                          e.message);
            continue;
        }
        for (size_t k = 0; k < n; k++)
            if (exists[k]) snprintf(its[k]->sf_person, sizeof its[k]->sf_person, "%s", ids[k]);
    }
    free(ids);
    free(its);
    free(exists);
}

/* email (lower case) → Salesforce person, for one batch. */
typedef struct {
    char email[EV_TEXT_MAX];
    char id[EV_SFID_MAX];
    bool locked;
    item *sample;  /* an item with the names to create a Lead from */
    bool create;   /* some item wants a membership: create the Lead when none exists */
    bool unusable; /* its email cannot be put in a query: its items fail alone */
} person;

static person *find_person(person *ps, size_t n, const char *email) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(ps[i].email, email) == 0) return &ps[i];
    return NULL;
}

/* Looks up the unresolved, locked people by email among `kind` records; fills their ids. */
static int lookup_people(wctx *w, person *ps, size_t n, sf_person_kind kind, sf_error *err) {
    const char **emails = calloc(n ? n : 1, sizeof *emails);
    person **who = calloc(n ? n : 1, sizeof *who);
    char(*ids)[CRM_SFID_MAX] = calloc(n ? n : 1, sizeof *ids);
    bool *unusable = calloc(n ? n : 1, sizeof *unusable);
    size_t ne = 0;
    int rc = -1;
    if (!emails || !who || !ids || !unusable) {
        worker_sf_oom(err);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (!ps[i].id[0] && ps[i].locked) {
            who[ne] = &ps[i];
            emails[ne++] = ps[i].email;
        }
    rc = ne ? sf_people_by_email(crm_salesforce(w->c), kind, emails, ne, ids, unusable, err) : 0;
    for (size_t k = 0; k < ne; k++) {
        if (unusable[k]) who[k]->unusable = true;
        if (ids[k][0]) snprintf(who[k]->id, sizeof who[k]->id, "%s", ids[k]);
    }
out:
    free(emails);
    free(who);
    free(ids);
    free(unusable);
    return rc;
}

/* CREATE_MISSING_PEOPLE=false and nobody in Salesforce is the item's person: a dead letter
 * naming the person and the ways out. */
static void missing_in_salesforce(item *it) {
    item_fail(
        it, IT_DEAD, "salesforce", -1,
        "no Salesforce Contact or Lead is Marketo lead %s (email \"%s\", sfdcContactId \"%s\", "
        "sfdcLeadId \"%s\") and CREATE_MISSING_PEOPLE is false: create the person in "
        "Salesforce (or link the lead to one), then replay this dead letter; or set "
        "CREATE_MISSING_PEOPLE=true to let the service create a Lead",
        it->ev.mkto_lead_id, it->ev.email, it->sfdc_contact, it->sfdc_lead);
}

/* Creates the Leads of todo[0..n) (one Collections call); fails the items of a person whose
 * Lead was refused. */
static int create_leads(batch *b, person **todo, size_t n, sf_error *e) {
    wctx *w = b->w;
    sf_new_lead leads[SF_COLLECTION_MAX];
    sf_record res[SF_COLLECTION_MAX];
    for (size_t k = 0; k < n; k++)
        leads[k] = plan_new_lead(&todo[k]->sample->ev, w->cfg->lead_placeholder_last_name,
                                 w->cfg->lead_placeholder_company);
    if (sf_create_leads(crm_salesforce(w->c), leads, n, res, e) != 0) return -1;
    for (size_t k = 0; k < n; k++) {
        const sf_record *r = &res[k];
        it_state st = plan_after_sf_record(r->outcome, r->failure, PLAN_SF_CREATE_LEAD);
        if (st == IT_PENDING) {
            snprintf(todo[k]->id, sizeof todo[k]->id, "%s", r->id);
            LOG_KV(LOG_INFO,
                   r->outcome == SF_REC_OK ? "salesforce: created a Lead"
                                           : "salesforce: a duplicate rule named the person",
                   "person_id", r->id, "event_id", todo[k]->sample->ev.id);
            continue;
        }
        for (size_t j = 0; j < b->n; j++) {
            item *it = &b->items[j];
            char key[EV_TEXT_MAX];
            worker_lower(key, sizeof key, it->ev.email);
            if (it->state == IT_PENDING && !it->sf_person[0] && strcmp(key, todo[k]->email) == 0)
                item_fail(it, st, "salesforce", -1,
                          "Salesforce refused to create a Lead for %s: %s: %s", key, r->code,
                          r->message);
        }
    }
    return 0;
}

/* The people (by email, lower case) of the items toward Salesforce without a person yet; an
 * item whose email no Salesforce person can have fails alone. Returns how many (ps[0..n)). */
static size_t gather_people(batch *b, person *ps) {
    size_t np = 0;
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->state != IT_PENDING || it->p.kind != PLAN_APPLY || !it->p.to_sf) continue;
        /* A removal of someone never linked is looked up too (a membership may exist that
         * no record tells of, e.g. written by a worker that died before recording it), but
         * no Lead is created for it. */
        if (it->sf_person[0]) continue;
        char key[EV_TEXT_MAX], why[160];
        worker_lower(key, sizeof key, it->ev.email);
        if (!key[0] && it->p.sf_member) /* its sfdc ids named nobody, and it has no email */
            item_fail(it, IT_DEAD, "salesforce", -1,
                      "Marketo lead %s has no email address, and its sfdcContactId/sfdcLeadId "
                      "(\"%s\"/\"%s\") name no Salesforce Contact or Lead: no person can be found "
                      "or created for it",
                      it->ev.mkto_lead_id, it->sfdc_contact, it->sfdc_lead);
        if (!key[0]) continue; /* a removal without one has nothing to look up */
        if (sf_email_check(key, why, sizeof why) != 0) {
            /* No Salesforce person can have this email: a removal has nothing to remove; an
             * addition fails alone, never the lookup of the others. */
            if (it->p.sf_member)
                item_fail(it, IT_DEAD, "salesforce", -1,
                          "Marketo lead %s with email \"%s\" cannot be found or created in "
                          "Salesforce: %s",
                          it->ev.mkto_lead_id, it->ev.email, why);
            continue;
        }
        person *p = find_person(ps, np, key);
        if (!p) {
            p = &ps[np++];
            snprintf(p->email, sizeof p->email, "%s", key);
            p->sample = it;
        }
        if (it->p.sf_member) {
            p->create = true;
            p->sample = it;
        }
    }
    return np;
}

/* Finds the locked people ps[0..np) (Contact first, then a Lead not converted) and creates
 * the missing ones that an item wants as a member, 200 a call. Returns NULL, or what failed
 * (with e). */
static const char *find_or_create(batch *b, person *ps, size_t np, sf_error *e) {
    wctx *w = b->w;
    if (lookup_people(w, ps, np, SF_CONTACT, e) != 0) return "looking up Contacts by email";
    if (lookup_people(w, ps, np, SF_LEAD, e) != 0) return "looking up Leads by email";
    person *todo[SF_COLLECTION_MAX];
    size_t nt = 0;
    for (size_t i = 0; i <= np; i++) {
        if (i < np && ps[i].locked && !ps[i].id[0] && ps[i].create && !ps[i].unusable &&
            w->cfg->create_missing_people)
            todo[nt++] = &ps[i];
        if (nt == 0 || (nt < SF_COLLECTION_MAX && i < np)) continue;
        if (create_leads(b, todo, nt, e) != 0) return "creating Leads";
        nt = 0;
    }
    return NULL;
}

/* Gives each item still without a Salesforce person its person's id, or its outcome. */
static void assign_people(batch *b, person *ps, size_t np, const char *failed, const sf_error *e) {
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->state != IT_PENDING || it->p.kind != PLAN_APPLY || !it->p.to_sf || it->sf_person[0])
            continue;
        char key[EV_TEXT_MAX];
        worker_lower(key, sizeof key, it->ev.email);
        person *p = find_person(ps, np, key);
        if (!p) continue;
        if (failed)
            item_fail(it, item_sf_failed(e), "salesforce", e->retry_after_ms, "%s: %s: %s", failed,
                      e->code, e->message);
        else if (p->unusable)
            item_fail(it, IT_DEAD, "salesforce", -1,
                      "the email \"%s\" of Marketo lead %s cannot be put in a Salesforce query",
                      it->ev.email, it->ev.mkto_lead_id);
        else if (!p->locked)
            it->state = IT_DEFER; /* another worker is creating this person right now */
        else if (p->id[0])
            snprintf(it->sf_person, sizeof it->sf_person, "%s", p->id);
        else if (it->p.sf_member && !b->w->cfg->create_missing_people)
            missing_in_salesforce(it);
    }
}

/* Finds (Contact first, then Lead) or creates (as a Lead) the Salesforce person of every
 * item that has none yet. Creations for one email are serialised across workers: an email
 * another worker is creating waits a round. */
static void resolve_sf_people(batch *b) {
    wctx *w = b->w;
    char err[STORE_ERR_MAX], token[200];
    person *ps = calloc(b->n, sizeof *ps);
    size_t np = ps ? gather_people(b, ps) : 0;
    const char **keys = np ? calloc(np, sizeof *keys) : NULL;
    char(*kbuf)[EV_TEXT_MAX + 32] = np ? calloc(np, sizeof *kbuf) : NULL;
    bool *got = np ? calloc(np, sizeof *got) : NULL;
    if (!keys || !kbuf || !got) goto out;
    for (size_t i = 0; i < np; i++) {
        snprintf(kbuf[i], sizeof kbuf[i], "cs:lock:person:sf:%s", ps[i].email);
        keys[i] = kbuf[i];
    }
    snprintf(token, sizeof token, "%s:p%lu", w->consumer, ++w->seq);
    if (store_lock_many(w->st, keys, np, token, worker_lock_ttl_ms(w), got, err, sizeof err) != 0)
        memset(got, 0, sizeof *got * np);
    for (size_t i = 0; i < np; i++)
        ps[i].locked = got[i];
    sf_error e;
    const char *failed = find_or_create(b, ps, np, &e);
    assign_people(b, ps, np, failed, &e);
    if (store_unlock_many(w->st, keys, np, token, err, sizeof err) != 0)
        LOG_KV_LIMITED(LOG_WARN, "worker: could not unlock; the locks expire", "error", err);
out:
    free(keys);
    free(kbuf);
    free(got);
    free(ps);
}

void batch_sf_people(batch *b) {
    /* What the service holds, then Marketo's sfdc ids, then the email. */
    sf_people_known(b);
    read_marketo_people(b);
    resolve_sf_by_ids(b);
    resolve_sf_people(b);
}
