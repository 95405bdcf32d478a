/* worker_write_sf — the writes toward Salesforce: each person's CampaignMember looked up (a
 * newer save of it drops the change), the campaign's member statuses checked before a status
 * is written, then creates, updates and deletes in sObject Collections calls of 200. See
 * service/worker_priv.h. */
#include "worker_priv.h"

#include "log.h"
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_contact(const char *id) {
    return strncmp(id, "003", 3) == 0;
}

/* The member as read from Salesforce was saved after the item's event by someone else
 * (plan_superseded_by_salesforce). */
static bool superseded(const wctx *w, const item *it, const sf_campaign_member *m) {
    return plan_superseded_by_salesforce(&it->ev, &it->st, m->modified_ms, m->modified_by,
                                         w->cfg->sf_integration_user_id);
}

/* An item whose person's CampaignMember is still to be looked up. */
static bool wants_member(const item *it) {
    return it->state == IT_PENDING && it->p.kind == PLAN_APPLY && it->p.to_sf && it->sf_person[0] &&
           !it->cm_id[0];
}

/* Takes the CampaignMembers found for the items idx[0..n). */
static void take_members(batch *b, const sf_campaign_member *found, const size_t *idx, size_t n,
                         bool *cm_exists, char (*cm_status)[STATUS_LABEL_MAX]) {
    for (size_t k = 0; k < n; k++) {
        item *it = &b->items[idx[k]];
        const sf_campaign_member *m = &found[k];
        if (!m->found) continue;
        if (m->id[0]) snprintf(it->cm_id, sizeof it->cm_id, "%s", m->id);
        snprintf(cm_status[idx[k]], STATUS_LABEL_MAX, "%s", m->status);
        cm_exists[idx[k]] = true;
        if (superseded(b->w, it, m)) {
            it->state = IT_DROP;
            metrics_add(M_EVENTS_DROPPED, 1, plan_drop_reason_name(DROP_STALE));
            LOG_KV_LIMITED(LOG_INFO, "dropped: a newer Salesforce change is on its way", "event_id",
                           it->ev.id, "campaign_member_id", it->cm_id, "status", cm_status[idx[k]]);
        }
    }
}

/* Looks up the CampaignMembers in campaign of the people ids[0..n) (the items idx[0..n)),
 * all Leads or all Contacts, in as many queries as the IN-list needs. */
static void query_members(batch *b, const char *campaign, bool contacts, const size_t *idx,
                          const char *const *ids, size_t n, bool *cm_exists,
                          char (*cm_status)[STATUS_LABEL_MAX]) {
    sf_campaign_member *found = calloc(n ? n : 1, sizeof *found);
    for (size_t start = 0; start < n;) {
        size_t k = 0;
        sf_error e;
        if (!found) {
            worker_sf_oom(&e);
        } else if (sf_campaign_members(crm_salesforce(b->w->c), campaign,
                                       contacts ? SF_CONTACT : SF_LEAD, ids + start, n - start,
                                       found, &k, &e) == 0) {
            take_members(b, found, idx + start, k, cm_exists, cm_status);
            start += k;
            continue;
        }
        if (k == 0) { /* this item alone: it cannot be looked up, or memory ran out */
            if (!strcmp(e.code, "UNUSABLE"))
                item_fail(&b->items[idx[start++]], item_sf_failed(&e), "salesforce", -1, "%s",
                          e.message);
            else
                item_fail(&b->items[idx[start++]], item_sf_failed(&e), "salesforce", -1,
                          "looking up campaign members of %s: %s", campaign, e.message);
            continue;
        }
        for (size_t j = start; j < start + k; j++)
            item_fail(&b->items[idx[j]], item_sf_failed(&e), "salesforce", e.retry_after_ms,
                      "looking up campaign members of %s: %s: %s", campaign, e.code, e.message);
        start += k;
    }
    free(found);
}

/* Finds the CampaignMember (id and status) of every item's person in its campaign, and drops
 * the items whose member Salesforce changed after them (superseded). */
static void find_members(batch *b, bool *cm_exists, char (*cm_status)[STATUS_LABEL_MAX]) {
    bool *looked = calloc(b->n, sizeof *looked); /* asked, whether found or not */
    size_t *idx = calloc(b->n, sizeof *idx);
    const char **ids = calloc(b->n, sizeof *ids);
    for (size_t i = 0; looked && idx && ids && i < b->n; i++) {
        const item *first = &b->items[i];
        if (!wants_member(first) || looked[i]) continue;
        /* The pending items of this campaign: their Leads, then their Contacts. */
        for (int contacts = 0; contacts < 2; contacts++) {
            size_t n = 0;
            for (size_t j = i; j < b->n; j++) {
                const item *it = &b->items[j];
                if (!wants_member(it) || looked[j] || is_contact(it->sf_person) != contacts ||
                    strncmp(it->campaign, first->campaign, 15) != 0)
                    continue;
                looked[j] = true;
                idx[n] = j;
                ids[n++] = it->sf_person;
            }
            query_members(b, first->campaign, contacts, idx, ids, n, cm_exists, cm_status);
        }
    }
    free(looked);
    free(idx);
    free(ids);
}

/* A status Salesforce refuses for a campaign (F11): dead letter naming everything. */
static void bad_status(item *it, const char *code, const char *msg) {
    if (it->map)
        item_fail(
            it, IT_DEAD, "salesforce", -1,
            "Salesforce campaign %s has no member status \"%s\" for Marketo program %s status "
            "\"%s\" (%s: %s): add the status to the campaign or a statusMap entry, then "
            "replay",
            it->campaign, it->p.sf_status, it->map->program_id, it->ev.status, code, msg);
    else
        item_fail(it, IT_DEAD, "salesforce", -1,
                  "Salesforce campaign %s has no member status \"%s\" (%s: %s): add it to the "
                  "campaign, then replay",
                  it->campaign, it->p.sf_status, code, msg);
}

/* One sObject Collections call creating (create) or updating the members of its[0..n);
 * outcome per item. duplicate (creates): set for a member someone else created meanwhile. */
static void run_collection(batch *b, bool create, item **its, size_t n, bool *duplicate) {
    const char *what = create ? "create" : "update";
    sf_member_write w[SF_COLLECTION_MAX];
    sf_record res[SF_COLLECTION_MAX];
    sf_error e;
    for (size_t k = 0; k < n; k++)
        w[k] = (sf_member_write){its[k]->campaign, its[k]->sf_person, its[k]->cm_id,
                                 its[k]->p.sf_status};
    if (sf_save_members(crm_salesforce(b->w->c), create, w, n, res, &e) != 0) {
        for (size_t k = 0; k < n; k++)
            item_fail(its[k], item_sf_failed(&e), "salesforce", e.retry_after_ms,
                      "%s campaign member: %s: %s", what, e.code, e.message);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        const sf_record *r = &res[k];
        it_state st = plan_after_sf_record(r->outcome, r->failure,
                                           create ? PLAN_SF_CREATE_MEMBER : PLAN_SF_UPDATE_MEMBER);
        if (st == IT_PENDING && r->id[0])
            snprintf(its[k]->cm_id, sizeof its[k]->cm_id, "%s", r->id);
        else if (st == IT_DEFER) /* created meanwhile by someone else: look up, then update */
            duplicate[k] = true;
        else if (st != IT_PENDING && r->outcome == SF_REC_BAD_STATUS)
            bad_status(its[k], r->code, r->message);
        else if (st != IT_PENDING)
            item_fail(its[k], st, "salesforce", -1,
                      "Salesforce refused to %s the campaign member of %s in %s: %s: %s", what,
                      its[k]->sf_person, its[k]->campaign, r->code, r->message);
    }
}

void worker_status_cache_clear(status_cache *c) {
    for (size_t i = 0; i < c->n; i++)
        free(c->labels[i]);
    free(c->labels);
    memset(c, 0, sizeof *c);
}

/* The worker's entry for campaign, or NULL. */
static status_cache *status_cache_find(wctx *w, const char *campaign) {
    for (int i = 0; i < STATUS_CACHE_MAX; i++)
        if (w->statuses[i].campaign[0] && !strncmp(w->statuses[i].campaign, campaign, 15))
            return &w->statuses[i];
    return NULL;
}

/* Replaces campaign's entry (or a free one, or the one read longest ago) with the labels that
 * s[0..n) hold for it. */
static void status_cache_put(wctx *w, const char *campaign, const sf_member_status *s, size_t n,
                             int64_t now) {
    status_cache *c = status_cache_find(w, campaign);
    for (int i = 0; !c && i < STATUS_CACHE_MAX; i++)
        if (!w->statuses[i].campaign[0]) c = &w->statuses[i];
    if (!c) {
        c = &w->statuses[0];
        for (int i = 1; i < STATUS_CACHE_MAX; i++)
            if (w->statuses[i].read_ms < c->read_ms) c = &w->statuses[i];
    }
    worker_status_cache_clear(c);
    size_t mine = 0;
    for (size_t i = 0; i < n; i++)
        mine += strncmp(s[i].campaign_id, campaign, 15) == 0;
    snprintf(c->campaign, sizeof c->campaign, "%.15s", campaign);
    c->read_ms = now;
    c->complete = mine <= STATUS_LABELS_MAX;
    c->labels =
        calloc(mine ? (mine < STATUS_LABELS_MAX ? mine : STATUS_LABELS_MAX) : 1, sizeof *c->labels);
    for (size_t i = 0; c->labels && i < n && c->n < STATUS_LABELS_MAX; i++)
        if (!strncmp(s[i].campaign_id, campaign, 15) &&
            (c->labels[c->n] = strdup(s[i].label)) != NULL)
            c->n++;
    if (c->n < mine && c->n < STATUS_LABELS_MAX) c->complete = false; /* out of memory */
}

/* Whether the campaign has the status, as the worker's entry for it says. */
static plan_status status_known(wctx *w, const char *campaign, const char *status, int64_t now) {
    const status_cache *c = status_cache_find(w, campaign);
    if (!c) return PLAN_STATUS_UNKNOWN;
    return plan_campaign_has_status((const char *const *)c->labels, c->n, c->complete, c->read_ms,
                                    now, status);
}

/* The items about to create or update a CampaignMember with a status. */
static bool writes_status(const item *it, bool exists, const char *cm_status) {
    return it->state == IT_PENDING && it->sf_person[0] &&
           plan_writes_sf_status(&it->p, exists, cm_status);
}

/* Holds back every write of a status the campaign lacks (F11): Salesforce may store the
 * campaign's default status in place of an unknown one instead of refusing it (public posts;
 * reference salesforce-api.md section 5), so the labels are checked first. A worker keeps each
 * campaign's labels for STATUS_CACHE_MS and reads them again at once when a status misses
 * (someone may have just added it), one query for every campaign of the batch that needs it. */
static void check_statuses(batch *b, const bool *exists, char (*cm_status)[STATUS_LABEL_MAX]) {
    wctx *w = b->w;
    int64_t now = event_now_ms();
    const char *ask[STATUS_ASK_MAX];
    size_t nask = 0;
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (!writes_status(it, exists[i], cm_status[i]) ||
            status_known(w, it->campaign, it->p.sf_status, now) == PLAN_STATUS_PRESENT)
            continue;
        bool asked = false;
        for (size_t k = 0; k < nask && !asked; k++)
            asked = !strncmp(ask[k], it->campaign, 15);
        if (asked) continue;
        if (nask < STATUS_ASK_MAX)
            ask[nask++] = it->campaign;
        else /* more campaigns than one batch reads: checked by the next one */
            item_fail(it, IT_DEFER, NULL, -1, "waiting for campaign %s's member statuses",
                      it->campaign);
    }
    if (nask == 0) return;
    sf_member_status *s = NULL;
    size_t ns = 0;
    sf_error e;
    if (sf_campaign_statuses(crm_salesforce(w->c), ask, nask, &s, &ns, &e) != 0) {
        for (size_t i = 0; i < b->n; i++) {
            item *it = &b->items[i];
            if (writes_status(it, exists[i], cm_status[i]) &&
                status_known(w, it->campaign, it->p.sf_status, now) != PLAN_STATUS_PRESENT)
                item_fail(it, item_sf_failed(&e), "salesforce", e.retry_after_ms,
                          "reading the member statuses of campaign %s: %s: %s", it->campaign,
                          e.code, e.message);
        }
        return;
    }
    for (size_t k = 0; k < nask; k++)
        status_cache_put(w, ask[k], s, ns, now);
    sf_member_statuses_free(s, ns);
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (!writes_status(it, exists[i], cm_status[i]) ||
            status_known(w, it->campaign, it->p.sf_status, now) != PLAN_STATUS_ABSENT)
            continue;
        const status_cache *c = status_cache_find(w, it->campaign);
        char have[320] = "";
        for (size_t k = 0; c && k < c->n; k++) {
            size_t len = strlen(have);
            snprintf(have + len, sizeof have - len, "%s%s", k ? ", " : "", c->labels[k]);
        }
        if (!have[0])
            item_fail(it, IT_DEAD, "salesforce", -1,
                      "Salesforce campaign %s has no member statuses: it was deleted, or the "
                      "integration user may not read its CampaignMemberStatus records",
                      it->campaign);
        else
            bad_status(it, "not written; the campaign's statuses are", have);
    }
}

/* The Salesforce deleted-records poll reports every deletion, ours too: marked before the
 * call (a crash after it still leaves the mark), kept as long as the poll can return them
 * (REST API guide, "sObject Get Deleted": no more than 15 days back). */
#define OWN_DELETION_TTL_S (16 * 24 * 3600L)

/* One sObject Collections delete of n campaign members (its[k]: the item of ids[k]). */
static void remove_members(batch *b, item **its, const char *const *ids, size_t n) {
    char err[STORE_ERR_MAX];
    if (store_sf_deleted_mark(b->w->st, ids, n, OWN_DELETION_TTL_S, err, sizeof err) != 0) {
        for (size_t k = 0; k < n; k++)
            item_fail(its[k], IT_RETRY, "salesforce", -1, "Redis: %s", err);
        return;
    }
    sf_record res[SF_COLLECTION_MAX];
    sf_error e;
    if (sf_delete_records(crm_salesforce(b->w->c), ids, n, res, &e) != 0) {
        for (size_t k = 0; k < n; k++)
            item_fail(its[k], item_sf_failed(&e), "salesforce", e.retry_after_ms,
                      "removing campaign member: %s: %s", e.code, e.message);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        const sf_record *r = &res[k];
        /* Already gone is what we wanted. */
        it_state st = plan_after_sf_record(r->outcome, r->failure, PLAN_SF_DELETE_MEMBER);
        if (st != IT_PENDING)
            item_fail(its[k], st, "salesforce", -1,
                      "Salesforce refused to remove campaign member %s: %s: %s", its[k]->cm_id,
                      r->code, r->message);
    }
}

void batch_write_salesforce(batch *b) {
    bool *exists = calloc(b->n, sizeof *exists);
    char(*status)[STATUS_LABEL_MAX] = calloc(b->n, sizeof *status);
    item **its = calloc(b->n, sizeof *its);
    bool *dup = calloc(b->n, sizeof *dup);
    if (!exists || !status || !its || !dup) goto out;
    find_members(b, exists, status);
    check_statuses(b, exists, status);
    batch_mark_writes(b, true);

    /* Creates, updates and deletes, 200 a call each. */
    for (int pass = 0; pass < 3; pass++) {
        size_t n = 0;
        const char *del_ids[SF_COLLECTION_MAX];
        for (size_t i = 0; i <= b->n; i++) {
            if (i < b->n) {
                item *it = &b->items[i];
                bool want = it->state == IT_PENDING && it->p.kind == PLAN_APPLY && it->p.to_sf;
                if (want && !it->sf_person[0] && it->p.sf_member) want = false;
                if (want) {
                    bool ex = exists[i];
                    if (pass == 0 && it->p.sf_member && !ex) {
                        its[n++] = it;
                    } else if (pass == 1 && it->p.sf_member && ex &&
                               strcmp(status[i], it->p.sf_status) != 0 && it->p.sf_status[0]) {
                        its[n++] = it;
                    } else if (pass == 2 && !it->p.sf_member && ex) {
                        its[n] = it;
                        del_ids[n++] = it->cm_id;
                    }
                }
            }
            if (n == 0 || (n < SF_COLLECTION_MAX && i < b->n)) continue;
            if (pass < 2) {
                memset(dup, 0, sizeof *dup * b->n);
                run_collection(b, pass == 0, its, n, dup);
                for (size_t k = 0; pass == 0 && k < n; k++)
                    if (dup[k]) its[k]->cm_id[0] = '\0', its[k]->state = IT_DEFER;
            } else {
                remove_members(b, its, del_ids, n);
            }
            n = 0;
        }
    }
    /* Everything still pending on the Salesforce side is done there. */
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->state == IT_PENDING && it->p.kind == PLAN_APPLY && it->p.to_sf) {
            if (!it->p.sf_member) it->cm_id[0] = '\0';
            metrics_add(M_EVENTS_APPLIED, 1, "salesforce");
        }
    }
out:
    free(exists);
    free(status);
    free(its);
    free(dup);
}
