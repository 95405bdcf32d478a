/* tzguard — whole-hour differences between occurredAt and receive time. See
 * include/tzguard.h. */
#include "tzguard.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define HOUR_MS (3600 * 1000L)
#define DAY_S   86400L

int tzguard_offset_hours(int64_t occurred_ms, int64_t received_ms) {
    if (occurred_ms <= 0 || received_ms <= 0) return 0;
    int64_t delta = received_ms - occurred_ms;
    int64_t hours = (delta >= 0 ? delta + HOUR_MS / 2 : delta - HOUR_MS / 2) / HOUR_MS;
    int64_t rest = delta - hours * HOUR_MS;
    if (hours == 0 || llabs((long long)hours) > TZGUARD_MAX_H ||
        llabs((long long)rest) > TZGUARD_SLACK_MS)
        return 0;
    return (int)hours;
}

/* ---- daylight-saving rules ---- */

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m) {
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* The day (days since the epoch) of the n-th Sunday of a month; n = -1: the last. */
static int64_t sunday(int y, int m, int n) {
    if (n < 0) {
        int64_t last = days_from_civil(y, m, days_in_month(y, m));
        return last - (last + 4) % 7; /* 1970-01-01 was a Thursday: (days + 4) % 7, Sunday 0 */
    }
    int64_t first = days_from_civil(y, m, 1);
    int64_t to_sunday = (7 - (first + 4) % 7) % 7;
    return first + to_sunday + 7 * (n - 1);
}

typedef enum { DST_NONE, DST_US, DST_EU, DST_AU } dst_rule;

/* Whether daylight time is in force at t (seconds) in a zone of standard offset std_s. */
static bool in_dst(dst_rule rule, long std_s, int64_t t) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    int y = tm.tm_year + 1900;
    switch (rule) {
    case DST_NONE: return false;
    case DST_US: /* 2 a.m. local: second Sunday of March to first Sunday of November */
        return t >= sunday(y, 3, 2) * DAY_S + 7200 - std_s &&
               t < sunday(y, 11, 1) * DAY_S + 7200 - (std_s + 3600);
    case DST_EU: /* 01:00 UTC: last Sunday of March to last Sunday of October */
        return t >= sunday(y, 3, -1) * DAY_S + 3600 && t < sunday(y, 10, -1) * DAY_S + 3600;
    case DST_AU: /* southern: from the first Sunday of October to the first Sunday of April */
        return t < sunday(y, 4, 1) * DAY_S + 10800 - (std_s + 3600) ||
               t >= sunday(y, 10, 1) * DAY_S + 7200 - std_s;
    }
    return false;
}

/* Common account zones, in the order a name is suggested for an offset. */
static const struct {
    const char *name;
    long std_s;
    dst_rule rule;
} zones[] = {
    {"UTC", 0, DST_NONE},
    {"Europe/London", 0, DST_EU},
    {"Europe/Paris", 3600, DST_EU},
    {"Europe/Helsinki", 7200, DST_EU},
    {"Europe/Moscow", 10800, DST_NONE},
    {"Asia/Dubai", 14400, DST_NONE},
    {"Asia/Singapore", 28800, DST_NONE},
    {"Asia/Tokyo", 32400, DST_NONE},
    {"Australia/Sydney", 36000, DST_AU},
    {"Pacific/Auckland", 43200, DST_NONE},
    {"America/Los_Angeles", -28800, DST_US},
    {"America/Denver", -25200, DST_US},
    {"America/Chicago", -21600, DST_US},
    {"America/New_York", -18000, DST_US},
    {"America/Phoenix", -25200, DST_NONE},
    {"America/Anchorage", -32400, DST_US},
    {"Pacific/Honolulu", -36000, DST_NONE},
    {"America/Sao_Paulo", -10800, DST_NONE},
};

const char *tzguard_zone_for(long utc_offset_s, int64_t at_ms) {
    int64_t t = at_ms / 1000;
    for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
        long off = zones[i].std_s + (in_dst(zones[i].rule, zones[i].std_s, t) ? 3600 : 0);
        if (off == utc_offset_s) return zones[i].name;
    }
    return NULL;
}

static void utc_offset_text(long s, char *buf, size_t size) {
    int a = (int)(labs(s) % (100 * 3600)); /* within what two digits of hours can say */
    snprintf(buf, size, "UTC%c%02d:%02d", s < 0 ? '-' : '+', a / 3600, a % 3600 / 60);
}

void tzguard_note(int offset_hours, const char *configured, long configured_offset_s, int64_t at_ms,
                  char *buf, size_t size) {
    /* Read in the configured zone, a time rendered in the account's zone is off by
     * configured - account: the account's offset is the configured one minus the delta. */
    long account = configured_offset_s - offset_hours * 3600L;
    const char *zone = tzguard_zone_for(account, at_ms);
    char off[16];
    utc_offset_text(account, off, sizeof off);
    snprintf(buf, size,
             "occurredAt is %d h %s the receive time: MARKETO_TIMEZONE may be %s%s%s%s rather "
             "than %s",
             abs(offset_hours), offset_hours > 0 ? "behind" : "ahead of",
             zone ? zone : "a zone at ", zone ? " (" : "", off, zone ? ")" : "", configured);
}
