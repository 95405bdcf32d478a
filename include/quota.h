/* quota — the CRMs' daily API allowances, shared by every process through Redis.
 *
 * Owns what happens when an allowance is spent: Marketo's daily quota (607) or Salesforce's
 * rolling 24-hour API allowance (REQUEST_LIMIT_EXCEEDED). Neither is a failure of the change
 * being written, so nothing is retried against it or dead-lettered: the CRM client that met
 * it pauses every call to that CRM in every process (store_quota_*), its gate refuses calls
 * (SF_BUSY / MK_BUSY: callers put the change aside without spending an attempt) until
 * Marketo's quota resets at midnight US Central time, or until a probe of Salesforce's
 * `limits` finds room again (every few minutes, one process at a time). The wait shows in
 * /readyz (a named check that never fails readiness) and in the gauge
 * campaign_sync_crm_quota_waiting{target}. */
#ifndef CS_QUOTA_H
#define CS_QUOTA_H

#include "salesforce.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

/* One CRM client's gate (opaque). */
typedef struct quota_gate quota_gate;

/* A gate for one CRM client: crm "salesforce" (sf: the client whose `limits` probe decides)
 * or "marketo" (sf NULL); holder: a name unique to the thread. st and sf are borrowed. NULL
 * when out of memory; quota_gate_free accepts NULL. */
quota_gate *quota_gate_new(store *st, const char *crm, sf_client *sf, const char *holder);
void quota_gate_free(quota_gate *g);

/* The clients' hooks (ud: the quota_gate): sf_gate_fn / mk_gate_fn, sf_spent_fn,
 * mk_quota_fn. */
long quota_gate_check(void *ud);
void quota_salesforce_spent(void *ud);
void quota_marketo_spent(void *ud, int64_t reset_ms);

/* /readyz checks (routes_health_add_check, never required; ud unused): 0 when calls go,
 * -1 with the wait described in detail. */
int quota_ready_salesforce(void *ud, store *st, char *detail, size_t len);
int quota_ready_marketo(void *ud, store *st, char *detail, size_t len);

/* Refreshes campaign_sync_crm_quota_waiting from Redis before each /metrics render, on the
 * rendering thread's handle of stores (borrowed; it must outlive the collector: stop with
 * the same pool before freeing it). 0, or -1 when metrics has no room for the collector. */
int quota_metrics_start(store_pool *stores);
void quota_metrics_stop(store_pool *stores);

#endif
