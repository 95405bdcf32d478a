/* reconcile — heals drift that no webhook reported (Outbound Messages dropped after 24 h,
 * Marketo webhooks never sent, changes made while sync was off elsewhere).
 *
 * Owns the comparison of one mapping's two member lists (the program's members, listed per
 * channel status; the campaign's members, by SOQL) with each other and with the recorded
 * state. For each person whose sides differ, the side that changed since the recorded state
 * wins; when both did (or nothing is recorded), the newer change by the CRMs' own
 * timestamps, and a membership present on one side wins over an absence with no time. The
 * correction is queued as an ordinary event, so the normal rules (newest wins, one-way
 * progression, echo suppression) apply to it. */
#ifndef CS_RECONCILE_H
#define CS_RECONCILE_H

#include "crm.h"
#include "member.h"
#include "status_map.h"
#include "store.h"

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

/* Runs one reconciliation. Returns the report as a JSON text {"programId","campaignId",
 * "compared","differences","queued","details":[{"email","marketo","salesforce","action"}]}
 * (caller frees), or NULL with err when a CRM or Redis could not be read. */
char *reconcile_mapping(crm *c, store *st, const mapping *m, char *err, size_t errlen);

#endif
