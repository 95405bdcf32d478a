/* metrics — counters, gauges and histograms, rendered as Prometheus text format 0.0.4.
 *
 * Owns the process-wide registry and the list of metric families that SPEC section 9 makes a
 * contract (the M_* handles below, registered by metrics_init). A family has a fixed set of
 * label names; each distinct set of label values is a series created on first use. Updates
 * take a short per-family lock, so any thread may update any metric. Gauges whose value
 * lives elsewhere (queue depth in Redis) are refreshed by collect callbacks that run just
 * before rendering. */
#ifndef CS_METRICS_H
#define CS_METRICS_H

#include <stddef.h>

typedef struct metric metric;
typedef enum { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type;

/* Registers a family. labels: comma-separated label names or NULL; buckets: upper bounds
 * for histograms (ascending, +Inf implied). Returns NULL when the name is already taken or
 * on running out of memory. */
metric *metrics_register(metric_type type, const char *name, const char *help, const char *labels,
                         const double *buckets, int nbuckets);

/* Label values follow v, one const char * per label name of the family. */
void metrics_add(metric *m, double v, ...);     /* counter or gauge += v */
void metrics_set(metric *m, double v, ...);     /* gauge = v */
void metrics_observe(metric *m, double v, ...); /* histogram sample */

/* Replaces every series of a family with one label (a gauge refreshed from elsewhere) by n
 * series, values[i] labelled label_values[i], at once: a render sees the old set or the new. */
void metrics_set_all(metric *m, size_t n, const char *const *label_values, const double *values);

/* Current value of a counter/gauge series (0 when absent); for tests and /readyz. */
double metrics_value(metric *m, ...);

typedef void (*metrics_collect_fn)(void *ud);
/* Runs fn before each render; at most 16 callbacks: 0, or -1 when that many are registered. */
int metrics_on_collect(metrics_collect_fn fn, void *ud);
void metrics_remove_collect(metrics_collect_fn fn, void *ud);

/* The whole registry as Prometheus text; caller frees. */
char *metrics_render(size_t *len);

/* Registers the SPEC section 9 families and campaign_sync_build_info, and starts the series
 * dashboards expect at 0. Idempotent. Returns 0, or -1 with err naming the family that could
 * not be registered (its name taken, or out of memory); metrics_cleanup frees what was. */
int metrics_init(const char *version, char *err, size_t errlen);

/* Frees every family (end of process, tests): metrics_init's pair. */
void metrics_cleanup(void);

/* The SPEC section 9 families (valid after metrics_init). */
extern metric *M_EVENTS_RECEIVED;  /* counter {source,outcome} */
extern metric *M_EVENTS_APPLIED;   /* counter {target} */
extern metric *M_EVENTS_DROPPED;   /* counter {reason} */
extern metric *M_DEAD_LETTERS;     /* counter */
extern metric *M_RETRIES;          /* counter {target} */
extern metric *M_QUEUE_DEPTH;      /* gauge {queue}: "" (the total), "salesforce", "marketo" */
extern metric *M_QUEUE_OLDEST_AGE; /* gauge {queue}: as M_QUEUE_DEPTH */
extern metric *M_CRM_REQUESTS;     /* counter {target,code} */
extern metric *M_CRM_ERRORS;       /* counter {target,code} */
extern metric *M_CRM_SECONDS;      /* histogram {target} */
extern metric *M_SF_API_USAGE;     /* gauge {kind} */
extern metric *M_RECONCILE_DIFFS;  /* counter {kind} */
extern metric *M_APPLY_LATENCY;    /* histogram */
extern metric *M_HTTP_REQUESTS;    /* counter {route,code} */
extern metric *M_HTTP_SECONDS;     /* histogram {route} */
/* Beyond SPEC section 9. */
extern metric *M_CRM_QUOTA_WAITING;   /* gauge {target}: 1 while a spent allowance pauses calls */
extern metric *M_SF_DELETED_GAPS;     /* counter: delete log gaps (reconciliation queued) */
extern metric *M_AUTH_FAILURES;       /* counter {route}: 401s (not in SPEC section 9) */
extern metric *M_PROGRAM_COPY_ERRORS; /* counter {target,code}: failed F2/F3 copies */
/* Issue 21. */
extern metric *M_PARKED_EVENTS;           /* gauge {program_id}: events of a disabled mapping */
extern metric *M_WEBHOOK_PREVIOUS_SECRET; /* counter: Marketo requests with the old secret */
/* counter {offset_hours}: Marketo events whose occurredAt is whole hours from their receive
 * time (tzguard.h): MARKETO_TIMEZONE is likely wrong */
extern metric *M_MKTO_TZ_SUSPECT;
/* Issue 19. */
extern metric *M_JOBS_RUNNING;        /* gauge {kind}: jobs this process works on */
extern metric *M_JOB_SECONDS;         /* histogram {kind}: a job's start to its end */
extern metric *M_CORRECTIONS_WAITING; /* gauge {queue}: jobs' corrections not yet applied */

#endif
