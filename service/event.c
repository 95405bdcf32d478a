/* event — the change event and its queue form. See include/event.h. */
#include "event.h"

#include <cJSON.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const type_names[EV_TYPE_COUNT] = {
    "member_status_changed",  "member_removed",       "add_to_campaign",
    "change_campaign_status", "remove_from_campaign", "campaign_member_changed",
    "campaign_member_deleted"};

const char *event_source_name(event_source s) {
    switch (s) {
    case SRC_SALESFORCE: return "salesforce";
    case SRC_MARKETO: return "marketo";
    }
    return "unknown";
}

const char *event_type_name(event_type t) {
    return (unsigned)t < EV_TYPE_COUNT ? type_names[t] : "unknown";
}

int event_type_parse(const char *s) {
    for (int i = 0; i < EV_TYPE_COUNT; i++)
        if (strcmp(s, type_names[i]) == 0) return i;
    return -1;
}

bool event_is_removal(const event *ev) {
    switch (ev->type) {
    case EV_MEMBER_REMOVED:
    case EV_REMOVE_FROM_CAMPAIGN:
    case EV_SF_MEMBER_DELETED: return true;
    case EV_MEMBER_STATUS_CHANGED: return strcmp(ev->status, "Not in Program") == 0;
    case EV_ADD_TO_CAMPAIGN:
    case EV_CHANGE_CAMPAIGN_STATUS:
    case EV_SF_MEMBER_CHANGED:
    case EV_TYPE_COUNT: return false;
    }
    return false;
}

int64_t event_time(const event *ev) {
    return ev->source_ts_ms ? ev->source_ts_ms : ev->received_ms;
}

bool event_valid_sfid(const char *s) {
    size_t n = strlen(s);
    if (n != 15 && n != 18) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i])) return false;
    return true;
}

bool event_text_ok(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\r' && c != '\n') return false;
            p++;
            continue;
        }
        int n;
        unsigned cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
}

bool event_set(char *field, size_t size, const char *src) {
    size_t n = src ? strlen(src) : 0;
    if (n >= size) {
        field[0] = '\0';
        return false;
    }
    memcpy(field, src ? src : "", n + 1);
    return true;
}

int64_t event_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- queue form ---- */

/* The text fields, in one table so that to_json and from_json cannot drift apart. */
#define F(name, member)                                                                            \
    { name, offsetof(event, member), sizeof(((event *)0)->member) }
static const struct {
    const char *name;
    size_t off, size;
} text_fields[] = {
    F("id", id),
    F("programId", program_id),
    F("campaignId", campaign_id),
    F("memberId", member_id),
    F("sfLeadId", sf_lead_id),
    F("sfContactId", sf_contact_id),
    F("mktoLeadId", mkto_lead_id),
    F("email", email),
    F("firstName", first_name),
    F("lastName", last_name),
    F("company", company),
    F("status", status),
    F("modifiedBy", modified_by),
    F("job", job),
};
#undef F
#define NTEXT (sizeof text_fields / sizeof text_fields[0])

static void add_ms(cJSON *o, const char *name, int64_t ms) {
    char num[24];
    snprintf(num, sizeof num, "%" PRId64, ms);
    cJSON_AddRawToObject(o, name, num);
}

char *event_to_json(const event *ev) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "v", 1);
    cJSON_AddStringToObject(o, "source", event_source_name(ev->source));
    cJSON_AddStringToObject(o, "type", event_type_name(ev->type));
    for (size_t i = 0; i < NTEXT; i++) {
        const char *v = (const char *)ev + text_fields[i].off;
        if (*v) cJSON_AddStringToObject(o, text_fields[i].name, v);
    }
    /* Milliseconds since the epoch, written as integers: cJSON prints a number beyond an int
     * with "%1.15g" and reads it back to check it, which costs more (BENCHMARKS.md, "Where
     * the code's numbers came from"). */
    if (ev->source_ts_ms) add_ms(o, "sourceTs", ev->source_ts_ms);
    add_ms(o, "receivedAt", ev->received_ms);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

int event_from_json(const char *json, size_t len, event *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    cJSON *o = cJSON_ParseWithLengthOpts(json, len, NULL, 0);
    int rc = -1;
    if (!cJSON_IsObject(o)) {
        snprintf(err, errlen, "queued event is not a JSON object");
        goto out;
    }
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(o, "source");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
    if (!cJSON_IsString(src) || !cJSON_IsString(type)) {
        snprintf(err, errlen, "queued event lacks source or type");
        goto out;
    }
    if (strcmp(src->valuestring, "salesforce") == 0)
        out->source = SRC_SALESFORCE;
    else if (strcmp(src->valuestring, "marketo") == 0)
        out->source = SRC_MARKETO;
    else {
        snprintf(err, errlen, "queued event has unknown source \"%.40s\"", src->valuestring);
        goto out;
    }
    int t = event_type_parse(type->valuestring);
    if (t < 0) {
        snprintf(err, errlen, "queued event has unknown type \"%.40s\"", type->valuestring);
        goto out;
    }
    out->type = (event_type)t;
    for (size_t i = 0; i < NTEXT; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, text_fields[i].name);
        if (!v) continue;
        if (!cJSON_IsString(v) ||
            !event_set((char *)out + text_fields[i].off, text_fields[i].size, v->valuestring)) {
            snprintf(err, errlen, "queued event field %s is not a string that fits",
                     text_fields[i].name);
            goto out;
        }
    }
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "sourceTs");
    const cJSON *rx = cJSON_GetObjectItemCaseSensitive(o, "receivedAt");
    if (cJSON_IsNumber(ts)) out->source_ts_ms = (int64_t)ts->valuedouble;
    if (cJSON_IsNumber(rx)) out->received_ms = (int64_t)rx->valuedouble;
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}

/* ---- timestamps ---- */

static int digits(const char **p, int n) {
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p)) return -1;
        v = v * 10 + (**p - '0');
    }
    return v;
}

static bool leap(int y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m) {
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : d[m - 1];
}

/* Parses "+hh:mm", "+hhmm" or "+hh"; returns offset seconds, or INT32_MIN on error. */
static int32_t parse_offset(const char **p) {
    int sign = **p == '-' ? -1 : 1;
    (*p)++;
    int hh = digits(p, 2);
    if (hh < 0 || hh > 23) return INT32_MIN;
    int mm = 0;
    if (**p == ':') (*p)++;
    if (isdigit((unsigned char)**p)) {
        mm = digits(p, 2);
        if (mm < 0 || mm > 59) return INT32_MIN;
    }
    return sign * (hh * 3600 + mm * 60);
}

int event_parse_time(const char *s, int64_t *ms) {
    const char *p = s;
    int y = digits(&p, 4);
    if (y < 1970 || *p++ != '-') return -1;
    int mo = digits(&p, 2);
    if (mo < 1 || mo > 12 || *p++ != '-') return -1;
    int d = digits(&p, 2);
    if (d < 1 || d > days_in_month(y, mo)) return -1;
    if (*p != 'T' && *p != ' ') return -1;
    p++;
    int h = digits(&p, 2);
    if (h < 0 || h > 23 || *p++ != ':') return -1;
    int mi = digits(&p, 2);
    if (mi < 0 || mi > 59 || *p++ != ':') return -1;
    int sec = digits(&p, 2);
    if (sec < 0 || sec > 60) return -1;
    int frac_ms = 0;
    if (*p == '.' || *p == ',') {
        p++;
        int nd = 0;
        while (isdigit((unsigned char)*p)) {
            if (nd < 3) frac_ms = frac_ms * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0) return -1;
        for (; nd < 3; nd++)
            frac_ms *= 10;
    }
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    int64_t secs;
    if (*p == '\0') {
        /* No offset: the account's local time. mktime reads the process TZ. */
        tm.tm_isdst = -1;
        time_t t = mktime(&tm);
        if (t == (time_t)-1) return -1;
        secs = (int64_t)t;
    } else {
        int32_t off = 0;
        if (*p == 'Z') {
            p++;
            /* Marketo's asset API writes "Z+0000" after the time. */
            if (*p == '+' || *p == '-') {
                off = parse_offset(&p);
                if (off == INT32_MIN) return -1;
            }
        } else if (*p == '+' || *p == '-') {
            off = parse_offset(&p);
            if (off == INT32_MIN) return -1;
        } else {
            return -1;
        }
        if (*p) return -1;
        secs = (int64_t)timegm(&tm) - off;
    }
    *ms = secs * 1000 + frac_ms;
    return 0;
}

void event_format_time(int64_t ms, char *buf, size_t size) {
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(ms % 1000));
}
