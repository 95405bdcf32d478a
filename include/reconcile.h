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
#include "status_map.h"
#include "store.h"

#include <stddef.h>

/* Runs one reconciliation. Returns the report as a JSON text {"programId","campaignId",
 * "compared","differences","queued","details":[{"email","marketo","salesforce","action"}]}
 * (caller frees), or NULL with err when a CRM or Redis could not be read. */
char *reconcile_mapping(crm *c, store *st, const mapping *m, char *err, size_t errlen);

#endif
