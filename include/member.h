/* member — what the service last recorded about one person's membership in one mapped pair.
 *
 * Owns `struct member_state`: the state of a member on each side (member or not, status,
 * CampaignMember and person ids, the Marketo lead), the newest source time recorded, when the
 * service's own writes to each side completed or may still land, and the record's version.
 * plan reads it to decide (plan.h); store_members keeps it in Redis (store_members.h). Plain
 * data: fixed buffers, nothing to free. */
#ifndef CS_MEMBER_H
#define CS_MEMBER_H

#include "event.h"
#include "status_map.h"

#include <stdbool.h>
#include <stdint.h>

/* What the service last recorded about one person's membership in one mapped pair (or one
 * campaign for unmapped F7 actions). */
typedef struct member_state {
    bool known;
    bool sf_member;
    char sf_status[STATUS_LABEL_MAX];
    char cm_id[EV_SFID_MAX];     /* CampaignMember id */
    char sf_person[EV_SFID_MAX]; /* Lead or Contact id */
    bool mkto_member;
    char mkto_status[STATUS_LABEL_MAX];
    char mkto_lead[EV_NUMID_MAX];
    char email[EV_TEXT_MAX];
    int64_t ts;              /* newest source time recorded (ms) */
    int64_t updated_ms;      /* when we recorded it */
    int64_t sf_written_ms;   /* when our last write to the Salesforce side completed */
    int64_t mkto_written_ms; /* when our last write to the Marketo side completed */
    int64_t sf_pending_ms;   /* latest time a write of ours whose outcome is unknown (in
                                flight, timed out, worker died) may land; 0: none */
    int64_t mkto_pending_ms;
    int64_t version;  /* the record's version when read (compare-and-set) */
    event_source src; /* side whose change was recorded last */
} member_state;

#endif
