/* roundtrip — one marked test person through a mapped pair and back. See include/roundtrip.h. */
#include "roundtrip.h"

#include "checks.h"
#include "crm.h"
#include "log.h"
#include "plan.h"
#include "store.h"
#include "store_dead.h"
#include "store_mappings.h"

#include <cJSON.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define POLL_FIRST_MS     250
#define POLL_MAX_MS       2000
#define CLEANUP_WAIT_MS   30000 /* for the service to remove the member it wrote */
#define DEAD_LETTERS_SCAN 200   /* newest dead letters searched for the test person */

typedef struct {
    crm *c;
    store *st;
    FILE *out;
    int fails, warns, oks;
    int64_t step_ms;    /* when the current step began (monotonic) */
    int64_t timeout_ms; /* each wait */
    mapping map;
    char email[96];
    char s1_mk[STATUS_LABEL_MAX], s1_sf[STATUS_LABEL_MAX]; /* set in Marketo */
    char s2_mk[STATUS_LABEL_MAX], s2_sf[STATUS_LABEL_MAX]; /* then set in Salesforce */
    char lead[EV_NUMID_MAX];                               /* its Marketo id, once known */
    char cm_id[EV_SFID_MAX];                               /* its CampaignMember, once seen */
    int64_t last_mkto_change_ms; /* wall clock of the latest Marketo change that fired a webhook */
} trip;

/* Set by SIGINT/SIGTERM: a signal handler can reach nothing but a static flag (it only sets
 * it; the steps look at it). */
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* a signal cuts it short: the caller looks at stop_requested */
}

static void begin(trip *t) {
    t->step_ms = mono_ms();
}

/* One report line: level, step, the step's time, what happened (and on FAIL what to check). */
static void line(trip *t, const char *level, const char *step, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void line(trip *t, const char *level, const char *step, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(t->out, "%-4s  %-22s %7lld ms  %s\n", level, step, (long long)(mono_ms() - t->step_ms),
            msg);
    fflush(t->out);
    if (!strcmp(level, "FAIL")) t->fails++;
    if (!strcmp(level, "WARN")) t->warns++;
    if (!strcmp(level, "ok")) t->oks++;
}

/* The newest dead letter of the test person, as "the service dead-lettered it: <error>", or
 * "" when there is none (or Redis cannot tell). */
static void dead_letter_note(trip *t, char *buf, size_t size) {
    char next[64], err[STORE_ERR_MAX];
    buf[0] = '\0';
    char *text = NULL;
    if (store_dead_list(t->st, "", DEAD_LETTERS_SCAN, &text, next, sizeof next, err, sizeof err) !=
        STORE_DEAD_LIST_OK)
        return; /* Redis cannot tell: no note */
    cJSON *items = cJSON_Parse(text);
    free(text);
    const cJSON *it;
    cJSON_ArrayForEach(it, items) {
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(it, "event");
        const cJSON *email = cJSON_GetObjectItemCaseSensitive(ev, "email");
        const cJSON *why = cJSON_GetObjectItemCaseSensitive(it, "error");
        if (cJSON_IsString(email) && strcasecmp(email->valuestring, t->email) == 0 &&
            cJSON_IsString(why)) {
            snprintf(buf, size, " The service dead-lettered it: %.900s", why->valuestring);
            break;
        }
    }
    cJSON_Delete(items);
}

/* What a probe saw; as wait_for's answer, WAITING means timed out or interrupted. */
typedef enum {
    PROBE_FAILED = -1, /* failed for good */
    PROBE_WAITING = 0, /* not yet (or a failure worth another try) */
    PROBE_DONE = 1,
} probe_rc;

/* Polls probe until it answers DONE or FAILED or the step's time is up; probe writes what it
 * saw into seen. */
typedef probe_rc (*probe_fn)(trip *t, char *seen, size_t size);
static probe_rc wait_for(trip *t, probe_fn probe, int64_t limit_ms, char *seen, size_t size) {
    int64_t deadline = mono_ms() + limit_ms, pause = POLL_FIRST_MS;
    for (;;) {
        probe_rc rc = probe(t, seen, size);
        if (rc != PROBE_WAITING) return rc;
        int64_t left = deadline - mono_ms();
        if (left <= 0 || stop_requested) return PROBE_WAITING;
        sleep_ms(pause < left ? pause : left);
        pause = pause * 2 > POLL_MAX_MS ? POLL_MAX_MS : pause * 2;
    }
}

/* ---------------------------------------------------------------- set-up */

static bool step_mapping(trip *t, const char *program_id) {
    begin(t);
    char err[STORE_ERR_MAX];
    store_found found = store_mapping_get(t->st, program_id, &t->map, err, sizeof err);
    bool enabled = true;
    if (found == STORE_ERROR || store_sync_get(t->st, &enabled, err, sizeof err) != 0) {
        line(t, "FAIL", "mapping", "cannot read Redis: %s — check REDIS_URL (the service's)", err);
        return false;
    }
    if (found == STORE_NOT_FOUND) {
        line(t, "FAIL", "mapping",
             "no mapping for program %s in Redis — map it first (PUT /v1/mappings/%s), and "
             "give this command the service's REDIS_URL",
             program_id, program_id);
        return false;
    }
    if (!t->map.enabled) {
        line(t, "FAIL", "mapping",
             "the mapping of program %s is disabled: changes would wait, not sync — enable it "
             "(PUT /v1/mappings/%s with \"enabled\": true)",
             program_id, program_id);
        return false;
    }
    if (!enabled) {
        line(t, "FAIL", "mapping",
             "sync is switched off: changes would wait, not sync — PUT /v1/sync "
             "{\"enabled\": true}");
        return false;
    }
    line(t, "ok", "mapping", "program %s <-> campaign %s, enabled", t->map.program_id,
         t->map.campaign_id);
    return true;
}

/* The step of each of the program's channel statuses (by name), from Marketo: 0, or -1 with
 * err. */
static int channel_steps(trip *t, mk_step **steps, size_t *n, char *err, size_t errlen) {
    mk_program prog;
    mk_error me;
    if (mkto_get_program(crm_marketo(t->c), t->map.program_id, &prog, &me) != 0) {
        snprintf(err, errlen, "Marketo: reading program %s: %s %s", t->map.program_id, me.code,
                 me.message);
        return -1;
    }
    if (!prog.found) {
        snprintf(err, errlen, "Marketo has no program %s", t->map.program_id);
        return -1;
    }
    if (mkto_channel_steps(crm_marketo(t->c), prog.channel, steps, n, &me) != 0) {
        snprintf(err, errlen, "Marketo: reading the program's channel: %s %s", me.code, me.message);
        return -1;
    }
    return 0;
}

static int step_of(const mk_step *steps, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(steps[i].name, name)) return steps[i].step;
    return -1;
}

/* Picks the mapped status of the lowest step (set in Marketo), then the mapped status of the
 * next higher step (set in Salesforce): Marketo skips a move to a lower step made through its
 * API (Adobe developer docs, "Program Members": "If a lead's status has a greater step value
 * than the designated statusName, then that lead will be skipped"). */
static bool pick_statuses(trip *t, const status_report *rep, const mk_step *steps, size_t ns) {
    int s1 = -1, s2 = -1, k1 = -1, k2 = -1;
    for (int i = 0; i < rep->nmatched; i++) {
        int k = step_of(steps, ns, rep->matched[i].marketo);
        if (k > 0 && (k1 < 0 || k < k1)) {
            k1 = k;
            s1 = i;
        }
    }
    for (int i = 0; s1 >= 0 && i < rep->nmatched; i++) {
        int k = step_of(steps, ns, rep->matched[i].marketo);
        if (k > k1 && (k2 < 0 || k < k2)) {
            k2 = k;
            s2 = i;
        }
    }
    if (s2 < 0) return false;
    snprintf(t->s1_mk, sizeof t->s1_mk, "%s", rep->matched[s1].marketo);
    snprintf(t->s1_sf, sizeof t->s1_sf, "%s", rep->matched[s1].salesforce);
    snprintf(t->s2_mk, sizeof t->s2_mk, "%s", rep->matched[s2].marketo);
    snprintf(t->s2_sf, sizeof t->s2_sf, "%s", rep->matched[s2].salesforce);
    return true;
}

static bool step_statuses(trip *t) {
    begin(t);
    char err[1024];
    status_report *rep = calloc(1, sizeof *rep);
    mk_step *steps = NULL;
    size_t ns = 0;
    bool ok = false;
    if (!rep) {
        line(t, "FAIL", "statuses", "out of memory");
        return false;
    }
    if (checks_validate(t->c, &t->map, rep, err, sizeof err) != 0 ||
        channel_steps(t, &steps, &ns, err, sizeof err) != 0) {
        line(t, "FAIL", "statuses", "%s — run `campaign-sync check` for the credentials and rights",
             err);
    } else if (!pick_statuses(t, rep, steps, ns)) {
        line(t, "FAIL", "statuses",
             "the round trip needs two statuses that map to each other on two different steps of "
             "the program's channel; %d status(es) map — GET /v1/mappings/%s/validation lists them",
             rep->nmatched, t->map.program_id);
    } else {
        line(t, "ok", "statuses",
             "Marketo \"%s\" = Salesforce \"%s\" first, then Salesforce \"%s\" = Marketo \"%s\"",
             t->s1_mk, t->s1_sf, t->s2_sf, t->s2_mk);
        ok = true;
    }
    mkto_steps_free(steps, ns);
    free(rep);
    return ok;
}

/* ---------------------------------------------------------------- Marketo → Salesforce */

static bool step_marketo_lead(trip *t) {
    begin(t);
    snprintf(t->email, sizeof t->email, "%s%lld%s", PLAN_ROUNDTRIP_PREFIX,
             (long long)(wall_ms() / 1000), PLAN_ROUNDTRIP_DOMAIN);
    mk_new_lead in = {t->email, "campaign-sync", "round trip test person (delete me)",
                      "campaign-sync check --roundtrip"};
    mk_record r;
    mk_error e;
    int rc = mkto_create_leads(crm_marketo(t->c), &in, 1, &r, &e);
    bool ok = rc == 0 && r.outcome == MK_REC_OK;
    if (ok) {
        snprintf(t->lead, sizeof t->lead, "%s", r.id);
        line(t, "ok", "marketo test lead", "lead %s %s (%s)", t->lead, t->email,
             r.status[0] ? r.status : "?");
    } else if (rc != 0) {
        line(t, "FAIL", "marketo test lead", "Marketo: %s %s — the API user needs Read-Write Lead",
             e.code, e.message);
    } else {
        line(t, "FAIL", "marketo test lead", "Marketo skipped the lead %s: reason %s", t->email,
             r.reason);
    }
    return ok;
}

/* A successful members/status.json call writes a "Change Program Status" activity (Adobe
 * developer docs, "Program Members"), which the program's trigger campaign on "Program Status
 * is Changed" answers with the service's webhook (the simulator's fireOnApi switch plays an
 * instance where it does not: the next step then fails with its hint). */
static bool step_marketo_status(trip *t) {
    begin(t);
    const char *ids[] = {t->lead};
    mk_record r;
    mk_error e;
    int rc = mkto_set_status(crm_marketo(t->c), t->map.program_id, t->s1_mk, ids, 1, &r, &e);
    bool ok = rc == 0 && r.outcome == MK_REC_OK && r.status[0];
    if (ok) {
        t->last_mkto_change_ms = wall_ms();
        line(t, "ok", "marketo status", "program %s: lead %s is \"%s\" (%s)", t->map.program_id,
             t->lead, t->s1_mk, r.status);
    } else if (rc != 0) {
        line(t, "FAIL", "marketo status", "Marketo: %s %s", e.code, e.message);
    } else {
        line(t, "FAIL", "marketo status", "Marketo skipped the status change: reason %s", r.reason);
    }
    return ok;
}

/* The test person's CampaignMember records in the campaign (*n of them; free with
 * sf_member_rows_free); NULL with e. */
static sf_member_row *campaign_members(trip *t, size_t *n, sf_error *e) {
    sf_member_row *rows = NULL;
    if (sf_members_with_email(crm_salesforce(t->c), t->map.campaign_id, t->email, &rows, n, e) != 0)
        return NULL;
    return rows ? rows : calloc(1, sizeof *rows);
}

static probe_rc probe_salesforce(trip *t, char *seen, size_t size) {
    sf_error e;
    size_t n = 0;
    sf_member_row *rows = campaign_members(t, &n, &e);
    if (!rows) {
        snprintf(seen, size, "Salesforce: %s: %s", e.code, e.message);
        return e.outcome == SF_RETRY || e.outcome == SF_BUSY ? PROBE_WAITING : PROBE_FAILED;
    }
    bool done = false;
    if (n == 0 || !rows[0].id[0]) {
        snprintf(seen, size, "no campaign member of campaign %s for %s", t->map.campaign_id,
                 t->email);
    } else {
        snprintf(t->cm_id, sizeof t->cm_id, "%s", rows[0].id);
        snprintf(seen, size, "campaign member %s with Status \"%s\"", t->cm_id, rows[0].status);
        done = strcmp(rows[0].status, t->s1_sf) == 0;
    }
    sf_member_rows_free(rows, n);
    return done ? PROBE_DONE : PROBE_WAITING;
}

static bool step_to_salesforce(trip *t) {
    begin(t);
    char seen[600], note[1000];
    probe_rc rc = wait_for(t, probe_salesforce, t->timeout_ms, seen, sizeof seen);
    if (rc == PROBE_DONE) {
        line(t, "ok", "marketo -> salesforce", "%s", seen);
        return true;
    }
    dead_letter_note(t, note, sizeof note);
    if (rc == PROBE_FAILED || stop_requested)
        line(t, "FAIL", "marketo -> salesforce", "%s%s", stop_requested ? "interrupted" : seen,
             note);
    else
        line(t, "FAIL", "marketo -> salesforce",
             "after %lld s Salesforce shows %s (wanted Status \"%s\"): the service did not hear "
             "of Marketo's "
             "change or could not write it.%s Check in Marketo that program %s's trigger "
             "campaign (Program Status is Changed, flow Call Webhook) is active and runs for each "
             "person every time, that the webhook posts to https://<this service>/webhooks/"
             "marketo with X-Webhook-Secret = MARKETO_WEBHOOK_SECRET (Admin > Webhooks: its "
             "activity log shows our answer), that a serve or worker process runs, and "
             "GET /v1/deadletters",
             (long long)(t->timeout_ms / 1000), seen, t->s1_sf, note, t->map.program_id);
    return false;
}

/* ---------------------------------------------------------------- Salesforce → Marketo */

static bool step_salesforce_status(trip *t) {
    begin(t);
    sf_member_write w = {t->map.campaign_id, "", t->cm_id, t->s2_sf};
    sf_record r;
    sf_error e;
    int rc = sf_save_members(crm_salesforce(t->c), false, &w, 1, &r, &e);
    bool ok = rc == 0 && r.outcome == SF_REC_OK;
    if (ok)
        line(t, "ok", "salesforce status", "campaign member %s: Status \"%s\"", t->cm_id, t->s2_sf);
    else
        line(t, "FAIL", "salesforce status",
             "Salesforce: %s: %s — the integration user needs "
             "edit rights on CampaignMember",
             rc ? e.code : r.code, rc ? e.message : r.message);
    return ok;
}

static probe_rc probe_marketo(trip *t, char *seen, size_t size) {
    const char *ids[] = {t->lead};
    mk_member *res = NULL;
    size_t nres = 0;
    mk_error e;
    if (mkto_member_statuses(crm_marketo(t->c), t->map.program_id, ids, 1, &res, &nres, &e) != 0) {
        snprintf(seen, size, "Marketo: %s %s", e.code, e.message);
        return e.outcome == MK_PERMANENT ? PROBE_FAILED : PROBE_WAITING;
    }
    const char *now = nres && res[0].status ? res[0].status : NOT_IN_PROGRAM;
    snprintf(seen, size, "lead %s \"%s\" in program %s", t->lead, now, t->map.program_id);
    bool done = strcmp(now, t->s2_mk) == 0;
    mkto_members_free(res, nres);
    return done ? PROBE_DONE : PROBE_WAITING;
}

static bool step_to_marketo(trip *t) {
    begin(t);
    char seen[600], note[1000];
    probe_rc rc = wait_for(t, probe_marketo, t->timeout_ms, seen, sizeof seen);
    if (rc == PROBE_DONE) {
        t->last_mkto_change_ms = wall_ms(); /* the service's write fired the webhook */
        line(t, "ok", "salesforce -> marketo", "%s", seen);
        return true;
    }
    dead_letter_note(t, note, sizeof note);
    if (rc == PROBE_FAILED || stop_requested)
        line(t, "FAIL", "salesforce -> marketo", "%s%s", stop_requested ? "interrupted" : seen,
             note);
    else
        line(t, "FAIL", "salesforce -> marketo",
             "after %lld s Marketo shows %s (wanted \"%s\"): the service did not hear of "
             "Salesforce's change or could not write it.%s Check in Salesforce Setup > Outbound "
             "Messages > View Message Delivery Status (our Fault text says why), that the "
             "Outbound Message on CampaignMember posts to https://<this service>/webhooks/"
             "salesforce on create and every update with the fields the README lists, that "
             "SF_ORG_ID is this org's, that a serve or worker process of this version runs "
             "(older ones take the round trip's change for their own), and GET /v1/deadletters",
             (long long)(t->timeout_ms / 1000), seen, t->s2_mk, note);
    t->last_mkto_change_ms = wall_ms(); /* the service may still have written */
    return false;
}

/* ---------------------------------------------------------------- clean-up */

/* The test lead's Marketo id, looked up by email when its creation gave none. */
static bool find_lead(trip *t) {
    if (t->lead[0]) return true;
    const char *emails[] = {t->email};
    mk_lead *res = NULL;
    size_t n = 0;
    mk_error e;
    if (mkto_leads_by(crm_marketo(t->c), MK_BY_EMAIL, emails, 1, 0, &res, &n, &e) == 0 && n &&
        res[0].id[0])
        snprintf(t->lead, sizeof t->lead, "%s", res[0].id);
    mkto_leads_free(res, n);
    return t->lead[0] != '\0';
}

/* Removes the lead from the program. The removal's webhook must not fall in the same second
 * as the last one: the README's template dates it to the second only ({{system.dateTime}}
 * renders "2013-08-08 16:36:13", Adobe "System Tokens Glossary"), so the service would take
 * it for a resend of that one. */
static void cleanup_program(trip *t) {
    begin(t);
    if (!find_lead(t)) {
        line(t, "ok", "cleanup program", "no Marketo lead %s to remove", t->email);
        return;
    }
    int64_t next_second = (t->last_mkto_change_ms / 1000 + 1) * 1000 + 50;
    if (wall_ms() < next_second) sleep_ms(next_second - wall_ms());
    const char *ids[] = {t->lead};
    mk_record r;
    mk_error e;
    if (mkto_remove_members(crm_marketo(t->c), t->map.program_id, ids, 1, &r, &e) != 0)
        line(t, "FAIL", "cleanup program",
             "left behind: lead %s in program %s (Marketo: %s %s) — remove it in Marketo", t->lead,
             t->map.program_id, e.code, e.message);
    else
        line(t, "ok", "cleanup program", "lead %s removed from program %s", t->lead,
             t->map.program_id);
}

static probe_rc probe_member_gone(trip *t, char *seen, size_t size) {
    sf_error e;
    size_t n = 0;
    sf_member_row *rows = campaign_members(t, &n, &e);
    snprintf(seen, size, "%s", rows ? "" : e.message);
    sf_member_rows_free(rows, n);
    return rows && n == 0 ? PROBE_DONE : PROBE_WAITING;
}

/* Deletes the records ids[0..n) (of one object); appends what is left to left. */
static void delete_all(trip *t, const char *const *ids, size_t n, const char *what, char *left,
                       size_t size) {
    sf_record res[SF_COLLECTION_MAX];
    sf_error e;
    if (n > SF_COLLECTION_MAX) n = SF_COLLECTION_MAX;
    int rc = n ? sf_delete_records(crm_salesforce(t->c), ids, n, res, &e) : 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && res[i].outcome == SF_REC_OK) continue;
        snprintf(left + strlen(left), size - strlen(left), " %s %s (%s: %s);", what, ids[i],
                 rc ? e.code : res[i].code, rc ? e.message : res[i].message);
    }
}

/* The test person's campaign members, then its Leads, deleted; what is left appended to
 * members and leads. */
static void delete_test_records(trip *t, char *members, size_t msize, char *leads, size_t lsize) {
    sf_error e;
    size_t n = 0;
    sf_member_row *rows = campaign_members(t, &n, &e);
    const char *ids[SF_COLLECTION_MAX];
    size_t k = 0;
    if (!rows)
        snprintf(members, msize, " campaign member (cannot list them: %s: %s);", e.code, e.message);
    for (size_t i = 0; rows && i < n && k < SF_COLLECTION_MAX; i++)
        if (rows[i].id[0]) ids[k++] = rows[i].id;
    delete_all(t, ids, k, "campaign member", members, msize);
    sf_member_rows_free(rows, n);
    char lead_ids[SF_COLLECTION_MAX][CRM_SFID_MAX];
    if (sf_people_with_email(crm_salesforce(t->c), SF_LEAD_ANY, t->email, lead_ids,
                             SF_COLLECTION_MAX, &n, &e) != 0) {
        snprintf(leads, lsize, " Lead (cannot list them: %s: %s);", e.code, e.message);
        return;
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = lead_ids[i];
    delete_all(t, ids, n, "Lead", leads, lsize);
}

/* Waits for the service to remove the campaign member it wrote (the removal from the program
 * reaches it like any other change), then deletes what is left: members, and the test Leads. */
static void cleanup_salesforce(trip *t) {
    begin(t);
    char seen[600] = "", members[1200] = "", leads[1200] = "";
    const char *how = "none to remove";
    if (t->cm_id[0]) {
        int64_t limit = t->timeout_ms < CLEANUP_WAIT_MS ? t->timeout_ms : CLEANUP_WAIT_MS;
        how = wait_for(t, probe_member_gone, limit, seen, sizeof seen) == PROBE_DONE
                  ? "the service removed the campaign member"
                  : "the service had not removed the campaign member: deleted it directly";
    }
    delete_test_records(t, members, sizeof members, leads, sizeof leads);
    if (members[0])
        line(t, "FAIL", "cleanup salesforce",
             "left behind in campaign %s:%s%s — delete them in Salesforce (the integration user "
             "needs delete rights on Lead to clean up)",
             t->map.campaign_id, members, leads);
    else if (leads[0])
        line(t, "WARN", "cleanup salesforce",
             "%s; left behind:%s — delete it in Salesforce, or give the integration user delete "
             "rights on Lead",
             how, leads);
    else
        line(t, "ok", "cleanup salesforce", "%s; no Lead or member of %s left", how, t->email);
}

static void cleanup_marketo_lead(trip *t) {
    begin(t);
    if (!t->lead[0]) {
        line(t, "ok", "cleanup marketo lead", "none to delete");
        return;
    }
    const char *ids[] = {t->lead};
    mk_record r;
    mk_error e;
    int rc = mkto_delete_leads(crm_marketo(t->c), ids, 1, &r, &e);
    if (rc == 0 && r.outcome == MK_REC_OK)
        line(t, "ok", "cleanup marketo lead", "lead %s deleted", t->lead);
    else
        line(t, "WARN", "cleanup marketo lead",
             "left behind: Marketo lead %s (%s): %s %s — delete it in Marketo (Database), or give "
             "the API user's role the Read-Write Lead permission",
             t->lead, t->email, rc ? e.code : r.reason, rc ? e.message : "skipped");
}

/* ---------------------------------------------------------------- the run */

static void run_steps(trip *t, const char *program_id) {
    if (!step_mapping(t, program_id) || !step_statuses(t)) return;
    if (step_marketo_lead(t) && step_marketo_status(t) && step_to_salesforce(t) &&
        step_salesforce_status(t))
        step_to_marketo(t);
    /* After a failed step too: no test person stays in the program or the campaign. */
    cleanup_program(t);
    cleanup_salesforce(t);
    cleanup_marketo_lead(t);
}

int roundtrip_run(const struct config *cfg, const char *program_id, int timeout_s, FILE *out) {
    trip *t = calloc(1, sizeof *t);
    if (!t) {
        fprintf(out, "FAIL  out of memory\n");
        return 1;
    }
    t->out = out;
    t->timeout_ms = (int64_t)timeout_s * 1000;
    t->st = store_new(&cfg->redis);
    char holder[64];
    snprintf(holder, sizeof holder, "roundtrip-%d", (int)getpid());
    t->c = t->st ? crm_new(cfg, t->st, holder, NULL) : NULL;
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_signal; /* no SA_RESTART: a wait ends at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    if (!t->c) {
        begin(t);
        line(t, "FAIL", "memory", "out of memory");
    } else {
        run_steps(t, program_id);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    fprintf(out, "%d ok, %d FAIL, %d WARN%s%s\n", t->oks, t->fails, t->warns,
            t->email[0] ? "; test person " : "", t->email);
    int rc = t->fails ? 1 : 0;
    crm_free(t->c);
    store_free(t->st);
    free(t);
    return rc;
}
