/* list_cursor — the text of a member listing's resume point (member_lists.h). Pure.
 *
 * Owns the form of the opaque cursor a listing hands its sink after each page, so that a job
 * can store it and resume where it stopped, in this or another process:
 *   ""                      the start
 *   "mp1:<status>:<token>"  Marketo, paged: the channel status being listed (percent-encoded:
 *                           a channel's statuses may change between runs, so the status is
 *                           named, not numbered) and the nextPageToken of its next page (""
 *                           for its first)
 *   "sp1:<id>"              Salesforce, paged: the Id of the last CampaignMember delivered
 *                           (the next page starts after it, in Id order)
 *   "end"                   the listing handed its last page
 *   "mb1:<exportId>:<offset>"  Marketo, bulk program member extract: the export job and the
 *                           byte offset in its file of the next record not yet handed (0:
 *                           the export is waiting to be read, its header not read either)
 *   "sb1:<job>:<locator>:<n>"  Salesforce, Bulk API 2.0 query job <job>: n rows of its results
 *                           page <locator> (percent-encoded; "" for the first page) were
 *                           handed
 */
#ifndef CS_LIST_CURSOR_H
#define CS_LIST_CURSOR_H

#include "event.h"

#include <stddef.h>

#define LIST_CURSOR_MAX        1600 /* the longest cursor text, NUL included */
#define LIST_CURSOR_TOKEN_MAX  1024 /* a Marketo nextPageToken */
#define LIST_CURSOR_EXPORT_MAX 64   /* a Marketo bulk export's id (a UUID) */

typedef enum {
    LC_START = 0,        /* from the first page */
    LC_MARKETO_PAGED,    /* status, token */
    LC_SALESFORCE_PAGED, /* after_id */
    LC_END,              /* nothing more to list */
    LC_MARKETO_BULK,     /* export_id, offset */
    LC_SALESFORCE_BULK,  /* sb_job, sb_locator, sb_handed */
} list_cursor_kind;

typedef struct {
    list_cursor_kind kind;
    char status[EV_STATUS_MAX];
    char token[LIST_CURSOR_TOKEN_MAX];
    char after_id[EV_SFID_MAX];
    char export_id[LIST_CURSOR_EXPORT_MAX];
    long long offset;
    char sb_job[EV_SFID_MAX];                   /* a Bulk API 2.0 query job's id */
    char sb_locator[LIST_CURSOR_TOKEN_MAX / 4]; /* its results page's locator, "" the first */
    long sb_handed;                             /* rows of that page already handed */
} list_cursor;

/* Reads a cursor's text ("" or NULL: the start). 0, or -1 when it is not one this version
 * wrote (a cursor is only ever what a listing handed out). */
int list_cursor_parse(const char *text, list_cursor *out);

/* Writes c's text into out (LIST_CURSOR_MAX is enough). 0, or -1 when out is too small or
 * a field cannot be written (a token or id with characters a cursor never holds). */
int list_cursor_format(const list_cursor *c, char *out, size_t size);

#endif
