/* ml_salesforce_bulk — a campaign's members through a Bulk API 2.0 query job. See
 * include/ml_salesforce_bulk.h. */
#include "ml_salesforce_bulk.h"

#include "log.h"
#include "salesforce_bulk.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a query job may take to complete before the listing fails (and is retried). */
#define WAIT_MAX_MS (15 * 60 * 1000L)

typedef struct {
    ml_sf_sink sink;
    void *ud;
    ml_sf_member *out;
    size_t n;              /* members in out, not yet handed */
    long skip;             /* rows of the page handed before a resume */
    long rows;             /* rows of the page seen */
    const list_cursor *at; /* job and locator of the page, for the cursors */
} page_ctx;

static void copy(char *dst, size_t size, const char *src) {
    snprintf(dst, size, "%s", src ? src : "");
}

/* Hands out[0..n) with the cursor lc; 1 when the sink stopped. */
static int hand(page_ctx *pc, const list_cursor *lc) {
    char next[LIST_CURSOR_MAX];
    if (list_cursor_format(lc, next, sizeof next) != 0) return 1; /* cannot happen: ids, escaped */
    int rc = pc->n ? pc->sink(pc->ud, pc->out, pc->n, next) : 0;
    pc->n = 0;
    return rc ? 1 : 0;
}

static int on_row(void *ud, const sf_member_row *r) {
    page_ctx *pc = ud;
    if (pc->skip > 0) { /* handed before the resume */
        pc->skip--;
        pc->rows++;
        return 0;
    }
    if (pc->n == ML_PAGE_MAX) {
        list_cursor lc = *pc->at;
        lc.sb_handed = pc->rows;
        if (hand(pc, &lc)) return 1;
    }
    ml_sf_member *m = &pc->out[pc->n++];
    memset(m, 0, sizeof *m);
    copy(m->member_id, sizeof m->member_id, r->id);
    copy(m->person_id, sizeof m->person_id, r->contact_id[0] ? r->contact_id : r->lead_id);
    size_t i = 0;
    for (; r->email[i] && i + 1 < sizeof m->email; i++)
        m->email[i] = (char)tolower((unsigned char)r->email[i]);
    m->email[i] = '\0';
    copy(m->status, sizeof m->status, r->status);
    m->modified_ms = r->modified_ms;
    copy(m->first_name, sizeof m->first_name, r->first_name);
    copy(m->last_name, sizeof m->last_name, r->last_name);
    copy(m->company, sizeof m->company, r->company);
    pc->rows++;
    return 0;
}

static ml_result failed(ml_error *err, const char *campaign_id, const sf_error *e) {
    err->failure = sf_failure(e);
    snprintf(err->message, sizeof err->message,
             "Salesforce: members of campaign %s by a Bulk API 2.0 query job: %s: %s", campaign_id,
             e->code, e->message);
    return ML_FAILED;
}

/* A new query job of the campaign, complete: its id into at->sb_job. */
static ml_result new_job(sf_client *sf, const char *campaign_id, list_cursor *at,
                         bool *no_allocation, ml_error *err) {
    sf_error e;
    memset(at, 0, sizeof *at);
    at->kind = LC_SALESFORCE_BULK;
    char job[SFB_JOB_ID_MAX];
    if (sfb_create_member_job(sf, campaign_id, job, &e) != 0) {
        *no_allocation = sfb_no_allocation(&e);
        return failed(err, campaign_id, &e);
    }
    if (sfb_wait(sf, job, WAIT_MAX_MS, &e) != 0) {
        sfb_discard(sf, job); /* the retry makes a new one */
        return failed(err, campaign_id, &e);
    }
    copy(at->sb_job, sizeof at->sb_job, job);
    return ML_DONE;
}

ml_result ml_salesforce_bulk(crm *c, const char *campaign_id, const list_cursor *from,
                             ml_sf_sink sink, void *ud, bool *no_allocation, ml_error *err) {
    sf_client *sf = crm_salesforce(c);
    long max_records = crm_config(c)->sf_bulk_page_records;
    list_cursor at = *from;
    *no_allocation = false;
    bool restarted = from->kind != LC_SALESFORCE_BULK;
    ml_result r = restarted ? new_job(sf, campaign_id, &at, no_allocation, err) : ML_DONE;
    page_ctx pc = {sink, ud, malloc(ML_PAGE_MAX * sizeof(ml_sf_member)), 0, 0, 0, &at};
    if (r == ML_DONE && !pc.out) {
        snprintf(err->message, sizeof err->message, "out of memory listing campaign %s",
                 campaign_id);
        err->failure = CRM_RETRY;
        r = ML_FAILED;
    }
    while (r == ML_DONE) {
        char next[SFB_LOCATOR_MAX];
        sf_error e;
        pc.n = 0;
        pc.rows = 0;
        pc.skip = at.sb_handed;
        sfb_page_rc rc =
            sfb_read_page(sf, at.sb_job, at.sb_locator, max_records, on_row, &pc, next, &e);
        if (rc == SFB_PAGE_ERROR && sfb_gone(&e) && !restarted) {
            /* "As long as the associated job exists, the locator string for a set of results
             * does not change" (Get Results for a Query Job): gone, the job starts over. */
            LOG_KV(LOG_WARN,
                   "salesforce: the bulk query job of a listing is gone; listing "
                   "again with a new job",
                   "campaign_id", campaign_id, "job_id", at.sb_job);
            restarted = true;
            r = new_job(sf, campaign_id, &at, no_allocation, err);
            continue;
        }
        if (rc == SFB_PAGE_STOPPED) r = ML_STOPPED;
        if (rc == SFB_PAGE_ERROR) r = failed(err, campaign_id, &e);
        if (r != ML_DONE) break;
        list_cursor lc = {.kind = next[0] ? LC_SALESFORCE_BULK : LC_END};
        copy(lc.sb_job, sizeof lc.sb_job, at.sb_job);
        copy(lc.sb_locator, sizeof lc.sb_locator, next);
        if (hand(&pc, &lc) != 0) r = ML_STOPPED;
        if (r != ML_DONE || !next[0]) break;
        at = lc;
    }
    if (r == ML_DONE) sfb_discard(sf, at.sb_job);
    free(pc.out);
    return r;
}
