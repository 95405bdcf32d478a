/* metrics — registry and Prometheus text rendering. See include/metrics.h. */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS  4
#define MAX_BUCKETS 24
#define MAX_COLLECT 16

typedef struct series {
    char *values[MAX_LABELS];
    double value;               /* counter/gauge value; histogram sum */
    unsigned long long count;   /* histogram sample count */
    unsigned long long *bucket; /* histogram: per-bucket (non-cumulative) counts */
    struct series *next;
} series;

struct metric {
    metric_type type;
    char *name, *help;
    int nlabels;
    char *labels[MAX_LABELS];
    int nbuckets;
    double buckets[MAX_BUCKETS];
    pthread_mutex_t lock;
    series *head, *tail;
    metric *next;
};

/* Process-wide on purpose: one registry per process, as Prometheus client libraries keep it,
 * since /metrics exposes the process (every module counts into the same exposition). */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static metric *reg_head, *reg_tail;
static struct {
    metrics_collect_fn fn;
    void *ud;
} collectors[MAX_COLLECT];

metric *M_EVENTS_RECEIVED, *M_EVENTS_APPLIED, *M_EVENTS_DROPPED, *M_DEAD_LETTERS, *M_RETRIES,
    *M_QUEUE_DEPTH, *M_QUEUE_OLDEST_AGE, *M_CRM_REQUESTS, *M_CRM_ERRORS, *M_CRM_SECONDS,
    *M_SF_API_USAGE, *M_RECONCILE_DIFFS, *M_APPLY_LATENCY, *M_HTTP_REQUESTS, *M_HTTP_SECONDS;
metric *M_CRM_QUOTA_WAITING, *M_SF_DELETED_GAPS;
metric *M_AUTH_FAILURES;
metric *M_PROGRAM_COPY_ERRORS;
metric *M_PARKED_EVENTS, *M_WEBHOOK_PREVIOUS_SECRET;
metric *M_MKTO_TZ_SUSPECT;
metric *M_CORRECTIONS_WAITING, *M_JOBS_RUNNING, *M_JOB_SECONDS;

/* Copies the comma-separated label names into m (at most MAX_LABELS): false when a copy
 * fails (the names copied so far stay in m for the caller to free). */
static bool copy_labels(metric *m, const char *labels) {
    if (!labels || !*labels) return true;
    char *copy = strdup(labels), *save = NULL;
    if (!copy) return false;
    bool ok = true;
    for (char *t = strtok_r(copy, ",", &save); t && m->nlabels < MAX_LABELS;
         t = strtok_r(NULL, ",", &save)) {
        m->labels[m->nlabels] = strdup(t);
        if (!m->labels[m->nlabels]) {
            ok = false;
            break;
        }
        m->nlabels++;
    }
    free(copy);
    return ok;
}

metric *metrics_register(metric_type type, const char *name, const char *help, const char *labels,
                         const double *buckets, int nbuckets) {
    if (nbuckets > MAX_BUCKETS) return NULL;
    metric *m = NULL;
    pthread_mutex_lock(&reg_lock);
    for (metric *o = reg_head; o; o = o->next)
        if (strcmp(o->name, name) == 0) goto out;
    m = calloc(1, sizeof *m);
    if (!m) goto out;
    m->type = type;
    m->name = strdup(name);
    m->help = strdup(help);
    if (type == METRIC_HISTOGRAM) {
        m->nbuckets = nbuckets;
        memcpy(m->buckets, buckets, sizeof(double) * (size_t)nbuckets);
    }
    if (!m->name || !m->help || !copy_labels(m, labels) ||
        pthread_mutex_init(&m->lock, NULL) != 0) {
        for (int i = 0; i < m->nlabels; i++)
            free(m->labels[i]);
        free(m->name);
        free(m->help);
        free(m);
        m = NULL;
        goto out;
    }
    if (reg_tail)
        reg_tail->next = m;
    else
        reg_head = m;
    reg_tail = m;
out:
    pthread_mutex_unlock(&reg_lock);
    return m;
}

/* Finds or creates the series for the label values in ap; called with m->lock held. */
static series *series_for(metric *m, va_list ap) {
    const char *vals[MAX_LABELS];
    for (int i = 0; i < m->nlabels; i++) {
        vals[i] = va_arg(ap, const char *);
        if (!vals[i]) vals[i] = "";
    }
    for (series *s = m->head; s; s = s->next) {
        int i = 0;
        while (i < m->nlabels && strcmp(s->values[i], vals[i]) == 0)
            i++;
        if (i == m->nlabels) return s;
    }
    series *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    for (int i = 0; i < m->nlabels; i++)
        s->values[i] = strdup(vals[i]);
    if (m->type == METRIC_HISTOGRAM) s->bucket = calloc((size_t)m->nbuckets + 1, sizeof *s->bucket);
    if (m->tail)
        m->tail->next = s;
    else
        m->head = s;
    m->tail = s;
    return s;
}

void metrics_add(metric *m, double v, ...) {
    if (!m) return;
    va_list ap;
    va_start(ap, v);
    pthread_mutex_lock(&m->lock);
    series *s = series_for(m, ap);
    if (s) s->value += v;
    pthread_mutex_unlock(&m->lock);
    va_end(ap);
}

void metrics_set(metric *m, double v, ...) {
    if (!m) return;
    va_list ap;
    va_start(ap, v);
    pthread_mutex_lock(&m->lock);
    series *s = series_for(m, ap);
    if (s) s->value = v;
    pthread_mutex_unlock(&m->lock);
    va_end(ap);
}

void metrics_observe(metric *m, double v, ...) {
    if (!m || m->type != METRIC_HISTOGRAM) return;
    va_list ap;
    va_start(ap, v);
    pthread_mutex_lock(&m->lock);
    series *s = series_for(m, ap);
    if (s && s->bucket) {
        int i = 0;
        while (i < m->nbuckets && v > m->buckets[i])
            i++;
        s->bucket[i]++;
        s->count++;
        s->value += v;
    }
    pthread_mutex_unlock(&m->lock);
    va_end(ap);
}

double metrics_value(metric *m, ...) {
    if (!m) return 0;
    va_list ap;
    va_start(ap, m);
    pthread_mutex_lock(&m->lock);
    series *s = series_for(m, ap);
    double v = s ? (m->type == METRIC_HISTOGRAM ? (double)s->count : s->value) : 0;
    pthread_mutex_unlock(&m->lock);
    va_end(ap);
    return v;
}

int metrics_on_collect(metrics_collect_fn fn, void *ud) {
    int rc = -1;
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < MAX_COLLECT && rc != 0; i++)
        if (!collectors[i].fn) {
            collectors[i].fn = fn;
            collectors[i].ud = ud;
            rc = 0;
        }
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

void metrics_remove_collect(metrics_collect_fn fn, void *ud) {
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < MAX_COLLECT; i++)
        if (collectors[i].fn == fn && collectors[i].ud == ud) collectors[i].fn = NULL;
    pthread_mutex_unlock(&reg_lock);
}

/* Growable text for rendering; the whole output is small (tens of KiB). */
typedef struct {
    char *b;
    size_t n, cap;
    bool oom;
} text;

static void tput(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tput(text *t, const char *fmt, ...) {
    if (t->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(t->b + t->n, t->cap - t->n, fmt, ap);
        va_end(ap);
        if (w < 0) {
            t->oom = true;
            return;
        }
        if ((size_t)w < t->cap - t->n) {
            t->n += (size_t)w;
            return;
        }
        size_t ncap = t->cap * 2 + (size_t)w;
        char *nb = realloc(t->b, ncap);
        if (!nb) {
            t->oom = true;
            return;
        }
        t->b = nb;
        t->cap = ncap;
    }
}

/* Label values escaped as the exposition format asks: backslash, quote, newline. */
static void put_label_value(text *t, const char *v) {
    for (; *v; v++) {
        if (*v == '\\')
            tput(t, "\\\\");
        else if (*v == '"')
            tput(t, "\\\"");
        else if (*v == '\n')
            tput(t, "\\n");
        else
            tput(t, "%c", *v);
    }
}

/* A label whose value is empty is left out: Prometheus takes a label with an empty value for
 * one that does not exist (https://prometheus.io/docs/concepts/data_model/), so a family can
 * hold its total as the series without the label (campaign_sync_queue_depth). */
static void put_labels(text *t, const metric *m, const series *s, const char *le) {
    bool open = false;
    for (int i = 0; i < m->nlabels; i++) {
        if (!*s->values[i]) continue;
        tput(t, "%s%s=\"", open ? "," : "{", m->labels[i]);
        put_label_value(t, s->values[i]);
        tput(t, "\"");
        open = true;
    }
    if (le) {
        tput(t, "%sle=\"%s\"", open ? "," : "{", le);
        open = true;
    }
    if (open) tput(t, "}");
}

static void put_number(text *t, double v) {
    if (isinf(v))
        tput(t, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        tput(t, "%.0f", v);
    else
        tput(t, "%.9g", v);
}

char *metrics_render(size_t *len) {
    metrics_collect_fn fns[MAX_COLLECT];
    void *uds[MAX_COLLECT];
    int nc = 0;
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < MAX_COLLECT; i++)
        if (collectors[i].fn) {
            fns[nc] = collectors[i].fn;
            uds[nc++] = collectors[i].ud;
        }
    pthread_mutex_unlock(&reg_lock);
    for (int i = 0; i < nc; i++)
        fns[i](uds[i]);

    text t = {malloc(8192), 0, 8192, false};
    if (!t.b) return NULL;
    static const char *const tname[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&reg_lock);
    for (metric *m = reg_head; m; m = m->next) {
        tput(&t, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, tname[m->type]);
        pthread_mutex_lock(&m->lock);
        for (series *s = m->head; s; s = s->next) {
            if (m->type != METRIC_HISTOGRAM) {
                tput(&t, "%s", m->name);
                put_labels(&t, m, s, NULL);
                tput(&t, " ");
                put_number(&t, s->value);
                tput(&t, "\n");
                continue;
            }
            unsigned long long cum = 0;
            char le[32];
            for (int i = 0; i <= m->nbuckets; i++) {
                cum += s->bucket[i];
                if (i < m->nbuckets)
                    snprintf(le, sizeof le, "%g", m->buckets[i]);
                else
                    snprintf(le, sizeof le, "+Inf");
                tput(&t, "%s_bucket", m->name);
                put_labels(&t, m, s, le);
                tput(&t, " %llu\n", cum);
            }
            tput(&t, "%s_sum", m->name);
            put_labels(&t, m, s, NULL);
            tput(&t, " ");
            put_number(&t, s->value);
            tput(&t, "\n%s_count", m->name);
            put_labels(&t, m, s, NULL);
            tput(&t, " %llu\n", s->count);
        }
        pthread_mutex_unlock(&m->lock);
    }
    pthread_mutex_unlock(&reg_lock);
    if (t.oom) {
        free(t.b);
        return NULL;
    }
    if (len) *len = t.n;
    return t.b;
}

static const double latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,  0.5,    1,     2.5,  5,     10,   30};
#define NLAT ((int)(sizeof latency_buckets / sizeof latency_buckets[0]))
static const double job_buckets[] = {1, 5, 15, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600};
#define NJOB ((int)(sizeof job_buckets / sizeof job_buckets[0]))

static metric *build_info; /* campaign_sync_build_info, set once by metrics_init */

/* One family metrics_init registers, and the handle it sets. */
typedef struct {
    metric **handle;
    metric_type type;
    const char *name, *help;
    const char *labels; /* comma-separated, or NULL */
    const double *buckets;
    int nbuckets;
} metric_def;

/* In the order /metrics lists them. */
static const metric_def families[] = {
    {&M_EVENTS_RECEIVED, METRIC_COUNTER, "campaign_sync_events_received_total",
     "Events received by source and outcome (accepted, duplicate, spooled, rejected).",
     "source,outcome", NULL, 0},
    {&M_EVENTS_APPLIED, METRIC_COUNTER, "campaign_sync_events_applied_total",
     "Events applied to the target CRM.", "target", NULL, 0},
    {&M_EVENTS_DROPPED, METRIC_COUNTER, "campaign_sync_events_dropped_total",
     "Events dropped without a CRM write, by reason.", "reason", NULL, 0},
    {&M_DEAD_LETTERS, METRIC_COUNTER, "campaign_sync_dead_letters_total",
     "Events moved to the dead-letter list.", NULL, NULL, 0},
    {&M_RETRIES, METRIC_COUNTER, "campaign_sync_retries_total",
     "Retries scheduled after a retryable CRM failure.", "target", NULL, 0},
    {&M_QUEUE_DEPTH, METRIC_GAUGE, "campaign_sync_queue_depth",
     "Events received and not yet applied, dropped or dead-lettered. queue=\"salesforce\" or "
     "\"marketo\": the CRM they are to be written to (queued, retrying or waiting for its "
     "daily allowance); without queue: the total, also counting the events parked by a "
     "disabled mapping (so sum() over all series counts twice).",
     "queue", NULL, 0},
    {&M_QUEUE_OLDEST_AGE, METRIC_GAUGE, "campaign_sync_queue_oldest_age_seconds",
     "Age of the oldest event still waiting. queue=\"salesforce\" or \"marketo\": the CRM it "
     "is to be written to; without queue: the older of the two (events parked by a disabled "
     "mapping are not counted).",
     "queue", NULL, 0},
    {&M_CRM_REQUESTS, METRIC_COUNTER, "campaign_sync_crm_requests_total",
     "Requests made to a CRM, by HTTP status.", "target,code", NULL, 0},
    {&M_CRM_ERRORS, METRIC_COUNTER, "campaign_sync_crm_errors_total",
     "CRM errors by the CRM's own error code.", "target,code", NULL, 0},
    {&M_CRM_SECONDS, METRIC_HISTOGRAM, "campaign_sync_crm_request_seconds",
     "Duration of CRM requests.", "target", latency_buckets, NLAT},
    {&M_SF_API_USAGE, METRIC_GAUGE, "campaign_sync_salesforce_api_usage",
     "Salesforce API usage from Sforce-Limit-Info.", "kind", NULL, 0},
    {&M_RECONCILE_DIFFS, METRIC_COUNTER, "campaign_sync_reconcile_differences_total",
     "Differences found by reconciliation, by kind.", "kind", NULL, 0},
    {&M_APPLY_LATENCY, METRIC_HISTOGRAM, "campaign_sync_apply_latency_seconds",
     "Time from receiving an event to applying it, by target CRM.", "target", latency_buckets,
     NLAT},
    {&M_HTTP_REQUESTS, METRIC_COUNTER, "campaign_sync_http_requests_total",
     "HTTP requests served, by route template and status.", "route,code", NULL, 0},
    {&M_HTTP_SECONDS, METRIC_HISTOGRAM, "campaign_sync_http_request_seconds",
     "HTTP request duration by route template.", "route", latency_buckets, NLAT},
    {&M_CRM_QUOTA_WAITING, METRIC_GAUGE, "campaign_sync_crm_quota_waiting",
     "1 while calls to a CRM wait because its daily API allowance is spent.", "target", NULL, 0},
    {&M_SF_DELETED_GAPS, METRIC_COUNTER, "campaign_sync_salesforce_deleted_gaps_total",
     "Times Salesforce's delete log no longer reached back to where the deleted-records poll "
     "had got (deletions in between unseen); each queues a reconciliation of every mapping.",
     NULL, NULL, 0},
    {&build_info, METRIC_GAUGE, "campaign_sync_build_info",
     "Build information; the value is always 1.", "version", NULL, 0},
    /* Its series start at 0 per checked route when a server starts (http_server). */
    {&M_AUTH_FAILURES, METRIC_COUNTER, "campaign_sync_auth_failures_total",
     "Requests refused 401 (missing or wrong secret, token or bearer), by route template.", "route",
     NULL, 0},
    {&M_PROGRAM_COPY_ERRORS, METRIC_COUNTER, "campaign_sync_program_copy_errors_total",
     "Failed copies of a program's channel and costs to its campaign (F2/F3), by CRM and the "
     "CRM's error code.",
     "target,code", NULL, 0},
    /* Issue 21. */
    {&M_PARKED_EVENTS, METRIC_GAUGE, "campaign_sync_parked_events",
     "Events of a disabled mapping, waiting for it to be enabled again, by Marketo program "
     "(programs with none have no series).",
     "program_id", NULL, 0},
    {&M_WEBHOOK_PREVIOUS_SECRET, METRIC_COUNTER, "campaign_sync_webhook_previous_secret_total",
     "Marketo webhook requests accepted with MARKETO_WEBHOOK_SECRET_PREVIOUS, the secret being "
     "rotated out; once it stays flat, Marketo sends the new one.",
     NULL, NULL, 0},
    {&M_MKTO_TZ_SUSPECT, METRIC_COUNTER, "campaign_sync_marketo_timezone_suspect_total",
     "Marketo events whose occurredAt lies a whole number of hours from their receive time "
     "(MARKETO_TIMEZONE is likely wrong), by that number of hours.",
     "offset_hours", NULL, 0},
    /* Issue 19: jobs (backfill, reconciliation). */
    {&M_JOBS_RUNNING, METRIC_GAUGE, "campaign_sync_jobs_running",
     "Jobs this process is working on (listing and comparing a mapping's members), by kind "
     "(backfill, reconcile); sum() over processes gives every such job.",
     "kind", NULL, 0},
    {&M_JOB_SECONDS, METRIC_HISTOGRAM, "campaign_sync_job_duration_seconds",
     "Jobs from their start to their end (done, failed or cancelled), by kind, observed by the "
     "process that ended them.",
     "kind", job_buckets, NJOB},
    {&M_CORRECTIONS_WAITING, METRIC_GAUGE, "campaign_sync_corrections_waiting",
     "Corrections queued by jobs (backfill, reconcile) and not yet applied, dropped or "
     "dead-lettered, by the CRM they are to be written to (queue=\"salesforce\" or "
     "\"marketo\"); not counted in campaign_sync_queue_depth, which is the live changes.",
     "queue", NULL, 0},
};
#define NFAMILIES (sizeof families / sizeof families[0])

/* Series that dashboards and alerts expect to exist at 0 from the start. */
static void start_series(void) {
    static const char *const sources[] = {"salesforce", "marketo"};
    static const char *const outcomes[] = {"accepted", "duplicate", "spooled", "rejected"};
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 4; j++)
            metrics_add(M_EVENTS_RECEIVED, 0, sources[i], outcomes[j]);
        metrics_add(M_EVENTS_APPLIED, 0, sources[i]);
        metrics_add(M_RETRIES, 0, sources[i]);
        metrics_set(M_CRM_QUOTA_WAITING, 0, sources[i]);
        metrics_set(M_CORRECTIONS_WAITING, 0, sources[i]);
    }
    metrics_add(M_SF_DELETED_GAPS, 0);
    static const char *const reasons[] = {"duplicate", "echo",  "stale",
                                          "unmapped",  "empty", "backward_progression"};
    for (int i = 0; i < 6; i++)
        metrics_add(M_EVENTS_DROPPED, 0, reasons[i]);
    metrics_add(M_DEAD_LETTERS, 0);
    /* The total first (no queue label), then each direction. */
    static const char *const queues[] = {"", "salesforce", "marketo"};
    for (int i = 0; i < 3; i++) {
        metrics_set(M_QUEUE_DEPTH, 0, queues[i]);
        metrics_set(M_QUEUE_OLDEST_AGE, 0, queues[i]);
    }
    static const char *const kinds[] = {"missing_in_marketo", "missing_in_salesforce",
                                        "status_differs"};
    for (int i = 0; i < 3; i++)
        metrics_add(M_RECONCILE_DIFFS, 0, kinds[i]);
    metrics_add(M_WEBHOOK_PREVIOUS_SECRET, 0);
    static const char *const job_kinds[] = {"backfill", "reconcile"};
    for (int i = 0; i < 2; i++)
        metrics_set(M_JOBS_RUNNING, 0, job_kinds[i]);
}

int metrics_init(const char *version, char *err, size_t errlen) {
    if (*families[NFAMILIES - 1].handle) return 0; /* registered already */
    for (size_t i = 0; i < NFAMILIES; i++) {
        const metric_def *d = &families[i];
        *d->handle =
            metrics_register(d->type, d->name, d->help, d->labels, d->buckets, d->nbuckets);
        if (!*d->handle) {
            snprintf(err, errlen,
                     "cannot register the metric %s (its name is taken, or out of memory)",
                     d->name);
            return -1;
        }
    }
    metrics_set(build_info, 1, version);
    start_series();
    return 0;
}

void metrics_set_all(metric *m, size_t n, const char *const *label_values, const double *values) {
    if (!m || m->nlabels != 1) return;
    pthread_mutex_lock(&m->lock);
    series *s = m->head;
    while (s) {
        series *next = s->next;
        free(s->values[0]);
        free(s->bucket);
        free(s);
        s = next;
    }
    m->head = m->tail = NULL;
    for (size_t i = 0; i < n; i++) {
        s = calloc(1, sizeof *s);
        if (s) s->values[0] = strdup(label_values[i] ? label_values[i] : "");
        if (!s || !s->values[0]) {
            free(s);
            break;
        }
        s->value = values[i];
        if (m->tail)
            m->tail->next = s;
        else
            m->head = s;
        m->tail = s;
    }
    pthread_mutex_unlock(&m->lock);
}

void metrics_cleanup(void) {
    pthread_mutex_lock(&reg_lock);
    metric *m = reg_head;
    while (m) {
        metric *next = m->next;
        series *s = m->head;
        while (s) {
            series *sn = s->next;
            for (int i = 0; i < m->nlabels; i++)
                free(s->values[i]);
            free(s->bucket);
            free(s);
            s = sn;
        }
        for (int i = 0; i < m->nlabels; i++)
            free(m->labels[i]);
        pthread_mutex_destroy(&m->lock);
        free(m->name);
        free(m->help);
        free(m);
        m = next;
    }
    reg_head = reg_tail = NULL;
    memset(collectors, 0, sizeof collectors);
    for (size_t i = 0; i < NFAMILIES; i++)
        *families[i].handle = NULL;
    pthread_mutex_unlock(&reg_lock);
}
