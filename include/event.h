/* event — the one change event, from either CRM, as it travels through the queue.
 *
 * Owns `struct event`, its JSON form in the Redis stream, and the timestamp parsing both
 * parsers share. An event says: this person's membership of this program (Marketo side) or
 * campaign (Salesforce side) changed to `status`, or ended (`event_is_removal`), at
 * `source_ts_ms` by the source's own clock. Every text field is a fixed, bounded buffer
 * (empty string = absent), so an event needs no freeing beyond its own storage and parsers
 * can reject over-long input by name. */
#ifndef CS_EVENT_H
#define CS_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { SRC_SALESFORCE = 0, SRC_MARKETO = 1 } event_source;

typedef enum {
    EV_MEMBER_STATUS_CHANGED = 0, /* Marketo "member_status_changed" (Not in Program = removal) */
    EV_MEMBER_REMOVED,            /* Marketo "member_removed" */
    EV_ADD_TO_CAMPAIGN,           /* Marketo flow action "add_to_campaign" (F7) */
    EV_CHANGE_CAMPAIGN_STATUS,    /* Marketo flow action "change_campaign_status" (F7) */
    EV_REMOVE_FROM_CAMPAIGN,      /* Marketo flow action "remove_from_campaign" (F7) */
    EV_SF_MEMBER_CHANGED,         /* Salesforce Outbound Message on CampaignMember */
    EV_SF_MEMBER_DELETED,         /* Salesforce deleted-records poll */
    EV_TYPE_COUNT
} event_type;

#define EV_ID_MAX     96  /* notification id, Marketo eventId or derived key */
#define EV_SFID_MAX   19  /* 18-character Salesforce id + NUL */
#define EV_NUMID_MAX  24  /* Marketo numeric ids as text */
#define EV_TEXT_MAX   256 /* email, company, status */
#define EV_NAME_MAX   128 /* first and last name */
#define EV_STATUS_MAX 128 /* program or campaign member status label */
#define EV_JOB_MAX    40  /* a job id (jobs.h) */

typedef struct event {
    event_source source;
    event_type type;
    char id[EV_ID_MAX];
    char program_id[EV_NUMID_MAX];
    char campaign_id[EV_SFID_MAX];
    char member_id[EV_SFID_MAX]; /* CampaignMember id */
    char sf_lead_id[EV_SFID_MAX];
    char sf_contact_id[EV_SFID_MAX];
    char mkto_lead_id[EV_NUMID_MAX];
    char email[EV_TEXT_MAX];
    char first_name[EV_NAME_MAX];
    char last_name[EV_NAME_MAX];
    char company[EV_TEXT_MAX];
    char status[EV_STATUS_MAX]; /* empty: not given (read from the CRM when needed) */
    char modified_by[EV_SFID_MAX];
    int64_t source_ts_ms; /* the source's time of the change; 0 = unknown */
    int64_t received_ms;  /* when we received it */
    char job[EV_JOB_MAX]; /* a correction queued by a job (backfill, reconciliation): its id;
                             empty for a change a CRM reported. Such events wait in the
                             corrections' queues, below live changes (store_queue.h) */
} event;

const char *event_source_name(event_source s);
const char *event_type_name(event_type t);
/* -1 when unknown. */
int event_type_parse(const char *s);

/* True when the event ends a membership: member_removed, remove_from_campaign, a deletion,
 * or a Marketo status of "Not in Program". */
bool event_is_removal(const event *ev);

/* The timestamp the ordering rule uses: source_ts_ms, or received_ms when unknown. */
int64_t event_time(const event *ev);

/* JSON form for the queue; caller frees. NULL only when out of memory. */
char *event_to_json(const event *ev);

/* Parses the queue form; 0 on success, -1 with the reason in err. */
int event_from_json(const char *json, size_t len, event *out, char *err, size_t errlen);

/* True when s is a 15- or 18-character Salesforce id (letters and digits). */
bool event_valid_sfid(const char *s);

/* True when s is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF)
 * without control characters other than tab, CR and LF. */
bool event_text_ok(const char *s);

/* Copies src into a fixed field; false when it does not fit (the field is left empty). */
bool event_set(char *field, size_t size, const char *src);

/* Parses a timestamp into milliseconds since the epoch:
 *   ISO-8601 `2026-11-29T10:00:00[.fff](Z|+hh:mm|+hhmm)`,
 *   Marketo's asset form `2015-05-21T22:45:13Z+0000`,
 *   and, when no offset is given (`2026-11-29 10:00:00` or `2026-11-29T10:00:00`), local time
 *   in the process time zone (set to MARKETO_TIMEZONE at start-up).
 * Returns 0, or -1 when the text is not one of these forms or not a real date. */
int event_parse_time(const char *s, int64_t *ms);

/* Formats ms as `2026-11-29T10:00:00.000Z` into buf (at least 25 bytes). */
void event_format_time(int64_t ms, char *buf, size_t size);

int64_t event_now_ms(void);

#endif
