/* crm — the CRM clients one thread uses, wired to the Marketo call budget in Redis.
 *
 * Owns the pairing of a Salesforce client, a Marketo client and the store handle whose
 * shared budget paces the Marketo client, so that admin requests, checks and
 * reconciliation stay within MARKETO_CALLS_PER_20S together with the workers. Also says
 * which credentials are missing when a process was started without them. */
#ifndef CS_CRM_H
#define CS_CRM_H

#include "config.h"
#include "marketo.h"
#include "quota.h"
#include "salesforce.h"
#include "store_budget.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct crm {
    sf_client *sf;
    mkto_client *mk;
    store *st;
    store_mkto_budget budget;
    quota_gate sf_quota, mk_quota; /* pauses while a daily allowance is spent */
} crm;

/* Creates the clients; st is borrowed (not freed by crm_free). NULL when out of memory. */
crm *crm_new(const struct config *cfg, store *st, const char *holder);
void crm_free(crm *c);

/* False, with the missing variable names listed in missing, when the process has no CRM
 * credentials (e.g. an `ingest` started without them). */
bool crm_configured(const struct config *cfg, char *missing, size_t len);

/* The calling thread's clients (created on first use with store_thread()); freed by
 * crm_thread_cleanup after every thread using them stopped. */
crm *crm_thread(const struct config *cfg);
void crm_thread_cleanup(void);

#endif
