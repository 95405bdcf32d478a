/* worker_people_mkto — who each change toward Marketo is about: the lead linked to the
 * Salesforce person, the leads Marketo's own sync links to it, then by email, and a lead
 * created when none exists (one creation per email at a time across workers); then the
 * member lock of the lead and the plan made again on its recorded state. See
 * service/worker_priv.h. */
#include "worker_priv.h"

#include "log.h"
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MKTO_PERSON_LOCK "cs:lock:person:mkto:"

bool item_needs_lead(const item *it) {
    return it->state == IT_PENDING && it->p.kind == PLAN_APPLY && it->p.to_mkto && !it->lead[0];
}

/* The Salesforce person of a Salesforce-side item. */
const char *item_sf_person(const item *it) {
    return it->ev.sf_contact_id[0] ? it->ev.sf_contact_id : it->ev.sf_lead_id;
}

/* The lead, among the leads looked up by email, that is the item's person
 * (plan_pick_lead_by_email). */
static void pick_by_email(const mk_lead *leads, size_t n, item *it) {
    int k = plan_pick_lead_by_email(leads, n, it->ev.email, item_sf_person(it), &it->mk_lead_sure);
    if (k >= 0) snprintf(it->lead, sizeof it->lead, "%s", leads[k].id);
}

/* Whether an item of the chunk is still to be looked up by its sfdc ids: it has no lead yet,
 * or the lead its email found is linked to another Salesforce person. */
static bool wants_sfdc_lookup(const item *it, int chunk) {
    if (it->mk_chunk != chunk) return false;
    if (item_needs_lead(it)) return true;
    return it->state == IT_PENDING && it->p.kind == PLAN_APPLY && it->p.to_mkto &&
           !it->mk_lead_sure;
}

/* CREATE_MISSING_PEOPLE=false and no Marketo lead is the item's person: a dead letter naming
 * the person and the ways out. */
static void missing_in_marketo(item *it) {
    item_fail(it, IT_DEAD, "marketo", -1,
              "no Marketo lead is Salesforce %s %s (email \"%s\"; looked up by sfdcContactId, "
              "sfdcLeadId and email) and CREATE_MISSING_PEOPLE is false: create the lead in "
              "Marketo, then replay this dead letter; or set CREATE_MISSING_PEOPLE=true to let the "
              "service create it",
              it->ev.sf_contact_id[0] ? "Contact" : "Lead", item_sf_person(it), it->ev.email);
}

/* Finds the leads whose sfdcLeadId or sfdcContactId (Marketo's own sync) is the person of
 * one of the chunk's items its email did not settle (wants_sfdc_lookup); such a lead wins.
 * Adobe's "Leads" reference: leads.json takes filterType sfdcLeadId and sfdcContactId. */
static void leads_by_sfdc_ids(batch *b, int chunk) {
    for (int kind = 0; kind < 2; kind++) {
        const char *ids[MKTO_BATCH];
        item *group[MKTO_BATCH];
        size_t n = 0;
        for (size_t i = 0; i < b->n && n < MKTO_BATCH; i++) {
            item *it = &b->items[i];
            const char *id = kind == 0 ? it->ev.sf_contact_id : it->ev.sf_lead_id;
            if (!wants_sfdc_lookup(it, chunk) || !id[0]) continue;
            group[n] = it;
            ids[n++] = id;
        }
        if (n == 0) continue;
        const char *filter = kind == 0 ? "sfdcContactId" : "sfdcLeadId";
        mk_lead *res = NULL;
        size_t nres = 0;
        mk_error e;
        if (mkto_leads_by(crm_marketo(b->w->c),
                          kind == 0 ? MK_BY_SFDC_CONTACT_ID : MK_BY_SFDC_LEAD_ID, ids, n,
                          MK_LEAD_SFDC_IDS, &res, &nres, &e) != 0) {
            for (size_t k = 0; k < n; k++)
                item_fail(group[k], item_mk_failed(&e), "marketo", e.retry_after_ms,
                          "looking up Marketo leads by %s: %s %s", filter, e.code, e.message);
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            int j = plan_pick_lead_by_sfdc(res, nres, kind == 0, ids[k]);
            if (j < 0) continue;
            snprintf(group[k]->lead, sizeof group[k]->lead, "%s", res[j].id);
            group[k]->mk_lead_sure = true;
        }
        mkto_leads_free(res, nres);
    }
}

/* Looks up by email (one call) the leads of the chunk's items still without one, and takes
 * the lead that is each item's person. Returns how many items it looked up (by_email[0..n));
 * 0 when none, or when the call failed (they then fail with it). */
static size_t leads_by_email(batch *b, int chunk, item **by_email) {
    const char *emails[MKTO_BATCH];
    size_t ne = 0;
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (item_needs_lead(it) && it->mk_chunk == chunk && it->ev.email[0]) {
            by_email[ne] = it;
            emails[ne++] = it->ev.email;
        }
    }
    if (ne == 0) return 0;
    mk_lead *res = NULL;
    size_t nres = 0;
    mk_error e;
    if (mkto_leads_by(crm_marketo(b->w->c), MK_BY_EMAIL, emails, ne,
                      MK_LEAD_EMAIL | MK_LEAD_SFDC_IDS, &res, &nres, &e) != 0) {
        for (size_t k = 0; k < ne; k++)
            item_fail(by_email[k], item_mk_failed(&e), "marketo", e.retry_after_ms,
                      "looking up Marketo leads by email: %s %s", e.code, e.message);
        return 0;
    }
    for (size_t k = 0; k < ne; k++)
        pick_by_email(res, nres, by_email[k]);
    mkto_leads_free(res, nres);
    return ne;
}

/* Looks up by email the leads of items[0..n) (one call) and takes the one that is each item's
 * person; the items fail with the call. */
static void pick_by_email_call(batch *b, item **items, size_t n) {
    const char *emails[MKTO_BATCH];
    for (size_t j = 0; j < n; j++)
        emails[j] = items[j]->ev.email;
    mk_lead *res = NULL;
    size_t nres = 0;
    mk_error e;
    if (mkto_leads_by(crm_marketo(b->w->c), MK_BY_EMAIL, emails, n,
                      MK_LEAD_EMAIL | MK_LEAD_SFDC_IDS, &res, &nres, &e) != 0) {
        for (size_t j = 0; j < n; j++)
            item_fail(items[j], item_mk_failed(&e), "marketo", e.retry_after_ms,
                      "looking up Marketo lead %s: %s %s", items[j]->ev.email, e.code, e.message);
        return;
    }
    for (size_t j = 0; j < n; j++)
        pick_by_email(res, nres, items[j]);
    mkto_leads_free(res, nres);
}

/* Under the creation lock of their emails: creates the leads of creating[0..n) with createOnly
 * (one call), so that a lead made since the first look (by another process, or a person)
 * is neither overwritten nor made twice: those answer 1005 and are looked up again. */
static void create_locked(batch *b, item **creating, size_t n) {
    mk_new_lead input[MKTO_BATCH];
    item *exists[MKTO_BATCH];
    size_t nexists = 0;
    for (size_t j = 0; j < n; j++) {
        const event *ev = &creating[j]->ev;
        input[j] = (mk_new_lead){ev->email, ev->first_name, ev->last_name, ev->company};
    }
    mk_record out[MKTO_BATCH];
    mk_error e;
    if (mkto_create_new_leads(crm_marketo(b->w->c), input, n, out, &e) != 0) {
        for (size_t j = 0; j < n; j++)
            item_fail(creating[j], item_mk_failed(&e), "marketo", e.retry_after_ms,
                      "creating the Marketo lead: %s %s", e.code, e.message);
        return;
    }
    for (size_t j = 0; j < n; j++) {
        if (strcmp(out[j].reason, "1005") == 0) {
            exists[nexists++] = creating[j];
            continue;
        }
        it_state st = plan_after_mk_record(out[j].outcome, out[j].failure, true);
        if (st == IT_PENDING) {
            snprintf(creating[j]->lead, sizeof creating[j]->lead, "%s", out[j].id);
            LOG_KV(LOG_INFO, "marketo: created a lead", "lead_id", creating[j]->lead, "event_id",
                   creating[j]->ev.id);
        } else {
            item_fail(creating[j], st, "marketo", -1,
                      "Marketo refused to create a lead for %s (reason %s)", creating[j]->ev.email,
                      out[j].reason);
        }
    }
    if (nexists) pick_by_email_call(b, exists, nexists);
}

/* Creates the Marketo leads of the items looked up by email (by_email[0..ne)) and still
 * without one, unless CREATE_MISSING_PEOPLE is false; serialised per email across every
 * worker: an email another worker is creating waits a round. */
static void create_missing_leads(batch *b, item **by_email, size_t ne) {
    wctx *w = b->w;
    char err[STORE_ERR_MAX], token[200];
    item *creating[MKTO_BATCH], *locked[MKTO_BATCH];
    const char *keys[MKTO_BATCH];
    char kbuf[MKTO_BATCH][EV_TEXT_MAX + 32];
    bool got[MKTO_BATCH];
    size_t nc = 0, nlocked = 0;
    for (size_t k = 0; k < ne; k++) {
        item *it = by_email[k];
        if (it->lead[0] || it->state != IT_PENDING || !it->p.mkto_member) continue;
        if (!w->cfg->create_missing_people) {
            missing_in_marketo(it);
            continue;
        }
        char low[EV_TEXT_MAX];
        worker_lower(low, sizeof low, it->ev.email);
        bool seen = false;
        for (size_t j = 0; j < nc; j++)
            seen = seen || strcmp(kbuf[j] + strlen(MKTO_PERSON_LOCK), low) == 0;
        if (seen) continue;
        snprintf(kbuf[nc], sizeof kbuf[nc], MKTO_PERSON_LOCK "%s", low);
        keys[nc] = kbuf[nc];
        creating[nc++] = it;
    }
    if (nc == 0) return;
    snprintf(token, sizeof token, "%s:m%lu", w->consumer, ++w->seq);
    if (store_lock_many(w->st, keys, nc, token, worker_lock_ttl_ms(w), got, err, sizeof err) != 0)
        memset(got, 0, sizeof got);
    for (size_t j = 0; j < nc; j++) {
        if (got[j])
            locked[nlocked++] = creating[j];
        else
            creating[j]->state = IT_DEFER; /* another worker is creating this lead */
    }
    if (nlocked) create_locked(b, locked, nlocked);
    if (store_unlock_many(w->st, keys, nc, token, err, sizeof err) != 0)
        LOG_KV_LIMITED(LOG_WARN, "worker: could not unlock; the locks expire", "error", err);
}

/* Finds or creates the Marketo leads of up to 300 Salesforce-side items not looked up yet
 * (their person links were read with the batch): by the Salesforce ids Marketo's own sync
 * keeps on its leads (a Contact's first), then by email, then createOrUpdate on email unless
 * CREATE_MISSING_PEOPLE is false. Returns how many it took. */
static size_t resolve_marketo_chunk(batch *b, int chunk) {
    item *by_email[MKTO_BATCH];
    size_t taken = 0;
    for (size_t i = 0; i < b->n && taken < MKTO_BATCH; i++) {
        item *it = &b->items[i];
        if (!item_needs_lead(it) || it->mk_chunk) continue;
        it->mk_chunk = chunk;
        taken++;
    }
    if (taken == 0) return 0;
    /* By email first, asking the sfdc ids along (one call settles the usual case: a lead
     * linked to the person, or to nobody), then by the sfdc ids for the rest, then create the
     * missing ones under a per-email lock. */
    size_t ne = leads_by_email(b, chunk, by_email);
    leads_by_sfdc_ids(b, chunk);
    create_missing_leads(b, by_email, ne);
    return taken;
}

/* Finds or creates the Marketo lead of every Salesforce-side item, 300 at a time. */
static void resolve_marketo_leads(batch *b) {
    for (int chunk = 1; resolve_marketo_chunk(b, chunk) > 0; chunk++) {
    }
    /* Items sharing an email with one that got a lead get the same lead. */
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->state != IT_PENDING || it->p.kind != PLAN_APPLY || !it->p.to_mkto || it->lead[0])
            continue;
        for (size_t j = 0; j < b->n && !it->lead[0]; j++) {
            item *o = &b->items[j];
            if (o->lead[0] && o->ev.email[0] && strcasecmp(o->ev.email, it->ev.email) == 0)
                snprintf(it->lead, sizeof it->lead, "%s", o->lead);
        }
        if (plan_nothing_to_remove(it->p.mkto_member, it->lead[0] != '\0')) {
            it->p.to_mkto = false; /* removing someone Marketo never had */
            continue;
        }
        if (!it->lead[0] && it->state == IT_PENDING && !it->ev.email[0])
            item_fail(it, IT_DEAD, "marketo", -1,
                      "Salesforce person %s has no email address, so no "
                      "Marketo lead can be found or created for it",
                      it->ev.sf_contact_id[0] ? it->ev.sf_contact_id : it->ev.sf_lead_id);
        else if (!it->lead[0] && it->state == IT_PENDING)
            item_fail(it, IT_RETRY, "marketo", -1, "no Marketo lead was found or created for %s",
                      it->ev.email);
    }
}

/* After a Salesforce-side item learns its Marketo lead, it takes the member lock that the
 * member's Marketo events use (it was locked by its Salesforce person only), then its
 * recorded state can be read and the plan made again (echo, stale and duplicate depend on
 * it). Without that lock, a Marketo event for the same member could be applied at the same
 * time and an older change would overwrite a newer one. */
static void replan_with_lead(batch *b) {
    char err[STORE_ERR_MAX];
    size_t *rd = calloc(b->n, sizeof *rd), *lk = calloc(b->n, sizeof *lk);
    const char **keys = calloc(b->n, sizeof *keys);
    bool *got = calloc(b->n, sizeof *got);
    size_t nr = 0, nl = 0;
    if (!rd || !lk || !keys || !got) {
        for (size_t i = 0; i < b->n; i++)
            if (b->items[i].state == IT_PENDING && b->items[i].p.kind == PLAN_APPLY &&
                b->items[i].p.to_mkto && !b->items[i].st.known && b->items[i].lead[0])
                b->items[i].state = IT_DEFER;
        goto out;
    }
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->state != IT_PENDING || it->p.kind != PLAN_APPLY || !it->p.to_mkto || it->st.known ||
            !it->lead[0])
            continue;
        if (strstr(it->lock_key, ":sf:")) {
            char key[160];
            snprintf(key, sizeof key, "cs:lock:member:%.15s:%s", it->campaign, it->lead);
            /* Another event of this batch may be about the same member (found by lead): one
             * event per member per batch, so this one waits for the next round. */
            bool twin = false;
            for (size_t j = 0; j < b->n && !twin; j++)
                twin = j != i && b->items[j].state != IT_DEFER &&
                       (!strcmp(b->items[j].lock_key, key) || !strcmp(b->items[j].lead_lock, key));
            if (twin) {
                it->state = IT_DEFER;
                continue;
            }
            snprintf(it->lead_lock, sizeof it->lead_lock, "%s", key); /* if taken, below */
            lk[nl] = i;
            keys[nl++] = it->lead_lock;
        }
        rd[nr++] = i;
    }
    /* All the lead locks, then all the recorded states, each in one round trip. */
    if (nl && store_lock_many(b->w->st, keys, nl, b->token, worker_lock_ttl_ms(b->w), got, err,
                              sizeof err) != 0)
        memset(got, 0, nl * sizeof *got);
    for (size_t k = 0; k < nl; k++) {
        item *it = &b->items[lk[k]];
        if (got[k]) {
            worker_hold_add_key(&b->w->hold, it->lead_lock);
        } else {
            it->state = IT_DEFER; /* the member is being changed by another worker */
            it->lead_lock[0] = '\0';
        }
    }
    size_t nm = 0;
    for (size_t k = 0; k < nr; k++)
        if (b->items[rd[k]].state == IT_PENDING) rd[nm++] = rd[k];
    bool read_ok = batch_read_states(b, rd, nm, err, sizeof err) == 0;
    for (size_t k = 0; k < nm; k++) {
        item *it = &b->items[rd[k]];
        if (!read_ok) {
            item_fail(it, IT_RETRY, "marketo", -1, "Redis: %s", err);
            continue;
        }
        if (it->st.known || it->st.mkto_pending_ms || it->st.sf_pending_ms) item_replan(b, it);
        if (it->p.kind == PLAN_DROP) {
            it->state = IT_DROP;
            if (it->p.reason != DROP_UNMAPPED && it->p.reason != DROP_ECHO)
                metrics_add(M_EVENTS_DROPPED, 1, plan_drop_reason_name(it->p.reason));
        }
    }
out:
    free(rd);
    free(lk);
    free(keys);
    free(got);
}

void batch_mkto_people(batch *b) {
    resolve_marketo_leads(b);
    replan_with_lead(b);
}
