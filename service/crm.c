/* crm — per-thread CRM clients sharing the Marketo budget. See include/crm.h. */
#include "crm.h"

#include "quota.h"
#include "per_thread.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct crm {
    sf_client *sf;
    mkto_client *mk;
    store *st;
    store_mkto_budget *budget;
    quota_gate *sf_quota, *mk_quota; /* pause calls while a daily allowance is spent */
    const struct config *cfg;
};

crm *crm_new(const struct config *cfg, store *st, const char *holder, sf_usage *usage) {
    crm *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->st = st;
    c->cfg = cfg;
    c->sf = sf_client_new(cfg, usage);
    c->mk = mkto_client_new(cfg);
    c->sf_quota = c->sf ? quota_gate_new(st, "salesforce", c->sf, holder) : NULL;
    c->mk_quota = quota_gate_new(st, "marketo", NULL, holder);
    c->budget =
        store_mkto_budget_new(st, cfg->marketo_calls_per_20s, cfg->marketo_max_concurrent, holder);
    if (!c->sf || !c->mk || !c->sf_quota || !c->mk_quota || !c->budget) {
        crm_free(c);
        return NULL;
    }
    mkto_client_set_limiter(c->mk, store_mkto_budget_acquire, store_mkto_budget_release, c->budget);
    sf_client_set_gate(c->sf, quota_gate_check, quota_salesforce_spent, c->sf_quota);
    mkto_client_set_quota(c->mk, quota_gate_check, quota_marketo_spent, c->mk_quota);
    return c;
}

void crm_free(crm *c) {
    if (!c) return;
    sf_client_free(c->sf);
    mkto_client_free(c->mk);
    quota_gate_free(c->sf_quota);
    quota_gate_free(c->mk_quota);
    store_mkto_budget_free(c->budget);
    free(c);
}

sf_client *crm_salesforce(crm *c) {
    return c->sf;
}

mkto_client *crm_marketo(crm *c) {
    return c->mk;
}

void crm_set_budget_wait(crm *c, long max_wait_ms, const atomic_bool *stop) {
    store_mkto_budget_set_wait(c->budget, max_wait_ms, stop);
}

long crm_budget_wait(const crm *c) {
    return store_mkto_budget_wait(c->budget);
}

void crm_set_budget_share(crm *c, double share) {
    store_mkto_budget_set_share(c->budget, share);
}

bool crm_salesforce_spent(crm *c) {
    return quota_gate_check(c->sf_quota) != 0;
}

bool crm_marketo_spent(crm *c) {
    return quota_gate_check(c->mk_quota) != 0;
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

/* ---------------------------------------------------------------- the per-thread pool */

#define POOL_MAX 256 /* threads of one process that ask for clients */

struct crm_pool {
    const struct config *cfg;
    store_pool *stores; /* borrowed: each thread's clients use its handle */
    pthread_mutex_t lock;
    pthread_key_t mine; /* the calling thread's crm */
    crm *all[POOL_MAX];
    int n;
};

crm_pool *crm_pool_new(const struct config *cfg, store_pool *stores) {
    crm_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->cfg = cfg;
    p->stores = stores;
    if (per_thread_init(&p->mine, &p->lock) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

void crm_pool_free(crm_pool *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++)
        crm_free(p->all[i]);
    per_thread_cleanup(p->mine, &p->lock);
    free(p);
}

const struct config *crm_pool_config(const crm_pool *p) {
    return p->cfg;
}

crm *crm_pool_get(crm_pool *p) {
    crm *c = pthread_getspecific(p->mine);
    if (c) return c;
    store *st = store_pool_get(p->stores);
    if (!st) return NULL;
    char holder[96], host[64] = "host";
    if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "host");
    pthread_mutex_lock(&p->lock);
    snprintf(holder, sizeof holder, "%s-%d-admin%d", host, (int)getpid(), p->n);
    c = p->n < POOL_MAX ? crm_new(p->cfg, st, holder, NULL) : NULL;
    if (c && pthread_setspecific(p->mine, c) == 0)
        p->all[p->n++] = c;
    else if (c) {
        crm_free(c);
        c = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    return c;
}

const struct config *crm_config(const crm *c) {
    return c->cfg;
}

bool crm_stopping(const crm *c) {
    return store_mkto_budget_stopping(c->budget);
}
