/* store_mappings — the service's settings and bookkeeping in Redis: mappings, the global
 * switch, the audit log, the workers' progress, pollers' values, program copies.
 *
 * Owns (campaign ids in keys are their first 15 characters):
 *   cs:mapping:<programId>    a mapping (JSON, status_map.h)
 *   cs:mapping:campaign:<campaignId>  the program id mapping the campaign
 *   cs:mappings               the program ids (zset, scored by the id: listed in order)
 *   cs:sync:enabled           global switch ("1"/"0")
 *   cs:audit                  the audit log: a stream of JSON texts, capped near
 *                             STORE_AUDIT_MAX
 *   cs:workers:progress       when a worker last finished events (ms)
 *   cs:kv:<name>              small named values pollers keep between runs
 *   cs:programs:due           programs whose channel and costs should be copied at once
 *   cs:program:copy:<programId>  hash: failures (copies failed in a row), next (ms: no copy
 *                             before then), crm, code, message and at (ms) of the last
 *                             failure
 *   cs:programs:backoff       zset: programs waiting for their next try, by its time
 * Storing and deleting a mapping with its campaign index are each one script
 * (service/lua/). */
#ifndef CS_STORE_MAPPINGS_H
#define CS_STORE_MAPPINGS_H

#include "status_map.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the switch ---- */

/* The global switch; store_sync_init writes the default only when none is stored. */
int store_sync_init(store *s, bool enabled, char *err, size_t errlen);
int store_sync_get(store *s, bool *enabled, char *err, size_t errlen);
int store_sync_set(store *s, bool enabled, char *err, size_t errlen);

/* ---- mappings ---- */

/* The mapping of a program, or of a campaign (out filled when found). */
store_found store_mapping_get(store *s, const char *program_id, mapping *out, char *err,
                              size_t errlen);
store_found store_mapping_by_campaign(store *s, const char *campaign_id, mapping *out, char *err,
                                      size_t errlen);

typedef enum {
    STORE_MAPPING_ERROR = -1,   /* err says why */
    STORE_MAPPING_REPLACED = 0, /* the program had a mapping */
    STORE_MAPPING_CREATED = 1,
    STORE_MAPPING_CONFLICT = 2, /* refused: conflict_program already maps the campaign */
} store_mapping_put_rc;
/* Stores m; conflict_program (clen bytes) is filled on STORE_MAPPING_CONFLICT. */
store_mapping_put_rc store_mapping_put(store *s, const mapping *m, char *conflict_program,
                                       size_t clen, char *err, size_t errlen);
/* STORE_FOUND when deleted, STORE_NOT_FOUND when there was none. */
store_found store_mapping_delete(store *s, const char *program_id, char *err, size_t errlen);
/* Mappings ordered by program id, after cursor (a program id, "" for the start). Returns
 * the count put in out (room for limit), *next = last id when more follow, else "". */
long store_mapping_list(store *s, const char *cursor, long limit, mapping *out, char *next,
                        size_t nextlen, char *err, size_t errlen);

/* ---- the audit log ---- */

/* The audit log (cs:audit, a stream capped near STORE_AUDIT_MAX): one JSON text per applied
 * change. store_audit_list answers newest first, filtered by program and/or campaign id
 * ("" = any), as a malloc'd JSON array text; cursor/next are entry ids. */
#define STORE_AUDIT_MAX 100000
int store_audit_add(store *s, const char *const *entries, size_t n, char *err, size_t errlen);
char *store_audit_list(store *s, const char *program_id, const char *campaign_id,
                       const char *cursor, long limit, char *next, size_t nextlen, char *err,
                       size_t errlen);

/* ---- progress, pollers' values ---- */

int store_progress_mark(store *s, char *err, size_t errlen);
/* Milliseconds of the last progress, 0 when none yet. */
int store_progress_get(store *s, int64_t *ms, char *err, size_t errlen);

/* Small named values that pollers keep between runs (cursors, last written fields); get:
 * STORE_NOT_FOUND (out "") also when the value does not fit in size. */
store_found store_kv_get(store *s, const char *key, char *out, size_t size, char *err,
                         size_t errlen);
int store_kv_set(store *s, const char *key, const char *value, char *err, size_t errlen);

/* ---- program copies (F2/F3) ---- */

/* Programs whose channel and costs should be copied at once (new or enabled mapping). */
int store_program_due_add(store *s, const char *program_id, char *err, size_t errlen);
/* Takes up to max due program ids (removing them); caller frees each and the array. */
long store_program_due_take(store *s, size_t max, char ***out, char *err, size_t errlen);

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

#endif
