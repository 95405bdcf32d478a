/* reconcile — heals drift that no webhook reported (Outbound Messages dropped after 24 h,
 * Marketo webhooks never sent, changes made while sync was off elsewhere), and merges two
 * member lists when a program is linked to a campaign.
 *
 * Owns the decision for one person whose two sides in one mapping were read (by a job,
 * jobs.h, from the two member lists; by a resync, resync.h, from one person's records),
 * against the recorded state: the side that changed since the recorded state wins; when both
 * did (or nothing is recorded: a backfill), the newer change by the CRMs' own timestamps, and
 * a membership present on one side wins over an absence with no time. The correction is an
 * ordinary event, so the normal rules (newest wins, one-way progression, echo suppression,
 * F6 person creation, F11 dead letters) apply to it. Pure. */
#ifndef CS_RECONCILE_H
#define CS_RECONCILE_H

#include "event.h"
#include "member.h"
#include "status_map.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One person as both sides show them in one mapping: the Marketo lead's membership of the
 * program and the Salesforce person's of the campaign, each with the CRM's own time of its
 * last change (0: unknown). */
typedef struct {
    char email[EV_TEXT_MAX]; /* lower case */
    char first[EV_NAME_MAX], last[EV_NAME_MAX], company[EV_TEXT_MAX];
    bool in_mk;
    char lead[EV_NUMID_MAX];
    char mk_status[STATUS_LABEL_MAX];
    int64_t mk_ts;
    bool in_sf;
    char cm_id[EV_SFID_MAX], sf_person[EV_SFID_MAX];
    char sf_status[STATUS_LABEL_MAX];
    int64_t sf_ts;
} reconcile_person;

/* The kind of difference between p's two sides in m ("missing_in_salesforce",
 * "missing_in_marketo", "status_differs"), or NULL when they agree. */
const char *reconcile_difference(const mapping *m, const reconcile_person *p);

/* For sides that differ: which one wins against the recorded state rec (the side that changed
 * since; when both did, the newer change), as a sentence in action. Returns true with *ev the
 * ordinary event that re-states the winning side (to queue), false when nothing is to be
 * queued (neither side changed since recorded, or the winner cannot be stated). */
bool reconcile_decide(const mapping *m, const reconcile_person *p, const member_state *rec,
                      int64_t now, event *ev, char *action, size_t alen);

#endif
