/* marketo_calls — the Marketo REST calls the service makes, answered as typed values. See
 * include/marketo.h. Paths and fields: Adobe's Marketo Engage developer docs ("Leads",
 * "Program Members", "Programs", "Channels"). */
#include "marketo.h"

#include "marketo_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(mk_error *err) {
    mk_set_error(err, MK_RETRY, 0, "internal", "out of memory");
}

/* A text field of a record, NULL when absent or not a string. */
static const char *text_of(const cJSON *o, const char *field) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A numeric id (or one given as text) into buf; "" when neither. */
static void id_of(const cJSON *o, const char *field, char *buf, size_t size) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    if (cJSON_IsNumber(v))
        snprintf(buf, size, "%.0f", v->valuedouble);
    else if (cJSON_IsString(v) && strlen(v->valuestring) < size)
        snprintf(buf, size, "%s", v->valuestring);
    else
        buf[0] = '\0';
}

/* A copy of a text field, NULL when absent; *failed set when out of memory. */
static char *dup_of(const cJSON *o, const char *field, bool *failed) {
    const char *v = text_of(o, field);
    char *d = v ? strdup(v) : NULL;
    if (v && !d) *failed = true;
    return d;
}

/* ---------------------------------------------------------------- leads */

void mkto_leads_free(mk_lead *leads, size_t n) {
    for (size_t i = 0; leads && i < n; i++) {
        free(leads[i].email);
        free(leads[i].first_name);
        free(leads[i].last_name);
        free(leads[i].company);
        free(leads[i].sfdc_lead_id);
        free(leads[i].sfdc_contact_id);
    }
    free(leads);
}

static const char *filter_name(mk_lead_filter f) {
    switch (f) {
    case MK_BY_ID: return "id";
    case MK_BY_EMAIL: return "email";
    case MK_BY_SFDC_LEAD_ID: return "sfdcLeadId";
    case MK_BY_SFDC_CONTACT_ID: return "sfdcContactId";
    }
    return "id";
}

int mkto_leads_by(mkto_client *c, mk_lead_filter filter, const char *const *values, size_t n,
                  unsigned fields, mk_lead **out, size_t *nout, mk_error *err) {
    *out = NULL;
    *nout = 0;
    char names[128] = "id";
    if (fields & MK_LEAD_EMAIL) strcat(names, ",email");
    if (fields & MK_LEAD_NAMES) strcat(names, ",firstName,lastName,company");
    if (fields & MK_LEAD_SFDC_IDS) strcat(names, ",sfdcLeadId,sfdcContactId");
    char *vals = mk_joined(c, values, n);
    char *query = vals ? mk_format("filterType=%s&filterValues=%s&fields=%s&batchSize=300",
                                   filter_name(filter), vals, names)
                       : NULL;
    free(vals);
    if (!query) {
        oom(err);
        return -1;
    }
    cJSON *res = NULL;
    int rc = mk_get_all(c, "/rest/v1/leads.json", query, &res, err);
    free(query);
    if (rc != 0) return -1;
    int count = cJSON_GetArraySize(res);
    mk_lead *leads = calloc(count > 0 ? (size_t)count : 1, sizeof *leads);
    bool failed = !leads;
    const cJSON *l, *list = failed ? NULL : res;
    cJSON_ArrayForEach(l, list) {
        mk_lead *d = &leads[(*nout)++];
        id_of(l, "id", d->id, sizeof d->id);
        if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(l, "id"))) d->id[0] = '\0';
        d->email = dup_of(l, "email", &failed);
        d->first_name = dup_of(l, "firstName", &failed);
        d->last_name = dup_of(l, "lastName", &failed);
        d->company = dup_of(l, "company", &failed);
        d->sfdc_lead_id = dup_of(l, "sfdcLeadId", &failed);
        d->sfdc_contact_id = dup_of(l, "sfdcContactId", &failed);
    }
    cJSON_Delete(res);
    if (failed) {
        mkto_leads_free(leads, *nout);
        *nout = 0;
        oom(err);
        return -1;
    }
    *out = leads;
    return 0;
}

/* ---------------------------------------------------------------- program members */

void mkto_members_free(mk_member *m, size_t n) {
    for (size_t i = 0; m && i < n; i++)
        free(m[i].status);
    free(m);
}

/* The members of a members.json result into *out. 0, or -1 when out of memory. */
static int members_of(const cJSON *res, mk_member **out, size_t *nout) {
    int count = cJSON_GetArraySize(res);
    mk_member *m = calloc(count > 0 ? (size_t)count : 1, sizeof *m);
    bool failed = !m;
    const cJSON *r, *list = failed ? NULL : res;
    cJSON_ArrayForEach(r, list) {
        mk_member *d = &m[*nout];
        id_of(r, "leadId", d->lead_id, sizeof d->lead_id);
        if (!d->lead_id[0]) continue;
        (*nout)++;
        d->status = dup_of(r, "statusName", &failed);
        const char *at = text_of(r, "updatedAt");
        if (!at || event_parse_time(at, &d->updated_ms) != 0) d->updated_ms = 0;
    }
    if (failed) {
        mkto_members_free(m, *nout);
        *nout = 0;
        return -1;
    }
    *out = m;
    return 0;
}

int mkto_member_statuses(mkto_client *c, const char *program_id, const char *const *lead_ids,
                         size_t n, mk_member **out, size_t *nout, mk_error *err) {
    *out = NULL;
    *nout = 0;
    char *vals = mk_joined(c, lead_ids, n);
    char *path = mk_format("/rest/v1/programs/%s/members.json", program_id);
    char *query =
        vals ? mk_format("filterType=leadId&filterValues=%s&fields=leadId,statusName,updatedAt&"
                         "batchSize=300",
                         vals)
             : NULL;
    cJSON *res = NULL;
    int rc = -1;
    if (!path || !query)
        oom(err);
    else
        rc = mk_get_all(c, path, query, &res, err);
    free(vals);
    free(path);
    free(query);
    if (rc == 0 && members_of(res, out, nout) != 0) {
        oom(err);
        rc = -1;
    }
    cJSON_Delete(res);
    return rc;
}

int mkto_members_page(mkto_client *c, const char *program_id, const char *status, char *token,
                      size_t tokenlen, mk_member **out, size_t *nout, mk_error *err) {
    *out = NULL;
    *nout = 0;
    char *esc = mk_escape(c, status);
    char *tok = token[0] ? mk_escape(c, token) : strdup("");
    char *path = mk_format("/rest/v1/programs/%s/members.json", program_id);
    char *query = esc && tok ? mk_format("filterType=statusName&filterValues=%s&"
                                         "fields=leadId,statusName,updatedAt&batchSize=300%s%s",
                                         esc, tok[0] ? "&nextPageToken=" : "", tok)
                             : NULL;
    free(esc);
    free(tok);
    cJSON *env = NULL;
    int rc = -1;
    if (!path || !query)
        oom(err);
    else
        rc = mk_get_page(c, path, query, &env, err);
    free(path);
    free(query);
    if (rc != 0) return -1;
    if (members_of(cJSON_GetObjectItemCaseSensitive(env, "result"), out, nout) != 0) {
        cJSON_Delete(env);
        oom(err);
        return -1;
    }
    const cJSON *more = cJSON_GetObjectItemCaseSensitive(env, "moreResult");
    const char *next = text_of(env, "nextPageToken");
    if (cJSON_IsTrue(more) && next)
        snprintf(token, tokenlen, "%s", next);
    else
        token[0] = '\0';
    cJSON_Delete(env);
    return 0;
}

/* ---------------------------------------------------------------- per-record results */

/* The first reason code of a skipped per-record result ("1037"), or "". */
static void reason_of(const cJSON *item, char *buf, size_t size) {
    const cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(item, "reasons"), 0);
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(r, "code");
    if (cJSON_IsString(code))
        snprintf(buf, size, "%s", code->valuestring);
    else if (cJSON_IsNumber(code))
        snprintf(buf, size, "%d", code->valueint);
    else
        buf[0] = '\0';
}

/* One per-record result. Adobe "Program Members": a status change to a lower step, or to the
 * status the lead has, is skipped with 1037; so is the removal of a lead not in the program. */
static void record_of(const cJSON *r, bool removal, mk_record *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->status, sizeof out->status, "%s",
             text_of(r, "status") ? text_of(r, "status") : "");
    id_of(r, "id", out->id, sizeof out->id);
    if (strcmp(out->status, "skipped") != 0) return; /* MK_REC_OK */
    reason_of(r, out->reason, sizeof out->reason);
    if (!strcmp(out->reason, "1037")) {
        out->outcome = removal ? MK_REC_NOT_MEMBER : MK_REC_AT_OR_PAST;
        return;
    }
    out->outcome = MK_REC_FAILED;
    out->failure = mkto_classify(out->reason) == MK_RETRY ? CRM_RETRY : CRM_REFUSED;
}

/* The input array [{<key>: id}] of lead ids. */
static cJSON *lead_input(const char *key, const char *const *lead_ids, size_t n) {
    cJSON *in = cJSON_CreateArray();
    for (size_t i = 0; in && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, key, strtod(lead_ids[i], NULL));
        cJSON_AddItemToArray(in, o);
    }
    return in;
}

/* POSTs body to path and classifies the n per-record results (they follow input order). */
static int post_records(mkto_client *c, const char *path, cJSON *body, bool removal, size_t n,
                        mk_record *out, mk_error *err) {
    cJSON *res = NULL;
    int rc = mk_post_result(c, path, body, &res, err);
    cJSON_Delete(body);
    for (size_t k = 0; rc == 0 && k < n; k++)
        record_of(cJSON_GetArrayItem(res, (int)k), removal, &out[k]);
    cJSON_Delete(res);
    return rc;
}

int mkto_set_status(mkto_client *c, const char *program_id, const char *status,
                    const char *const *lead_ids, size_t n, mk_record *out, mk_error *err) {
    char path[128];
    snprintf(path, sizeof path, "/rest/v1/programs/%s/members/status.json", program_id);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "statusName", status);
    cJSON_AddItemToObject(body, "input", lead_input("leadId", lead_ids, n));
    return post_records(c, path, body, false, n, out, err);
}

int mkto_remove_members(mkto_client *c, const char *program_id, const char *const *lead_ids,
                        size_t n, mk_record *out, mk_error *err) {
    char path[128];
    snprintf(path, sizeof path, "/rest/v1/programs/%s/members/delete.json", program_id);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "input", lead_input("leadId", lead_ids, n));
    return post_records(c, path, body, true, n, out, err);
}

/* leads.json with `action` (createOrUpdate or createOnly) on email. */
static int create_leads(mkto_client *c, const char *action, const mk_new_lead *in, size_t n,
                        mk_record *out, mk_error *err) {
    cJSON *input = cJSON_CreateArray();
    for (size_t k = 0; input && k < n; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "email", in[k].email);
        if (in[k].first_name && in[k].first_name[0])
            cJSON_AddStringToObject(o, "firstName", in[k].first_name);
        if (in[k].last_name && in[k].last_name[0])
            cJSON_AddStringToObject(o, "lastName", in[k].last_name);
        if (in[k].company && in[k].company[0]) cJSON_AddStringToObject(o, "company", in[k].company);
        cJSON_AddItemToArray(input, o);
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "action", action);
    cJSON_AddStringToObject(body, "lookupField", "email");
    cJSON_AddItemToObject(body, "input", input);
    int rc = post_records(c, "/rest/v1/leads.json", body, false, n, out, err);
    /* A lead is made only with its id (status created or updated). */
    for (size_t k = 0; rc == 0 && k < n; k++)
        if (out[k].outcome != MK_REC_OK || !out[k].id[0]) {
            out[k].outcome = MK_REC_FAILED;
            out[k].failure = CRM_REFUSED;
        }
    return rc;
}

int mkto_create_leads(mkto_client *c, const mk_new_lead *in, size_t n, mk_record *out,
                      mk_error *err) {
    return create_leads(c, "createOrUpdate", in, n, out, err);
}

/* Adobe developer docs, "Error Codes": 1005 "Lead already exists" (action createOnly). */
int mkto_create_new_leads(mkto_client *c, const mk_new_lead *in, size_t n, mk_record *out,
                          mk_error *err) {
    return create_leads(c, "createOnly", in, n, out, err);
}

/* Adobe developer docs, "Leads" ("Delete"): POST /rest/v1/leads/delete.json {"input":[{"id"}]}. */
int mkto_delete_leads(mkto_client *c, const char *const *lead_ids, size_t n, mk_record *out,
                      mk_error *err) {
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "input", lead_input("id", lead_ids, n));
    int rc = post_records(c, "/rest/v1/leads/delete.json", body, false, n, out, err);
    for (size_t k = 0; rc == 0 && k < n; k++)
        if (out[k].outcome == MK_REC_OK && strcmp(out[k].status, "deleted") != 0) {
            out[k].outcome = MK_REC_FAILED;
            out[k].failure = CRM_REFUSED;
        }
    return rc;
}

/* ---------------------------------------------------------------- programs and channels */

int mkto_get_program(mkto_client *c, const char *program_id, mk_program *out, mk_error *err) {
    memset(out, 0, sizeof *out);
    char path[128];
    snprintf(path, sizeof path, "/rest/asset/v1/program/%s.json", program_id);
    cJSON *result = NULL;
    if (mk_get_result(c, path, &result, err) != 0) return -1;
    const cJSON *prog = cJSON_GetArrayItem(result, 0), *cost;
    out->found = prog != NULL;
    const char *channel = text_of(prog, "channel"), *sfdc = text_of(prog, "sfdcId");
    snprintf(out->channel, sizeof out->channel, "%s", channel ? channel : "");
    snprintf(out->sfdc_id, sizeof out->sfdc_id, "%s", sfdc ? sfdc : "");
    cJSON_ArrayForEach(cost, cJSON_GetObjectItemCaseSensitive(prog, "costs")) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cost, "cost");
        if (cJSON_IsNumber(v)) out->cost += v->valuedouble;
    }
    cJSON_Delete(result);
    return 0;
}

/* The progressionStatuses of channel/byName.json, detached (caller frees); NULL with err when
 * there are none. */
static cJSON *progression(mkto_client *c, const char *channel, mk_error *err) {
    char *esc = mk_escape(c, channel);
    char *path = esc ? mk_format("/rest/asset/v1/channel/byName.json?name=%s", esc) : NULL;
    free(esc);
    if (!path) {
        oom(err);
        return NULL;
    }
    cJSON *result = NULL;
    int rc = mk_get_result(c, path, &result, err);
    free(path);
    if (rc != 0) return NULL;
    cJSON *st = cJSON_DetachItemFromObjectCaseSensitive(cJSON_GetArrayItem(result, 0),
                                                        "progressionStatuses");
    cJSON_Delete(result);
    if (!cJSON_IsArray(st) || cJSON_GetArraySize(st) == 0) {
        cJSON_Delete(st);
        mk_set_error(err, MK_PERMANENT, 200, "channel", "Marketo has no channel of that name");
        return NULL;
    }
    return st;
}

int mkto_channel_statuses(mkto_client *c, const char *channel, char ***names, size_t *n,
                          mk_error *err) {
    *names = NULL;
    *n = 0;
    cJSON *st = progression(c, channel, err);
    if (!st) return -1;
    *names = calloc((size_t)cJSON_GetArraySize(st), sizeof **names);
    const cJSON *it, *list = *names ? st : NULL;
    cJSON_ArrayForEach(it, list) {
        const char *name = text_of(it, "name");
        if (name && ((*names)[*n] = strdup(name)) != NULL) (*n)++;
    }
    cJSON_Delete(st);
    return 0;
}

void mkto_steps_free(mk_step *steps, size_t n) {
    for (size_t i = 0; steps && i < n; i++)
        free(steps[i].name);
    free(steps);
}

int mkto_channel_steps(mkto_client *c, const char *channel, mk_step **steps, size_t *n,
                       mk_error *err) {
    *steps = NULL;
    *n = 0;
    cJSON *st = progression(c, channel, err);
    if (!st) return -1;
    mk_step *s = calloc((size_t)cJSON_GetArraySize(st), sizeof *s);
    const cJSON *it, *list = s ? st : NULL;
    cJSON_ArrayForEach(it, list) {
        const char *name = text_of(it, "name");
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(it, "step");
        if (!name || !(s[*n].name = strdup(name))) continue;
        s[(*n)++].step = cJSON_IsNumber(step) ? step->valueint : -1;
    }
    cJSON_Delete(st);
    if (!s) {
        oom(err);
        return -1;
    }
    *steps = s;
    return 0;
}

int mkto_check_access(mkto_client *c, mk_access what, mk_error *err) {
    const char *path = "/rest/asset/v1/channels.json?maxReturn=1";
    switch (what) {
    case MK_ACCESS_CHANNELS: break;
    case MK_ACCESS_LEADS:
        path = "/rest/v1/leads.json?filterType=id&filterValues=1&fields=id";
        break;
    case MK_ACCESS_MEMBERS: path = "/rest/v1/programs/members/describe.json"; break;
    }
    cJSON *env = NULL;
    int rc = mkto_call(c, "GET", path, NULL, &env, err);
    cJSON_Delete(env);
    return rc;
}
