/* poller — the periodic jobs of a worker process, run by one process at a time.
 *
 * Owns: the Salesforce deleted-records poll (every SF_DELETED_POLL_INTERVAL_S, the window
 * since the last poll, its start kept in Redis so a restart misses nothing; each deleted
 * CampaignMember the service knows becomes a removal event in the normal queue), and the
 * copy of each enabled mapping's program channel and costs to the campaign's Type and
 * ActualCost (F2/F3: at once for new or enabled mappings, then every
 * PROGRAM_POLL_INTERVAL_S, written only when changed, deferred while member changes wait),
 * and the schedule of reconciliations: a reconciliation job (jobs.h) of every enabled mapping
 * every RECONCILE_INTERVAL_S, and at once when the deleted-records poll finds a gap
 * (cs:kv:reconcile-due).
 * A Redis lock per job makes one process run it per interval whatever the number of
 * processes. */
#ifndef CS_POLLER_H
#define CS_POLLER_H

#include "config.h"

#include <stddef.h>

typedef struct poller poller;

poller *poller_start(const struct config *cfg, char *err, size_t errlen);
void poller_stop(poller *p);

#endif
