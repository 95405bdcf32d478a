/* store — everything the service keeps in Redis.
 *
 * Owns the Redis connection (the only module that includes hiredis) and the key layout
 * (campaign ids in keys are their first 15 characters, so 15- and 18-character forms meet):
 *   cs:events:sf, cs:events:mkto
 *                             the two queues: streams of the events received from Salesforce
 *                             (applied toward Marketo) and from Marketo (toward Salesforce);
 *                             fields `event` (event JSON), `attempts`, `error` (last
 *                             failure); consumer group `workers` on each. Two queues so that
 *                             changes toward Salesforce never wait in line behind the
 *                             rate-limited ones toward Marketo, and the latter gather in
 *                             order while Marketo's budget is spent
 *   cs:dedup:<sf|mkto>:<id>   de-duplication key of a received event (value: stream id),
 *                             expires after STORE_DEDUP_TTL_S
 *   cs:retry, cs:retry:recv   events waiting for a retry (of both queues; each member names
 *                             its queue): zsets of the same members scored by due time and by
 *                             receive time
 *   cs:dead:<id>, cs:deadletters  dead letters (JSON) and their index by time; the id is the
 *                             entry id it had, made unique across the two queues
 *   cs:parked:<programId>, cs:parked:programs  events of a disabled mapping, in order
 *   cs:mapping:<programId>, cs:mapping:campaign:<campaignId>, cs:mappings
 *                             mappings (JSON), the campaign index, the list by program id
 *   cs:sync:enabled           global switch ("1"/"0")
 *   cs:member:<campaignId>:<mktoLeadId>, cs:members:<campaignId>
 *                             recorded member state (hash) and the campaign's members
 *   cs:link:mkto:<leadId>, cs:link:sf:<personId>, cs:sfperson:<email>
 *                             person links between the CRMs (7 days)
 *   cs:lock:<name>            short-lived locks (member, person creation)
 *   cs:workers:progress       when a worker last finished events (ms)
 * Every state change that must not half-happen (enqueue with its key, ack with retry, dead
 * letter or park) is one Lua script, so Redis never holds one part without the other. A handle is
 * one connection and is not thread-safe: each thread uses its own (store_thread). Every call
 * reconnects when the connection broke, with a growing pause between failed attempts so a Redis
 * outage never becomes a hot loop. */
#ifndef CS_STORE_H
#define CS_STORE_H

#include "config.h"
#include "event.h"
#include "member.h"
#include "status_map.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_ERR_MAX     256
#define STORE_DEDUP_TTL_S (26 * 3600) /* > Salesforce's 24 h redelivery window */
#define STORE_GROUP       "workers"

/* The queues, named by where their events come from. */
typedef enum { STORE_Q_SF = 0, STORE_Q_MKTO = 1 } store_queue;
#define STORE_NQUEUES 2
/* The stream key of a queue ("cs:events:sf", "cs:events:mkto"). */
const char *store_stream(store_queue q);
/* The queue an event goes to: the one of its source. */
store_queue store_queue_of(const event *ev);

typedef struct store store;

/* Creates a handle for target; connects lazily. NULL only when out of memory. */
store *store_open(const struct redis_target *target);
void store_free(store *s);

/* PING with the given timeout; 0 when Redis answered, -1 with the reason in err. */
int store_ping(store *s, int timeout_ms, char *err, size_t errlen);

/* Appends n events, each to its source's queue, skipping those whose de-duplication key exists,
 * atomically. added[i] is set to true for an event stored, false for a duplicate. Returns 0, or -1
 * when Redis could not take them (then nothing of the batch was stored). */
int store_enqueue(store *s, const event *evs, size_t n, bool *added, char *err, size_t errlen);

/* As store_enqueue, for events spread over many requests (commit.c's groups). */
int store_enqueue_refs(store *s, const event *const *evs, size_t n, bool *added, char *err,
                       size_t errlen);

/* Events waiting in both queues (depth) and the age of the oldest, in seconds (0 when
 * empty). */
int store_queue_stats(store *s, long long *depth, double *oldest_age_s, char *err, size_t errlen);

/* ---- worker queue ---- */

typedef struct {
    char id[32];   /* stream entry id */
    store_queue q; /* the queue it was read from */
    char *json;    /* event JSON (malloc'd) */
    size_t len;
    int attempts;    /* failed tries so far */
    char error[256]; /* the last failure, if any */
} store_entry;

void store_entries_free(store_entry *e, size_t n);

/* Creates the consumer groups when missing (also after Redis lost them). */
int store_group_ensure(store *s, char *err, size_t errlen);

/* Reads up to max new entries of each queue q with want[q] for consumer, waiting up to
 * block_ms for any (< 0: not at all). *out is malloc'd (free with store_entries_free);
 * returns the count, or -1 with err. */
long store_read(store *s, const char *consumer, const bool want[STORE_NQUEUES], size_t max,
                int block_ms, store_entry **out, char *err, size_t errlen);

/* Claims entries of queue q that another consumer has held for at least min_idle_ms. */
long store_claim(store *s, store_queue q, const char *consumer, long min_idle_ms, size_t max,
                 store_entry **out, char *err, size_t errlen);

/* Resets the idle time of entries of queue q that consumer holds (XCLAIM ... JUSTID), so
 * that a worker still working on them is not taken for a stopped one. */
int store_touch(store *s, store_queue q, const char *consumer, const char *const *ids, size_t n,
                char *err, size_t errlen);

/* Acknowledges and deletes finished entries of queue q. */
int store_ack(store *s, store_queue q, const char *const *ids, size_t n, char *err, size_t errlen);

/* Moves an entry to the retry set, due at due_ms, with attempts and the error kept. */
int store_retry(store *s, const store_entry *e, int attempts, int64_t due_ms, const char *error,
                char *err, size_t errlen);

/* Puts an entry back for another worker at once (a member lock was busy); attempts kept. */
int store_defer(store *s, const store_entry *e, int64_t due_ms, char *err, size_t errlen);

/* Moves retries due by now_ms back into their queues; returns how many. */
long store_promote_due(store *s, int64_t now_ms, size_t max, char *err, size_t errlen);

/* Moves an entry to the dead-letter list with the reason; returns 0 or -1. id (NULL: not
 * wanted) gets the dead letter's id: the entry's, or the next free one of its millisecond. */
int store_dead_letter(store *s, const store_entry *e, int attempts, const char *error, char *id,
                      size_t idlen, char *err, size_t errlen);

/* Parks an entry of a disabled mapping; store_unpark puts a program's parked entries back
 * into their queues, in order, and returns how many. */
int store_park(store *s, const store_entry *e, const char *program_id, char *err, size_t errlen);
long store_unpark(store *s, const char *program_id, char *err, size_t errlen);
/* Program ids with parked events (for a worker to re-check); caller frees each and the array. */
long store_parked_programs(store *s, char ***out, char *err, size_t errlen);

/* Dead letters, newest first: JSON items {"id","at","attempts","error","event"}. cursor: ""
 * or a previous next (the id of the last item of that page); *next gets the cursor of the
 * following page ("" at the end). Returns a malloc'd JSON array text, or NULL with err
 * (errno EINVAL when the cursor names no dead letter). */
char *store_dead_list(store *s, const char *cursor, long limit, char *next, size_t nextlen,
                      char *err, size_t errlen);
/* 1 when done, 0 when no such dead letter, -1 on error. */
int store_dead_replay(store *s, const char *id, char *err, size_t errlen);
int store_dead_delete(store *s, const char *id, char *err, size_t errlen);

/* ---- switches, mappings, member state, links ---- */

/* The global switch; store_sync_init writes the default only when none is stored. */
int store_sync_init(store *s, bool enabled, char *err, size_t errlen);
int store_sync_get(store *s, bool *enabled, char *err, size_t errlen);
int store_sync_set(store *s, bool enabled, char *err, size_t errlen);

/* 1 found, 0 none, -1 error. */
int store_mapping_get(store *s, const char *program_id, mapping *out, char *err, size_t errlen);
int store_mapping_by_campaign(store *s, const char *campaign_id, mapping *out, char *err,
                              size_t errlen);
/* Stores m. 1 created, 0 replaced, 2 refused because conflict_program (filled) already maps
 * the campaign, -1 on error. */
int store_mapping_put(store *s, const mapping *m, char *conflict_program, size_t clen, char *err,
                      size_t errlen);
/* 1 deleted, 0 none, -1 error. */
int store_mapping_delete(store *s, const char *program_id, char *err, size_t errlen);
/* Mappings ordered by program id, after cursor (a program id, "" for the start). Returns
 * the count put in out (room for limit), *next = last id when more follow, else "". */
long store_mapping_list(store *s, const char *cursor, long limit, mapping *out, char *next,
                        size_t nextlen, char *err, size_t errlen);

/* 1 found (out filled), 0 none, -1 error. */
int store_member_get(store *s, const char *campaign_id, const char *mkto_lead, member_state *out,
                     char *err, size_t errlen);
/* Records st if the record is still at st->version (as read by store_member_get; 0 when
 * there was none): 1 recorded, 0 refused because another worker recorded in between (read
 * and plan again), -1 on error. The completed-write times only move forward; the pending
 * marks equal to sf_done / mkto_done (this batch's own marks, 0: none) are cleared. */
int store_member_put(store *s, const char *campaign_id, const char *mkto_lead,
                     const member_state *st, int64_t sf_done, int64_t mkto_done, char *err,
                     size_t errlen);
/* store_member_get and store_member_put for many members in one round trip. get_many fills
 * out[i] (its `known` says whether a record exists); 0 or -1 with err. put_many sets rc[i]
 * as store_member_put returns it, and returns -1 (err) only when Redis could not be asked. */
int store_member_get_many(store *s, size_t n, const char *const *campaigns,
                          const char *const *leads, member_state *out, char *err, size_t errlen);
typedef struct {
    const char *campaign, *lead;
    const member_state *st;
    int64_t sf_done, mkto_done;
} store_member_write;
int store_member_put_many(store *s, size_t n, const store_member_write *w, int *rc, char *err,
                          size_t errlen);

/* Marks, before a CRM write, that the members (campaign id, Marketo lead pairs) have a
 * write pending on one side ("sf_pending" or "mkto_pending") that may land until ms: a
 * worker that dies between its write and recording it still leaves that trace (plan.h,
 * rule 4b). store_member_put clears a mark once the write completed. */
int store_mark_written(store *s, const char *const *campaigns, const char *const *leads, size_t n,
                       const char *field, int64_t ms, char *err, size_t errlen);

/* Members of a campaign, most recently changed first, after cursor ("" = start). */
long store_member_list(store *s, const char *campaign_id, const char *cursor, long limit,
                       member_state *out, char *next, size_t nextlen, char *err, size_t errlen);

/* Person links (a Marketo lead and its Salesforce Contact or Lead, both ways, 7 days).
 * sf_person/mkto_lead out buffers of EV_SFID_MAX / EV_NUMID_MAX. 1/0/-1. */
int store_link_by_mkto(store *s, const char *mkto_lead, char *sf_person, char *err, size_t errlen);
int store_link_by_sf(store *s, const char *sf_person, char *mkto_lead, char *err, size_t errlen);
/* The same for many, in one round trip: mkto_leads[i] is "" where no link is known;
 * store_link_put_many records the pairs (mkto_leads[i], sf_persons[i]). 0 or -1. */
int store_link_by_sf_many(store *s, size_t n, const char *const *sf_persons,
                          char (*mkto_leads)[EV_NUMID_MAX], char *err, size_t errlen);
int store_link_put_many(store *s, size_t n, const char *const *mkto_leads,
                        const char *const *sf_persons, char *err, size_t errlen);

/* CampaignMember id → (campaign, Marketo lead) of its recorded state, for the deleted-records
 * poll. 1 found, 0 none, -1 error. */
int store_cm_lookup(store *s, const char *cm_id, char *campaign, size_t clen, char *lead,
                    size_t llen, char *err, size_t errlen);

/* Small named values that pollers keep between runs (cursors, last written fields). */
int store_kv_get(store *s, const char *key, char *out, size_t size, char *err, size_t errlen);
int store_kv_set(store *s, const char *key, const char *value, char *err, size_t errlen);

/* Programs whose channel and costs should be copied at once (new or enabled mapping). */
int store_program_due_add(store *s, const char *program_id, char *err, size_t errlen);
/* Takes up to max due program ids (removing them); caller frees each and the array. */
long store_program_due_take(store *s, size_t max, char ***out, char *err, size_t errlen);

/* The audit log (cs:audit, a stream capped near STORE_AUDIT_MAX): one JSON text per applied
 * change. store_audit_list answers newest first, filtered by program and/or campaign id
 * ("" = any), as a malloc'd JSON array text; cursor/next are entry ids. */
#define STORE_AUDIT_MAX 100000
int store_audit_add(store *s, const char *const *entries, size_t n, char *err, size_t errlen);
char *store_audit_list(store *s, const char *program_id, const char *campaign_id,
                       const char *cursor, long limit, char *next, size_t nextlen, char *err,
                       size_t errlen);

/* Whether Redis runs with AOF on, and its appendfsync setting ("" when CONFIG is refused,
 * as some managed Redis services do). 0 or -1. */
int store_aof_status(store *s, bool *aof, char *fsync, size_t size, char *err, size_t errlen);

/* ---- locks and progress ---- */

/* Tries to take each key (SET NX PX ttl_ms) for token; got[i] says which were taken. */
int store_lock_many(store *s, const char *const *keys, size_t n, const char *token, long ttl_ms,
                    bool *got, char *err, size_t errlen);
/* Releases the keys still held by token. */
int store_unlock_many(store *s, const char *const *keys, size_t n, const char *token, char *err,
                      size_t errlen);

/* The Marketo call budget shared by every process (cs:mkto:calls, cs:mkto:inflight): takes
 * a permit when fewer than calls_per_window calls started in the last window_ms and fewer
 * than max_concurrent are in flight. Returns 0 (permit taken, token recorded), or the
 * milliseconds to wait before asking again (> 0), or -1 on a Redis error. */
long store_mkto_acquire(store *s, const char *token, int calls_per_window, long window_ms,
                        int max_concurrent, char *err, size_t errlen);
int store_mkto_release(store *s, const char *token, char *err, size_t errlen);

/* Whether a worker may read the queue toward Marketo (STORE_Q_SF) now: 0, or the ms to wait
 * (-1 on a Redis error). Reading waits for a permit of the budget above. While changes
 * arrive at light_rate per second or more, it also waits for the pace (every process shares
 * it, cs:mkto:read and cs:mkto:pace): a paced read starts at most once per window /
 * (calls_per_window - 3), and only while the calls made (every permit counts) are at most
 * two ahead of one per that pace; then *paced_ms is set to the pace (else 0) and *calls to
 * the calls that tolerance has room for now: read what waits, not what comes next, and no
 * more than those calls carry. So a steady stream is written in evenly spaced calls, each
 * carrying what gathered since the last, instead of spending the window's calls at once on a
 * few changes each and waiting for the next window; an occasional change is not held. */
long store_mkto_gate(store *s, int calls_per_window, int max_concurrent, long light_rate,
                     long *paced_ms, int *calls, char *err, size_t errlen);

/* The Marketo budget as mkto_client's limiter: one per client (thread). acquire waits for a
 * permit (returns -1 when Redis fails or *stop becomes true); with max_wait_ms > 0 it waits
 * no longer than that and returns the milliseconds still to wait instead (> 0), so that a
 * worker can put Marketo-bound events aside and go on with others. release gives it back. */
#define STORE_MKTO_WINDOW_MS 21000 /* Marketo's 20 s plus a second for clock and transit skew */
typedef struct {
    store *st;
    int calls_per_20s, max_concurrent;
    long max_wait_ms; /* 0: wait as long as it takes */
    const _Atomic bool *stop;
    char holder[128];
    unsigned long seq;
    char permit[160];
} store_mkto_budget;
int store_mkto_budget_acquire(void *budget);
void store_mkto_budget_release(void *budget);

int store_progress_mark(store *s, char *err, size_t errlen);
/* Milliseconds of the last progress, 0 when none yet. */
int store_progress_get(store *s, int64_t *ms, char *err, size_t errlen);

/* ---- one handle per thread ---- */

/* Sets the target every thread's handle connects to; call once before threads start. */
void store_thread_setup(const struct redis_target *target);
/* The calling thread's handle, created on first use; NULL only when out of memory. */
store *store_thread(void);
/* Frees every per-thread handle; call after all threads using them stopped. */
void store_thread_cleanup(void);

/* ---- our own CampaignMember deletions ---- */

/* Records that the service is deleting these CampaignMembers (cs:sfdel:<id>, ttl_s), before
 * the delete call, so that the deleted-records poll takes them for echoes. 0 or -1. */
int store_sf_deleted_mark(store *s, const char *const *cm_ids, size_t n, long ttl_s, char *err,
                          size_t errlen);
/* 1 when the service deleted cm_id (within the marks' ttl), 0 when not, -1 on error. */
int store_sf_deleted_ours(store *s, const char *cm_id, char *err, size_t errlen);

/* ---- CRM allowances (quota.c) ---- */

/* A CRM's spent allowance, shared by every process: cs:quota:<crm> (its value the epoch ms
 * when calls may resume, expiring then) and cs:quota:<crm>:probe (calls may resume only once
 * a probe found room). crm is "salesforce" or "marketo". get: *pause_ms the time left (0:
 * none); set: pause for pause_ms, with probe also marking that a probe must come first;
 * clear: both gone. 0 or -1. */
int store_quota_get(store *s, const char *crm, long *pause_ms, bool *probe, char *err,
                    size_t errlen);
int store_quota_pause(store *s, const char *crm, long pause_ms, bool probe, char *err,
                      size_t errlen);
int store_quota_clear(store *s, const char *crm, char *err, size_t errlen);
/* ---- received items that cannot become events ---- */

/* A received item that cannot become an event (a Salesforce notification without a
 * CampaignId, say): it goes straight to the dead letters. */
typedef struct {
    const event *ev;   /* what could be read; ev->source and ev->id make its de-duplication key */
    const char *error; /* why it cannot be used, for the person who reads the dead letter */
} store_unusable;

/* As store_enqueue_refs, and in the same script (one round trip, all or nothing) the m
 * unusable items as dead letters (0 attempts, the receive time as `at`), each unless its
 * de-duplication key exists; the key is then set as for an event, so a redelivery stores
 * nothing new. dead_added[i] says which were stored. Such a dead letter holds no event to
 * replay: store_dead_replay answers 0 for it, store_dead_unusable says why. */
int store_enqueue_with_dead(store *s, const event *const *evs, size_t n, bool *added,
                            const store_unusable *const *dead, size_t m, bool *dead_added,
                            char *err, size_t errlen);

/* 1 when dead letter id is an unusable item stored by store_enqueue_with_dead (why gets its
 * reason), 0 when it is not (or does not exist), -1 on error. */
int store_dead_unusable(store *s, const char *id, char *why, size_t whylen, char *err,
                        size_t errlen);

/* ---- program copy outcomes (F2/F3) ----
 *   cs:program:copy:<programId>  hash: failures (copies failed in a row), next (ms: no copy
 *                                before then), crm, code, message and at (ms) of the last
 *                                failure
 *   cs:programs:backoff          zset: programs waiting for their next try, by its time */
typedef struct {
    int failures;      /* copies failed in a row; 0 when the last one succeeded or none ran */
    int64_t next_ms;   /* no copy before this time (0: any time) */
    char crm[16];      /* the last failure's CRM ("salesforce", "marketo"), "" when none */
    char code[64];     /* its error code (Salesforce errorCode, Marketo code) */
    char message[512]; /* its error text */
    int64_t at_ms;     /* when it happened (0: no failure recorded) */
} store_copy_state;

/* The program's copy state (all zero when none is stored). 0, or -1 with err. */
int store_copy_state_get(store *s, const char *program_id, store_copy_state *out, char *err,
                         size_t errlen);
/* The same for n programs in one round trip; out has room for n. */
int store_copy_state_get_many(store *s, size_t n, const char *const *program_ids,
                              store_copy_state *out, char *err, size_t errlen);
/* Records a failed copy (st as it now stands: failures, next_ms and the error) and schedules
 * the next try at st->next_ms, in one transaction. 0 or -1. */
int store_copy_failed(store *s, const char *program_id, const store_copy_state *st, char *err,
                      size_t errlen);
/* Forgets the program's failures, error and scheduled try (a copy succeeded, or the mapping
 * is gone). 0 or -1. */
int store_copy_clear(store *s, const char *program_id, char *err, size_t errlen);
/* Ends the program's backoff so that the next copy goes at once (a mapping was created or
 * enabled); the last error stays until a copy replaces or clears it. 0 or -1. */
int store_copy_retry_now(store *s, const char *program_id, char *err, size_t errlen);
/* Takes up to max programs whose next try is due by now_ms off the schedule (each is taken by
 * one caller only, whatever the number of processes); *out: malloc'd ids, caller frees each
 * and the array. Returns the count, or -1 with err. */
long store_copy_due_take(store *s, int64_t now_ms, size_t max, char ***out, char *err,
                         size_t errlen);
/* ---- issue 21: the queues by direction, dead letters many at a time ---- */

/* The events waiting to be written to one CRM: queued (also held by a worker), waiting for a
 * retry, or parked while its daily allowance is spent. oldest_age_s: seconds since the
 * oldest of them was received (of the head of its queue, its oldest retry and the head of
 * the allowance list); 0 when none wait. */
typedef struct {
    long long depth;
    double oldest_age_s;
} store_queue_way;

typedef struct {
    char program_id[EV_NUMID_MAX];
    long long parked;
} store_parked_count;

/* The queues at one moment (one script): depth is store_queue_stats's (everything waiting,
 * with the events parked by disabled mappings); oldest_age_s the older of the two ways;
 * parked the programs whose disabled mapping holds events, most first (malloc'd, see
 * store_queue_detail_free). Retries scheduled by a version without cs:retry:recv:<queue>
 * count in depth only, until they come due. 0, or -1 with err. */
typedef struct {
    long long depth;
    double oldest_age_s;
    store_queue_way to_salesforce, to_marketo;
    store_parked_count *parked;
    size_t nparked;
} store_queue_detail;
int store_queue_detail_get(store *s, store_queue_detail *out, char *err, size_t errlen);
void store_queue_detail_free(store_queue_detail *d);

/* A place in the dead-letter index (cs:deadletters, scored by when each was made): at_ms and
 * id of the last dead letter looked at. */
typedef struct {
    int64_t at_ms; /* < 0: no place, start from the newest */
    char id[48];
} store_dead_pos;

/* One dead letter as store_dead_scan reads it. */
typedef struct {
    char id[48];
    int64_t at_ms;
    char *item; /* its JSON as store_dead_list lists it (without the id fixed up); NULL when
                   it was replayed or deleted while being read */
    size_t len;
    bool unusable; /* a received item that never was an event (store_enqueue_with_dead) */
} store_dead_entry;

/* Up to max dead letters made between from_ms and to_ms (inclusive), newest first, after
 * the place `after` (NULL: from the newest). *out is malloc'd (store_dead_entries_free);
 * returns how many, or -1 with err. Reads only. */
long store_dead_scan(store *s, int64_t from_ms, int64_t to_ms, const store_dead_pos *after,
                     size_t max, store_dead_entry **out, char *err, size_t errlen);
void store_dead_entries_free(store_dead_entry *e, size_t n);

/* store_dead_replay for each of n ids, in one round trip, the same script for each: rc[i] is
 * 1 when ids[i] was queued again, 0 when there was nothing to queue (gone, or an unusable
 * item). 0, or -1 with err when Redis failed (the ids before the failure may be queued). */
int store_dead_replay_many(store *s, const char *const *ids, size_t n, int *rc, char *err,
                           size_t errlen);

#endif
