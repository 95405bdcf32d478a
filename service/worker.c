/* worker — read, plan, resolve, write, record, acknowledge. See include/worker.h. */
#include "worker.h"

#include "crm.h"
#include "crm_types.h"
#include "event.h"
#include "log.h"
#include "marketo.h"
#include "metrics.h"
#include "pace.h"
#include "plan.h"
#include "salesforce.h"
#include "status_map.h"
#include "store.h"
#include "store_trace.h"
#include "trace.h"
#include "tzguard.h"
#include "tzwatch.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define READ_MAX            1200 /* events per read under load: 6 x 200 (Salesforce), 4 x 300 */
#define BLOCK_MS            500  /* an idle read waits this long (and then checks the switch) */
#define CLAIM_EVERY_MS      2000
#define UNPARK_EVERY_MS     2000
#define DEFER_MS            20   /* a busy member's event is tried again this soon */
#define BUDGET_WAIT_MS      5000 /* longest wait for a Marketo permit before deferring */
#define PEOPLE_READ_WAIT_MS 250  /* and for reading leads' sfdc ids toward Salesforce */
#define SOQL_IN_MAX         100  /* values per SOQL IN list, keeping the URL short */
#define MKTO_BATCH          300
#define SF_FILL_MS          50  /* under load, batches toward Salesforce start this far apart */
#define MKTO_LIGHT_RATE     50  /* changes/s toward Marketo below which reads are not paced */
#define MKTO_SOON_MS        100 /* a paced read due this soon keeps its thread free for it */
#define MKTO_PERSON_LOCK    "cs:lock:person:mkto:"

struct worker_pool {
    const struct config *cfg;
    int n, cap;
    pthread_t *threads;
    struct wctx *ctx;
    atomic_bool stop;
    atomic_int mkto_readers; /* threads now reading or applying the queue toward Marketo */
    int mkto_readers_max;
    atomic_int sf_readers;      /* threads now reading or applying the queue toward Salesforce */
    atomic_bool mkto_keeper;    /* a thread keeps itself free for a paced read due soon */
    atomic_bool sf_backlog;     /* the last read toward Salesforce filled a call or more */
    _Atomic int64_t sf_last_ms; /* when the last read toward Salesforce took something */
    pthread_t heartbeat;
    bool heartbeat_running;
    store *hb_store;
    sf_usage *sf_usage; /* the org's API usage as the pool's clients see it */
};

/* What a worker holds while it works on a batch, for the heartbeat to keep alive. */
typedef struct {
    pthread_mutex_t lock;
    char **ids, **keys;
    store_queue *qs; /* the queue of each id */
    size_t nids, nkeys, capkeys;
    char token[200];
} held;

/* The member statuses of campaigns, as a worker keeps them (check_statuses). */
#define STATUS_CACHE_MAX  64   /* campaigns whose member statuses a worker keeps */
#define STATUS_LABELS_MAX 1000 /* member statuses kept per campaign */
#define STATUS_ASK_MAX    50   /* campaigns read per batch (<= the cache, <= one query) */

/* A campaign's member status labels as last read. */
typedef struct {
    char campaign[16]; /* 15-character id; "" for a free slot */
    int64_t read_ms;
    char **labels;
    size_t n;
    bool complete; /* false: the campaign has more than STATUS_LABELS_MAX, a miss decides nothing */
} status_cache;

typedef struct wctx {
    worker_pool *pool;
    const struct config *cfg;
    int index;
    store *st;
    crm *c; /* this thread's CRM clients, paced by the shared Marketo budget */
    char consumer[128];
    unsigned long seq;
    unsigned rnd;
    bool keeping; /* this thread is the pool's mkto_keeper */
    held hold;
    status_cache statuses[STATUS_CACHE_MAX];
} wctx;

typedef struct {
    store_entry *e;
    event ev;
    bool parsed;
    const mapping *map; /* the batch's copy of the event's mapping; NULL: none */
    char campaign[EV_SFID_MAX];
    char lead[EV_NUMID_MAX]; /* Marketo lead id when known */
    char lock_key[160];
    bool locked;
    char lead_lock[160]; /* taken once a Salesforce item learns its Marketo lead */
    int mk_chunk;        /* the lead-resolution chunk this item was looked up in (0: none) */
    int64_t defer_until; /* IT_DEFER: not before this time (0: at once) */
    bool mk_grouped;     /* already part of a Marketo write call of this batch */
    member_state st;
    plan_result p;
    it_state state;
    const char *target; /* CRM that failed, for retries_total */
    char error[700];
    long retry_after_ms;
    /* resolution */
    char sf_person[EV_SFID_MAX];
    char cm_id[EV_SFID_MAX];
    bool backward;
    char mkto_now[STATUS_LABEL_MAX]; /* Marketo's status as read after its 1037 */
    char dead_id[40];                /* IT_DEAD: the dead letter's id, once stored */
    /* The Salesforce ids Marketo's own sync keeps on the item's Marketo lead (as read). */
    char sfdc_contact[EV_SFID_MAX], sfdc_lead[EV_SFID_MAX];
} item;

typedef struct {
    wctx *w;
    item *items;
    size_t n;
    const char *token; /* this batch's lock token */
    mapping **maps;    /* the mappings this batch read, one copy each */
    size_t nmaps;
    int64_t sf_mark, mkto_mark; /* this batch's pending-write marks (0: none set) */
    long paced_ms;              /* a paced read toward Marketo: its pace (else 0) */
    int paced_calls;            /* and the calls the pace has room for */
} batch;

static int64_t now_ms(void) {
    return event_now_ms();
}

static void hold_clear(held *h) {
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->nids; i++)
        free(h->ids[i]);
    for (size_t i = 0; i < h->nkeys; i++)
        free(h->keys[i]);
    free(h->ids);
    free(h->keys);
    free(h->qs);
    h->qs = NULL;
    h->ids = h->keys = NULL;
    h->nids = h->nkeys = h->capkeys = 0;
    pthread_mutex_unlock(&h->lock);
}

/* Publishes the entries and locks of the batch now in progress. */
static void hold_set(held *h, const store_entry *e, size_t n, const char *const *keys, size_t nk,
                     const char *token) {
    hold_clear(h);
    pthread_mutex_lock(&h->lock);
    h->ids = calloc(n ? n : 1, sizeof *h->ids);
    h->qs = calloc(n ? n : 1, sizeof *h->qs);
    h->capkeys = 2 * (nk + 1);
    h->keys = calloc(h->capkeys, sizeof *h->keys);
    for (size_t i = 0; h->ids && h->qs && i < n; i++)
        if ((h->ids[h->nids] = strdup(e[i].id)) != NULL) h->qs[h->nids++] = e[i].q;
    for (size_t i = 0; h->keys && i < nk; i++)
        if ((h->keys[h->nkeys] = strdup(keys[i])) != NULL) h->nkeys++;
    snprintf(h->token, sizeof h->token, "%s", token);
    pthread_mutex_unlock(&h->lock);
}

static void hold_add_key(held *h, const char *key) {
    pthread_mutex_lock(&h->lock);
    if (h->keys && h->nkeys < h->capkeys && (h->keys[h->nkeys] = strdup(key)) != NULL) h->nkeys++;
    pthread_mutex_unlock(&h->lock);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Member and person locks are released explicitly; their expiry only matters when a worker
 * died holding them, and then it should come no later than the claim of its events. */
static long lock_ttl_ms(const wctx *w) {
    return w->cfg->claim_idle_ms;
}

static void fail(item *it, it_state s, const char *target, long retry_after_ms, const char *fmt,
                 ...) __attribute__((format(printf, 5, 6)));
static void fail(item *it, it_state s, const char *target, long retry_after_ms, const char *fmt,
                 ...) {
    if (it->state == IT_DEAD) return; /* the first permanent reason stays */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->error, sizeof it->error, fmt, ap);
    va_end(ap);
    it->state = s;
    it->target = target;
    it->retry_after_ms = retry_after_ms;
    if (s == IT_DEFER && retry_after_ms > 0) it->defer_until = now_ms() + retry_after_ms;
}

/* What a failed CRM call makes of the items it was for. */
static it_state mk_state(const mk_error *e) {
    return plan_after_failure(mkto_failure(e));
}

static it_state sf_state(const sf_error *e) {
    return plan_after_failure(sf_failure(e));
}

static void lower(char *dst, size_t size, const char *src) {
    size_t i = 0;
    for (; src[i] && i + 1 < size; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

/* ---------------------------------------------------------------- preparation */

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
    int rc = by_program ? store_mapping_get(b->w->st, it->ev.program_id, m, err, errlen)
                        : store_mapping_by_campaign(b->w->st, it->ev.campaign_id, m, err, errlen);
    if (rc != 1) {
        free(m);
        return rc < 0 ? -1 : 0; /* no mapping: it->map stays NULL */
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

static void replan(batch *b, item *it) {
    /* The state goes in even when not known: its write marks still count. */
    plan_event(&it->ev, it->map, &it->st, b->w->cfg->sf_integration_user_id, &it->p);
    /* A write of ours to this event's own side may still be landing (see mark_writes). */
    int64_t until = plan_wait_for_own_write(&it->ev, &it->st, &it->p, now_ms());
    if (until) {
        it->state = IT_DEFER;
        it->defer_until = until;
    }
}

/* The status of lead among a program's members, or NULL when it is not a member. */
static const char *member_status_of(const mk_member *m, size_t n, const char *lead) {
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
                fail(group[k], mk_state(&err), "marketo", err.retry_after_ms,
                     "reading the member status from Marketo program %s: "
                     "%s %s",
                     pid, err.code, err.message);
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            /* Not a member: the lead left the program. */
            const char *status =
                plan_marketo_status(member_status_of(res, nres, group[k]->ev.mkto_lead_id));
            if (!event_set(group[k]->ev.status, sizeof group[k]->ev.status, status))
                fail(group[k], IT_DEAD, "marketo", -1, "Marketo status \"%.60s...\" is too long",
                     status);
            else
                replan(b, group[k]);
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
            fail(it, sf_state(&err), "salesforce", err.retry_after_ms,
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
                fail(o, IT_DEAD, "salesforce", -1,
                     "campaign %s has no default member status "
                     "(or does not exist)",
                     o->ev.campaign_id);
            else if (!event_set(o->ev.status, sizeof o->ev.status, label))
                fail(o, IT_DEAD, "salesforce", -1, "campaign %s's default status is too long",
                     o->ev.campaign_id);
            else
                replan(b, o);
        }
        free(label);
    }
}

/* ---------------------------------------------------------------- Salesforce side */

static void sf_oom(sf_error *err) {
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
            store_link_by_mkto(b->w->st, it->ev.mkto_lead_id, it->sf_person, err, sizeof err) < 0)
            fail(it, IT_RETRY, "salesforce", -1, "Redis: %s", err);
    }
}

/* Copies a lead's text field into dst (size) unless dst has a value already. */
static void fill_from(const char *v, char *dst, size_t size) {
    if (v && !dst[0]) event_set(dst, size, v);
}

/* Reads the Marketo lead of every item whose Salesforce person is not known yet, in one call
 * for the batch: the Salesforce ids Marketo's own sync set on it (sfdcContactId,
 * sfdcLeadId: matched before the email), and the email and names the webhook left out. When
 * every such item has its email, the read is a refinement that must not hold changes toward
 * Salesforce behind Marketo's budget: it waits PEOPLE_READ_WAIT_MS at most for a permit, and
 * without one (or when Marketo fails) the items go on by their email. */
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
                fail(group[k], mk_state(&err), "marketo", err.retry_after_ms,
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
            fail(it, IT_DEAD, "marketo", -1,
                 "Marketo lead %s does not exist (deleted or "
                 "merged?); nothing to add to campaign %s",
                 it->ev.mkto_lead_id, it->campaign);
        else if (!it->ev.email[0] && !it->sfdc_contact[0] && !it->sfdc_lead[0])
            fail(it, IT_DEAD, "marketo", -1,
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
                fail(its[k], sf_state(&e), "salesforce", e.retry_after_ms,
                     "looking up the Salesforce %s of Marketo lead %s: %s: %s",
                     contacts ? "Contact" : "Lead", its[k]->ev.mkto_lead_id, e.code, e.message);
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
        sf_oom(err);
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
    fail(it, IT_DEAD, "salesforce", -1,
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
            lower(key, sizeof key, it->ev.email);
            if (it->state == IT_PENDING && !it->sf_person[0] && strcmp(key, todo[k]->email) == 0)
                fail(it, st, "salesforce", -1, "Salesforce refused to create a Lead for %s: %s: %s",
                     key, r->code, r->message);
        }
    }
    return 0;
}

/* Finds (Contact first, then Lead) or creates (as a Lead) the Salesforce person of every
 * item that has none yet. Creations for one email are serialised across workers. */
static void resolve_sf_people(batch *b) {
    wctx *w = b->w;
    char err[STORE_ERR_MAX];
    person *ps = calloc(b->n, sizeof *ps);
    if (!ps) return;
    size_t np = 0;
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->state != IT_PENDING || it->p.kind != PLAN_APPLY || !it->p.to_sf) continue;
        /* A removal of someone never linked is looked up too (a membership may exist that
         * no record tells of, e.g. written by a worker that died before recording it), but
         * no Lead is created for it. */
        if (it->sf_person[0] || it->state != IT_PENDING) continue;
        char key[EV_TEXT_MAX], why[160];
        lower(key, sizeof key, it->ev.email);
        if (!key[0] && it->p.sf_member) /* its sfdc ids named nobody, and it has no email */
            fail(it, IT_DEAD, "salesforce", -1,
                 "Marketo lead %s has no email address, and its sfdcContactId/sfdcLeadId "
                 "(\"%s\"/\"%s\") name no Salesforce Contact or Lead: no person can be found or "
                 "created for it",
                 it->ev.mkto_lead_id, it->sfdc_contact, it->sfdc_lead);
        if (!key[0]) continue; /* a removal without one has nothing to look up */
        if (sf_email_check(key, why, sizeof why) != 0) {
            /* No Salesforce person can have this email: a removal has nothing to remove; an
             * addition fails alone, never the lookup of the others. */
            if (it->p.sf_member)
                fail(it, IT_DEAD, "salesforce", -1,
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
    if (np == 0) {
        free(ps);
        return;
    }
    /* Lock each email for creation; an email another worker is creating waits a round. */
    const char **keys = calloc(np, sizeof *keys);
    char(*kbuf)[EV_TEXT_MAX + 32] = calloc(np, sizeof *kbuf);
    bool *got = calloc(np, sizeof *got);
    char token[200];
    snprintf(token, sizeof token, "%s:p%lu", w->consumer, ++w->seq);
    if (!keys || !kbuf || !got) goto out;
    for (size_t i = 0; i < np; i++) {
        snprintf(kbuf[i], sizeof kbuf[i], "cs:lock:person:sf:%s", ps[i].email);
        keys[i] = kbuf[i];
    }
    if (store_lock_many(w->st, keys, np, token, lock_ttl_ms(w), got, err, sizeof err) != 0)
        memset(got, 0, sizeof *got * np);
    for (size_t i = 0; i < np; i++)
        ps[i].locked = got[i];

    sf_error e;
    const char *failed = NULL;
    if (lookup_people(w, ps, np, SF_CONTACT, &e) != 0)
        failed = "looking up Contacts by email";
    else if (lookup_people(w, ps, np, SF_LEAD, &e) != 0)
        failed = "looking up Leads by email";
    if (!failed) {
        /* Create the missing ones as Leads, 200 a call. */
        person *todo[SF_COLLECTION_MAX];
        size_t nt = 0;
        for (size_t i = 0; i <= np; i++) {
            if (i < np && ps[i].locked && !ps[i].id[0] && ps[i].create && !ps[i].unusable &&
                w->cfg->create_missing_people)
                todo[nt++] = &ps[i];
            if (nt == 0 || (nt < SF_COLLECTION_MAX && i < np)) continue;
            if (create_leads(b, todo, nt, &e) != 0) {
                failed = "creating Leads";
                break;
            }
            nt = 0;
        }
    }
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->state != IT_PENDING || it->p.kind != PLAN_APPLY || !it->p.to_sf || it->sf_person[0])
            continue;
        char key[EV_TEXT_MAX];
        lower(key, sizeof key, it->ev.email);
        person *p = find_person(ps, np, key);
        if (!p) continue;
        if (failed)
            fail(it, sf_state(&e), "salesforce", e.retry_after_ms, "%s: %s: %s", failed, e.code,
                 e.message);
        else if (p->unusable)
            fail(it, IT_DEAD, "salesforce", -1,
                 "the email \"%s\" of Marketo lead %s cannot be put in a Salesforce query",
                 it->ev.email, it->ev.mkto_lead_id);
        else if (!p->locked)
            it->state = IT_DEFER; /* another worker is creating this person right now */
        else if (p->id[0])
            snprintf(it->sf_person, sizeof it->sf_person, "%s", p->id);
        else if (it->p.sf_member && !w->cfg->create_missing_people)
            missing_in_salesforce(it);
    }
    store_unlock_many(w->st, keys, np, token, err, sizeof err);
out:
    free(keys);
    free(kbuf);
    free(got);
    free(ps);
}

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
            sf_oom(&e);
        } else if (sf_campaign_members(crm_salesforce(b->w->c), campaign,
                                       contacts ? SF_CONTACT : SF_LEAD, ids + start, n - start,
                                       found, &k, &e) == 0) {
            take_members(b, found, idx + start, k, cm_exists, cm_status);
            start += k;
            continue;
        }
        if (k == 0) { /* this item alone: it cannot be looked up, or memory ran out */
            if (!strcmp(e.code, "UNUSABLE"))
                fail(&b->items[idx[start++]], sf_state(&e), "salesforce", -1, "%s", e.message);
            else
                fail(&b->items[idx[start++]], sf_state(&e), "salesforce", -1,
                     "looking up campaign members of %s: %s", campaign, e.message);
            continue;
        }
        for (size_t j = start; j < start + k; j++)
            fail(&b->items[idx[j]], sf_state(&e), "salesforce", e.retry_after_ms,
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
        fail(it, IT_DEAD, "salesforce", -1,
             "Salesforce campaign %s has no member status \"%s\" for Marketo program %s status "
             "\"%s\" (%s: %s): add the status to the campaign or a statusMap entry, then "
             "replay",
             it->campaign, it->p.sf_status, it->map->program_id, it->ev.status, code, msg);
    else
        fail(it, IT_DEAD, "salesforce", -1,
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
            fail(its[k], sf_state(&e), "salesforce", e.retry_after_ms, "%s campaign member: %s: %s",
                 what, e.code, e.message);
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
            fail(its[k], st, "salesforce", -1,
                 "Salesforce refused to %s the campaign member of %s in %s: %s: %s", what,
                 its[k]->sf_person, its[k]->campaign, r->code, r->message);
    }
}

static void status_cache_clear(status_cache *c) {
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
    status_cache_clear(c);
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
    int64_t now = now_ms();
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
            fail(it, IT_DEFER, NULL, -1, "waiting for campaign %s's member statuses", it->campaign);
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
                fail(it, sf_state(&e), "salesforce", e.retry_after_ms,
                     "reading the member statuses of campaign %s: %s: %s", it->campaign, e.code,
                     e.message);
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
            fail(it, IT_DEAD, "salesforce", -1,
                 "Salesforce campaign %s has no member statuses: it was deleted, or the "
                 "integration user may not read its CampaignMemberStatus records",
                 it->campaign);
        else
            bad_status(it, "not written; the campaign's statuses are", have);
    }
}

/* Marks the members about to be written on one side, before the write (see store.h). */
static void mark_writes(batch *b, bool salesforce) {
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
    int64_t until = now_ms() + 2 * b->w->cfg->crm_timeout_ms;
    if (n) *(salesforce ? &b->sf_mark : &b->mkto_mark) = until;
    if (n &&
        store_mark_written(b->w->st, camps, leads, n, salesforce ? "sf_pending" : "mkto_pending",
                           until, err, sizeof err) != 0) {
        /* Without the mark a write could go unrecorded: do not write this round. */
        for (size_t i = 0; i < b->n; i++) {
            item *it = &b->items[i];
            if (it->state == IT_PENDING && it->p.kind == PLAN_APPLY &&
                (salesforce ? it->p.to_sf : it->p.to_mkto))
                fail(it, IT_RETRY, salesforce ? "salesforce" : "marketo", -1, "Redis: %s", err);
        }
    }
    free(camps);
    free(leads);
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
            fail(its[k], IT_RETRY, "salesforce", -1, "Redis: %s", err);
        return;
    }
    sf_record res[SF_COLLECTION_MAX];
    sf_error e;
    if (sf_delete_records(crm_salesforce(b->w->c), ids, n, res, &e) != 0) {
        for (size_t k = 0; k < n; k++)
            fail(its[k], sf_state(&e), "salesforce", e.retry_after_ms,
                 "removing campaign member: %s: %s", e.code, e.message);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        const sf_record *r = &res[k];
        /* Already gone is what we wanted. */
        it_state st = plan_after_sf_record(r->outcome, r->failure, PLAN_SF_DELETE_MEMBER);
        if (st != IT_PENDING)
            fail(its[k], st, "salesforce", -1,
                 "Salesforce refused to remove campaign member %s: %s: %s", its[k]->cm_id, r->code,
                 r->message);
    }
}

static void apply_salesforce(batch *b) {
    /* People: what the service holds, then Marketo's sfdc ids, then the email. */
    sf_people_known(b);
    read_marketo_people(b);
    resolve_sf_by_ids(b);
    resolve_sf_people(b);
    bool *exists = calloc(b->n, sizeof *exists);
    char(*status)[STATUS_LABEL_MAX] = calloc(b->n, sizeof *status);
    item **its = calloc(b->n, sizeof *its);
    bool *dup = calloc(b->n, sizeof *dup);
    if (!exists || !status || !its || !dup) goto out;
    find_members(b, exists, status);
    check_statuses(b, exists, status);
    mark_writes(b, true);

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

/* ---------------------------------------------------------------- Marketo side */

static bool needs_lead(const item *it) {
    return it->state == IT_PENDING && it->p.kind == PLAN_APPLY && it->p.to_mkto && !it->lead[0];
}

/* The Salesforce person of a Salesforce-side item. */
static const char *sf_person_of(const item *it) {
    return it->ev.sf_contact_id[0] ? it->ev.sf_contact_id : it->ev.sf_lead_id;
}

/* The lead, among the leads looked up by email, that is the item's person
 * (plan_pick_lead_by_email). */
static void pick_by_email(const mk_lead *leads, size_t n, item *it) {
    int k = plan_pick_lead_by_email(leads, n, it->ev.email, sf_person_of(it));
    if (k >= 0) snprintf(it->lead, sizeof it->lead, "%s", leads[k].id);
}

/* CREATE_MISSING_PEOPLE=false and no Marketo lead is the item's person: a dead letter naming
 * the person and the ways out. */
static void missing_in_marketo(item *it) {
    fail(it, IT_DEAD, "marketo", -1,
         "no Marketo lead is Salesforce %s %s (email \"%s\"; looked up by sfdcContactId, "
         "sfdcLeadId and email) and CREATE_MISSING_PEOPLE is false: create the lead in "
         "Marketo, then replay this dead letter; or set CREATE_MISSING_PEOPLE=true to let the "
         "service create it",
         it->ev.sf_contact_id[0] ? "Contact" : "Lead", sf_person_of(it), it->ev.email);
}

/* Finds the leads whose sfdcLeadId or sfdcContactId (Marketo's own sync) is the person of
 * one of the chunk's items still without a lead. Adobe's "Leads" reference: leads.json takes
 * filterType sfdcLeadId and sfdcContactId. */
static void leads_by_sfdc_ids(batch *b, int chunk) {
    for (int kind = 0; kind < 2; kind++) {
        const char *ids[MKTO_BATCH];
        item *group[MKTO_BATCH];
        size_t n = 0;
        for (size_t i = 0; i < b->n && n < MKTO_BATCH; i++) {
            item *it = &b->items[i];
            const char *id = kind == 0 ? it->ev.sf_contact_id : it->ev.sf_lead_id;
            if (!needs_lead(it) || it->mk_chunk != chunk || !id[0]) continue;
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
                fail(group[k], mk_state(&e), "marketo", e.retry_after_ms,
                     "looking up Marketo leads by %s: %s %s", filter, e.code, e.message);
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            int j = plan_pick_lead_by_sfdc(res, nres, kind == 0, ids[k]);
            if (j >= 0) snprintf(group[k]->lead, sizeof group[k]->lead, "%s", res[j].id);
        }
        mkto_leads_free(res, nres);
    }
}

/* Finds or creates the Marketo leads of up to 300 Salesforce-side items not looked up yet
 * (their person links were read with the batch): by the Salesforce ids Marketo's own sync
 * keeps on its leads (a Contact's first), then by email, then createOrUpdate on email unless
 * CREATE_MISSING_PEOPLE is false. Returns how many it took. */
static size_t resolve_marketo_chunk(batch *b, int chunk) {
    wctx *w = b->w;
    char err[STORE_ERR_MAX];
    const char *emails[MKTO_BATCH];
    item *by_email[MKTO_BATCH];
    size_t ne = 0, taken = 0;
    for (size_t i = 0; i < b->n && taken < MKTO_BATCH; i++) {
        item *it = &b->items[i];
        if (!needs_lead(it) || it->mk_chunk) continue;
        it->mk_chunk = chunk;
        taken++;
    }
    if (taken == 0) return 0;
    leads_by_sfdc_ids(b, chunk);
    /* Then by email (one call), then create the missing ones under a per-email lock. */
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (needs_lead(it) && it->mk_chunk == chunk && it->ev.email[0]) {
            by_email[ne] = it;
            emails[ne++] = it->ev.email;
        }
    }
    if (ne) {
        mk_lead *res = NULL;
        size_t nres = 0;
        mk_error e;
        if (mkto_leads_by(crm_marketo(w->c), MK_BY_EMAIL, emails, ne,
                          MK_LEAD_EMAIL | MK_LEAD_SFDC_IDS, &res, &nres, &e) != 0) {
            for (size_t k = 0; k < ne; k++)
                fail(by_email[k], mk_state(&e), "marketo", e.retry_after_ms,
                     "looking up Marketo leads by email: %s %s", e.code, e.message);
            ne = 0;
        }
        for (size_t k = 0; k < ne; k++)
            pick_by_email(res, nres, by_email[k]);
        mkto_leads_free(res, nres);
    }
    /* Creation, serialised per email across every worker. */
    mk_new_lead input[MKTO_BATCH];
    item *inputs[MKTO_BATCH];
    size_t ninput = 0;
    item *creating[MKTO_BATCH];
    const char *keys[MKTO_BATCH];
    char kbuf[MKTO_BATCH][EV_TEXT_MAX + 32];
    bool got[MKTO_BATCH];
    size_t nc = 0;
    for (size_t k = 0; k < ne; k++) {
        item *it = by_email[k];
        if (it->lead[0] || it->state != IT_PENDING || !it->p.mkto_member) continue;
        if (!w->cfg->create_missing_people) {
            missing_in_marketo(it);
            continue;
        }
        char low[EV_TEXT_MAX];
        lower(low, sizeof low, it->ev.email);
        bool seen = false;
        for (size_t j = 0; j < nc; j++)
            seen = seen || strcmp(kbuf[j] + strlen(MKTO_PERSON_LOCK), low) == 0;
        if (seen) continue;
        snprintf(kbuf[nc], sizeof kbuf[nc], MKTO_PERSON_LOCK "%s", low);
        keys[nc] = kbuf[nc];
        creating[nc++] = it;
    }
    char token[200];
    snprintf(token, sizeof token, "%s:m%lu", w->consumer, ++w->seq);
    if (nc && store_lock_many(w->st, keys, nc, token, lock_ttl_ms(w), got, err, sizeof err) != 0)
        memset(got, 0, sizeof got);
    size_t nlocked = 0;
    const char *recheck[MKTO_BATCH];
    for (size_t j = 0; j < nc; j++) {
        if (!got[j]) {
            creating[j]->state = IT_DEFER; /* another worker is creating this lead */
            continue;
        }
        recheck[nlocked++] = creating[j]->ev.email;
    }
    if (nlocked) {
        /* Under the lock, look again: the lead may have been created since the first look. */
        mk_lead *res = NULL;
        size_t nres = 0;
        mk_error e;
        if (mkto_leads_by(crm_marketo(w->c), MK_BY_EMAIL, recheck, nlocked,
                          MK_LEAD_EMAIL | MK_LEAD_SFDC_IDS, &res, &nres, &e) == 0) {
            for (size_t j = 0; j < nc; j++) {
                if (!got[j]) continue;
                pick_by_email(res, nres, creating[j]);
                if (creating[j]->lead[0]) continue;
                const event *ev = &creating[j]->ev;
                input[ninput] =
                    (mk_new_lead){ev->email, ev->first_name, ev->last_name, ev->company};
                inputs[ninput++] = creating[j];
            }
        } else {
            for (size_t j = 0; j < nc; j++)
                if (got[j])
                    fail(creating[j], mk_state(&e), "marketo", e.retry_after_ms,
                         "looking up Marketo lead %s: %s %s", creating[j]->ev.email, e.code,
                         e.message);
        }
        mkto_leads_free(res, nres);
        mk_record out[MKTO_BATCH];
        if (ninput && mkto_create_leads(crm_marketo(w->c), input, ninput, out, &e) != 0) {
            for (size_t j = 0; j < ninput; j++)
                fail(inputs[j], mk_state(&e), "marketo", e.retry_after_ms,
                     "creating the Marketo lead: %s %s", e.code, e.message);
        } else {
            for (size_t j = 0; j < ninput; j++) {
                if (plan_after_mk_record(out[j].outcome, out[j].failure, true) == IT_PENDING) {
                    snprintf(inputs[j]->lead, sizeof inputs[j]->lead, "%s", out[j].id);
                    LOG_KV(LOG_INFO, "marketo: created a lead", "lead_id", inputs[j]->lead,
                           "event_id", inputs[j]->ev.id);
                } else {
                    fail(inputs[j], IT_DEAD, "marketo", -1,
                         "Marketo refused to create a "
                         "lead for %s (reason %s)",
                         inputs[j]->ev.email, out[j].reason);
                }
            }
        }
    }
    if (nc) store_unlock_many(w->st, keys, nc, token, err, sizeof err);
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
            fail(it, IT_DEAD, "marketo", -1,
                 "Salesforce person %s has no email address, so no "
                 "Marketo lead can be found or created for it",
                 it->ev.sf_contact_id[0] ? it->ev.sf_contact_id : it->ev.sf_lead_id);
        else if (!it->lead[0] && it->state == IT_PENDING)
            fail(it, IT_RETRY, "marketo", -1, "no Marketo lead was found or created for %s",
                 it->ev.email);
    }
}

/* Reads the recorded state of the items idx[0..n) (each with its campaign and lead) in one
 * round trip: 0, or -1 with err (then no item's state changed). */
static int read_states(batch *b, const size_t *idx, size_t n, char *err, size_t errlen) {
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
    if (nl &&
        store_lock_many(b->w->st, keys, nl, b->token, lock_ttl_ms(b->w), got, err, sizeof err) != 0)
        memset(got, 0, nl * sizeof *got);
    for (size_t k = 0; k < nl; k++) {
        item *it = &b->items[lk[k]];
        if (got[k]) {
            hold_add_key(&b->w->hold, it->lead_lock);
        } else {
            it->state = IT_DEFER; /* the member is being changed by another worker */
            it->lead_lock[0] = '\0';
        }
    }
    size_t nm = 0;
    for (size_t k = 0; k < nr; k++)
        if (b->items[rd[k]].state == IT_PENDING) rd[nm++] = rd[k];
    bool read_ok = read_states(b, rd, nm, err, sizeof err) == 0;
    for (size_t k = 0; k < nm; k++) {
        item *it = &b->items[rd[k]];
        if (!read_ok) {
            fail(it, IT_RETRY, "marketo", -1, "Redis: %s", err);
            continue;
        }
        if (it->st.known || it->st.mkto_pending_ms || it->st.sf_pending_ms) replan(b, it);
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

/* Marketo's member statuses of the leads of one status call that it skipped (1037) and whose
 * record does not already show the wanted status, in one read for all of them (they share the
 * program): a lead not at the wanted status was a backward move. One read per lead spent the
 * Marketo budget on reads when many members moved back at once (a bulk reset in Salesforce).
 * A failed read fails them all: the outcome of their write is unknown. */
static void read_skipped_statuses(batch *b, item **its, const char **ids, size_t n) {
    if (!n) return;
    mk_member *res = NULL;
    size_t nres = 0;
    mk_error e;
    if (mkto_member_statuses(crm_marketo(b->w->c), its[0]->p.program_id, ids, n, &res, &nres, &e) !=
        0) {
        for (size_t k = 0; k < n; k++)
            fail(its[k], mk_state(&e), "marketo", e.retry_after_ms,
                 "Marketo program %s skipped lead %s (1037) and its status could not be read: "
                 "%s %s",
                 its[k]->p.program_id, its[k]->lead, e.code, e.message);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        const char *now = member_status_of(res, nres, its[k]->lead);
        if (now) snprintf(its[k]->mkto_now, sizeof its[k]->mkto_now, "%s", now);
        its[k]->backward = plan_backward(now, its[k]->p.mkto_status);
    }
    mkto_members_free(res, nres);
}

static bool to_marketo(const item *it) {
    return it->state == IT_PENDING && it->p.kind == PLAN_APPLY && it->p.to_mkto;
}

/* A paced read makes no more calls than the pace has room for (b->paced_calls): the changes
 * pace_hold holds back wait for the next read. */
static void hold_for_pace(batch *b) {
    if (b->paced_ms <= 0 || b->n == 0) return;
    pace_change *c = calloc(b->n, sizeof *c);
    item **its = calloc(b->n, sizeof *its);
    size_t n = 0;
    if (!c || !its) goto out; /* then the calls go as planned */
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (!to_marketo(it)) continue;
        its[n] = it;
        c[n++] = (pace_change){it->p.program_id, it->p.mkto_member,  it->p.mkto_status,
                               needs_lead(it),   it->ev.received_ms, PACE_GO};
    }
    pace_hold(c, n, b->paced_ms, b->paced_calls, now_ms());
    for (size_t k = 0; k < n; k++) {
        switch (c[k].verdict) {
        case PACE_GO: break;
        case PACE_LOOKUP_NEXT:
            fail(its[k], IT_DEFER, NULL, b->paced_ms / 2,
                 "its Marketo lead is looked up with the next read's");
            break;
        case PACE_GROUP_NEXT:
            fail(its[k], IT_DEFER, NULL, b->paced_ms / 2,
                 "written with the next read's changes of status %s", its[k]->p.mkto_status);
            break;
        }
    }
out:
    free(c);
    free(its);
}

static void apply_marketo(batch *b) {
    hold_for_pace(b);
    resolve_marketo_leads(b);
    replan_with_lead(b);
    mark_writes(b, false);
    for (size_t i = 0; i < b->n; i++) {
        item *first = &b->items[i];
        if (first->state != IT_PENDING || first->p.kind != PLAN_APPLY || !first->p.to_mkto ||
            !first->lead[0] || first->mk_grouped)
            continue;
        /* One call per program and wanted status (or removal), 300 leads at most. */
        item *group[MKTO_BATCH], *unread[MKTO_BATCH];
        const char *ids[MKTO_BATCH], *unread_ids[MKTO_BATCH];
        size_t n = 0, nu = 0;
        for (size_t j = i; j < b->n && n < MKTO_BATCH; j++) {
            item *it = &b->items[j];
            if (it->state != IT_PENDING || it->p.kind != PLAN_APPLY || !it->p.to_mkto ||
                !it->lead[0] || it->mk_grouped ||
                strcmp(it->p.program_id, first->p.program_id) != 0 ||
                it->p.mkto_member != first->p.mkto_member ||
                strcmp(it->p.mkto_status, first->p.mkto_status) != 0)
                continue;
            it->mk_grouped = true;
            group[n] = it;
            ids[n++] = it->lead;
        }
        mk_record res[MKTO_BATCH];
        mk_error e;
        int rc = first->p.mkto_member ? mkto_set_status(crm_marketo(b->w->c), first->p.program_id,
                                                        first->p.mkto_status, ids, n, res, &e)
                                      : mkto_remove_members(crm_marketo(b->w->c),
                                                            first->p.program_id, ids, n, res, &e);
        for (size_t k = 0; k < n; k++) {
            item *it = group[k];
            if (rc != 0) {
                if (mkto_unknown_status(&e))
                    fail(it, IT_DEAD, "marketo", -1,
                         "Marketo program %s has no status \"%s\" for Salesforce campaign %s "
                         "status \"%s\" (%s %s): add it to the program's channel or a "
                         "statusMap entry, then replay",
                         it->p.program_id, it->p.mkto_status, it->campaign, it->ev.status, e.code,
                         e.message);
                else
                    fail(it, mk_state(&e), "marketo", e.retry_after_ms, "Marketo program %s: %s %s",
                         it->p.program_id, e.code, e.message);
                continue;
            }
            it_state st = plan_after_mk_record(res[k].outcome, res[k].failure, false);
            if (st != IT_PENDING)
                fail(it, st, "marketo", -1, "Marketo skipped lead %s in program %s (reason %s)",
                     it->lead, it->p.program_id, res[k].reason);
            else if (res[k].outcome == MK_REC_AT_OR_PAST && plan_skip_needs_read(&it->st, &it->p)) {
                /* Already at that status (success) or past it (a backward move): Marketo's
                 * current status tells (an earlier try may have timed out after Marketo
                 * applied it, or nothing is recorded yet). */
                unread[nu] = it;
                unread_ids[nu++] = it->lead;
            }
        }
        read_skipped_statuses(b, unread, unread_ids, nu);
    }
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->state != IT_PENDING || it->p.kind != PLAN_APPLY || !it->p.to_mkto) continue;
        if (it->backward) {
            metrics_add(M_EVENTS_DROPPED, 1, plan_drop_reason_name(DROP_BACKWARD));
            LOG_KV(LOG_INFO,
                   "marketo: backward move not applied (Marketo keeps progression "
                   "one-way)",
                   "event_id", it->ev.id, "program_id", it->p.program_id, "lead_id", it->lead,
                   "from", it->st.mkto_status, "to", it->p.mkto_status);
        } else {
            metrics_add(M_EVENTS_APPLIED, 1, "marketo");
        }
    }
}

/* ---------------------------------------------------------------- the batch */

/* A drop whose plan asks for it still records the event's side and time. */
static void record_drop(wctx *w, item *it) {
    char err[STORE_ERR_MAX];
    if (!it->p.record || !it->lead[0]) return;
    member_state n = it->p.next;
    n.updated_ms = now_ms();
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

static void park_for_quota(wctx *w, const store_entry *e, const char *target) {
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

static void finish(batch *b) {
    wctx *w = b->w;
    char err[STORE_ERR_MAX];
    const char **acks = calloc(b->n, sizeof *acks);
    int *put = calloc(b->n ? b->n : 1, sizeof *put);
    size_t na = 0;
    int64_t now = now_ms();
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
                fail(it, IT_RETRY, it->p.to_sf ? "salesforce" : "marketo", -1, "Redis: %s", err);
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
        case IT_QUOTA: park_for_quota(w, it->e, it->target); break;
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
    /* A batch holds entries of one queue (process_by_queue). */
    if (na && store_ack(w->st, b->items[0].e->q, acks, na, err, sizeof err) != 0)
        LOG_KV(LOG_WARN, "worker: could not acknowledge; entries will be claimed again", "error",
               err);
    free(acks);
    free(put);
}

/* A queued entry parsed once per read: its event, or why it could not be read. */
typedef struct {
    event ev;
    char why[128]; /* empty: parsed */
} parsed_entry;

/* A batch whose target CRM's allowance is spent waits parked, whole, without a call
 * (entries of one queue: Marketo's go toward Salesforce, Salesforce's toward Marketo). */
static bool park_while_spent(wctx *w, const store_entry *entries, size_t n) {
    bool to_sf = n && entries[0].q == STORE_Q_MKTO;
    if (n == 0 || !(to_sf ? crm_salesforce_spent(w->c) : crm_marketo_spent(w->c))) return false;
    for (size_t i = 0; i < n; i++)
        park_for_quota(w, &entries[i], to_sf ? "salesforce" : "marketo");
    return true;
}

/* Applies entries[0..n) (parsed as *pe[0..n)); the heartbeat keeps entries[0..nhold) alive
 * meanwhile (nhold >= n: the rest of the read waits its turn, not claimed by another worker). */
static void process(wctx *w, store_entry *entries, const parsed_entry *const *pe, size_t n,
                    size_t nhold, long paced_ms, int paced_calls) {
    char err[STORE_ERR_MAX];
    char token[200];
    batch b = {w, calloc(n, sizeof(item)), n, token, NULL, 0, 0, 0, paced_ms, paced_calls};
    const char **keys = calloc(2 * n, sizeof *keys) /* member locks, then lead locks */;
    bool *got = calloc(n, sizeof *got);
    size_t *idx = calloc(n, sizeof *idx);
    const char **persons = calloc(n, sizeof *persons);
    char(*leads)[EV_NUMID_MAX] = calloc(n, sizeof *leads);
    size_t nk = 0, np = 0;
    snprintf(token, sizeof token, "%s:b%lu", w->consumer, ++w->seq);
    if (!b.items || !keys || !got || !idx || !persons || !leads) goto out;
    if (park_while_spent(w, entries, n)) goto out;

    /* Parse, find the mapping and the member. */
    for (size_t i = 0; i < n; i++) {
        item *it = &b.items[i];
        it->e = &entries[i];
        if (pe[i]->why[0]) {
            fail(it, IT_DEAD, NULL, -1, "unreadable queued event: %s", pe[i]->why);
            continue;
        }
        it->ev = pe[i]->ev;
        it->parsed = true;
        if (load_mapping(&b, it, err, sizeof err) != 0) goto redis_down;
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
    if (np && store_link_by_sf_many(w->st, np, persons, leads, err, sizeof err) != 0)
        goto redis_down;
    for (size_t k = 0; k < np; k++)
        snprintf(b.items[idx[k]].lead, sizeof b.items[idx[k]].lead, "%s", leads[k]);
    for (size_t i = 0; i < n; i++) {
        item *it = &b.items[i];
        if (!it->parsed) continue;
        member_key(it);
        /* One event per member per batch: later ones wait for the next round, in order. */
        for (size_t j = 0; j < i; j++)
            if (b.items[j].parsed && !strcmp(b.items[j].lock_key, it->lock_key)) {
                it->state = IT_DEFER;
                break;
            }
    }
    for (size_t i = 0; i < n; i++)
        if (b.items[i].state == IT_PENDING) keys[nk++] = b.items[i].lock_key;
    if (store_lock_many(w->st, keys, nk, token, lock_ttl_ms(w), got, err, sizeof err) != 0)
        goto redis_down;
    hold_set(&w->hold, entries, nhold, keys, nk, token);
    /* The recorded state of every locked member, in one round trip. */
    size_t nm = 0;
    for (size_t i = 0, k = 0; i < n; i++) {
        item *it = &b.items[i];
        if (it->state != IT_PENDING) continue;
        it->locked = got[k++];
        if (!it->locked)
            it->state = IT_DEFER; /* another worker holds this member */
        else if (it->lead[0])
            idx[nm++] = i;
    }
    if (read_states(&b, idx, nm, err, sizeof err) != 0) goto redis_down;
    for (size_t i = 0; i < n; i++)
        if (b.items[i].state == IT_PENDING) replan(&b, &b.items[i]);
    fill_marketo_statuses(&b);
    fill_default_statuses(&b);

    for (size_t i = 0; i < n; i++) {
        item *it = &b.items[i];
        if (it->state != IT_PENDING) continue;
        switch (it->p.kind) {
        case PLAN_APPLY: break;
        case PLAN_DROP:
            it->state = IT_DROP;
            metrics_add(M_EVENTS_DROPPED, 1, plan_drop_reason_name(it->p.reason));
            record_drop(w, it);
            if (log_enabled(LOG_DEBUG))
                LOG_KV(LOG_DEBUG, "dropped", "event_id", it->ev.id, "reason",
                       plan_drop_reason_name(it->p.reason));
            break;
        case PLAN_PARK:
            /* The park script acknowledges the entry itself. */
            if (store_park(w->st, it->e, it->map->program_id, err, sizeof err) == 0)
                it->state = IT_PARKED;
            else
                fail(it, IT_DEFER, NULL, -1, "Redis: %s", err);
            break;
        case PLAN_DEAD: fail(it, IT_DEAD, NULL, -1, "%s", it->p.message); break;
        case PLAN_NEED_STATUS: break; /* a read failed: its state says what to do */
        }
    }
    apply_salesforce(&b);
    apply_marketo(&b);
    finish(&b);
    store_progress_mark(w->st, err, sizeof err);
    goto unlock;

redis_down:
    /* Nothing was written; the entries stay pending and are claimed back later. */
    LOG_KV(LOG_WARN, "worker: Redis failed mid-batch; entries will be claimed again", "error", err);
unlock:
    hold_clear(&w->hold);
    for (size_t i = 0; i < n; i++)
        if (b.items[i].lead_lock[0]) keys[nk++] = b.items[i].lead_lock;
    if (nk) store_unlock_many(w->st, keys, nk, token, err, sizeof err);
out:
    for (size_t i = 0; i < b.nmaps; i++)
        free(b.maps[i]);
    free(b.maps);
    free(b.items);
    free(keys);
    free(got);
    free(idx);
    free(persons);
    free(leads);
}

/* The changes toward Salesforce (read from Marketo's queue) first, then those toward
 * Marketo, each in queue order and each as a batch of its own: the Salesforce side is
 * acknowledged without waiting for Marketo's slower, rate-limited calls. Every entry is
 * parsed once here; *sf_slot, when held, is given back as soon as the Salesforce side is
 * done. (Out of memory, the read is left pending: the claim loop hands it out again.) */
static void process_by_queue(wctx *w, store_entry *entries, size_t n, bool *sf_slot, long paced_ms,
                             int paced_calls) {
    parsed_entry *pe = malloc(n * sizeof *pe);
    const parsed_entry **order = malloc(n * sizeof *order);
    store_entry *sorted = malloc(n * sizeof *sorted);
    size_t nfirst = 0;
    if (pe && order && sorted) {
        for (size_t i = 0; i < n; i++) {
            pe[i].why[0] = '\0';
            if (event_from_json(entries[i].json, entries[i].len, &pe[i].ev, pe[i].why,
                                sizeof pe[i].why) != 0 &&
                !pe[i].why[0])
                snprintf(pe[i].why, sizeof pe[i].why, "not an event");
            if (entries[i].q == STORE_Q_MKTO) nfirst++;
        }
        /* A stable partition: Marketo's queue, then Salesforce's. */
        for (size_t i = 0, a = 0, m = nfirst; i < n; i++) {
            size_t to = entries[i].q == STORE_Q_MKTO ? a++ : m++;
            sorted[to] = entries[i];
            order[to] = &pe[i];
        }
        memcpy(entries, sorted, n * sizeof *entries); /* the same entries, reordered */
        if (nfirst) process(w, entries, order, nfirst, n, 0, 0);
        if (*sf_slot) { /* the next batch toward Salesforce need not wait for Marketo's calls */
            atomic_fetch_sub(&w->pool->sf_readers, 1);
            *sf_slot = false;
        }
        if (n > nfirst && !atomic_load(&w->pool->stop))
            process(w, entries + nfirst, order + nfirst, n - nfirst, n - nfirst, paced_ms,
                    paced_calls);
    }
    free(pe);
    free(order);
    free(sorted);
}

/* How far apart batches toward Salesforce start under load (a full call's worth goes at
 * once), by the share of the org's API allowance used (sf_api_usage_share). */
static long sf_fill_ms(double api_share) {
    if (api_share >= 0.9) return 5000;
    if (api_share >= 0.8) return 1000;
    if (api_share >= 0.5) return 250;
    return SF_FILL_MS;
}

/* ---------------------------------------------------------------- the loop */

/* Whether the events parked under `pid` may go back into their queues: a program's once its
 * mapping is enabled again (or gone: its events are then unmapped and dropped as such), a
 * spent allowance's once the CRM has room again (quota.h). */
static bool may_unpark(wctx *w, const char *pid) {
    char err[STORE_ERR_MAX];
    if (strncmp(pid, "quota:", 6) == 0)
        return !(strcmp(pid + 6, "marketo") == 0 ? crm_marketo_spent(w->c)
                                                 : crm_salesforce_spent(w->c));
    mapping m;
    int rc = store_mapping_get(w->st, pid, &m, err, sizeof err);
    return rc == 0 || (rc == 1 && m.enabled);
}

static void unpark_ready(wctx *w) {
    char err[STORE_ERR_MAX];
    char **pids = NULL;
    long n = store_parked_programs(w->st, &pids, err, sizeof err);
    for (long i = 0; i < n; i++) {
        if (may_unpark(w, pids[i])) {
            long moved = store_unpark(w->st, pids[i], err, sizeof err);
            if (moved > 0)
                LOGF(LOG_INFO, "worker: %ld parked events of %s are queued again", moved, pids[i]);
        }
        free(pids[i]);
    }
    free(pids);
}

static void *worker_main(void *arg) {
    wctx *w = arg;
    char err[STORE_ERR_MAX];
    bool failing = false, seeded = false;
    int64_t last_claim = 0, last_unpark = 0;
    long backoff = 100;
    while (!atomic_load(&w->pool->stop)) {
        bool enabled = true;
        if (store_group_ensure(w->st, err, sizeof err) != 0 ||
            store_sync_get(w->st, &enabled, err, sizeof err) != 0) {
            if (!failing) LOG_KV(LOG_WARN, "worker: Redis unavailable; waiting", "error", err);
            failing = true;
            sleep_ms(backoff);
            backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
            continue;
        }
        if (failing || !seeded) {
            if (failing) LOG_KV(LOG_INFO, "worker: Redis is back");
            /* The switch's first value (a Redis that lost its data gets it again). */
            seeded = store_sync_init(w->st, w->cfg->sync_enabled, err, sizeof err) == 0;
            if (seeded) store_sync_get(w->st, &enabled, err, sizeof err);
        }
        failing = false;
        backoff = 100;
        if (!enabled) {
            sleep_ms(250); /* sync disabled: events wait in the queue */
            continue;
        }
        int64_t now = now_ms();
        store_promote_due(w->st, now, 1000, err, sizeof err);
        store_entry *entries = NULL;
        long n = 0;
        if (now - last_claim >= CLAIM_EVERY_MS) {
            last_claim = now;
            for (int q = 0; q < STORE_NQUEUES && n <= 0; q++) {
                store_entries_free(entries, 0);
                n = store_claim(w->st, (store_queue)q, w->consumer, w->cfg->claim_idle_ms, READ_MAX,
                                &entries, err, sizeof err);
            }
            if (n > 0) LOGF(LOG_INFO, "worker: claimed %ld events held by a stopped worker", n);
        }
        if (now - last_unpark >= UNPARK_EVERY_MS) {
            last_unpark = now;
            unpark_ready(w);
        }
        bool reader = false, sf_slot = false;
        long paced_ms = 0; /* the pace, when this read toward Marketo is a paced one */
        int paced_calls = 0;
        if (n <= 0) {
            store_entries_free(entries, 0);
            entries = NULL;
            /* Salesforce's queue (toward Marketo) only with a reader slot and when the
             * Marketo budget and pace let a read go now: otherwise its changes gather in the
             * stream, in order, for a fuller call. */
            bool want[STORE_NQUEUES] = {[STORE_Q_SF] = false, [STORE_Q_MKTO] = false};
            int block = BLOCK_MS;
            long g = -1; /* the gate's answer (-1: another thread reads toward Marketo) */
            if (atomic_fetch_add(&w->pool->mkto_readers, 1) < w->pool->mkto_readers_max) {
                g = store_mkto_gate(w->st, w->cfg->marketo_calls_per_20s,
                                    w->cfg->marketo_max_concurrent, MKTO_LIGHT_RATE, &paced_ms,
                                    &paced_calls, err, sizeof err);
                reader = g == 0;
                if (g > 0 && g < block) block = (int)g;
            }
            if (!reader) atomic_fetch_sub(&w->pool->mkto_readers, 1);
            want[STORE_Q_SF] = reader;
            /* Toward Salesforce one batch at a time while a batch is not full: what arrives
             * meanwhile waits for that batch's calls and goes in the next one, so that a
             * steady stream is written in fuller (fewer) calls, not in one small batch per
             * thread (bench: 9.8 changes per Collections call with every thread reading).
             * A backlog of a full call or more is worked on by every thread. A paced read
             * toward Marketo, due now or soon, is not made to wait for such a batch (the
             * wait would be added to every change of the read: bench p99 +50 ms): one
             * thread keeps itself free for it, the others take the batch (when all kept
             * free, changes toward Salesforce waited: their p99 107 -> 154 ms). */
            bool soon = g > 0 && g <= MKTO_SOON_MS && w->pool->n > 1;
            if (soon && !w->keeping) { /* one thread waits for it; the others go on */
                bool none = false;
                w->keeping = atomic_compare_exchange_strong(&w->pool->mkto_keeper, &none, true);
            } else if (!soon && w->keeping) {
                atomic_store(&w->pool->mkto_keeper, false);
                w->keeping = false;
            }
            /* A batch toward Salesforce that would start right after the last one lets the
             * next changes gather a moment (each batch costs a query and a write of the
             * org's API allowance); an isolated change is not held. The moment grows as the
             * allowance is used up: spending it stops every integration of the org. */
            bool sf_due = atomic_load(&w->pool->sf_backlog) ||
                          now_ms() - atomic_load(&w->pool->sf_last_ms) >=
                              sf_fill_ms(sf_usage_share(w->pool->sf_usage));
            bool paced_soon = (reader && paced_ms) || w->keeping;
            if (!paced_soon && sf_due) {
                sf_slot = atomic_fetch_add(&w->pool->sf_readers, 1) == 0 ||
                          atomic_load(&w->pool->sf_backlog);
                if (!sf_slot) atomic_fetch_sub(&w->pool->sf_readers, 1);
            }
            want[STORE_Q_MKTO] = sf_slot;
            if (!want[STORE_Q_SF] && !want[STORE_Q_MKTO]) {
                sleep_ms(block < 10 ? block : 10); /* nothing to read now, or not here */
                continue;
            }
            /* A paced read takes what waits, not what comes next, and no more than the
             * calls with room carry (it never reads toward Salesforce as well). */
            n = store_read(w->st, w->consumer, want,
                           reader && paced_ms ? (size_t)paced_calls * MKTO_BATCH : READ_MAX,
                           reader && paced_ms ? -1 : block, &entries, err, sizeof err);
            if (sf_slot && n >= 0) {
                long k = 0;
                for (long i = 0; i < n; i++)
                    k += entries[i].q == STORE_Q_MKTO;
                atomic_store(&w->pool->sf_backlog, k >= SF_COLLECTION_MAX);
                if (k) atomic_store(&w->pool->sf_last_ms, now_ms());
            }
        }
        if (n < 0) {
            if (reader) atomic_fetch_sub(&w->pool->mkto_readers, 1);
            if (sf_slot) atomic_fetch_sub(&w->pool->sf_readers, 1);
            if (!failing) LOG_KV(LOG_WARN, "worker: reading the queue failed", "error", err);
            failing = true;
            sleep_ms(backoff);
            continue;
        }
        /* The switch may have been turned off while the read waited: then nothing of this
         * batch is applied; the entries wait outside the stream until sync is on again. */
        if (n > 0 && store_sync_get(w->st, &enabled, err, sizeof err) == 0 && !enabled) {
            for (long i = 0; i < n; i++)
                store_defer(w->st, &entries[i], event_now_ms(), err, sizeof err);
            store_entries_free(entries, (size_t)n);
            entries = NULL;
            n = 0;
        }
        if (n > 0)
            process_by_queue(w, entries, (size_t)n, &sf_slot, reader ? paced_ms : 0, paced_calls);
        if (reader) atomic_fetch_sub(&w->pool->mkto_readers, 1);
        if (sf_slot) atomic_fetch_sub(&w->pool->sf_readers, 1);
        store_entries_free(entries, (size_t)(n > 0 ? n : 0));
    }
    return NULL;
}

/* Keeps every batch in progress alive: its entries' idle time and its locks are renewed
 * three times per CLAIM_IDLE_MS, so only a worker that really stopped loses them. */
static void *heartbeat_main(void *arg) {
    worker_pool *p = arg;
    long every = p->cfg->claim_idle_ms / 3 > 50 ? p->cfg->claim_idle_ms / 3 : 50;
    char err[STORE_ERR_MAX];
    while (!atomic_load(&p->stop)) {
        for (long slept = 0; slept < every && !atomic_load(&p->stop); slept += 50)
            sleep_ms(50);
        for (int i = 0; i < p->n; i++) {
            held *h = &p->ctx[i].hold;
            pthread_mutex_lock(&h->lock);
            if (h->nids) {
                /* XCLAIM names one stream: the ids of each queue apart. */
                const char **ids = calloc(h->nids, sizeof *ids);
                for (int q = 0; ids && q < STORE_NQUEUES; q++) {
                    size_t k = 0;
                    for (size_t j = 0; j < h->nids; j++)
                        if (h->qs[j] == (store_queue)q) ids[k++] = h->ids[j];
                    if (k)
                        store_touch(p->hb_store, (store_queue)q, p->ctx[i].consumer, ids, k, err,
                                    sizeof err);
                }
                free(ids);
                bool *got = calloc(h->nkeys ? h->nkeys : 1, sizeof *got);
                if (got && h->nkeys)
                    store_lock_many(p->hb_store, (const char *const *)h->keys, h->nkeys, h->token,
                                    p->cfg->claim_idle_ms, got, err, sizeof err);
                free(got);
            }
            pthread_mutex_unlock(&h->lock);
        }
    }
    return NULL;
}

worker_pool *worker_pool_start(const struct config *cfg, int threads, char *err, size_t errlen) {
    worker_pool *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->cfg = cfg;
    p->sf_usage = sf_usage_new();
    /* Threads that may work on the queue toward Marketo at once: all but one (so that one
     * is always free for changes toward Salesforce), and no more than Marketo calls may be
     * in flight. A single thread does both. */
    p->mkto_readers_max = threads <= 1 ? 1 : threads - 1;
    if (p->mkto_readers_max > cfg->marketo_max_concurrent)
        p->mkto_readers_max = cfg->marketo_max_concurrent;
    p->threads = calloc((size_t)threads, sizeof *p->threads);
    p->ctx = calloc((size_t)threads, sizeof *p->ctx);
    p->cap = threads;
    for (int i = 0; p->ctx && i < threads; i++)
        pthread_mutex_init(&p->ctx[i].hold.lock, NULL);
    if (!p->threads || !p->ctx || !p->sf_usage) {
        snprintf(err, errlen, "out of memory");
        worker_pool_stop(p);
        return NULL;
    }
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    for (int i = 0; i < threads; i++) {
        wctx *w = &p->ctx[i];
        w->pool = p;
        w->cfg = cfg;
        w->index = i;
        w->rnd = (unsigned)(time(NULL) ^ (getpid() << 8) ^ i);
        snprintf(w->consumer, sizeof w->consumer, "%s-%d-%d", host, (int)getpid(), i);
        w->st = store_open(&cfg->redis);
        w->c = w->st ? crm_new(cfg, w->st, w->consumer, p->sf_usage) : NULL;
        if (!w->c) {
            snprintf(err, errlen, "out of memory");
            worker_pool_stop(p);
            return NULL;
        }
        /* A stopping worker does not wait for a permit, nor long for one: after that,
         * Marketo-bound events wait outside the queue for the budget (without spending an
         * attempt) while the thread goes on. */
        crm_set_budget_wait(w->c, BUDGET_WAIT_MS, &p->stop);
        if (pthread_create(&p->threads[i], NULL, worker_main, w) != 0) {
            snprintf(err, errlen, "cannot start worker thread %d", i);
            worker_pool_stop(p);
            return NULL;
        }
        p->n++;
    }
    p->hb_store = store_open(&cfg->redis);
    if (!p->hb_store || pthread_create(&p->heartbeat, NULL, heartbeat_main, p) != 0) {
        snprintf(err, errlen, "cannot start the worker heartbeat");
        worker_pool_stop(p);
        return NULL;
    }
    p->heartbeat_running = true;
    return p;
}

void worker_pool_stop(worker_pool *p) {
    if (!p) return;
    atomic_store(&p->stop, true);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    if (p->heartbeat_running) pthread_join(p->heartbeat, NULL);
    store_free(p->hb_store);
    /* Also the clients of a thread that failed to start. */
    for (int i = 0; p->ctx && i < p->cap; i++) {
        crm_free(p->ctx[i].c);
        store_free(p->ctx[i].st);
        hold_clear(&p->ctx[i].hold);
        for (int k = 0; k < STATUS_CACHE_MAX; k++)
            status_cache_clear(&p->ctx[i].statuses[k]);
        pthread_mutex_destroy(&p->ctx[i].hold.lock);
    }
    free(p->threads);
    free(p->ctx);
    sf_usage_free(p->sf_usage);
    free(p);
}

int worker_ready_check(void *ud, char *detail, size_t len) {
    const struct config *cfg = ud;
    store *st = store_thread();
    char err[STORE_ERR_MAX];
    bool enabled = true;
    int64_t last = 0;
    long long depth = 0;
    double age = 0;
    if (!st || store_sync_get(st, &enabled, err, sizeof err) != 0 ||
        store_progress_get(st, &last, err, sizeof err) != 0 ||
        store_queue_stats(st, &depth, &age, err, sizeof err) != 0) {
        snprintf(detail, len, "cannot read worker progress: %s", st ? err : "out of memory");
        return -1;
    }
    if (!enabled || depth == 0) return 0;
    int64_t idle = now_ms() - (last ? last : now_ms() - (int64_t)(age * 1000));
    if (idle > (int64_t)cfg->ready_stall_s * 1000 && age > cfg->ready_stall_s) {
        snprintf(detail, len, "%lld events wait and no worker finished one for %lld s", depth,
                 (long long)(idle / 1000));
        return -1;
    }
    return 0;
}
