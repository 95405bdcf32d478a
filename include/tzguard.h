/* tzguard — is MARKETO_TIMEZONE wrong? Marketo renders {{system.dateTime}} in the account's
 * time zone without an offset, and the service reads it in MARKETO_TIMEZONE: when the two
 * differ, every occurredAt is off by the difference of their offsets, a whole number of hours
 * (for the zones Marketo accounts use), and "newest wins" compares the wrong times.
 *
 * Pure: no I/O, no clock, no process time zone. An event is suspect when its receive time
 * minus its occurredAt (delta) lies within TZGUARD_SLACK_MS of a whole number of hours other
 * than zero (a webhook is called within seconds; a few minutes cover queueing and clocks):
 * |delta - round(delta / 1 h) * 1 h| <= 5 min and round(delta / 1 h) != 0, at most 26 h
 * (no two zones are further apart). The account's zone is then MARKETO_TIMEZONE's UTC offset
 * minus that many hours; tzguard_zone_for names a common zone with that offset at that time,
 * honouring the daylight-saving rules of the United States, the European Union and eastern
 * Australia. */
#ifndef CS_TZGUARD_H
#define CS_TZGUARD_H

#include <stddef.h>
#include <stdint.h>

#define TZGUARD_SLACK_MS (5 * 60 * 1000L)
#define TZGUARD_MAX_H    26

/* The whole hours by which received_ms is after occurred_ms (negative: before), when the
 * event is suspect; 0 when it is not (or either time is unknown, 0). */
int tzguard_offset_hours(int64_t occurred_ms, int64_t received_ms);

/* An IANA zone, among the common ones, whose UTC offset at at_ms is utc_offset_s; NULL when
 * none of them has it. */
const char *tzguard_zone_for(long utc_offset_s, int64_t at_ms);

/* The sentence for /readyz and the log, e.g. "occurredAt is 6 h behind the receive time:
 * MARKETO_TIMEZONE may be America/Chicago (UTC-06:00) rather than UTC". configured: the
 * MARKETO_TIMEZONE value; configured_offset_s: its UTC offset at at_ms. */
void tzguard_note(int offset_hours, const char *configured, long configured_offset_s, int64_t at_ms,
                  char *buf, size_t size);

#endif
