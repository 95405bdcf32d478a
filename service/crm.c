/* crm — per-thread CRM clients sharing the Marketo budget. See include/crm.h. */
#include "crm.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

crm *crm_new(const struct config *cfg, store *st, const char *holder) {
    crm *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->st = st;
    c->sf = sf_client_new(cfg);
    c->mk = mkto_client_new(cfg);
    if (!c->sf || !c->mk) {
        crm_free(c);
        return NULL;
    }
    c->budget = (store_mkto_budget){.st = st,
                                    .calls_per_20s = cfg->marketo_calls_per_20s,
                                    .max_concurrent = cfg->marketo_max_concurrent};
    snprintf(c->budget.holder, sizeof c->budget.holder, "%s", holder);
    mkto_client_set_limiter(c->mk, store_mkto_budget_acquire, store_mkto_budget_release,
                            &c->budget);
    quota_gate_init(&c->sf_quota, st, "salesforce", c->sf, holder);
    quota_gate_init(&c->mk_quota, st, "marketo", NULL, holder);
    sf_client_set_gate(c->sf, quota_gate_check, quota_salesforce_spent, &c->sf_quota);
    mkto_client_set_quota(c->mk, quota_gate_check, quota_marketo_spent, &c->mk_quota);
    return c;
}

void crm_free(crm *c) {
    if (!c) return;
    sf_client_free(c->sf);
    mkto_client_free(c->mk);
    free(c);
}

bool crm_configured(const struct config *cfg, char *missing, size_t len) {
    const struct {
        const char *name;
        const char *value;
    } need[] = {{"SF_LOGIN_URL", cfg->sf_login_url},
                {"SF_CLIENT_ID", cfg->sf_client_id},
                {"SF_CLIENT_SECRET", cfg->sf_client_secret},
                {"MARKETO_BASE_URL", cfg->marketo_base_url},
                {"MARKETO_CLIENT_ID", cfg->marketo_client_id},
                {"MARKETO_CLIENT_SECRET", cfg->marketo_client_secret}};
    missing[0] = '\0';
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        if (need[i].value) continue;
        size_t n = strlen(missing);
        snprintf(missing + n, len - n, "%s%s", n ? ", " : "", need[i].name);
    }
    return missing[0] == '\0';
}

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static crm *registry[256];
static int nregistry;
static _Thread_local crm *mine;

crm *crm_thread(const struct config *cfg) {
    if (mine) return mine;
    store *st = store_thread();
    if (!st) return NULL;
    char holder[96], host[64] = "host";
    gethostname(host, sizeof host - 1);
    pthread_mutex_lock(&reg_lock);
    snprintf(holder, sizeof holder, "%s-%d-admin%d", host, (int)getpid(), nregistry);
    crm *c = nregistry < 256 ? crm_new(cfg, st, holder) : NULL;
    if (c) registry[nregistry++] = c;
    pthread_mutex_unlock(&reg_lock);
    mine = c;
    return c;
}

void crm_thread_cleanup(void) {
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < nregistry; i++)
        crm_free(registry[i]);
    nregistry = 0;
    pthread_mutex_unlock(&reg_lock);
    mine = NULL;
}
