/* member_lists — a program's and a campaign's members, streamed page by page.
 *
 * Owns listing one side of a mapping: the program's members (Marketo lead id, email, status,
 * last change) or the campaign's members (CampaignMember id, its Lead or Contact, email,
 * status, LastModifiedDate), as typed records handed to a caller's sink a page at a time, with
 * the cursor (list_cursor.h) that resumes after that page: a job stores the cursor with what it
 * did with the page, and a listing started again from it (in any process) goes on from the next
 * page. Memory stays flat whatever the list's size: one page at a time.
 *
 * How a side is listed is chosen here, and the cursor records it:
 *   Marketo, paged     programs/{id}/members.json per channel status (nextPageToken), and
 *                      leads.json for the page's emails and names: two calls per 300
 *                      members. Marketo refuses it (1003) for programs over 100,000 members.
 *   Salesforce, paged  SOQL in CampaignMember Id order, following nextRecordsUrl (2,000 a
 *                      page), resumed after the last Id.
 *   Marketo, bulk      the bulk program member extract (ml_marketo_bulk.h): one export of
 *                      the program, its file read MARKETO_BULK_READ_BYTES at a time by byte
 *                      range; a handful of calls whatever the size, but minutes of waiting
 *                      (Marketo updates an export's status once a minute) and a share of
 *                      Marketo's daily export allocation (500 MB).
 *   Which Marketo way (choose_marketo, member_lists.c): paged while it has handed at most
 *   MARKETO_BULK_ABOVE_MEMBERS members (Marketo has no cheap member count: the pages tell);
 *   once a page would pass that, or Marketo refuses the paged listing (1003: over 100,000
 *   members), the bulk extract from the start. That wastes at most threshold/300*2 calls on a
 *   large program and keeps small ones on the paged way, which answers in seconds. 0: always
 *   the bulk extract; a very large value: never, except on 1003. A bulk cursor resumes its
 *   export. (Salesforce's Bulk API 2.0 query goes behind member_lists_salesforce the same way.)
 *   Every way hands the sink pages of records as below (any page size up to ML_PAGE_MAX; the
 *   bulk extract also hands pages of none while it waits, with the cursor naming its export),
 *   each with a cursor of its own kind (list_cursor.h) from which it resumes without listing
 *   again what was handed, and answers the same ml_result. A side listed twice (a page handed
 *   again after a restart, or the paged pages before the bulk extract) is harmless: the sink
 *   keeps what it keeps by email.
 *
 * Marketo calls go through the caller's crm handle, within its budget share (crm.h). */
#ifndef CS_MEMBER_LISTS_H
#define CS_MEMBER_LISTS_H

#include "crm.h"
#include "list_cursor.h"

#include <stddef.h>
#include <stdint.h>

#define ML_PAGE_MAX 2000 /* records handed to a sink at once, at most */

/* A member of the program. Strings are never NULL ("" when Marketo has none). */
typedef struct {
    char lead_id[CRM_MKID_MAX];
    char email[EV_TEXT_MAX]; /* lower case */
    char status[EV_STATUS_MAX];
    int64_t updated_ms; /* the membership's last change, 0 when unknown */
    char first_name[EV_NAME_MAX], last_name[EV_NAME_MAX], company[EV_TEXT_MAX];
} ml_mk_member;

/* A member of the campaign. */
typedef struct {
    char member_id[CRM_SFID_MAX]; /* the CampaignMember */
    char person_id[CRM_SFID_MAX]; /* its Contact, else its Lead */
    char email[EV_TEXT_MAX];      /* lower case */
    char status[EV_STATUS_MAX];
    int64_t modified_ms; /* LastModifiedDate, 0 when unknown */
    char first_name[EV_NAME_MAX], last_name[EV_NAME_MAX], company[EV_TEXT_MAX];
} ml_sf_member;

/* A sink: n records (the caller's only during the call) and the cursor that resumes after
 * them. Returns 0 to go on; any other value stops the listing (ML_STOPPED). */
typedef int (*ml_mk_sink)(void *ud, const ml_mk_member *m, size_t n, const char *next);
typedef int (*ml_sf_sink)(void *ud, const ml_sf_member *m, size_t n, const char *next);

typedef enum {
    ML_DONE = 0,  /* every page was handed to the sink */
    ML_STOPPED,   /* the sink stopped it */
    ML_FAILED,    /* a CRM call failed: err says how */
    ML_TOO_LARGE, /* Marketo refused the paged listing: too many members (internal: the
                     bulk extract is used then; member_lists_marketo never answers it) */
} ml_result;

typedef struct {
    crm_failure failure; /* CRM_RETRY: trying later may succeed */
    char message[700];   /* what failed, naming the program or campaign and the CRM's words */
} ml_error;

/* Lists the program's members from cursor ("": the start; a cursor of another side or a
 * malformed one is ML_FAILED, refused). */
ml_result member_lists_marketo(crm *c, const char *program_id, const char *cursor, ml_mk_sink sink,
                               void *ud, ml_error *err);

/* Lists the campaign's members from cursor, as above. */
ml_result member_lists_salesforce(crm *c, const char *campaign_id, const char *cursor,
                                  ml_sf_sink sink, void *ud, ml_error *err);

#endif
