/* checks — validation report, start-up checks and the readiness cache. See include/checks.h. */
#include "checks.h"

#include "log.h"
#include "store.h"
#include "store_mappings.h"

#include <cJSON.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READY_REFRESH_MS 60000

/* ---------------------------------------------------------------- validation (F11) */

static void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int checks_validate(crm *c, const mapping *m, status_report *out, char *err, size_t errlen) {
    mk_program prog;
    mk_error me;
    if (mkto_get_program(crm_marketo(c), m->program_id, &prog, &me) != 0) {
        snprintf(err, errlen, "Marketo: reading program %s failed: %s %s", m->program_id, me.code,
                 me.message);
        return -1;
    }
    if (!prog.found) {
        snprintf(err, errlen, "Marketo has no program %s", m->program_id);
        return -1;
    }
    char **mk = NULL, **sf = NULL;
    size_t nm = 0, ns = 0;
    if (mkto_channel_statuses(crm_marketo(c), prog.channel, &mk, &nm, &me) != 0) {
        snprintf(err, errlen, "Marketo: reading the statuses of channel \"%s\" failed: %s %s",
                 prog.channel, me.code, me.message);
        free_names(mk, nm);
        return -1;
    }
    sf_error se;
    int rc = -1;
    if (sf_campaign_status_labels(crm_salesforce(c), m->campaign_id, &sf, &ns, &se) != 0) {
        snprintf(err, errlen,
                 "Salesforce: reading the member statuses of campaign %s failed: "
                 "%s: %s",
                 m->campaign_id, se.code, se.message);
        goto out;
    }
    if (ns == 0) {
        snprintf(err, errlen, "Salesforce campaign %s has no member statuses (does it exist?)",
                 m->campaign_id);
        goto out;
    }
    status_map_compare(m, (const char *const *)mk, nm, (const char *const *)sf, ns, out);
    rc = 0;
out:
    free_names(sf, ns);
    free_names(mk, nm);
    return rc;
}

char *checks_report_json(const mapping *m, const status_report *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "programId", m->program_id);
    cJSON_AddStringToObject(o, "campaignId", m->campaign_id);
    cJSON_AddBoolToObject(o, "compatible", r->nunmatched == 0);
    cJSON *matched = cJSON_AddArrayToObject(o, "matched");
    for (int i = 0; i < r->nmatched; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "marketo", r->matched[i].marketo);
        cJSON_AddStringToObject(p, "salesforce", r->matched[i].salesforce);
        cJSON_AddItemToArray(matched, p);
    }
    cJSON *un = cJSON_AddArrayToObject(o, "unmatched");
    for (int i = 0; i < r->nunmatched; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "side", r->unmatched[i].marketo_side ? "marketo" : "salesforce");
        cJSON_AddStringToObject(p, "status", r->unmatched[i].status);
        cJSON_AddStringToObject(p, "fix", r->unmatched[i].fix);
        cJSON_AddItemToArray(un, p);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* ---------------------------------------------------------------- campaign-sync check */

typedef struct {
    FILE *out;
    int fails, warns;
} tally;

static void line(tally *t, const char *level, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void line(tally *t, const char *level, const char *what, const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(t->out, "%-4s  %-22s %s\n", level, what, msg);
    if (!strcmp(level, "FAIL")) t->fails++;
    if (!strcmp(level, "WARN")) t->warns++;
}

static void check_sf_object(tally *t, crm *c, const char *object, bool need_write) {
    char what[48];
    snprintf(what, sizeof what, "salesforce %s", object);
    sf_rights r;
    sf_error e;
    if (sf_object_rights(crm_salesforce(c), object, &r, &e) != 0) {
        line(t, "FAIL", what,
             "cannot describe %s (%s: %s) — give the integration user access "
             "to %s (the Marketing User permission)",
             object, e.code, e.message, object);
        return;
    }
    const bool flags[] = {r.queryable, r.createable, r.updateable};
    char missing[96] = "";
    for (int i = 0; i < (need_write ? 3 : 1); i++)
        if (!flags[i])
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%s",
                     missing[0] ? ", " : "",
                     i == 0   ? "read"
                     : i == 1 ? "create"
                              : "edit");
    if (missing[0])
        line(t, "FAIL", what,
             "the integration user cannot %s %s — make it a Marketing User "
             "with read/create/edit on Campaign, CampaignMember and Lead",
             missing, object);
    else
        line(t, "ok", what, need_write ? "read, create and edit allowed" : "read allowed");
}

static void check_mkto_read(tally *t, crm *c, const char *what, mk_access access,
                            const char *hint) {
    mk_error e;
    if (mkto_check_access(crm_marketo(c), access, &e) != 0)
        line(t, "FAIL", what, "%s %s — %s", e.code, e.message, hint);
    else
        line(t, "ok", what, "allowed");
}

static void check_mappings(tally *t, crm *c, store *st) {
    char err[STORE_ERR_MAX], next[EV_NUMID_MAX], cursor[EV_NUMID_MAX] = "";
    mapping *ms = calloc(100, sizeof *ms);
    status_report *rep = calloc(1, sizeof *rep);
    int count = 0;
    if (!ms || !rep) goto out;
    for (;;) {
        long n = store_mapping_list(st, cursor, 100, ms, next, sizeof next, err, sizeof err);
        if (n < 0) {
            line(t, "FAIL", "mappings", "cannot read them from Redis: %s", err);
            goto out;
        }
        for (long i = 0; i < n; i++, count++) {
            char what[64];
            snprintf(what, sizeof what, "mapping %s", ms[i].program_id);
            if (checks_validate(c, &ms[i], rep, err, sizeof err) != 0) {
                line(t, "FAIL", what, "%s", err);
            } else if (rep->nunmatched) {
                line(t, "FAIL", what, "%d status(es) without a counterpart, e.g. %s \"%s\": %s",
                     rep->nunmatched, rep->unmatched[0].marketo_side ? "Marketo" : "Salesforce",
                     rep->unmatched[0].status, rep->unmatched[0].fix);
            } else {
                line(t, "ok", what, "program %s <-> campaign %s: %d statuses match%s",
                     ms[i].program_id, ms[i].campaign_id, rep->nmatched,
                     ms[i].enabled ? "" : " (mapping disabled)");
            }
            /* Marketo's native campaign sync on the same program would write the same members. */
            mk_program prog;
            mk_error me;
            if (mkto_get_program(crm_marketo(c), ms[i].program_id, &prog, &me) == 0 && prog.found &&
                prog.sfdc_id[0])
                line(t, "WARN", what,
                     "Marketo's native campaign sync also links this program "
                     "(to %s): both would write the same members — unlink "
                     "it in Marketo",
                     prog.sfdc_id);
        }
        if (n <= 0 || !next[0]) break;
        snprintf(cursor, sizeof cursor, "%s", next);
    }
    if (count == 0) line(t, "WARN", "mappings", "none yet — PUT /v1/mappings/{programId}");
out:
    free(ms);
    free(rep);
}

int checks_cli(const struct config *cfg, int cfg_problems, FILE *out) {
    tally t = {out, 0, 0};
    if (cfg_problems) {
        line(&t, "FAIL", "config", "%d variable(s) missing or malformed (named above)",
             cfg_problems);
        return 1;
    }
    line(&t, "ok", "config", "all variables valid");
    store *st = store_new(&cfg->redis);
    char err[STORE_ERR_MAX], fsync[32];
    bool aof = false;
    if (!st || store_ping(st, 2000, err, sizeof err) != 0) {
        line(&t, "FAIL", "redis", "%s — start Redis or fix REDIS_URL", st ? err : "out of memory");
        store_free(st);
        return 1;
    }
    if (store_aof_status(st, &aof, fsync, sizeof fsync, err, sizeof err) == 0 && aof)
        line(&t, strcmp(fsync, "always") == 0 || !fsync[0] ? "ok" : "WARN", "redis",
             "reachable, AOF on%s%s%s", fsync[0] ? " (appendfsync " : "", fsync,
             fsync[0] ? (strcmp(fsync, "always") == 0
                             ? ")"
                             : "): a Redis crash can lose up to a second of acknowledged "
                               "events; use appendfsync always")
                      : "");
    else
        line(&t, "WARN", "redis",
             "reachable, but AOF is off: a Redis restart loses the queue — "
             "set appendonly yes and appendfsync always");
    crm *c = crm_new(cfg, st, "check", NULL);
    if (!c) {
        line(&t, "FAIL", "memory", "out of memory");
        store_free(st);
        return 1;
    }
    sf_error se;
    bool sf_ok = sf_authenticate(crm_salesforce(c), &se) == 0;
    if (sf_ok)
        line(&t, "ok", "salesforce token", "client credentials accepted");
    else
        line(&t, "FAIL", "salesforce token",
             "%s — check SF_LOGIN_URL (the My Domain URL), "
             "SF_CLIENT_ID, SF_CLIENT_SECRET and that the app "
             "allows the client credentials flow",
             se.message);
    if (sf_ok) {
        check_sf_object(&t, c, "Campaign", true);
        check_sf_object(&t, c, "CampaignMember", true);
        check_sf_object(&t, c, "Lead", true);
        check_sf_object(&t, c, "Contact", false);
    }
    mk_error me;
    bool mk_ok = mkto_authenticate(crm_marketo(c), &me) == 0;
    if (mk_ok)
        line(&t, "ok", "marketo token", "client credentials accepted");
    else
        line(&t, "FAIL", "marketo token",
             "%s — check MARKETO_BASE_URL, MARKETO_CLIENT_ID and "
             "MARKETO_CLIENT_SECRET",
             me.message);
    if (mk_ok) {
        const char *hint = "give the API user's role this permission in Marketo Admin";
        check_mkto_read(&t, c, "marketo channels", MK_ACCESS_CHANNELS, hint);
        check_mkto_read(&t, c, "marketo leads", MK_ACCESS_LEADS, hint);
        check_mkto_read(&t, c, "marketo program members", MK_ACCESS_MEMBERS, hint);
    }
    if (sf_ok && mk_ok) check_mappings(&t, c, st);
    bool enabled = true;
    if (store_sync_get(st, &enabled, err, sizeof err) == 0)
        line(&t, enabled ? "ok" : "WARN", "sync",
             enabled ? "enabled"
                     : "disabled — events wait; "
                       "PUT /v1/sync {\"enabled\": true}");
    crm_free(c);
    store_free(st);
    fprintf(out, "%d FAIL, %d WARN\n", t.fails, t.warns);
    return t.fails ? 1 : 0;
}

/* ---------------------------------------------------------------- readiness cache */

/* The last answers of both CRMs to a token request, refreshed by a thread of its own. */
struct checks_ready {
    const struct config *cfg;
    pthread_mutex_t lock;
    char sf[300], mk[300];
    pthread_t thread;
    atomic_bool stop;
};

static void *ready_main(void *arg) {
    checks_ready *r = arg;
    store *st = store_new(&r->cfg->redis);
    crm *c = st ? crm_new(r->cfg, st, "ready", NULL) : NULL;
    while (c && !atomic_load(&r->stop)) {
        char sf[300] = "ok", mk[300] = "ok";
        sf_error se;
        mk_error me;
        if (sf_authenticate(crm_salesforce(c), &se) != 0)
            snprintf(sf, sizeof sf, "%.280s", se.message);
        if (mkto_authenticate(crm_marketo(c), &me) != 0)
            snprintf(mk, sizeof mk, "%.280s", me.message);
        pthread_mutex_lock(&r->lock);
        memcpy(r->sf, sf, sizeof sf);
        memcpy(r->mk, mk, sizeof mk);
        pthread_mutex_unlock(&r->lock);
        for (int i = 0; i < READY_REFRESH_MS / 100 && !atomic_load(&r->stop); i++) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    crm_free(c);
    store_free(st);
    return NULL;
}

checks_ready *checks_ready_start(const struct config *cfg) {
    checks_ready *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->cfg = cfg;
    snprintf(r->sf, sizeof r->sf, "not checked yet");
    snprintf(r->mk, sizeof r->mk, "not checked yet");
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        return NULL;
    }
    if (pthread_create(&r->thread, NULL, ready_main, r) != 0) {
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
    }
    return r;
}

void checks_ready_stop(checks_ready *r) {
    if (!r) return;
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static int ready_copy(checks_ready *r, bool salesforce, char *detail, size_t len) {
    if (!r) {
        snprintf(detail, len, "not checked yet");
        return -1;
    }
    pthread_mutex_lock(&r->lock);
    snprintf(detail, len, "%s", salesforce ? r->sf : r->mk);
    pthread_mutex_unlock(&r->lock);
    return strcmp(detail, "ok") == 0 ? 0 : -1;
}

int checks_ready_salesforce(void *ud, store *st, char *detail, size_t len) {
    (void)st;
    return ready_copy(ud, true, detail, len);
}

int checks_ready_marketo(void *ud, store *st, char *detail, size_t len) {
    (void)st;
    return ready_copy(ud, false, detail, len);
}
