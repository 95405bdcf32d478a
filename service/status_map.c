/* status_map — mapping struct, JSON forms and status translation. See include/status_map.h. */
#include "status_map.h"

#include "event.h"

#include <cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool copy(char *out, size_t size, const char *s) {
    if (strlen(s) >= size) return false;
    strcpy(out, s);
    return true;
}

bool status_map_to_salesforce(const mapping *m, const char *marketo, char *out, size_t size) {
    if (!*marketo || strcmp(marketo, NOT_IN_PROGRAM) == 0) return false;
    for (int i = 0; i < m->nmap; i++)
        if (strcmp(m->map[i].marketo, marketo) == 0) return copy(out, size, m->map[i].salesforce);
    /* The same label, unless an explicit entry already sends another status there. */
    for (int i = 0; i < m->nmap; i++)
        if (strcmp(m->map[i].salesforce, marketo) == 0) return false;
    return copy(out, size, marketo);
}

bool status_map_to_marketo(const mapping *m, const char *salesforce, char *out, size_t size) {
    if (!*salesforce) return false;
    for (int i = 0; i < m->nmap; i++)
        if (strcmp(m->map[i].salesforce, salesforce) == 0)
            return copy(out, size, m->map[i].marketo);
    for (int i = 0; i < m->nmap; i++)
        if (strcmp(m->map[i].marketo, salesforce) == 0) return false;
    if (strcmp(salesforce, NOT_IN_PROGRAM) == 0) return false;
    return copy(out, size, salesforce);
}

char *mapping_to_json(const mapping *m) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    char t[32];
    cJSON_AddStringToObject(o, "programId", m->program_id);
    cJSON_AddStringToObject(o, "campaignId", m->campaign_id);
    cJSON_AddBoolToObject(o, "enabled", m->enabled);
    cJSON *sm = cJSON_AddObjectToObject(o, "statusMap");
    for (int i = 0; i < m->nmap; i++)
        cJSON_AddStringToObject(sm, m->map[i].marketo, m->map[i].salesforce);
    event_format_time(m->created_ms, t, sizeof t);
    cJSON_AddStringToObject(o, "createdAt", t);
    event_format_time(m->updated_ms, t, sizeof t);
    cJSON_AddStringToObject(o, "updatedAt", t);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Reads "statusMap" into m; a sentence in err on a bad entry. */
static int read_status_map(const cJSON *sm, mapping *m, char *err, size_t errlen) {
    m->nmap = 0;
    if (!sm || cJSON_IsNull(sm)) return 0;
    if (!cJSON_IsObject(sm)) {
        snprintf(err, errlen,
                 "statusMap must be an object of \"<Marketo status>\": "
                 "\"<Salesforce status>\"");
        return -1;
    }
    for (const cJSON *e = sm->child; e; e = e->next) {
        if (m->nmap >= MAP_MAX_ENTRIES) {
            snprintf(err, errlen, "statusMap holds at most %d entries", MAP_MAX_ENTRIES);
            return -1;
        }
        if (!cJSON_IsString(e) || !*e->string || !*e->valuestring) {
            snprintf(err, errlen,
                     "statusMap[\"%.60s\"] must be a non-empty Salesforce status "
                     "label",
                     e->string ? e->string : "");
            return -1;
        }
        if (strcmp(e->string, NOT_IN_PROGRAM) == 0 || strcmp(e->valuestring, NOT_IN_PROGRAM) == 0) {
            snprintf(err, errlen,
                     "statusMap: \"Not in Program\" is the absence of membership "
                     "in Marketo and cannot be mapped");
            return -1;
        }
        status_pair *p = &m->map[m->nmap];
        if (!copy(p->marketo, sizeof p->marketo, e->string) ||
            !copy(p->salesforce, sizeof p->salesforce, e->valuestring)) {
            snprintf(err, errlen, "statusMap[\"%.60s\"]: labels are at most %d bytes", e->string,
                     STATUS_LABEL_MAX - 1);
            return -1;
        }
        for (int i = 0; i < m->nmap; i++) {
            if (strcmp(m->map[i].marketo, p->marketo) == 0) {
                snprintf(err, errlen, "statusMap lists \"%.60s\" twice", p->marketo);
                return -1;
            }
            if (strcmp(m->map[i].salesforce, p->salesforce) == 0) {
                snprintf(err, errlen,
                         "statusMap is not one-to-one: \"%.60s\" and \"%.60s\" both "
                         "map to \"%.60s\"",
                         m->map[i].marketo, p->marketo, p->salesforce);
                return -1;
            }
        }
        m->nmap++;
    }
    /* Unique keys and unique values make the effective map one-to-one: a label that is
     * the target of an entry is never also reached by the same-label rule. */
    return 0;
}

int mapping_from_json(const char *json, size_t len, mapping *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    cJSON *o = cJSON_ParseWithLengthOpts(json, len, NULL, 0);
    int rc = -1;
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(o, "programId");
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(o, "campaignId");
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(o, "enabled");
    const cJSON *ca = cJSON_GetObjectItemCaseSensitive(o, "createdAt");
    const cJSON *ua = cJSON_GetObjectItemCaseSensitive(o, "updatedAt");
    if (!cJSON_IsString(pid) || !cJSON_IsString(cid) || !cJSON_IsBool(en) ||
        !copy(out->program_id, sizeof out->program_id, pid->valuestring) ||
        !copy(out->campaign_id, sizeof out->campaign_id, cid->valuestring)) {
        snprintf(err, errlen, "stored mapping is malformed");
        goto out;
    }
    out->enabled = cJSON_IsTrue(en);
    if (read_status_map(cJSON_GetObjectItemCaseSensitive(o, "statusMap"), out, err, errlen))
        goto out;
    if (cJSON_IsString(ca)) event_parse_time(ca->valuestring, &out->created_ms);
    if (cJSON_IsString(ua)) event_parse_time(ua->valuestring, &out->updated_ms);
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}

int mapping_from_request(const char *program_id, const char *json, size_t len, mapping *out,
                         bool *force, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    *force = false;
    int rc = -1;
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    while (o && end && (size_t)(end - json) < len && strchr(" \t\r\n", *end))
        end++;
    if (!cJSON_IsObject(o) || (end && (size_t)(end - json) < len && *end)) {
        snprintf(err, errlen,
                 "the body must be one JSON object {\"campaignId\", \"enabled\", "
                 "\"statusMap\", \"force\"}");
        goto out;
    }
    size_t pl = strlen(program_id);
    /* One spelling per program (no leading zeros), and exact as a sort score (< 2^53). */
    bool digits = pl > 0 && pl <= 15 && program_id[0] != '0';
    for (size_t i = 0; digits && i < pl; i++)
        digits = isdigit((unsigned char)program_id[i]);
    if (!digits) {
        snprintf(err, errlen,
                 "programId must be the Marketo program's numeric id (1 to 15 "
                 "digits, no leading zero)");
        goto out;
    }
    strcpy(out->program_id, program_id);
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(o, "campaignId");
    if (!cJSON_IsString(cid) || !event_valid_sfid(cid->valuestring) ||
        strncmp(cid->valuestring, "701", 3) != 0) {
        snprintf(err, errlen,
                 "campaignId must be the 15- or 18-character Salesforce campaign "
                 "id (701...)");
        goto out;
    }
    strcpy(out->campaign_id, cid->valuestring);
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(o, "enabled");
    if (en && !cJSON_IsBool(en)) {
        snprintf(err, errlen, "enabled must be true or false");
        goto out;
    }
    out->enabled = en ? cJSON_IsTrue(en) : true;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "force");
    if (f && !cJSON_IsBool(f)) {
        snprintf(err, errlen, "force must be true or false");
        goto out;
    }
    *force = f && cJSON_IsTrue(f);
    if (read_status_map(cJSON_GetObjectItemCaseSensitive(o, "statusMap"), out, err, errlen))
        goto out;
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}

static bool listed(const char *const *list, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0) return true;
    return false;
}

void status_map_compare(const mapping *m, const char *const *marketo, size_t nm,
                        const char *const *salesforce, size_t ns, status_report *out) {
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < nm && out->nunmatched < REPORT_MAX; i++) {
        const char *mk = marketo[i];
        if (strcmp(mk, NOT_IN_PROGRAM) == 0) continue;
        char sf[STATUS_LABEL_MAX];
        bool has = status_map_to_salesforce(m, mk, sf, sizeof sf);
        if (has && listed(salesforce, ns, sf) && out->nmatched < REPORT_MAX) {
            status_pair *p = &out->matched[out->nmatched++];
            snprintf(p->marketo, sizeof p->marketo, "%s", mk);
            snprintf(p->salesforce, sizeof p->salesforce, "%s", sf);
            continue;
        }
        status_unmatched *u = &out->unmatched[out->nunmatched++];
        u->marketo_side = true;
        snprintf(u->status, sizeof u->status, "%s", mk);
        if (has)
            snprintf(u->fix, sizeof u->fix,
                     "add the campaign member status \"%s\" to Salesforce campaign %s, or map "
                     "\"%s\" to an existing status in statusMap",
                     sf, m->campaign_id, mk);
        else
            snprintf(u->fix, sizeof u->fix,
                     "\"%s\" is taken by another statusMap entry: map \"%s\" explicitly in "
                     "statusMap",
                     mk, mk);
    }
    for (size_t i = 0; i < ns && out->nunmatched < REPORT_MAX; i++) {
        const char *sf = salesforce[i];
        bool reached = false;
        for (int j = 0; j < out->nmatched && !reached; j++)
            reached = strcmp(out->matched[j].salesforce, sf) == 0;
        if (reached) continue;
        status_unmatched *u = &out->unmatched[out->nunmatched++];
        u->marketo_side = false;
        snprintf(u->status, sizeof u->status, "%s", sf);
        char mk[STATUS_LABEL_MAX];
        if (status_map_to_marketo(m, sf, mk, sizeof mk))
            snprintf(u->fix, sizeof u->fix,
                     "add the progression status \"%s\" to Marketo program %s's channel, or map "
                     "it in statusMap",
                     mk, m->program_id);
        else
            snprintf(u->fix, sizeof u->fix,
                     "\"%s\" is taken by another statusMap entry: give it an explicit entry in "
                     "statusMap",
                     sf);
    }
}
