/* salesforce_bulk — a campaign's members through a Salesforce Bulk API 2.0 query job.
 *
 * Owns the wire of Bulk API 2.0 query jobs (Bulk API 2.0 and Bulk API Developer Guide,
 * "Bulk API 2.0 Query"): creating the CampaignMember query job of a campaign (the fields the
 * paged listing reads, salesforce.h sf_member_row), waiting for it to complete, reading its
 * results a page (maxRecords, locator) at a time as CSV streamed through an incremental parser
 * (one row in memory at a time), aborting and deleting it; and the cheap count of a campaign's
 * members (SOQL COUNT()) that chooses it. Calls go through the sf_client (its token, 401
 * refresh, gate and failure classification). */
#ifndef CS_SALESFORCE_BULK_H
#define CS_SALESFORCE_BULK_H

#include "salesforce.h"

#include <stdbool.h>
#include <stddef.h>

#define SFB_JOB_ID_MAX  19  /* a job id: 18 characters and the NUL */
#define SFB_LOCATOR_MAX 256 /* a results locator as Salesforce answers it */

/* The number of CampaignMembers of the campaign (one SOQL COUNT() query). 0, or -1 with err. */
int sfb_member_count(sf_client *c, const char *campaign_id, long *count, sf_error *err);

/* Creates the query job of the campaign's members; its id into job_id. 0, or -1 with err
 * (sfb_no_allocation tells a spent daily allocation). */
int sfb_create_member_job(sf_client *c, const char *campaign_id, char job_id[SFB_JOB_ID_MAX],
                          sf_error *err);

/* Polls the job until JobComplete, waiting 250 ms, doubling up to 5 s, for at most max_wait_ms:
 * 0, or -1 with err (Failed: refused with Salesforce's errorMessage; Aborted or still running
 * after max_wait_ms: retry). */
int sfb_wait(sf_client *c, const char *job_id, long max_wait_ms, sf_error *err);

/* One data row of the results (the header row of every page is not one); fields point into the
 * parser's buffers and are the callee's only during the call. Returns 0 to go on, anything else
 * (positive) stops the read (sfb_csv_feed returns it; sfb_read_page: SFB_PAGE_STOPPED). */
typedef int (*sfb_row_fn)(void *ud, const sf_member_row *row);

/* What reading a page came to. */
typedef enum {
    SFB_PAGE_ERROR = -1,  /* err says why (sfb_gone tells a job that no longer exists) */
    SFB_PAGE_READ = 0,    /* every row handed to fn */
    SFB_PAGE_STOPPED = 1, /* fn answered non-zero: the rest of the page was not read */
} sfb_page_rc;

/* Reads one page of the job's results: the first (locator "") or the one locator names, at most
 * max_records rows, handing each to fn as it is parsed. next (SFB_LOCATOR_MAX) receives the next
 * page's locator, "" when this was the last. */
sfb_page_rc sfb_read_page(sf_client *c, const char *job_id, const char *locator, long max_records,
                          sfb_row_fn fn, void *ud, char *next, sf_error *err);

/* Aborts (a job not yet complete) and deletes the job; best effort, failures only logged. */
void sfb_discard(sf_client *c, const char *job_id);

/* Whether err is Salesforce refusing a job because a daily Bulk API 2.0 allocation (query jobs,
 * results storage) is spent. */
bool sfb_no_allocation(const sf_error *err);

/* Whether err says the job (or its results) no longer exists. */
bool sfb_gone(const sf_error *err);

/* ---------------------------------------------------------------- the CSV reader (unit-tested)
 * RFC 4180 as Bulk API 2.0 writes it (comma, LF or CRLF, fields in double quotes with "" for a
 * quote, commas and line breaks inside quotes), fed any chunks. The first record of each page
 * (sfb_csv_page) is its header row: it names the columns, relationship fields as
 * Relationship.Field; the other records come out as sf_member_rows. */
typedef struct sfb_csv sfb_csv;
sfb_csv *sfb_csv_new(sfb_row_fn fn, void *ud);
void sfb_csv_free(sfb_csv *p);
/* Starts a page: its first record is a header row again. */
void sfb_csv_page(sfb_csv *p);
/* Feeds n bytes: 0, fn's non-zero value, or -1 when the text is not CSV (a quote inside an
 * unquoted field, a header without Id) with why. */
int sfb_csv_feed(sfb_csv *p, const char *data, size_t n);
/* Ends the page (a last record without its line break): as sfb_csv_feed. */
int sfb_csv_end(sfb_csv *p);
/* Why the text is not CSV. */
const char *sfb_csv_why(const sfb_csv *p);

#endif
