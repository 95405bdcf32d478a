/* job — what a job is and how it moves on. Pure: no I/O, no clock.
 *
 * Owns the vocabulary of jobs (jobs.h runs them; store_jobs.h keeps them): their kinds, what
 * started them, their states and phases and the names the API shows for each, the one table of
 * which event moves a job from where to where, when a job's corrections have all been
 * applied, and the form of a job's id. A job merges (backfill, when a mapping is linked) or
 * compares (reconciliation) one mapping's two member lists: it lists the Marketo side into
 * Redis, lists the Salesforce side comparing each page with it, then the Marketo members
 * Salesforce lacks, queues each difference as an ordinary correction event, and waits for
 * the workers to apply them. */
#ifndef CS_JOB_H
#define CS_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JOB_ID_MAX 40 /* == EV_JOB_MAX */

typedef enum { JOB_BACKFILL = 0, JOB_RECONCILE } job_kind;

/* Who asked: a mapping created or enabled, a person (POST .../reconcile), the hourly
 * schedule, the deleted-records poll's gap. */
typedef enum { JOB_BY_LINK = 0, JOB_BY_REQUEST, JOB_BY_SCHEDULE, JOB_BY_GAP } job_trigger;

typedef enum { JOB_QUEUED = 0, JOB_RUNNING, JOB_DONE, JOB_FAILED, JOB_CANCELLED } job_state;

/* Where a job is; a running job goes through them in this order. */
typedef enum {
    JOB_WAITING = 0,     /* queued: no process has taken it yet */
    JOB_LIST_MARKETO,    /* the program's members, into Redis */
    JOB_LIST_SALESFORCE, /* the campaign's members, each page compared with them */
    JOB_MARKETO_ONLY,    /* the program's members the campaign lacks */
    JOB_APPLYING,        /* every correction queued: waiting for the workers' outcomes */
    JOB_FINISHED,        /* done, failed or cancelled */
} job_phase;

typedef enum {
    JOB_EV_CLAIM = 0,  /* a process takes a queued job */
    JOB_EV_TAKEOVER,   /* a process takes a running job whose process stopped */
    JOB_EV_PHASE_DONE, /* the phase finished its work */
    JOB_EV_FAIL,       /* a CRM or Redis failed for good */
    JOB_EV_CANCEL,     /* DELETE /v1/jobs/{id} */
    JOB_EV_STOPPED,    /* the running process saw the cancel and stopped */
} job_event;

/* What an event does to a job in (state, phase). */
typedef struct {
    bool allowed;      /* false: the event does not apply there (nothing changes) */
    job_state state;   /* the state after */
    job_phase phase;   /* the phase after */
    bool cancel_asked; /* JOB_EV_CANCEL on a job a process is working on: it stops at its
                          next page (then JOB_EV_STOPPED) */
} job_step;

job_step job_next(job_state state, job_phase phase, job_event ev);

/* The API's names ("backfill", "link", "queued", "listing_marketo", ...), and back: -1 when
 * unknown. */
const char *job_kind_name(job_kind k);
const char *job_trigger_name(job_trigger t);
const char *job_state_name(job_state s);
const char *job_phase_name(job_phase p);
int job_kind_parse(const char *s);
int job_trigger_parse(const char *s);
int job_state_parse(const char *s);
int job_phase_parse(const char *s);

/* Whether a state is final (done, failed, cancelled). */
bool job_state_final(job_state s);

/* Whether every correction a job queued has an outcome: applied, skipped (already so, or
 * dropped as stale, an echo, a backward move) or dead-lettered. */
bool job_outcomes_complete(long long queued, long long applied, long long skipped, long long dead);

/* A new job's id from its creation time and a random number: "j" + the time in base 36 +
 * "-" + 6 base-36 digits ("jlx3k9a2b-4f0zq1"), sorting roughly by creation. */
void job_id_make(int64_t now_ms, uint32_t rnd, char *out, size_t size);

/* Whether s can be a job id (as a path parameter): 2 to JOB_ID_MAX - 1 letters, digits and
 * '-', starting with 'j'. */
bool job_id_valid(const char *s);

#endif
