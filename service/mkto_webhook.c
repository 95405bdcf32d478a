/* mkto_webhook — Marketo webhook JSON to events. See include/mkto_webhook.h. */
#include "mkto_webhook.h"

#include "secure.h"

#include <cJSON.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SAFE_INT 9007199254740991.0 /* 2^53 - 1: ids beyond this lose digits in JSON */

static bool bad(mkto_webhook_result *out, long index, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool bad(mkto_webhook_result *out, long index, const char *field, const char *fmt, ...) {
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    out->status = 400;
    out->index = index;
    snprintf(out->field, sizeof out->field, "%s", field);
    if (index >= 0)
        snprintf(out->message, sizeof out->message, "event %ld: %s%s%s", index, field,
                 *field ? ": " : "", why);
    else
        snprintf(out->message, sizeof out->message, "%s%s%s", field, *field ? ": " : "", why);
    return false;
}

bool mkto_webhook_content_type_ok(const char *ct) {
    if (!ct) return false;
    while (*ct == ' ')
        ct++;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n) != 0) return false;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* A Marketo id: a JSON number that is a positive integer, or a string of 1-20 digits. */
static bool read_numeric_id(const cJSON *v, char *dst, size_t size) {
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d < 1 || d > MAX_SAFE_INT || d != (double)(long long)d) return false;
        snprintf(dst, size, "%lld", (long long)d);
        return true;
    }
    if (!cJSON_IsString(v)) return false;
    size_t n = strlen(v->valuestring);
    if (n == 0 || n > 20 || n >= size) return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)v->valuestring[i])) return false;
    memcpy(dst, v->valuestring, n + 1);
    return true;
}

/* An optional string field: absent, null and "" all mean "not given". */
static bool read_text(const cJSON *o, const char *name, char *dst, size_t size, long index,
                      mkto_webhook_result *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) return true;
    if (!cJSON_IsString(v)) return bad(out, index, name, "must be a string or null");
    if (!event_text_ok(v->valuestring)) return bad(out, index, name, "is not valid UTF-8 text");
    if (!event_set(dst, size, v->valuestring))
        return bad(out, index, name, "is longer than %zu bytes", size - 1);
    return true;
}

/* Stable text of an event's fields for the derived id; separators cannot occur in values
 * that matter (0x1f). */
static void derive_id(event *ev, const char *occurred_at) {
    char buf[2048], t[32];
    if (occurred_at && *occurred_at)
        snprintf(t, sizeof t, "%s", occurred_at);
    else
        snprintf(t, sizeof t, "rx:%lld", (long long)(ev->received_ms / 1000));
    int n = snprintf(buf, sizeof buf, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s",
                     event_type_name(ev->type), ev->program_id, ev->campaign_id, ev->mkto_lead_id,
                     ev->email, ev->first_name, ev->last_name, ev->company, ev->status, t);
    char hex[65];
    secure_sha256_hex(buf, (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf - 1), hex);
    snprintf(ev->id, sizeof ev->id, "d:%s", hex);
}

static bool parse_one(const cJSON *o, long index, int64_t received_ms, event *ev,
                      mkto_webhook_result *out) {
    memset(ev, 0, sizeof *ev);
    ev->source = SRC_MARKETO;
    ev->received_ms = received_ms;
    if (!cJSON_IsObject(o)) return bad(out, index, "", "each event must be a JSON object");

    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
    if (!type) return bad(out, index, "type", "is required");
    int t = cJSON_IsString(type) ? event_type_parse(type->valuestring) : -1;
    if (t < 0 || t > EV_REMOVE_FROM_CAMPAIGN)
        return bad(out, index, "type",
                   "must be one of member_status_changed, member_removed, add_to_campaign, "
                   "change_campaign_status, remove_from_campaign");
    ev->type = (event_type)t;
    bool program_side = ev->type == EV_MEMBER_STATUS_CHANGED || ev->type == EV_MEMBER_REMOVED;

    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(o, "programId");
    if (pid && !cJSON_IsNull(pid)) {
        if (!read_numeric_id(pid, ev->program_id, sizeof ev->program_id))
            return bad(out, index, "programId",
                       "must be a positive integer or a string of "
                       "digits");
    } else if (program_side) {
        return bad(out, index, "programId", "is required for type %s", type->valuestring);
    }

    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(o, "campaignId");
    if (cid && !cJSON_IsNull(cid)) {
        if (!cJSON_IsString(cid) || !event_valid_sfid(cid->valuestring))
            return bad(out, index, "campaignId",
                       "must be a 15- or 18-character Salesforce "
                       "campaign id");
        snprintf(ev->campaign_id, sizeof ev->campaign_id, "%s", cid->valuestring);
    } else if (!program_side) {
        return bad(out, index, "campaignId", "is required for type %s", type->valuestring);
    }

    const cJSON *lid = cJSON_GetObjectItemCaseSensitive(o, "leadId");
    if (!lid || cJSON_IsNull(lid)) return bad(out, index, "leadId", "is required");
    if (!read_numeric_id(lid, ev->mkto_lead_id, sizeof ev->mkto_lead_id))
        return bad(out, index, "leadId", "must be a positive integer or a string of digits");

    if (!read_text(o, "email", ev->email, sizeof ev->email, index, out) ||
        !read_text(o, "firstName", ev->first_name, sizeof ev->first_name, index, out) ||
        !read_text(o, "lastName", ev->last_name, sizeof ev->last_name, index, out) ||
        !read_text(o, "company", ev->company, sizeof ev->company, index, out) ||
        !read_text(o, "status", ev->status, sizeof ev->status, index, out))
        return false;

    char occurred[64] = "";
    if (!read_text(o, "occurredAt", occurred, sizeof occurred, index, out)) return false;
    if (*occurred && event_parse_time(occurred, &ev->source_ts_ms) != 0)
        return bad(out, index, "occurredAt",
                   "\"%s\" is neither ISO-8601 nor Marketo's yyyy-MM-dd HH:mm:ss", occurred);

    const cJSON *eid = cJSON_GetObjectItemCaseSensitive(o, "eventId");
    if (eid && !cJSON_IsNull(eid)) {
        char tmp[MKTO_EVENT_ID_MAX + 1];
        if (cJSON_IsNumber(eid)) {
            if (!read_numeric_id(eid, tmp, sizeof tmp))
                return bad(out, index, "eventId", "must be a string or a positive integer");
        } else if (!cJSON_IsString(eid) || !*eid->valuestring ||
                   !event_set(tmp, sizeof tmp, eid->valuestring)) {
            return bad(out, index, "eventId", "must be a non-empty string of at most %d bytes",
                       MKTO_EVENT_ID_MAX);
        }
        for (const char *p = tmp; *p; p++)
            if ((unsigned char)*p < 0x21 || *p == 0x7f)
                return bad(out, index, "eventId",
                           "must not contain spaces or control "
                           "characters");
        snprintf(ev->id, sizeof ev->id, "e:%s", tmp);
    } else {
        derive_id(ev, occurred);
    }
    return true;
}

void mkto_webhook_parse(const char *json, size_t len, int64_t received_ms,
                        mkto_webhook_result *out) {
    memset(out, 0, sizeof *out);
    out->index = -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        bad(out, -1, "", "the body is not valid JSON (at byte %ld)", end ? (long)(end - json) : 0L);
        return;
    }
    /* Only white space may follow the value. */
    while (end && (size_t)(end - json) < len && strchr(" \t\r\n", *end))
        end++;
    if (end && (size_t)(end - json) < len && *end) {
        bad(out, -1, "", "unexpected text after the JSON value (at byte %ld)", (long)(end - json));
        goto done;
    }
    if (cJSON_IsArray(root)) {
        int n = cJSON_GetArraySize(root);
        if (n > MKTO_WEBHOOK_MAX_EVENTS) {
            bad(out, -1, "", "an array holds at most %d events, this one has %d",
                MKTO_WEBHOOK_MAX_EVENTS, n);
            goto done;
        }
        out->events = calloc((size_t)(n ? n : 1), sizeof *out->events);
        if (!out->events) {
            bad(out, -1, "", "out of memory");
            goto done;
        }
        long i = 0;
        for (const cJSON *e = root->child; e; e = e->next, i++) {
            if (!parse_one(e, i, received_ms, &out->events[i], out)) goto done;
            out->nevents++;
        }
    } else if (cJSON_IsObject(root)) {
        out->events = calloc(1, sizeof *out->events);
        if (!out->events) {
            bad(out, -1, "", "out of memory");
            goto done;
        }
        if (parse_one(root, -1, received_ms, &out->events[0], out)) out->nevents = 1;
    } else {
        bad(out, -1, "", "the body must be an event object or an array of events");
    }
done:
    cJSON_Delete(root);
    if (out->status) {
        free(out->events);
        out->events = NULL;
        out->nevents = 0;
    }
}

void mkto_webhook_result_free(mkto_webhook_result *r) {
    if (!r) return;
    free(r->events);
    r->events = NULL;
    r->nevents = 0;
}
