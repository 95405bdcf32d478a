/* trace — a person's trace entry as JSON. See include/trace.h. */
#include "trace.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#define ERROR_MAX 700

const char *trace_outcome_name(trace_outcome o) {
    switch (o) {
    case TRACE_APPLIED: return "applied";
    case TRACE_DROPPED: return "dropped";
    case TRACE_RETRY: return "retry";
    case TRACE_DEAD_LETTER: return "dead_letter";
    case TRACE_PARKED: return "parked";
    }
    return "applied";
}

static void add_text(cJSON *o, const char *name, const char *v) {
    if (v && *v) cJSON_AddStringToObject(o, name, v);
}

static void add_time(cJSON *o, const char *name, int64_t ms) {
    char buf[40];
    if (ms <= 0) return;
    event_format_time(ms, buf, sizeof buf);
    cJSON_AddStringToObject(o, name, buf);
}

/* What one side was set to: {"status": ...} or {"removed": true}, plus its ids. */
static void add_side(cJSON *o, const char *name, bool member, const char *status,
                     const char *id_name, const char *id, const char *id2_name, const char *id2) {
    cJSON *s = cJSON_AddObjectToObject(o, name);
    if (member)
        add_text(s, "status", status);
    else
        cJSON_AddBoolToObject(s, "removed", true);
    add_text(s, id_name, id);
    if (id2_name) add_text(s, id2_name, id2);
}

char *trace_entry_json(const trace_record *r) {
    const event *ev = r->ev;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    add_time(o, "at", r->at_ms);
    add_time(o, "receivedAt", ev->received_ms);
    add_time(o, "occurredAt", ev->source_ts_ms);
    add_text(o, "eventId", ev->id);
    cJSON_AddStringToObject(o, "source", event_source_name(ev->source));
    cJSON_AddStringToObject(o, "type", event_type_name(ev->type));
    add_text(o, "status", ev->status);
    add_text(o, "programId", r->program_id);
    add_text(o, "campaignId", r->campaign_id);
    add_text(o, "email", r->email);
    add_text(o, "marketoLeadId", r->mkto_lead);
    add_text(o, "salesforceId", r->sf_person);
    cJSON_AddStringToObject(o, "outcome", trace_outcome_name(r->outcome));
    add_text(o, "reason", r->reason);
    if (r->outcome == TRACE_APPLIED) {
        cJSON *to = cJSON_AddArrayToObject(o, "appliedTo");
        if (r->to_sf) cJSON_AddItemToArray(to, cJSON_CreateString("salesforce"));
        if (r->to_mkto) cJSON_AddItemToArray(to, cJSON_CreateString("marketo"));
        /* What each CRM was set to, with the ids it answered. */
        if (r->to_sf)
            add_side(o, "salesforce", r->sf_member, r->sf_status, "campaignMemberId", r->cm_id,
                     "personId", r->sf_person);
        if (r->to_mkto)
            add_side(o, "marketo", r->mkto_member, r->mkto_status, "leadId", r->mkto_lead, NULL,
                     NULL);
    }
    if (r->outcome == TRACE_RETRY || r->outcome == TRACE_DEAD_LETTER)
        cJSON_AddNumberToObject(o, "attempt", r->attempt);
    if (r->outcome == TRACE_DEAD_LETTER) add_text(o, "deadLetterId", r->dead_id);
    if (r->error && *r->error) {
        char cut[ERROR_MAX + 1];
        size_t n = strlen(r->error);
        if (n > ERROR_MAX) /* never in the middle of a UTF-8 character */
            for (n = ERROR_MAX; n > 0 && ((unsigned char)r->error[n] & 0xC0) == 0x80; n--) {
            }
        memcpy(cut, r->error, n);
        cut[n] = '\0';
        cJSON_AddStringToObject(o, "error", cut);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}
