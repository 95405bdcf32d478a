/* ml_salesforce_bulk — a campaign's members listed through a Bulk API 2.0 query job, for
 * member_lists_salesforce (member_lists.h), which chooses it for large campaigns.
 *
 * Hands the sink pages of at most ML_PAGE_MAX members, each with a cursor "sb1:" naming the
 * job, the locator of the results page being read and the rows of that page handed so far
 * (list_cursor.h). Resumed from such a cursor it reads that results page again by its locator
 * and skips the rows already handed: no new job. A job (or its results) gone by then (deleted,
 * past its 7-day lifespan) is started over with a new job: members handed twice are harmless,
 * the sink keys them by email. The sink is called while a results page is being read: it must
 * not make Salesforce calls through the same crm (the jobs' sinks use only the store). */
#ifndef CS_ML_SALESFORCE_BULK_H
#define CS_ML_SALESFORCE_BULK_H

#include "member_lists.h"

#include <stdbool.h>

/* Lists the campaign's members from `from` (LC_START: a new job; LC_SALESFORCE_BULK: that
 * job's page). When Salesforce refuses a new job because a daily Bulk API 2.0 allocation is
 * spent, *no_allocation is set (ML_FAILED, err says so): the caller lists by SOQL instead. */
ml_result ml_salesforce_bulk(crm *c, const char *campaign_id, const list_cursor *from,
                             ml_sf_sink sink, void *ud, bool *no_allocation, ml_error *err);

#endif
