/* resync — one person re-read on both sides, and the corrections queued (POST
 * /v1/people/resync).
 *
 * Owns reading one person (by email) everywhere the service syncs: the Marketo leads with that
 * email (and their sfdcLeadId / sfdcContactId), the Salesforce Contacts and Leads with it, the
 * leads' memberships of every enabled mapping's program (one Marketo call per mapping) and the
 * people's CampaignMembers of every campaign (one SOQL query for Contacts, one for Leads).
 * For each enabled mapping where the two sides differ, reconcile_decide says which side wins
 * against the recorded state, and the same ordinary event a reconciliation would queue is
 * queued, so the normal rules (newest wins, one-way progression, echo suppression) apply. */
#ifndef CS_RESYNC_H
#define CS_RESYNC_H

#include "crm.h"
#include "store.h"

#include <stddef.h>

#define RESYNC_LEADS_MAX    20 /* Marketo leads (and Salesforce people) of one email considered */
#define RESYNC_MAPPINGS_MAX 1000

/* Re-reads the person with this email (any case). Returns the report as a JSON text
 * {"email","marketoLeadIds":[...],"salesforceIds":[...],"compared","differences","queued",
 * "details":[{"programId","campaignId","marketo","salesforce","action"}]} (caller frees);
 * NULL with err and *not_found set when neither CRM knows the email, or NULL with err (not
 * found false) when a CRM or Redis could not be read. */
char *resync_person(crm *c, store *st, const char *email, bool *not_found, char *err,
                    size_t errlen);

#endif
