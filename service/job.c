/* job — jobs' kinds, states, phases and transitions. See include/job.h. */
#include "job.h"

#include <stdio.h>
#include <string.h>

static const char *const kinds[] = {"backfill", "reconcile"};
static const char *const triggers[] = {"link", "request", "schedule", "gap"};
static const char *const states[] = {"queued", "running", "done", "failed", "cancelled"};
static const char *const phases[] = {"waiting",      "listing_marketo", "listing_salesforce",
                                     "marketo_only", "applying",        "finished"};

#define N(a) ((int)(sizeof a / sizeof a[0]))

static int find(const char *const *names, int n, const char *s) {
    for (int i = 0; s && i < n; i++)
        if (strcmp(names[i], s) == 0) return i;
    return -1;
}

const char *job_kind_name(job_kind k) {
    return k >= 0 && (int)k < N(kinds) ? kinds[k] : "reconcile";
}
const char *job_trigger_name(job_trigger t) {
    return t >= 0 && (int)t < N(triggers) ? triggers[t] : "request";
}
const char *job_state_name(job_state s) {
    return s >= 0 && (int)s < N(states) ? states[s] : "failed";
}
const char *job_phase_name(job_phase p) {
    return p >= 0 && (int)p < N(phases) ? phases[p] : "finished";
}
int job_kind_parse(const char *s) {
    return find(kinds, N(kinds), s);
}
int job_trigger_parse(const char *s) {
    return find(triggers, N(triggers), s);
}
int job_state_parse(const char *s) {
    return find(states, N(states), s);
}
int job_phase_parse(const char *s) {
    return find(phases, N(phases), s);
}

bool job_state_final(job_state s) {
    return s == JOB_DONE || s == JOB_FAILED || s == JOB_CANCELLED;
}

static job_step to(job_state s, job_phase p) {
    return (job_step){true, s, p, false};
}

/* The phase after p in a running job's walk. */
static job_phase next_phase(job_phase p) {
    switch (p) {
    case JOB_WAITING: return JOB_LIST_MARKETO;
    case JOB_LIST_MARKETO: return JOB_LIST_SALESFORCE;
    case JOB_LIST_SALESFORCE: return JOB_MARKETO_ONLY;
    case JOB_MARKETO_ONLY: return JOB_APPLYING;
    case JOB_APPLYING:
    case JOB_FINISHED: return JOB_FINISHED;
    }
    return JOB_FINISHED;
}

job_step job_next(job_state state, job_phase phase, job_event ev) {
    job_step none = {false, state, phase, false};
    if (job_state_final(state)) return none; /* a finished job stays as it ended */
    switch (ev) {
    case JOB_EV_CLAIM: return state == JOB_QUEUED ? to(JOB_RUNNING, JOB_LIST_MARKETO) : none;
    case JOB_EV_TAKEOVER:
        /* Resumes where the stopped process left it; an applying job needs no process. */
        return state == JOB_RUNNING && phase != JOB_APPLYING ? to(JOB_RUNNING, phase) : none;
    case JOB_EV_PHASE_DONE:
        if (state != JOB_RUNNING) return none;
        return phase == JOB_APPLYING ? to(JOB_DONE, JOB_FINISHED)
                                     : to(JOB_RUNNING, next_phase(phase));
    case JOB_EV_FAIL: return state == JOB_RUNNING ? to(JOB_FAILED, JOB_FINISHED) : none;
    case JOB_EV_CANCEL:
        /* Nothing works on a queued or an applying job: cancelled at once. Corrections
         * already queued are still applied (they are ordinary events). */
        if (state == JOB_QUEUED || phase == JOB_APPLYING) return to(JOB_CANCELLED, JOB_FINISHED);
        return (job_step){true, state, phase, true};
    case JOB_EV_STOPPED: return state == JOB_RUNNING ? to(JOB_CANCELLED, JOB_FINISHED) : none;
    }
    return none;
}

bool job_outcomes_complete(long long queued, long long applied, long long skipped, long long dead) {
    return applied + skipped + dead >= queued;
}

/* Writes v in base 36 (lower case) into out; returns the digits written. */
static size_t base36(uint64_t v, char *out, size_t size, size_t min_digits) {
    char tmp[16];
    size_t n = 0;
    do {
        tmp[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
        v /= 36;
    } while ((v || n < min_digits) && n < sizeof tmp);
    if (n >= size) return 0;
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

void job_id_make(int64_t now_ms, uint32_t rnd, char *out, size_t size) {
    char t[16], r[16];
    base36(now_ms > 0 ? (uint64_t)now_ms : 0, t, sizeof t, 1);
    base36(rnd % 2176782336u, r, sizeof r, 6); /* 36^6 */
    snprintf(out, size, "j%s-%s", t, r);
}

bool job_id_valid(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n < 2 || n >= JOB_ID_MAX || s[0] != 'j') return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") == n;
}
