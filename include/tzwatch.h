/* tzwatch — what the service does when Marketo's times look rendered in another time zone
 * than MARKETO_TIMEZONE (tzguard.h decides which events are suspect): counts them
 * (campaign_sync_marketo_timezone_suspect_total{offset_hours}), warns at most once a minute
 * per process, and shows the evidence that the worker keeps in Redis (store_trace.h,
 * cs:tz:marketo, an hour after the last suspect event) in every process's /readyz, under
 * `marketo_timezone`, without failing readiness. */
#ifndef CS_TZWATCH_H
#define CS_TZWATCH_H

#include "config.h"
#include "event.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

/* Counts a suspect event (offset_hours from tzguard_offset_hours, not 0) and logs a warning
 * naming the likely zone, at most once a minute. configured: MARKETO_TIMEZONE. */
void tzwatch_seen(const char *configured, const event *ev, int offset_hours);

/* MARKETO_TIMEZONE's UTC offset at at_ms, in seconds (the process runs in that zone). */
long tzwatch_configured_offset(int64_t at_ms);

/* The /readyz check (ud: the struct config; st: the asking thread's Redis handle, NULL when
 * out of memory): 0 when no suspect event was seen in the last
 * hour; otherwise -1 with the note (it is registered as not required). */
int tzwatch_ready(void *ud, store *st, char *detail, size_t len);

#endif
