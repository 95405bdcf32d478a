/* tzwatch — metric, warning and /readyz note of the time-zone guard. See include/tzwatch.h. */
#include "tzwatch.h"

#include "log.h"
#include "metrics.h"
#include "store_trace.h"
#include "tzguard.h"

#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#define WARN_EVERY_MS 60000

/* Process-wide on purpose: a log throttle (a warning at most once a minute per process, as
 * LOG_KV_LIMITED keeps one per call site); nothing else reads it. */
static _Atomic int64_t last_warning_ms;

long tzwatch_configured_offset(int64_t at_ms) {
    time_t t = (time_t)(at_ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm)) return 0;
    return tm.tm_gmtoff;
}

void tzwatch_seen(const char *configured, const event *ev, int offset_hours) {
    char hours[16];
    snprintf(hours, sizeof hours, "%d", offset_hours);
    metrics_add(M_MKTO_TZ_SUSPECT, 1, hours);
    int64_t now = event_now_ms(), last = atomic_load(&last_warning_ms);
    if (now - last < WARN_EVERY_MS || !atomic_compare_exchange_strong(&last_warning_ms, &last, now))
        return;
    char note[300], occurred[40], received[40];
    tzguard_note(offset_hours, configured, tzwatch_configured_offset(ev->received_ms),
                 ev->received_ms, note, sizeof note);
    event_format_time(ev->source_ts_ms, occurred, sizeof occurred);
    event_format_time(ev->received_ms, received, sizeof received);
    LOG_KV(LOG_WARN, "marketo: occurredAt is whole hours from the receive time", "hint", note,
           "event_id", ev->id, "occurred_at", occurred, "received_at", received, "offset_hours",
           hours);
}

int tzwatch_ready(void *ud, store *st, char *detail, size_t len) {
    const struct config *cfg = ud;
    char err[STORE_ERR_MAX];
    store_tz_suspect tz;
    store_found rc = st ? store_tz_get(st, &tz, err, sizeof err) : STORE_ERROR;
    if (rc == STORE_NOT_FOUND) return 0;
    if (rc == STORE_ERROR) { /* the redis check says why (this text stays the same, for monitors) */
        snprintf(detail, len, "unknown: the evidence in Redis cannot be read");
        return -1;
    }
    char note[300], last[40];
    tzguard_note(tz.offset_hours, cfg->marketo_timezone, tzwatch_configured_offset(tz.received_ms),
                 tz.received_ms, note, sizeof note);
    event_format_time(tz.received_ms, last, sizeof last);
    snprintf(detail, len,
             "suspect: %s (%lld suspect Marketo event%s, the last %s received at %s; this note "
             "clears an hour after the last)",
             note, tz.count, tz.count == 1 ? "" : "s", tz.event_id, last);
    return -1;
}
