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

#include "crm_types.h"
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

/* DROP_BACKWARD: Marketo kept a higher status (plan_backward), not a drop of plan_event's. */
typedef enum {
    DROP_NONE = 0,
    DROP_DUPLICATE,
    DROP_ECHO,
    DROP_STALE,
    DROP_UNMAPPED,
    DROP_BACKWARD
} drop_reason;

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

/* ---------------------------------------------------------------- a worker's turn
 * The decisions a worker takes while it applies a planned event: what a CRM's answer means
 * for the event, who a person is, when to wait, what to record. */

/* Where one event stands in a worker's turn, and what the worker does with it at the end. */
typedef enum {
    IT_PENDING = 0, /* going on: the next step acts on it (acknowledged when nothing is left) */
    IT_DONE,        /* applied: recorded, audited, acknowledged */
    IT_DROP,        /* nothing to do: acknowledged */
    IT_RETRY,       /* failed, may work later: retried after plan_backoff_ms, or dead-lettered
                       once plan_retry says so */
    IT_DEAD,        /* failed for good: dead-lettered with its reason */
    IT_DEFER,       /* waits a moment (a busy member, a write of ours still landing, a budget
                       permit): no attempt spent */
    IT_PARKED,      /* its mapping is disabled: parked until it is enabled */
    IT_QUOTA,       /* the target CRM's daily allowance is spent: parked until it has room, no
                       attempt spent (quota.h) */
} it_state;

/* What a failed CRM call means for the events it was for. */
it_state plan_after_failure(crm_failure f);

/* Which Salesforce write a record's result answers. */
typedef enum {
    PLAN_SF_CREATE_MEMBER,
    PLAN_SF_UPDATE_MEMBER,
    PLAN_SF_DELETE_MEMBER,
    PLAN_SF_CREATE_LEAD
} plan_sf_write;

/* What one record's result (f: its failure, for SF_REC_FAILED) means for its event:
 * IT_PENDING when the write is done (a member already gone is removed; a duplicate rule's
 * person is the person), IT_DEFER for a member someone else created meanwhile (looked up and
 * updated next round), else plan_after_failure or IT_DEAD. */
it_state plan_after_sf_record(sf_record_outcome o, crm_failure f, plan_sf_write w);

/* What one lead's result of a Marketo status change or removal means (creating: of a lead's
 * creation, where every refusal is permanent). MK_REC_AT_OR_PAST is IT_PENDING:
 * plan_skip_needs_read then says whether Marketo's status must be read. */
it_state plan_after_mk_record(mk_record_outcome o, crm_failure f, bool creating);

/* A status change Marketo skipped (1037: at that status or past it) is a success when the
 * record already shows that status; otherwise Marketo's current status must be read. */
bool plan_skip_needs_read(const member_state *st, const plan_result *p);

/* Marketo keeps progression one-way: after a skip, a lead whose status is not the one wanted
 * (now: its status as read; NULL: not a member) was a backward move, not applied there. */
bool plan_backward(const char *now, const char *wanted);

/* What a worker learned while applying an event: who the people are, the CampaignMember,
 * whether Marketo kept a higher status and which. */
typedef struct {
    const char *sf_person; /* "" when not known */
    const char *cm_id;     /* the CampaignMember written ("" when removed) */
    const char *mkto_lead; /* "" when not known */
    bool backward;         /* Marketo skipped the status as a backward move */
    const char *mkto_now;  /* Marketo's status as read after its skip ("" when not read) */
} plan_applied;

/* The member state to record once every write of an applied plan succeeded, at now: the
 * plan's next state with the people learned, the sides' write times (plan.h rule 4b), and
 * after a backward move Marketo's own status (as read; else the recorded one). */
void plan_record_applied(const plan_result *p, const member_state *st, const plan_applied *a,
                         int64_t now, member_state *out);

/* A write of ours to the event's own side may still be landing (its pending mark lies ahead):
 * the event is put back there only once it has, or the late write would win. Returns when to
 * try again (epoch ms), or 0 to go on now. */
#define PLAN_DEFER_MS 20 /* a waiting event is tried again this soon after the mark */
int64_t plan_wait_for_own_write(const event *ev, const member_state *st, const plan_result *p,
                                int64_t now);

/* Which lead, of leads[0..n) looked up by email, is the person with that email (sf_person:
 * the Salesforce person the event is about): several leads may share an email in Marketo. One
 * that Marketo's own sync links to sf_person (its sfdcContactId or sfdcLeadId) is the person
 * (ids before email, issue 21); one linked to another Salesforce person is someone else; among
 * the rest the oldest (lowest id); when all are linked elsewhere, the oldest of all. Its index,
 * or -1 when none has the email. *sure: the pick is linked to sf_person or to nobody; when
 * not (none, or linked elsewhere) the leads Marketo's sync links to sf_person are looked up
 * by their sfdc ids too (plan_pick_lead_by_sfdc) and win. So the common case costs one call,
 * and a lead linked to the person by id is found first whenever it shares the email. */
int plan_pick_lead_by_email(const mk_lead *leads, size_t n, const char *email,
                            const char *sf_person, bool *sure);

/* Which lead of leads[0..n) carries the Salesforce id sf_id (its sfdcContactId when contact,
 * else its sfdcLeadId): the oldest of several. Its index, or -1. */
int plan_pick_lead_by_sfdc(const mk_lead *leads, size_t n, bool contact, const char *sf_id);

/* The Lead to create for the person of ev. FirstName may stay empty; LastName and Company may
 * not (Object Reference for the Salesforce Platform, "Lead": both Required, neither
 * Nillable), so the configured placeholders fill them when Marketo has no value. Points into
 * ev and the placeholders. */
sf_new_lead plan_new_lead(const event *ev, const char *placeholder_last_name,
                          const char *placeholder_company);

/* A removal of someone the other CRM never had (no person found there) has nothing to
 * remove: that side needs no write. */
bool plan_nothing_to_remove(bool wants_member, bool person_found);

/* Whether to read the Marketo leads of a batch toward Salesforce before matching people: when
 * some addition has no email (needed: it cannot be matched otherwise), or, as a refinement (ids
 * before email, issue 21), when Marketo's budget is not wanted by changes toward Marketo
 * (marketo_busy: they flow now). Under a burst in both directions the refinement cost one
 * Marketo call per small batch toward Salesforce and delayed the writes toward Marketo
 * (RELIABILITY.md, chaos): those people are then matched by email, as before issue 21. */
bool plan_read_sfdc_ids(bool needed, bool marketo_busy);

/* After a failed attempt number `attempts` (1-based): IT_RETRY while attempts remain, IT_DEAD
 * once max_attempts are spent (MAX_ATTEMPTS). */
it_state plan_retry(int attempts, int max_attempts);

/* Backoff before retry number `attempt` (1-based): base * 2^(attempt-1), capped, with jitter in
 * [50%, 100%]; never shorter than retry_after_ms when that is >= 0. r is a random number. */
long plan_backoff_ms(int attempt, long base_ms, long max_ms, long retry_after_ms, unsigned r);

/* Whether a campaign has a member status, from its labels as read at read_ms (complete: all of
 * them): known only while fresh (PLAN_STATUSES_FRESH_MS) and, for an absence, complete. */
#define PLAN_STATUSES_FRESH_MS (5 * 60 * 1000)
typedef enum {
    PLAN_STATUS_UNKNOWN = -1,
    PLAN_STATUS_ABSENT = 0,
    PLAN_STATUS_PRESENT = 1
} plan_status;
plan_status plan_campaign_has_status(const char *const *labels, size_t n, bool complete,
                                     int64_t read_ms, int64_t now, const char *status);

/* Whether an applied plan writes a Status to Salesforce (a create, or an update of a member
 * whose Status differs): such writes wait until the campaign is known to have it (F11:
 * Salesforce may store its default status in place of an unknown one instead of refusing it;
 * reference salesforce-api.md section 5). */
bool plan_writes_sf_status(const plan_result *p, bool member_exists, const char *member_status);

/* The Marketo status of a lead as read: NOT_IN_PROGRAM when it is no member. */
const char *plan_marketo_status(const char *read);

#endif
