/* plan — what one event means for both CRMs, given its mapping and the member's recorded
 * state. The sync rules of SPEC section 8 live here and nowhere else.
 *
 * Pure: no I/O, no clock. For one event it decides to apply (and the member state wanted on
 * each side), to drop it (duplicate, echo of our own write, stale, unmapped), to park it
 * (its mapping is disabled), to dead-letter it (a status with no counterpart: never
 * guessed), or that a status must be read from a CRM first. Rules, in order:
 *   1. a Salesforce change by SF_INTEGRATION_USER_ID is our own write: echo (except for
 *      the round trip's marked test person, see plan_roundtrip_person);
 *   2. program events need the program's mapping, Salesforce events the campaign's (else
 *      unmapped); F7 flow actions need none, and also reach the program when the campaign
 *      is mapped; a disabled mapping parks the event;
 *   3. an event older than the recorded state is stale (newest source time wins per
 *      member), before any status is read or translated; so is the deletion of a
 *      CampaignMember other than the one recorded (a newer membership replaced it);
 *   4. a missing status is read first (NEED_STATUS); statuses translate through the
 *      mapping; no counterpart → dead letter;
 *   4b. an event from a side we wrote (or may have written: a pending write) *after* the
 *      event's time (an older change from the other side landed there later) re-asserts the
 *      event's state on its own side too, so the newest change wins in both CRMs;
 *   5. when the wanted state equals the recorded one on every side that would be written,
 *      nothing is applied: an echo when the state was last written from the other side, a
 *      duplicate otherwise. Such a drop still has `record` set: the event's own side and its
 *      newer time are recorded in `next`, so that later-delivered older events stay stale. */
#ifndef CS_PLAN_H
#define CS_PLAN_H

#include "event.h"
#include "member.h"
#include "status_map.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    PLAN_APPLY,
    PLAN_DROP,
    PLAN_PARK,        /* the mapping is disabled: keep the event until it is enabled */
    PLAN_DEAD,        /* permanent: message says why */
    PLAN_NEED_STATUS, /* read the status first (need_from says where), then plan again */
} plan_kind;

typedef enum { DROP_NONE = 0, DROP_DUPLICATE, DROP_ECHO, DROP_STALE, DROP_UNMAPPED } drop_reason;

typedef struct {
    plan_kind kind;
    drop_reason reason;
    event_source need_from; /* PLAN_NEED_STATUS: Marketo member status or Salesforce
                               campaign default */
    char message[512];      /* PLAN_DEAD */
    char program_id[EV_NUMID_MAX];
    char campaign_id[EV_SFID_MAX];
    /* PLAN_APPLY: wanted state per side; to_* false when that side needs no write. */
    bool to_sf, sf_member;
    char sf_status[STATUS_LABEL_MAX];
    bool to_mkto, mkto_member;
    char mkto_status[STATUS_LABEL_MAX];
    /* The member state to record once every write succeeded (PLAN_APPLY), or at once when
     * `record` is set on a drop. */
    member_state next;
    bool record;
} plan_result;

/* m: the mapping found for the event (by program for Marketo program events, by campaign for
 * Salesforce events and F7 actions), or NULL. st: recorded state, or NULL/unknown. */
void plan_event(const event *ev, const mapping *m, const member_state *st,
                const char *integration_user_id, plan_result *out);

const char *plan_drop_reason_name(drop_reason r);

/* Rule 3 for what Salesforce holds now: true when the member was saved after the event
 * (modified_ms, modified_by: its LastModifiedDate and LastModifiedById as read before a
 * write) by someone else, a save whose Outbound Message has not arrived yet. Writing the
 * event would overwrite that newer change, and Salesforce would then send only the latest
 * data (our write: an echo), losing it on both sides; judged as its message will be (newest
 * save wins, whatever it changed), the event is stale. Without an integration user id, a
 * save up to our last recorded or pending write (st) may be ours. */
bool plan_superseded_by_salesforce(const event *ev, const member_state *st, int64_t modified_ms,
                                   const char *modified_by, const char *integration_user_id);

/* The marked test person of `campaign-sync check --roundtrip`: an email
 * campaign-sync-roundtrip+<digits>@example.com (any case). example.com is reserved for
 * examples (RFC 2606), so no real person has it. The round trip changes this person's
 * campaign member in Salesforce with the service's own credentials, so who saved it cannot
 * tell the tool's change from the service's write: for this person alone plan_event and
 * plan_superseded_by_salesforce act as if SF_INTEGRATION_USER_ID were unset, and the echo of
 * our own write is still dropped by the state comparison (rule 5) and the write times. */
#define PLAN_ROUNDTRIP_PREFIX "campaign-sync-roundtrip+"
#define PLAN_ROUNDTRIP_DOMAIN "@example.com"
bool plan_roundtrip_person(const char *email);

#endif
