/* dead_filter — the dead-letter filter and kinds. See include/dead_filter.h. */
#include "dead_filter.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT_DEFAULT 100

const char *dead_kind_name(dead_kind k) {
    switch (k) {
    case DEAD_ANY: return "";
    case DEAD_UNKNOWN_STATUS: return "unknown_status";
    case DEAD_GAVE_UP: return "gave_up";
    case DEAD_UNUSABLE: return "unusable";
    case DEAD_REFUSED: return "refused";
    }
    return "";
}

/* The texts are the ones plan.c and worker.c write: "gave up after N attempts: ..." when
 * MAX_ATTEMPTS is spent; for F11, plan.c's "... has no counterpart in ..." and the worker's
 * when a CRM itself does not know the status ("... has no member status \"...\"" from
 * Salesforce, "... has no status \"...\"" from Marketo). A text that changes there falls
 * back to "refused", so a test of each kind keeps them together. */
dead_kind dead_filter_classify(const char *error, bool unusable) {
    if (unusable) return DEAD_UNUSABLE;
    if (!error) return DEAD_REFUSED;
    if (strncmp(error, "gave up after ", 14) == 0) return DEAD_GAVE_UP;
    if (strstr(error, " has no counterpart in ") || strstr(error, " has no member status \"") ||
        strstr(error, " has no status \""))
        return DEAD_UNKNOWN_STATUS;
    return DEAD_REFUSED;
}

void dead_filter_init(dead_filter *f) {
    memset(f, 0, sizeof *f);
    f->reason = DEAD_ANY;
    f->from_ms = 0;
    f->to_ms = INT64_MAX;
    f->limit = LIMIT_DEFAULT;
}

static bool all_digits(const char *s, size_t min, size_t max) {
    size_t n = strlen(s);
    return n >= min && n <= max && strspn(s, "0123456789") == n;
}

/* An ISO-8601 time with its offset (Z or ±hh:mm): the admin API does not guess a zone. */
static int parse_instant(const char *name, const char *v, int64_t *ms, char *err, size_t errlen) {
    size_t n = strlen(v);
    bool offset = n > 19 && (v[n - 1] == 'Z' || v[n - 6] == '+' || v[n - 6] == '-' ||
                             v[n - 5] == '+' || v[n - 5] == '-');
    if (n > 40 || !offset || event_parse_time(v, ms) != 0) {
        snprintf(err, errlen,
                 "%s must be a time with its offset, e.g. 2026-11-29T10:00:00Z (got \"%.40s\")",
                 name, v);
        return -1;
    }
    return 0;
}

static int set_reason(dead_filter *f, const char *v, char *err, size_t errlen) {
    for (dead_kind k = DEAD_UNKNOWN_STATUS; k <= DEAD_REFUSED; k++)
        if (strcmp(v, dead_kind_name(k)) == 0) {
            f->reason = k;
            return 0;
        }
    snprintf(err, errlen,
             "reason must be unknown_status, refused, gave_up or unusable (got \"%.40s\"); to "
             "match words of the error text use errorContains",
             v);
    return -1;
}

/* 0 or -1 as a field's outcome. */
static dead_field_rc field_rc(int rc) {
    return rc == 0 ? DEAD_FIELD_SET : DEAD_FIELD_ERROR;
}

dead_field_rc dead_filter_set(dead_filter *f, const char *name, const char *value, char *err,
                              size_t errlen) {
    if (strcmp(name, "programId") == 0) {
        if (!all_digits(value, 1, sizeof f->program_id - 1)) {
            snprintf(err, errlen, "programId must be a Marketo program id (digits)");
            return DEAD_FIELD_ERROR;
        }
        strcpy(f->program_id, value);
    } else if (strcmp(name, "campaignId") == 0) {
        if (!event_valid_sfid(value)) {
            snprintf(err, errlen, "campaignId must be a 15- or 18-character Salesforce id");
            return DEAD_FIELD_ERROR;
        }
        strcpy(f->campaign_id, value);
    } else if (strcmp(name, "reason") == 0) {
        return field_rc(set_reason(f, value, err, errlen));
    } else if (strcmp(name, "errorContains") == 0) {
        if (!*value || strlen(value) >= sizeof f->error_contains) {
            snprintf(err, errlen, "errorContains must be 1 to %d bytes of the error text",
                     DEAD_TEXT_MAX - 1);
            return DEAD_FIELD_ERROR;
        }
        strcpy(f->error_contains, value);
    } else if (strcmp(name, "from") == 0) {
        return field_rc(parse_instant(name, value, &f->from_ms, err, errlen));
    } else if (strcmp(name, "to") == 0) {
        return field_rc(parse_instant(name, value, &f->to_ms, err, errlen));
    } else {
        return DEAD_FIELD_UNKNOWN;
    }
    return DEAD_FIELD_SET;
}

int dead_filter_check(const dead_filter *f, char *err, size_t errlen) {
    if (f->from_ms > f->to_ms) {
        snprintf(err, errlen, "from must not be after to");
        return -1;
    }
    return 0;
}

bool dead_filter_narrows(const dead_filter *f) {
    return f->program_id[0] || f->campaign_id[0] || f->reason != DEAD_ANY || f->error_contains[0] ||
           f->from_ms > 0 || f->to_ms < INT64_MAX;
}

bool dead_filter_parse_cursor(const char *s, int64_t *at_ms, char *id, size_t idlen) {
    const char *colon = strchr(s, ':');
    if (!colon || colon == s || colon - s > 15) return false;
    for (const char *p = s; p < colon; p++)
        if (!isdigit((unsigned char)*p)) return false;
    const char *i = colon + 1;
    size_t a = strspn(i, "0123456789");
    if (a == 0 || a > 20 || i[a] != '-') return false;
    size_t b = strspn(i + a + 1, "0123456789");
    if (b == 0 || b > 20 || i[a + 1 + b] != '\0' || a + 1 + b >= idlen) return false;
    *at_ms = strtoll(s, NULL, 10);
    memcpy(id, i, a + 1 + b + 1);
    return true;
}

void dead_filter_cursor(int64_t at_ms, const char *id, char *out, size_t size) {
    snprintf(out, size, "%lld:%s", (long long)at_ms, id);
}

/* Reads the request fields of a replay (limit, dryRun, cursor). */
static dead_field_rc set_request_field(dead_filter *f, const cJSON *v, char *err, size_t errlen) {
    const char *name = v->string;
    if (strcmp(name, "limit") == 0) {
        if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long)v->valuedouble ||
            v->valuedouble < 1 || v->valuedouble > DEAD_LIMIT_MAX) {
            snprintf(err, errlen, "limit must be an integer from 1 to %d", DEAD_LIMIT_MAX);
            return DEAD_FIELD_ERROR;
        }
        f->limit = (long)v->valuedouble;
    } else if (strcmp(name, "dryRun") == 0) {
        if (!cJSON_IsBool(v)) {
            snprintf(err, errlen, "dryRun must be true or false");
            return DEAD_FIELD_ERROR;
        }
        f->dry_run = cJSON_IsTrue(v);
    } else if (strcmp(name, "cursor") == 0) {
        if (cJSON_IsNull(v)) return DEAD_FIELD_SET; /* a previous answer's "next": null */
        if (!cJSON_IsString(v) || !dead_filter_parse_cursor(v->valuestring, &f->cursor_at_ms,
                                                            f->cursor_id, sizeof f->cursor_id)) {
            snprintf(err, errlen, "cursor must be the \"next\" of a previous answer, unchanged");
            return DEAD_FIELD_ERROR;
        }
        f->has_cursor = true;
    } else {
        return DEAD_FIELD_UNKNOWN;
    }
    return DEAD_FIELD_SET;
}

int dead_filter_from_json(dead_filter *f, const char *body, size_t len, char *err, size_t errlen) {
    const char *end = NULL;
    cJSON *o = len ? cJSON_ParseWithLengthOpts(body, len, &end, 0) : cJSON_CreateObject();
    while (o && end && (size_t)(end - body) < len && strchr(" \t\r\n", *end))
        end++;
    if (!cJSON_IsObject(o) || (end && (size_t)(end - body) < len && *end)) {
        cJSON_Delete(o);
        snprintf(err, errlen,
                 "the body must be one JSON object: the filter (programId, campaignId, reason, "
                 "errorContains, from, to), limit, dryRun and cursor, each optional ({} takes "
                 "every dead letter)");
        return -1;
    }
    char unknown[300] = "";
    dead_field_rc rc = DEAD_FIELD_SET;
    for (const cJSON *v = o->child; v && rc == DEAD_FIELD_SET; v = v->next) {
        rc = set_request_field(f, v, err, errlen);
        if (rc != DEAD_FIELD_UNKNOWN) continue;
        if (cJSON_IsString(v))
            rc = dead_filter_set(f, v->string, v->valuestring, err, errlen);
        else if (!strcmp(v->string, "programId") || !strcmp(v->string, "campaignId") ||
                 !strcmp(v->string, "reason") || !strcmp(v->string, "errorContains") ||
                 !strcmp(v->string, "from") || !strcmp(v->string, "to")) {
            snprintf(err, errlen, "%s must be a string", v->string);
            rc = DEAD_FIELD_ERROR;
        }
        if (rc == DEAD_FIELD_UNKNOWN) {
            size_t n = strlen(unknown);
            snprintf(unknown + n, sizeof unknown - n, "%s\"%.60s\"", n ? ", " : "", v->string);
            rc = DEAD_FIELD_SET;
        }
    }
    cJSON_Delete(o);
    if (rc == DEAD_FIELD_SET && *unknown) {
        snprintf(err, errlen,
                 "unknown fields %s: the body may hold programId, campaignId, reason, "
                 "errorContains, from, to, limit, dryRun and cursor",
                 unknown);
        rc = DEAD_FIELD_ERROR;
    }
    return rc == DEAD_FIELD_SET ? dead_filter_check(f, err, errlen) : -1;
}

static bool same_campaign(const char *a, const char *b) {
    return *a && *b && strncmp(a, b, 15) == 0;
}

/* ASCII-case-insensitive substring (error texts are English around the CRMs' own words). */
static bool contains_nocase(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n) return true;
    }
    return false;
}

static const char *text_of(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

bool dead_filter_match(const dead_filter *f, const char *item, size_t len, bool unusable) {
    cJSON *o = cJSON_ParseWithLength(item, len);
    if (!o) return false;
    const char *error = text_of(o, "error");
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(o, "event");
    const char *pid = text_of(ev, "programId"), *cid = text_of(ev, "campaignId");
    bool ok = true;
    if (f->program_id[0])
        ok = strcmp(pid, f->program_id) == 0 || same_campaign(cid, f->program_campaign);
    if (ok && f->campaign_id[0])
        ok = same_campaign(cid, f->campaign_id) ||
             (f->campaign_program[0] && strcmp(pid, f->campaign_program) == 0);
    if (ok && f->reason != DEAD_ANY) ok = dead_filter_classify(error, unusable) == f->reason;
    if (ok && f->error_contains[0]) ok = contains_nocase(error, f->error_contains);
    cJSON_Delete(o);
    return ok;
}
