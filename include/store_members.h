/* store_members — what the service recorded about members and people, in Redis.
 *
 * Owns the member records and the links between the two CRMs' people (campaign ids in keys
 * are their first 15 characters, so 15- and 18-character forms meet):
 *   cs:member:<campaignId>:<mktoLeadId>
 *                             recorded member state (hash, member.h's fields and a version
 *                             `ver` for compare-and-set)
 *   cs:members:<campaignId>   the campaign's members (zset, by when each was recorded)
 *   cs:cm:<campaignMemberId>  "<campaignId>:<mktoLeadId>" of the record holding that
 *                             CampaignMember (the deleted-records poll learns only its id)
 *   cs:link:mkto:<leadId>, cs:link:sf:<personId>
 *                             person links between the CRMs (7 days)
 *   cs:sfdel:<campaignMemberId>  CampaignMembers the service itself is deleting
 * Recording a member is one script (compare-and-set on its version, service/lua/). */
#ifndef CS_STORE_MEMBERS_H
#define CS_STORE_MEMBERS_H

#include "event.h"
#include "member.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The recorded state (out filled; out->known as the answer says). */
store_found store_member_get(store *s, const char *campaign_id, const char *mkto_lead,
                             member_state *out, char *err, size_t errlen);

typedef enum {
    STORE_MEMBER_ERROR = -1,
    STORE_MEMBER_MOVED_ON = 0, /* refused: another worker recorded in between (read and plan
                                  again) */
    STORE_MEMBER_RECORDED = 1,
} store_member_put_rc;
/* Records st if the record is still at st->version (as read by store_member_get; 0 when
 * there was none). The completed-write times only move forward; the pending marks equal to
 * sf_done / mkto_done (this batch's own marks, 0: none) are cleared. */
store_member_put_rc store_member_put(store *s, const char *campaign_id, const char *mkto_lead,
                                     const member_state *st, int64_t sf_done, int64_t mkto_done,
                                     char *err, size_t errlen);
/* store_member_get and store_member_put for many members in one round trip. get_many fills
 * out[i] (its `known` says whether a record exists); 0 or -1 with err. put_many sets rc[i]
 * to what store_member_put answers (a store_member_put_rc), and returns -1 (err) only when
 * Redis could not be asked. */
int store_member_get_many(store *s, size_t n, const char *const *campaigns,
                          const char *const *leads, member_state *out, char *err, size_t errlen);
typedef struct {
    const char *campaign, *lead;
    const member_state *st;
    int64_t sf_done, mkto_done;
} store_member_write;
int store_member_put_many(store *s, size_t n, const store_member_write *w, int *rc, char *err,
                          size_t errlen);

/* Marks, before a CRM write, that the members (campaign id, Marketo lead pairs) have a
 * write pending on one side ("sf_pending" or "mkto_pending") that may land until ms: a
 * worker that dies between its write and recording it still leaves that trace (plan.h,
 * rule 4b). store_member_put clears a mark once the write completed. */
int store_mark_written(store *s, const char *const *campaigns, const char *const *leads, size_t n,
                       const char *field, int64_t ms, char *err, size_t errlen);

/* Members of a campaign, most recently changed first, after cursor ("" = start). */
long store_member_list(store *s, const char *campaign_id, const char *cursor, long limit,
                       member_state *out, char *next, size_t nextlen, char *err, size_t errlen);

/* Person links (a Marketo lead and its Salesforce Contact or Lead, both ways, 7 days).
 * sf_person/mkto_lead out buffers of EV_SFID_MAX / EV_NUMID_MAX. */
store_found store_link_by_mkto(store *s, const char *mkto_lead, char *sf_person, char *err,
                               size_t errlen);
store_found store_link_by_sf(store *s, const char *sf_person, char *mkto_lead, char *err,
                             size_t errlen);
/* The same for many, in one round trip: mkto_leads[i] is "" where no link is known;
 * store_link_put_many records the pairs (mkto_leads[i], sf_persons[i]). 0 or -1. */
int store_link_by_sf_many(store *s, size_t n, const char *const *sf_persons,
                          char (*mkto_leads)[EV_NUMID_MAX], char *err, size_t errlen);
int store_link_put_many(store *s, size_t n, const char *const *mkto_leads,
                        const char *const *sf_persons, char *err, size_t errlen);

/* CampaignMember id → (campaign, Marketo lead) of its recorded state, for the deleted-records
 * poll. */
store_found store_cm_lookup(store *s, const char *cm_id, char *campaign, size_t clen, char *lead,
                            size_t llen, char *err, size_t errlen);

/* ---- our own CampaignMember deletions ---- */

/* Records that the service is deleting these CampaignMembers (cs:sfdel:<id>, ttl_s), before
 * the delete call, so that the deleted-records poll takes them for echoes. 0 or -1. */
int store_sf_deleted_mark(store *s, const char *const *cm_ids, size_t n, long ttl_s, char *err,
                          size_t errlen);
/* STORE_FOUND when the service deleted cm_id (within the marks' ttl). */
store_found store_sf_deleted_ours(store *s, const char *cm_id, char *err, size_t errlen);

#endif
