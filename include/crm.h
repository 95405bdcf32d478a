/* crm — the CRM clients one thread uses, wired to the Marketo call budget in Redis.
 *
 * Owns the pairing of a Salesforce client, a Marketo client and the store handle whose
 * shared budget paces the Marketo client, so that admin requests, checks and
 * reconciliation stay within MARKETO_CALLS_PER_20S together with the workers; the daily
 * allowance gates (quota.h) of both clients; and a pool that gives each HTTP thread its own
 * clients, on that thread's handle of the store_pool main passes it. Also says which credentials
 * are missing when a process was started without them. The handle is opaque: callers reach the
 * clients through crm_salesforce / crm_marketo. */
#ifndef CS_CRM_H
#define CS_CRM_H

#include "config.h"
#include "marketo.h"
#include "salesforce.h"
#include "store_budget.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct crm crm;

/* Creates the clients; st is borrowed (not freed by crm_free), and so is usage (where the
 * Salesforce client reports the org's API usage; NULL: nowhere). holder names this thread's
 * budget permits and quota probes. NULL when out of memory; crm_free accepts NULL. */
crm *crm_new(const struct config *cfg, store *st, const char *holder, sf_usage *usage);
void crm_free(crm *c);

/* The clients (owned by c). */
sf_client *crm_salesforce(crm *c);
mkto_client *crm_marketo(crm *c);

/* How long a Marketo call waits for a budget permit before it answers MK_BUSY (0: as long as
 * it takes), and the flag that ends any wait (NULL: none; borrowed). */
void crm_set_budget_wait(crm *c, long max_wait_ms, const atomic_bool *stop);
long crm_budget_wait(const crm *c);

/* Makes the following Marketo calls a job's (share > 0: its listings, or a batch of its
 * corrections), within that share of the budget (store_mkto_acquire), or live ones again
 * (share 0). */
void crm_set_budget_share(crm *c, double share);

/* Whether the CRM's daily allowance is spent now (quota.h): calls to it would not be made. */
bool crm_salesforce_spent(crm *c);
bool crm_marketo_spent(crm *c);

/* False, with the missing variable names listed in missing, when the process has no CRM
 * credentials (e.g. an `ingest` started without them). */
bool crm_configured(const struct config *cfg, char *missing, size_t len);

/* One crm per thread that asks, created on first use with that thread's handle of stores
 * (store_pool_get): the HTTP server's threads. cfg and stores are borrowed and must outlive
 * the pool; NULL when out of memory or out of thread keys. crm_pool_free frees every
 * thread's clients; call it after every thread using them stopped (accepts NULL). */
typedef struct crm_pool crm_pool;
crm_pool *crm_pool_new(const struct config *cfg, store_pool *stores);
void crm_pool_free(crm_pool *p);
/* The calling thread's clients; NULL when out of memory or the pool is full. */
crm *crm_pool_get(crm_pool *p);
const struct config *crm_pool_config(const crm_pool *p);

/* The configuration the clients were made with (borrowed). */
const struct config *crm_config(const crm *c);

/* Whether the stop flag given to crm_set_budget_wait is set: a long wait (a bulk export's)
 * ends then. */
bool crm_stopping(const crm *c);

#endif
