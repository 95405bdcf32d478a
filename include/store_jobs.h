/* store_jobs — jobs (job.h, jobs.h) in Redis.
 *
 * Owns the jobs and what one keeps while it runs:
 *   cs:job:<id>               a job: hash of its kind, trigger, mapping, state, phase, times,
 *                             error, counts, the cursor of the listing in progress, the token
 *                             of the process working on it, a cancel asked
 *   cs:job:<id>:details       its differences found, one JSON text each, in the order found
 *                             (list; at most JOB_DETAILS_MAX, the rest counted)
 *   cs:job:<id>:mk            while it runs: the program's members by email (hash, one
 *                             compact value each: store_job_spill_value)
 *   cs:job:<id>:mkl           while it runs: the same members' emails by Marketo lead id
 *   cs:jobs                   every job by creation time (zset)
 *   cs:jobs:program:<programId>  a program's jobs by creation time (zset)
 *   cs:jobs:queued            jobs waiting for a process (zset, by creation time)
 *   cs:jobs:running           jobs a process works on, or did until it stopped (set)
 *   cs:jobs:applying          jobs waiting for their corrections' outcomes (set)
 *   cs:job:active:<programId> the mapping's unfinished job (one per mapping at a time)
 *   cs:lock:job:<programId>   the token of the process working on the mapping's job, held
 *                             CLAIM_IDLE_MS and renewed by that process's heartbeat (store.h's
 *                             locks): a process that stops loses it, and another takes the job
 *                             over from its cursor
 * A finished job and its details expire JOB_RETENTION_S after its end; its kept members go at
 * once. Creating, taking, recording a page, ending and counting outcomes are each one script
 * (service/lua/job_*.lua). */
#ifndef CS_STORE_JOBS_H
#define CS_STORE_JOBS_H

#include "event.h"
#include "job.h"
#include "list_cursor.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_JOB_OWNER_MAX 160

/* A job as stored. */
typedef struct {
    char id[JOB_ID_MAX];
    job_kind kind;
    job_trigger trigger;
    job_state state;
    job_phase phase;
    char program_id[EV_NUMID_MAX], campaign_id[EV_SFID_MAX];
    int64_t created_ms, started_ms, ended_ms; /* 0: not yet */
    char error[700];                          /* "" none */
    char owner[STORE_JOB_OWNER_MAX];          /* the process working on it, "" none */
    bool cancel;                              /* a cancel was asked */
    long long takeovers;
    char cursor[LIST_CURSOR_MAX];
    /* counts */
    long long listed_marketo, listed_salesforce, compared;
    long long missing_in_marketo, missing_in_salesforce, status_differs;
    long long queued, applied, skipped, dead_lettered;
    long long details, details_dropped;
} store_job;

typedef enum {
    STORE_JOB_ERROR = -1,
    STORE_JOB_CREATED = 0, /* queued as j */
    STORE_JOB_EXISTS = 1,  /* the mapping has an unfinished job: its id in active */
} store_job_create_rc;

/* Queues j (its id, kind, trigger, mapping and created_ms set; state queued) unless the
 * mapping has an unfinished job; keeps the indexes' entries younger than keep_ms. active
 * (JOB_ID_MAX) gets the unfinished job's id. */
store_job_create_rc store_job_create(store *s, const store_job *j, long long keep_ms, char *active,
                                     char *err, size_t errlen);

/* The job with this id. */
store_found store_job_get(store *s, const char *id, store_job *out, char *err, size_t errlen);

/* Jobs newest first, of one program (or every one: program_id NULL), from offset; at most
 * limit into out. *next: the offset of the next page, -1 at the end. Entries of expired jobs
 * are dropped from the index on the way. The count, or -1 with err. */
long store_job_list(store *s, const char *program_id, long offset, long limit, store_job *out,
                    long *next, char *err, size_t errlen);

/* The job's details from offset, at most limit, as JSON texts (*out: malloc'd array of
 * malloc'd strings; the caller frees each and the array); *next as above. */
long store_job_details(store *s, const char *id, long offset, long limit, char ***out, long *next,
                       char *err, size_t errlen);

/* Ids of the jobs waiting for a process (oldest first, at most max), being worked on (or
 * until their process stopped), or waiting for outcomes: malloc'd strings (the caller frees
 * each and the array). The count, or -1. */
long store_jobs_queued(store *s, long max, char ***out, char *err, size_t errlen);
long store_jobs_running(store *s, char ***out, char *err, size_t errlen);
long store_jobs_applying(store *s, char ***out, char *err, size_t errlen);

typedef enum {
    STORE_CLAIM_ERROR = -1,
    STORE_CLAIM_NONE = 0,     /* not taken: another process has it, or it moved on */
    STORE_CLAIM_TAKEN = 1,    /* a queued job, now this owner's */
    STORE_CLAIM_TAKEOVER = 2, /* a running job whose process stopped, now this owner's */
} store_claim_rc;

/* Takes the job (program_id as read with it) for owner, holding the mapping's lock ttl_ms. */
store_claim_rc store_job_claim(store *s, const char *id, const char *program_id, const char *owner,
                               long ttl_ms, int64_t now_ms, char *err, size_t errlen);

/* Renews the mapping's lock for owner (the heartbeat); *held false when owner lost it. */
int store_job_renew(store *s, const char *program_id, const char *owner, long ttl_ms, bool *held,
                    char *err, size_t errlen);

/* What a job did with one page: the phase and the cursor after it, counts to add, details,
 * members to keep or to mark as met on both sides. Build it with the store_job_page_*
 * functions (start from {0}), free it with store_job_page_free. */
typedef struct store_job_page store_job_page;
store_job_page *store_job_page_new(job_phase phase, const char *cursor);
void store_job_page_count(store_job_page *p, const char *field, long long n);
void store_job_page_detail(store_job_page *p, const char *json);
void store_job_page_keep(store_job_page *p, const char *email, const char *value, const char *lead);
void store_job_page_seen(store_job_page *p, const char *email);
/* Every correction is queued: the job waits for outcomes (applying), without a process. */
void store_job_page_applying(store_job_page *p);
void store_job_page_free(store_job_page *p);

typedef enum {
    STORE_PAGE_ERROR = -1,
    STORE_PAGE_LOST = 0,   /* not recorded: another process holds the job now */
    STORE_PAGE_SAVED = 1,  /* recorded */
    STORE_PAGE_CANCEL = 2, /* recorded; a cancel was asked: stop */
} store_page_rc;

/* Records the page of the job (of program_id) for owner, in one step; details kept while
 * the job has fewer than details_max; kept members live keep_s. */
store_page_rc store_job_page_save(store *s, const char *id, const char *program_id,
                                  const char *owner, const store_job_page *p, long details_max,
                                  long keep_s, char *err, size_t errlen);

/* Whether a change of a job's state (store_job_finish, store_job_cancel_ask) was made. */
typedef enum {
    STORE_JOB_CHANGE_ERROR = -1, /* Redis failed: err says why */
    STORE_JOB_MOVED_ON = 0,      /* not made: the job moved on, already ended, or is another's */
    STORE_JOB_CHANGED = 1,
} store_job_change;

/* Ends the job: state (done, failed, cancelled) with error ("" none), at now_ms; by owner
 * (holding the lock) or, with owner "", by anyone (a queued or applying job). expect:
 * "state,phase" as the caller saw it ("" any). The job and details then live keep_s. */
store_job_change store_job_finish(store *s, const char *id, const char *program_id,
                                  const char *owner, job_state state, const char *error,
                                  int64_t now_ms, long keep_s, const char *expect, char *err,
                                  size_t errlen);

/* Asks a running job to stop at its next page, if it is still at expect ("state,phase");
 * STORE_JOB_MOVED_ON: read it again. */
store_job_change store_job_cancel_ask(store *s, const char *id, const char *expect, char *err,
                                      size_t errlen);

/* What became of jobs' corrections: for each of n jobs, how many were applied, skipped and
 * dead-lettered (counted on jobs that still exist). 0 or -1. */
typedef struct {
    const char *id;
    long applied, skipped, dead;
} store_job_outcome;
int store_job_outcomes(store *s, const store_job_outcome *o, size_t n, char *err, size_t errlen);

/* ---- a running job's kept members ---- */

/* One kept Marketo member: its lead, status, change time and names, as one value. */
typedef struct {
    bool seen; /* met on the Salesforce side already */
    char lead[EV_NUMID_MAX];
    char status[EV_STATUS_MAX];
    int64_t updated_ms;
    char first[EV_NAME_MAX], last[EV_NAME_MAX], company[EV_TEXT_MAX];
} store_job_member;
/* v's value text into out (size: the longest is under 800 bytes); parse it back: 0 or -1. */
void store_job_spill_value(const store_job_member *v, char *out, size_t size);
int store_job_spill_parse(const char *text, store_job_member *out);

/* The kept members with these emails (found[i] false when none), in one round trip. */
int store_job_spill_get(store *s, const char *id, const char *const *emails, size_t n,
                        store_job_member *out, bool *found, char *err, size_t errlen);
/* The emails the kept members of these leads have (emails[i] "" when none). */
int store_job_spill_emails(store *s, const char *id, const char *const *leads, size_t n,
                           char (*emails)[EV_TEXT_MAX], char *err, size_t errlen);
/* One step of a scan of the kept members from cursor ("0" at the start; "0" again at the
 * end): about count of them (Redis may answer more), (*emails)[k] and (*out)[k], both malloc'd
 * (the caller frees them); the count, or -1. A member may come twice (the scan's promise is
 * at least once). */
long store_job_spill_scan(store *s, const char *id, char *cursor, size_t cursorlen, long count,
                          char (**emails)[EV_TEXT_MAX], store_job_member **out, char *err,
                          size_t errlen);

#endif
