/* job_run — one job's walk: the program's members kept in Redis, the campaign's compared page
 * by page, then the program's members the campaign lacks; each difference queued as a
 * correction. See include/jobs.h and service/jobs_priv.h. */
#include "jobs_priv.h"

#include "event.h"
#include "log.h"
#include "member_lists.h"
#include "metrics.h"
#include "reconcile.h"
#include "store_jobs.h"
#include "store_mappings.h"
#include "store_members.h"
#include "store_queue.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE_BATCH  100 /* corrections stored in one script */
#define SCAN_COUNT   500 /* kept members read at once in the last phase */
#define LIST_TRIES   6   /* a listing that failed transiently is tried again, from its cursor */
#define LIST_WAIT_MS 2000

/* Why a phase stopped before its end. */
enum { RUN_GO = 0, RUN_CANCEL, RUN_LEFT, RUN_FAILED };

/* A job's run: its context, its mapping, the corrections waiting to be stored. */
typedef struct {
    job_ctx *jc;
    const mapping *m;
    event queue[QUEUE_BATCH];
    size_t nq;
    long long queued; /* stored by the page in progress (its count goes with the page) */
    int why;          /* RUN_* once a phase stops */
    int64_t since_ms; /* when the job started: records written since are newer than its lists */
    char err[700];    /* RUN_FAILED: what failed */
} run;

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Whether the job must be left now (the process stops, or its lock may be another's); while
 * sync is off (F10), waits: nothing reaches a CRM then. */
static bool must_leave(run *r) {
    const job_ctx *jc = r->jc;
    for (;;) {
        if (atomic_load(jc->stop) || atomic_load(jc->lost)) {
            r->why = RUN_LEFT;
            return true;
        }
        bool enabled = true;
        char err[STORE_ERR_MAX];
        if (store_sync_get(jc->st, &enabled, err, sizeof err) != 0 || enabled) return false;
        sleep_ms(500);
    }
}

/* Stores the waiting corrections; false (RUN_LEFT: Redis failed, another process will do the
 * page again) when it could not. */
static bool flush(run *r) {
    bool added[QUEUE_BATCH];
    char err[STORE_ERR_MAX];
    if (r->nq == 0) return true;
    if (store_enqueue(r->jc->st, r->queue, r->nq, added, err, sizeof err) != 0) {
        LOG_KV(LOG_WARN, "jobs: storing corrections failed; the job is left for later", "job_id",
               r->jc->job.id, "error", err);
        r->why = RUN_LEFT;
        return false;
    }
    for (size_t k = 0; k < r->nq; k++)
        r->queued += added[k];
    r->nq = 0;
    return true;
}

/* Records a page; sets r->why when the job must stop. */
static bool save(run *r, store_job_page *p) {
    job_ctx *jc = r->jc;
    char err[STORE_ERR_MAX];
    if (r->queued) store_job_page_count(p, "queued", r->queued);
    store_page_rc rc =
        store_job_page_save(jc->st, jc->job.id, jc->job.program_id, jc->owner, p,
                            jc->cfg->job_details_max, jc->cfg->job_retention_s, err, sizeof err);
    store_job_page_free(p);
    r->queued = 0;
    switch (rc) {
    case STORE_PAGE_SAVED: return true;
    case STORE_PAGE_CANCEL: r->why = RUN_CANCEL; return false;
    case STORE_PAGE_LOST: r->why = RUN_LEFT; return false;
    case STORE_PAGE_ERROR:
        LOG_KV(LOG_WARN, "jobs: recording a page failed; the job is left for later", "job_id",
               jc->job.id, "error", err);
        r->why = RUN_LEFT;
        return false;
    }
    return false;
}

/* The job's phase and cursor move on (recorded, then kept in jc->job). */
static bool next_phase(run *r, job_phase phase, const char *cursor) {
    store_job_page *p = store_job_page_new(phase, cursor);
    if (!save(r, p)) return false;
    r->jc->job.phase = phase;
    snprintf(r->jc->job.cursor, sizeof r->jc->job.cursor, "%s", cursor);
    return true;
}

/* One difference's detail as the API lists it. */
static void add_detail(store_job_page *p, const reconcile_person *per, const char *kind,
                       const char *action) {
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "email", per->email);
    if (per->in_mk)
        cJSON_AddStringToObject(d, "marketo", per->mk_status);
    else
        cJSON_AddNullToObject(d, "marketo");
    if (per->in_sf)
        cJSON_AddStringToObject(d, "salesforce", per->sf_status);
    else
        cJSON_AddNullToObject(d, "salesforce");
    cJSON_AddStringToObject(d, "kind", kind);
    cJSON_AddStringToObject(d, "action", action);
    char *s = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    if (s) store_job_page_detail(p, s);
    free(s);
}

/* Compares one person's two sides against the recorded state and, when they differ, queues
 * the correction reconcile_decide states; counts and details go with the page. */
static bool compare(run *r, store_job_page *p, const reconcile_person *per,
                    const member_state *rec) {
    store_job_page_count(p, "compared", 1);
    /* Recorded since the job started: the service applied a change to this person after the
     * lists were read (a live change, or this job's own correction before a page was listed
     * again after a restart), so the lists no longer describe them and the record is newer:
     * nothing to correct. */
    if (rec->known && rec->updated_ms >= r->since_ms) return true;
    const char *kind = reconcile_difference(r->m, per);
    if (!kind) return true;
    store_job_page_count(p, kind, 1);
    metrics_add(M_RECONCILE_DIFFS, 1, kind);
    char action[300];
    event *ev = &r->queue[r->nq];
    if (reconcile_decide(r->m, per, rec, event_now_ms(), ev, action, sizeof action)) {
        snprintf(ev->job, sizeof ev->job, "%s", r->jc->job.id);
        if (++r->nq == QUEUE_BATCH && !flush(r)) return false;
    }
    add_detail(p, per, kind, action);
    return true;
}

/* A kept Marketo member as one side of a person. */
static void marketo_side(reconcile_person *per, const store_job_member *k) {
    per->in_mk = true;
    snprintf(per->lead, sizeof per->lead, "%s", k->lead);
    snprintf(per->mk_status, sizeof per->mk_status, "%s", k->status);
    per->mk_ts = k->updated_ms;
    snprintf(per->first, sizeof per->first, "%s", k->first);
    snprintf(per->last, sizeof per->last, "%s", k->last);
    snprintf(per->company, sizeof per->company, "%s", k->company);
}

/* The recorded states of the people with a Marketo lead, in one round trip. */
static bool recorded(run *r, const reconcile_person *per, size_t n, member_state *rec) {
    const char **camps = calloc(n ? n : 1, sizeof *camps),
               **leads = calloc(n ? n : 1, sizeof *leads);
    size_t *idx = calloc(n ? n : 1, sizeof *idx), k = 0;
    member_state *got = calloc(n ? n : 1, sizeof *got);
    char err[STORE_ERR_MAX];
    bool ok = camps && leads && idx && got;
    for (size_t i = 0; ok && i < n; i++) {
        memset(&rec[i], 0, sizeof rec[i]);
        if (!per[i].lead[0]) continue;
        camps[k] = r->m->campaign_id;
        leads[k] = per[i].lead;
        idx[k++] = i;
    }
    if (ok && k && store_member_get_many(r->jc->st, k, camps, leads, got, err, sizeof err) != 0) {
        LOG_KV(LOG_WARN, "jobs: reading recorded members failed; the job is left for later",
               "job_id", r->jc->job.id, "error", err);
        ok = false;
    }
    for (size_t j = 0; ok && j < k; j++)
        rec[idx[j]] = got[j];
    free(camps);
    free(leads);
    free(idx);
    free(got);
    if (!ok) r->why = RUN_LEFT;
    return ok;
}

/* ---- phase 1: the program's members, kept by email ---- */

static int keep_marketo(void *ud, const ml_mk_member *ms, size_t n, const char *next) {
    run *r = ud;
    if (must_leave(r)) return 1;
    store_job_page *p = store_job_page_new(JOB_LIST_MARKETO, next);
    for (size_t i = 0; p && i < n; i++) {
        store_job_member k = {.updated_ms = ms[i].updated_ms};
        snprintf(k.lead, sizeof k.lead, "%s", ms[i].lead_id);
        snprintf(k.status, sizeof k.status, "%s", ms[i].status);
        snprintf(k.first, sizeof k.first, "%s", ms[i].first_name);
        snprintf(k.last, sizeof k.last, "%s", ms[i].last_name);
        snprintf(k.company, sizeof k.company, "%s", ms[i].company);
        char key[EV_TEXT_MAX + 8], value[900];
        /* A lead without an email can only be met by its lead id. */
        if (ms[i].email[0])
            snprintf(key, sizeof key, "%s", ms[i].email);
        else
            snprintf(key, sizeof key, "#lead:%s", ms[i].lead_id);
        store_job_spill_value(&k, value, sizeof value);
        store_job_page_keep(p, key, value, ms[i].lead_id);
    }
    if (!save(r, p)) return 1;
    snprintf(r->jc->job.cursor, sizeof r->jc->job.cursor, "%s", next);
    return 0;
}

/* ---- phase 2: the campaign's members, each page compared ---- */

/* The key each row's person is kept under on the Marketo side: the email of the Marketo lead
 * the service links the person to, when one is kept; else the row's email. */
static bool salesforce_keys(run *r, const ml_sf_member *ms, size_t n, char (*keys)[EV_TEXT_MAX],
                            char (*linked)[EV_NUMID_MAX]) {
    const char **people = calloc(n ? n : 1, sizeof *people),
               **leads = calloc(n ? n : 1, sizeof *leads);
    char(*emails)[EV_TEXT_MAX] = calloc(n ? n : 1, sizeof *emails);
    size_t *idx = calloc(n ? n : 1, sizeof *idx), k = 0;
    char err[STORE_ERR_MAX];
    bool ok = people && leads && emails && idx;
    for (size_t i = 0; ok && i < n; i++)
        people[i] = ms[i].person_id;
    ok = ok && store_link_by_sf_many(r->jc->st, n, people, linked, err, sizeof err) == 0;
    for (size_t i = 0; ok && i < n; i++)
        if (linked[i][0]) {
            leads[k] = linked[i];
            idx[k++] = i;
        }
    ok = ok && (k == 0 || store_job_spill_emails(r->jc->st, r->jc->job.id, leads, k, emails, err,
                                                 sizeof err) == 0);
    for (size_t i = 0; ok && i < n; i++) {
        if (ms[i].email[0])
            snprintf(keys[i], EV_TEXT_MAX, "%s", ms[i].email);
        else
            snprintf(keys[i], EV_TEXT_MAX, "#sf:%.18s", ms[i].person_id);
    }
    for (size_t j = 0; ok && j < k; j++)
        if (emails[j][0]) snprintf(keys[idx[j]], EV_TEXT_MAX, "%s", emails[j]);
    if (!ok) {
        LOG_KV(LOG_WARN, "jobs: reading links failed; the job is left for later", "job_id",
               r->jc->job.id, "error", err);
        r->why = RUN_LEFT;
    }
    free(people);
    free(leads);
    free(emails);
    free(idx);
    return ok;
}

/* Row i's person: the Salesforce side, and the Marketo side kept under its key. */
static void salesforce_person(const ml_sf_member *m, const char *key, const char *linked,
                              const store_job_member *k, bool found, reconcile_person *per) {
    memset(per, 0, sizeof *per);
    /* A row without an email takes the email of the Marketo lead it is linked to. */
    snprintf(per->email, sizeof per->email, "%s",
             m->email[0]     ? m->email
             : key[0] != '#' ? key
                             : "");
    if (found) marketo_side(per, k);
    if (!per->lead[0]) snprintf(per->lead, sizeof per->lead, "%s", linked);
    per->in_sf = true;
    snprintf(per->cm_id, sizeof per->cm_id, "%s", m->member_id);
    snprintf(per->sf_person, sizeof per->sf_person, "%s", m->person_id);
    snprintf(per->sf_status, sizeof per->sf_status, "%s", m->status);
    per->sf_ts = m->modified_ms;
    if (!per->first[0]) snprintf(per->first, sizeof per->first, "%s", m->first_name);
    if (!per->last[0]) snprintf(per->last, sizeof per->last, "%s", m->last_name);
    if (!per->company[0]) snprintf(per->company, sizeof per->company, "%s", m->company);
}

/* What one Salesforce page needs, allocated once per page. */
typedef struct {
    char (*keys)[EV_TEXT_MAX];
    char (*linked)[EV_NUMID_MAX];
    store_job_member *kept;
    bool *found;
    reconcile_person *per;
    member_state *rec;
} sf_page_mem;

static void sf_page_free(sf_page_mem *pm) {
    free(pm->keys);
    free(pm->linked);
    free(pm->kept);
    free(pm->found);
    free(pm->per);
    free(pm->rec);
}

static int compare_salesforce(void *ud, const ml_sf_member *ms, size_t n, const char *next) {
    run *r = ud;
    if (must_leave(r)) return 1;
    sf_page_mem pm = {calloc(n, sizeof *pm.keys), calloc(n, sizeof *pm.linked),
                      calloc(n, sizeof *pm.kept), calloc(n, sizeof *pm.found),
                      calloc(n, sizeof *pm.per),  calloc(n, sizeof *pm.rec)};
    const char **keyp = calloc(n, sizeof *keyp);
    store_job_page *p = store_job_page_new(JOB_LIST_SALESFORCE, next);
    char err[STORE_ERR_MAX];
    bool ok = pm.keys && pm.linked && pm.kept && pm.found && pm.per && pm.rec && keyp && p;
    if (!ok) r->why = RUN_LEFT;
    ok = ok && salesforce_keys(r, ms, n, pm.keys, pm.linked);
    for (size_t i = 0; ok && i < n; i++)
        keyp[i] = pm.keys[i];
    if (ok && store_job_spill_get(r->jc->st, r->jc->job.id, keyp, n, pm.kept, pm.found, err,
                                  sizeof err)) {
        LOG_KV(LOG_WARN, "jobs: reading kept members failed; the job is left for later", "job_id",
               r->jc->job.id, "error", err);
        r->why = RUN_LEFT;
        ok = false;
    }
    for (size_t i = 0; ok && i < n; i++)
        salesforce_person(&ms[i], pm.keys[i], pm.linked[i], &pm.kept[i], pm.found[i], &pm.per[i]);
    ok = ok && recorded(r, pm.per, n, pm.rec);
    for (size_t i = 0; ok && i < n; i++) {
        ok = compare(r, p, &pm.per[i], &pm.rec[i]);
        if (pm.found[i]) store_job_page_seen(p, pm.keys[i]);
    }
    ok = ok && flush(r);
    if (ok) {
        store_job_page_count(p, "listedSalesforce", (long long)n);
        ok = save(r, p); /* which frees p */
        p = NULL;
    }
    store_job_page_free(p);
    if (ok) snprintf(r->jc->job.cursor, sizeof r->jc->job.cursor, "%s", next);
    sf_page_free(&pm);
    free(keyp);
    return ok ? 0 : 1;
}

/* ---- phase 3: the program's members the campaign lacks ---- */

/* One scan step: the kept members not met in Salesforce, compared (each then marked met, so
 * that the scan's repeats are not compared twice). */
static bool compare_scan_step(run *r, const char (*emails)[EV_TEXT_MAX],
                              const store_job_member *kept, long n, const char *next) {
    reconcile_person *per = calloc(n ? (size_t)n : 1, sizeof *per);
    member_state *rec = calloc(n ? (size_t)n : 1, sizeof *rec);
    store_job_page *p = store_job_page_new(JOB_MARKETO_ONLY, next);
    size_t k = 0;
    bool ok = per && rec && p;
    if (!ok) r->why = RUN_LEFT;
    for (long i = 0; ok && i < n; i++) {
        if (kept[i].seen) continue;
        reconcile_person *q = &per[k++];
        memset(q, 0, sizeof *q);
        snprintf(q->email, sizeof q->email, "%s", emails[i][0] == '#' ? "" : emails[i]);
        marketo_side(q, &kept[i]);
        store_job_page_seen(p, emails[i]);
    }
    ok = ok && recorded(r, per, k, rec);
    for (size_t i = 0; ok && i < k; i++)
        ok = compare(r, p, &per[i], &rec[i]);
    ok = ok && flush(r);
    if (ok) {
        ok = save(r, p);
        p = NULL;
    }
    store_job_page_free(p);
    free(per);
    free(rec);
    return ok;
}

static bool marketo_only(run *r) {
    char cursor[64];
    snprintf(cursor, sizeof cursor, "%.60s", r->jc->job.cursor[0] ? r->jc->job.cursor : "0");
    do {
        if (must_leave(r)) return false;
        char(*emails)[EV_TEXT_MAX] = NULL;
        store_job_member *kept = NULL;
        char err[STORE_ERR_MAX];
        long n = store_job_spill_scan(r->jc->st, r->jc->job.id, cursor, sizeof cursor, SCAN_COUNT,
                                      &emails, &kept, err, sizeof err);
        if (n < 0) {
            LOG_KV(LOG_WARN, "jobs: reading kept members failed; the job is left for later",
                   "job_id", r->jc->job.id, "error", err);
            r->why = RUN_LEFT;
            return false;
        }
        bool ok = compare_scan_step(r, (const char(*)[EV_TEXT_MAX])emails, kept, n, cursor);
        free(emails);
        free(kept);
        if (!ok) return false;
        snprintf(r->jc->job.cursor, sizeof r->jc->job.cursor, "%s", cursor);
    } while (strcmp(cursor, "0") != 0);
    return true;
}

/* ---- the walk ---- */

/* A listing's failure: transient ones are tried again (from the cursor) a few times; the job
 * fails with the CRM's words otherwise. Returns true to try again. */
static bool list_failed(run *r, ml_result res, const ml_error *e, int *tries) {
    if (res == ML_STOPPED) return false; /* r->why says why */
    if (res == ML_TOO_LARGE) {
        snprintf(r->err, sizeof r->err,
                 "Marketo refuses to list the members of program %s by status: it has more than "
                 "100,000 members (error 1003), and the bulk program member extract that lists "
                 "such a program was not used",
                 r->m->program_id);
        r->why = RUN_FAILED;
        return false;
    }
    bool transient = e->failure == CRM_RETRY || e->failure == CRM_NO_PERMIT;
    if (transient && ++*tries < LIST_TRIES) {
        long wait = LIST_WAIT_MS << (*tries - 1);
        LOG_KV(LOG_WARN, "jobs: a listing failed; trying again from its cursor", "job_id",
               r->jc->job.id, "error", e->message);
        for (long slept = 0; slept < wait && !must_leave(r); slept += 250)
            sleep_ms(250);
        return r->why == RUN_GO;
    }
    snprintf(r->err, sizeof r->err, "%.500s%s", e->message,
             e->failure == CRM_SPENT ? " (the CRM's daily API allowance is spent: start the job "
                                       "again once it has room)"
                                     : "");
    r->why = RUN_FAILED;
    return false;
}

static bool list_marketo(run *r) {
    int tries = 0;
    for (;;) {
        ml_error e = {0};
        ml_result res = member_lists_marketo(r->jc->c, r->m->program_id, r->jc->job.cursor,
                                             keep_marketo, r, &e);
        if (res == ML_DONE) return next_phase(r, JOB_LIST_SALESFORCE, "");
        if (!list_failed(r, res, &e, &tries)) return false;
    }
}

static bool list_salesforce(run *r) {
    int tries = 0;
    for (;;) {
        ml_error e = {0};
        ml_result res = member_lists_salesforce(r->jc->c, r->m->campaign_id, r->jc->job.cursor,
                                                compare_salesforce, r, &e);
        if (res == ML_DONE) return next_phase(r, JOB_MARKETO_ONLY, "");
        if (!list_failed(r, res, &e, &tries)) return false;
    }
}

/* Every correction is queued: the job waits for their outcomes without a process (jobs.c
 * ends it); one that queued none is done at once. */
static void to_applying(run *r) {
    job_ctx *jc = r->jc;
    store_job_page *p = store_job_page_new(JOB_APPLYING, "");
    store_job_page_applying(p);
    if (!save(r, p)) return;
    jc->job.phase = JOB_APPLYING;
    char err[STORE_ERR_MAX];
    store_job now;
    if (store_job_get(jc->st, jc->job.id, &now, err, sizeof err) == STORE_FOUND &&
        job_outcomes_complete(now.queued, now.applied, now.skipped, now.dead_lettered) &&
        store_job_finish(jc->st, jc->job.id, jc->job.program_id, "", JOB_DONE, "", event_now_ms(),
                         jc->cfg->job_retention_s, "running,applying", err,
                         sizeof err) == STORE_JOB_CHANGED)
        metrics_observe(M_JOB_SECONDS, (double)(event_now_ms() - now.started_ms) / 1000.0,
                        job_kind_name(now.kind));
}

void job_end(job_ctx *jc, job_state state, const char *error) {
    char err[STORE_ERR_MAX];
    int64_t now = event_now_ms();
    store_job_change rc =
        store_job_finish(jc->st, jc->job.id, jc->job.program_id, jc->owner, state, error, now,
                         jc->cfg->job_retention_s, "", err, sizeof err);
    if (rc == STORE_JOB_CHANGE_ERROR) {
        LOG_KV(LOG_WARN, "jobs: ending a job failed; it is taken over later", "job_id", jc->job.id,
               "error", err);
        return;
    }
    if (rc == STORE_JOB_MOVED_ON) return; /* another process has it, or it ended meanwhile */
    int64_t since = jc->job.started_ms ? jc->job.started_ms : jc->job.created_ms;
    metrics_observe(M_JOB_SECONDS, (double)(now - since) / 1000.0, job_kind_name(jc->job.kind));
    LOG_KV(state == JOB_FAILED ? LOG_WARN : LOG_INFO, "jobs: job ended", "job_id", jc->job.id,
           "program_id", jc->job.program_id, "state", job_state_name(state), "error",
           error ? error : "");
}

/* The job's mapping as it is now: NULL after ending the job when it is gone or now maps
 * another campaign (the job's comparison would be of the wrong pair). */
static bool current_mapping(job_ctx *jc, mapping *m) {
    char err[STORE_ERR_MAX], why[300];
    store_found f = store_mapping_get(jc->st, jc->job.program_id, m, err, sizeof err);
    if (f == STORE_ERROR) return false; /* left: taken over once Redis answers */
    if (f == STORE_FOUND && strncmp(m->campaign_id, jc->job.campaign_id, 15) == 0) return true;
    snprintf(why, sizeof why,
             f == STORE_NOT_FOUND ? "the mapping of program %s was deleted while the job ran"
                                  : "the mapping of program %s was changed to another campaign "
                                    "while the job ran",
             jc->job.program_id);
    job_end(jc, JOB_FAILED, why);
    return false;
}

void job_run(job_ctx *jc) {
    mapping m;
    if (!current_mapping(jc, &m)) return;
    run *r = calloc(1, sizeof *r);
    if (!r) return; /* left: taken over later */
    r->jc = jc;
    r->m = &m;
    r->since_ms = jc->job.started_ms ? jc->job.started_ms : jc->job.created_ms;
    const char *kind = job_kind_name(jc->job.kind);
    metrics_add(M_JOBS_RUNNING, 1, kind);
    bool ok = true;
    if (ok && jc->job.phase == JOB_LIST_MARKETO) ok = list_marketo(r);
    if (ok && jc->job.phase == JOB_LIST_SALESFORCE) ok = list_salesforce(r);
    if (ok && jc->job.phase == JOB_MARKETO_ONLY) ok = marketo_only(r);
    if (ok && jc->job.phase == JOB_MARKETO_ONLY) to_applying(r);
    if (!ok && r->why == RUN_CANCEL) job_end(jc, JOB_CANCELLED, "");
    if (!ok && r->why == RUN_FAILED) job_end(jc, JOB_FAILED, r->err);
    metrics_add(M_JOBS_RUNNING, -1, kind);
    free(r);
}
