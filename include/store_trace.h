/* store_trace — each person's trace in Redis, and the evidence of a wrong MARKETO_TIMEZONE.
 *
 * Key layout (every key expires):
 *   cs:trace:<person>         the person's trace: a sorted set of entry JSON texts (trace.h)
 *                             scored by the time each was recorded (ms). <person> is
 *                             e:<email in lower case>, or, for an event whose person had no
 *                             email known yet, m:<Marketo lead id> or s:<Salesforce id, 15
 *                             characters>. Entries older than the retention are removed and
 *                             at most max_per_person of the newest are kept, at each write;
 *                             the key expires retention after its last write.
 *   cs:trace:id:m:<leadId>, cs:trace:id:s:<personId15>
 *                             which person key (e:<email>) a Marketo lead id or a Salesforce
 *                             Lead/Contact id was last seen with (same expiry)
 *   cs:tz:marketo             the last Marketo event whose occurredAt sat a whole number of
 *                             hours from its receive time (tzguard.h): a hash of offset_h,
 *                             count, last_ms, event_id, occurred_ms, received_ms, kept
 *                             STORE_TZ_TTL_S after the last such event
 * Writes go with the audit log's in one round trip (the worker's batch end). */
#ifndef CS_STORE_TRACE_H
#define CS_STORE_TRACE_H

#include "event.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_TZ_TTL_S 3600

/* One entry for one person. Any of email, mkto_lead and sf_person may be "" (not known);
 * an entry with none of them is not kept. */
typedef struct {
    const char *email, *mkto_lead, *sf_person;
    int64_t at_ms;
    const char *entry; /* JSON text */
} store_trace_item;

/* How long and how many entries a person's trace keeps (TRACE_RETENTION_DAYS,
 * TRACE_MAX_PER_PERSON). retention_s 0: no trace is kept. */
typedef struct {
    long retention_s;
    long max_per_person;
} store_trace_limits;

/* The limits set by TRACE_RETENTION_DAYS and TRACE_MAX_PER_PERSON. */
store_trace_limits store_trace_limits_of(const struct config *cfg);

/* A Marketo event whose occurredAt looks rendered in another time zone. */
typedef struct {
    int offset_hours; /* receive time minus occurredAt, in whole hours */
    long long count;  /* such events since the evidence was last empty (read only) */
    int64_t last_ms;  /* when the last one was seen */
    char event_id[EV_ID_MAX];
    int64_t occurred_ms, received_ms;
} store_tz_suspect;

/* Appends the audit entries audit[0..naudit) (as store_audit_add does), the trace entries
 * items[0..n) and, when tz is not NULL, the time-zone evidence, in one round trip. 0, or -1
 * with err (a trace is a help for people, not a record the sync relies on: the caller logs
 * and goes on). */
int store_trace_write(store *s, const char *const *audit, size_t naudit,
                      const store_trace_item *items, size_t n, const store_tz_suspect *tz,
                      const store_trace_limits *lim, char *err, size_t errlen);

/* Records in the trace of the person of the recorded membership (campaign, Marketo lead)
 * that the deleted-records poll dropped the deletion of CampaignMember cm_id (its
 * deletedDate as Salesforce gave it) as the service's own: an echo. 0, or -1 with err. */
int store_trace_own_deletion(store *s, const struct config *cfg, const char *campaign,
                             const char *lead, const char *cm_id, const char *deleted_date,
                             char *err, size_t errlen);

typedef enum { STORE_TRACE_BY_EMAIL, STORE_TRACE_BY_MKTO, STORE_TRACE_BY_SF } store_trace_by;

/* The newest `limit` entries (at most 1000) of the person named by an email (any case), a
 * Marketo lead id or a Salesforce Lead/Contact id (15 or 18 characters), recorded at or after
 * since_ms, newest first: the person's own key, the keys of the ids its entries name, and,
 * for an id, the person key it was last seen with. A malloc'd JSON array text, or NULL with
 * err. */
char *store_trace_read(store *s, store_trace_by by, const char *value, long limit, int64_t since_ms,
                       char *err, size_t errlen);

/* The time-zone evidence: STORE_FOUND with *out filled, STORE_NOT_FOUND when there is none
 * (none in the last STORE_TZ_TTL_S). */
store_found store_tz_get(store *s, store_tz_suspect *out, char *err, size_t errlen);

#endif
