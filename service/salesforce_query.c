/* salesforce_query — every SOQL text the service sends, and the typed answers built from
 * the records. See include/salesforce.h. Field names are the Salesforce Platform Object
 * Reference's (CampaignMember, CampaignMemberStatus, Lead, Contact). */
#include "salesforce.h"

#include "salesforce_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SOQL_IN_MAX 100 /* values per SOQL IN list, keeping the URL short */

/* The escape sequence SOQL defines for a character, or NULL when it needs none. \b is left
 * out: the reference calls it "Bell" in English and backspace elsewhere; neither can be in a
 * Salesforce text value we look up. */
static const char *soql_escape(unsigned char ch) {
    switch (ch) {
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    case '\f': return "\\f";
    case '"': return "\\\"";
    case '\'': return "\\'";
    case '\\': return "\\\\";
    default: return NULL;
    }
}

long sf_soql_literal(char *out, size_t size, const char *s) {
    size_t n = 0;
    if (size < 3) return -1;
    out[n++] = '\'';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *esc = soql_escape(*p);
        if (!esc && (*p < 0x20 || *p == 0x7f)) return -1;
        size_t len = esc ? strlen(esc) : 1;
        if (n + len + 2 > size) return -1; /* room for the closing quote and the NUL */
        if (esc)
            memcpy(out + n, esc, len);
        else
            out[n] = (char)*p;
        n += len;
    }
    out[n++] = '\'';
    out[n] = '\0';
    return (long)n;
}

int sf_soql_quote(char *buf, size_t size, const char *s) {
    size_t used = strlen(buf);
    if (used >= size) return -1;
    long n = sf_soql_literal(buf + used, size - used, s);
    if (n < 0) {
        buf[used] = '\0';
        return -1;
    }
    return 0;
}

/* A value that does not fit the query's buffer: the call fails on its own (a truncated query
 * never goes out). */
static int unquotable(sf_error *err, const char *what) {
    sf_set_error(err, SF_PERMANENT, 0, "UNUSABLE", what);
    return -1;
}

size_t sf_url_escaped_len(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        n += plain ? 1 : 3;
    }
    return n;
}

/* "/services/data/vNN.N/query?q=" with room for a longer version. */
#define QUERY_PREFIX_LEN 32

long sf_soql_in(const char *head, const char *tail, const char *const *values, size_t n, size_t max,
                char **soql) {
    *soql = NULL;
    static const char sep[] = ", ";
    size_t url = QUERY_PREFIX_LEN + sf_url_escaped_len(head) + sf_url_escaped_len(tail);
    size_t text = strlen(head) + strlen(tail);
    size_t sep_url = sf_url_escaped_len(sep);
    /* First pass: how many values fit, and how long the text is. */
    size_t k = 0;
    char lit[2 * 4096 + 3];
    for (; k < n && k < max; k++) {
        long len = sf_soql_literal(lit, sizeof lit, values[k]);
        if (len < 0) break;
        size_t add = sf_url_escaped_len(lit) + (k ? sep_url : 0);
        if (url + add > SF_QUERY_URI_BUDGET) break;
        url += add;
        text += (size_t)len + (k ? strlen(sep) : 0);
    }
    if (k == 0) return 0;
    char *out = malloc(text + 1);
    if (!out) return -1;
    size_t off = (size_t)sprintf(out, "%s", head);
    for (size_t i = 0; i < k; i++) {
        if (i) off += (size_t)sprintf(out + off, "%s", sep);
        off += (size_t)sf_soql_literal(out + off, text + 1 - off, values[i]);
    }
    sprintf(out + off, "%s", tail);
    *soql = out;
    return (long)k;
}

int sf_email_check(const char *email, char *why, size_t whylen) {
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)email; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            snprintf(why, whylen,
                     "it contains the control character U+%04X, which no Salesforce email "
                     "address can hold",
                     *p);
            return -1;
        }
        if ((*p & 0xC0) != 0x80) chars++; /* count UTF-8 characters, not bytes */
    }
    if (chars == 0) {
        snprintf(why, whylen, "it is empty");
        return -1;
    }
    if (chars > SF_EMAIL_MAX) {
        snprintf(why, whylen,
                 "it is %zu characters long and Salesforce's Email field holds at most %d", chars,
                 SF_EMAIL_MAX);
        return -1;
    }
    return 0;
}

void sf_member_statuses_free(sf_member_status *s, size_t n) {
    for (size_t i = 0; s && i < n; i++)
        free(s[i].label);
    free(s);
}

/* A campaign's member statuses are its CampaignMemberStatus records (object reference,
 * sforce_api_objects_campaignmemberstatus.htm). */
int sf_campaign_statuses(sf_client *c, const char *const *campaign_ids, size_t ncampaigns,
                         sf_member_status **out, size_t *n, sf_error *err) {
    *out = NULL;
    *n = 0;
    if (ncampaigns == 0) return 0;
    if (ncampaigns > SF_STATUS_CAMPAIGNS_MAX) ncampaigns = SF_STATUS_CAMPAIGNS_MAX;
    size_t size = 160 + ncampaigns * 48; /* an id quoted and escaped takes at most 40 */
    char *soql = malloc(size);
    cJSON *recs = NULL;
    if (!soql) {
        sf_set_error(err, SF_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    snprintf(soql, size,
             "SELECT CampaignId, Label FROM CampaignMemberStatus WHERE CampaignId IN (");
    for (size_t i = 0; i < ncampaigns; i++) {
        if (i) strcat(soql, ", ");
        if (sf_soql_quote(soql, size, campaign_ids[i]) != 0) {
            free(soql);
            return unquotable(err, "a campaign id cannot be used in a SOQL query");
        }
    }
    strcat(soql, ") ORDER BY SortOrder");
    int rc = sf_query(c, soql, &recs, err);
    free(soql);
    int count = rc == 0 ? cJSON_GetArraySize(recs) : 0;
    sf_member_status *s = calloc(count ? (size_t)count : 1, sizeof *s);
    if (rc == 0 && !s) {
        sf_set_error(err, SF_RETRY, 0, "internal", "out of memory");
        rc = -1;
    }
    const cJSON *list = rc == 0 ? recs : NULL, *r;
    cJSON_ArrayForEach(r, list) {
        const cJSON *cid = cJSON_GetObjectItemCaseSensitive(r, "CampaignId");
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(r, "Label");
        if (!cJSON_IsString(cid) || !cJSON_IsString(label)) continue;
        s[*n].label = strdup(label->valuestring);
        if (!s[*n].label) {
            sf_set_error(err, SF_RETRY, 0, "internal", "out of memory");
            rc = -1;
            break;
        }
        snprintf(s[*n].campaign_id, sizeof s[*n].campaign_id, "%s", cid->valuestring);
        (*n)++;
    }
    cJSON_Delete(recs);
    if (rc != 0) {
        sf_member_statuses_free(s, *n);
        *n = 0;
        return -1;
    }
    *out = s;
    return 0;
}

/* ---------------------------------------------------------------- people and members */

static void oom(sf_error *err) {
    sf_set_error(err, SF_RETRY, 0, "internal", "out of memory");
}

static const char *object_of(sf_person_kind kind) {
    return kind == SF_CONTACT ? "Contact" : "Lead";
}

/* The condition a kind adds before its own (a converted Lead is its Contact now). */
static const char *condition_of(sf_person_kind kind) {
    return kind == SF_LEAD ? "IsConverted = false AND " : "";
}

static bool same_id(const char *a, const char *b) {
    return strncmp(a, b, 15) == 0; /* a 15- and an 18-character id of one record */
}

int sf_default_status(sf_client *c, const char *campaign_id, char **label, sf_error *err) {
    char soql[256] = "SELECT Label FROM CampaignMemberStatus WHERE IsDefault = true AND "
                     "CampaignId = ";
    cJSON *recs = NULL;
    *label = NULL;
    if (sf_soql_quote(soql, sizeof soql, campaign_id) != 0)
        return unquotable(err, "the campaign id cannot be used in a SOQL query");
    if (sf_query(c, soql, &recs, err) != 0) {
        cJSON_Delete(recs);
        return -1;
    }
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(recs, 0), "Label");
    int rc = 0;
    if (cJSON_IsString(l) && !(*label = strdup(l->valuestring))) {
        oom(err);
        rc = -1;
    }
    cJSON_Delete(recs);
    return rc;
}

int sf_people_exist(sf_client *c, sf_person_kind kind, const char *const *ids, size_t n,
                    bool *exists, sf_error *err) {
    char head[160];
    snprintf(head, sizeof head, "SELECT Id FROM %s WHERE %sId IN (", object_of(kind),
             condition_of(kind));
    for (size_t start = 0; start < n;) {
        char *soql = NULL;
        long k = sf_soql_in(head, ")", ids + start, n - start, SOQL_IN_MAX, &soql);
        if (k < 0) {
            oom(err);
            return -1;
        }
        if (k == 0) { /* an id that is no id: not a match */
            start++;
            continue;
        }
        cJSON *recs = NULL;
        int rc = sf_query(c, soql, &recs, err);
        free(soql);
        const cJSON *r, *rows = rc == 0 ? recs : NULL;
        cJSON_ArrayForEach(r, rows) {
            const char *id = sf_text(r, "Id");
            for (size_t j = start; *id && j < start + (size_t)k; j++)
                exists[j] = exists[j] || same_id(id, ids[j]);
        }
        cJSON_Delete(recs);
        if (rc != 0) return -1;
        start += (size_t)k;
    }
    return 0;
}

int sf_people_by_email(sf_client *c, sf_person_kind kind, const char *const *emails, size_t n,
                       char (*ids)[CRM_SFID_MAX], bool *unusable, sf_error *err) {
    char head[160];
    snprintf(head, sizeof head, "SELECT Id, Email FROM %s WHERE %sEmail IN (", object_of(kind),
             condition_of(kind));
    for (size_t start = 0; start < n;) {
        char *soql = NULL;
        long k = sf_soql_in(head, ")", emails + start, n - start, SOQL_IN_MAX, &soql);
        if (k < 0) {
            oom(err);
            return -1;
        }
        if (k == 0) { /* cannot happen for a checked email; never cut, never guess */
            unusable[start++] = true;
            continue;
        }
        cJSON *recs = NULL;
        int rc = sf_query(c, soql, &recs, err);
        free(soql);
        const cJSON *r, *rows = rc == 0 ? recs : NULL;
        cJSON_ArrayForEach(r, rows) {
            const char *id = sf_text(r, "Id"), *email = sf_text(r, "Email");
            for (size_t j = start; *id && *email && j < start + (size_t)k; j++)
                if (!ids[j][0] && strcasecmp(email, emails[j]) == 0)
                    snprintf(ids[j], CRM_SFID_MAX, "%s", id);
        }
        cJSON_Delete(recs);
        if (rc != 0) return -1;
        start += (size_t)k;
    }
    return 0;
}

int sf_people_with_email(sf_client *c, sf_person_kind kind, const char *email,
                         char (*ids)[CRM_SFID_MAX], size_t max, size_t *n, sf_error *err) {
    char soql[EV_TEXT_MAX * 2 + 200];
    *n = 0;
    snprintf(soql, sizeof soql, "SELECT Id FROM %s WHERE %sEmail = ", object_of(kind),
             condition_of(kind));
    if (sf_soql_quote(soql, sizeof soql, email) != 0) return 0; /* no such email there */
    cJSON *recs = NULL;
    if (sf_query(c, soql, &recs, err) != 0) {
        cJSON_Delete(recs);
        return -1;
    }
    const cJSON *r;
    cJSON_ArrayForEach(r, recs) {
        if (*n < max && *sf_text(r, "Id"))
            snprintf(ids[(*n)++], CRM_SFID_MAX, "%s", sf_text(r, "Id"));
    }
    cJSON_Delete(recs);
    return 0;
}

int sf_campaign_members(sf_client *c, const char *campaign_id, sf_person_kind kind,
                        const char *const *people, size_t n, sf_campaign_member *out, size_t *taken,
                        sf_error *err) {
    char head[256] = "SELECT Id, LeadId, ContactId, Status, LastModifiedDate, LastModifiedById "
                     "FROM CampaignMember WHERE CampaignId = ";
    bool usable = sf_soql_quote(head, sizeof head, campaign_id) == 0;
    strcat(head, kind == SF_CONTACT ? " AND ContactId IN (" : " AND LeadId IN (");
    char *soql = NULL;
    long k = usable ? sf_soql_in(head, ")", people, n, SOQL_IN_MAX, &soql) : 0;
    *taken = 0;
    if (k < 0) {
        oom(err);
        return -1;
    }
    if (k == 0) { /* ids from Salesforce always fit: say so rather than cut one off */
        char msg[200];
        snprintf(msg, sizeof msg, "campaign %s or person %s cannot be used in a SOQL query",
                 campaign_id, n ? people[0] : "");
        sf_set_error(err, SF_PERMANENT, 0, "UNUSABLE", msg);
        return -1;
    }
    *taken = (size_t)k;
    for (size_t j = 0; j < *taken; j++)
        memset(&out[j], 0, sizeof out[j]);
    cJSON *recs = NULL;
    int rc = sf_query(c, soql, &recs, err);
    free(soql);
    const cJSON *r, *rows = rc == 0 ? recs : NULL;
    cJSON_ArrayForEach(r, rows) {
        const char *who = sf_text(r, kind == SF_CONTACT ? "ContactId" : "LeadId");
        for (size_t j = 0; j < *taken; j++) {
            if (!*who || !same_id(who, people[j])) continue;
            sf_campaign_member *m = &out[j];
            m->found = true;
            if (*sf_text(r, "Id")) snprintf(m->id, sizeof m->id, "%s", sf_text(r, "Id"));
            snprintf(m->status, sizeof m->status, "%s", sf_text(r, "Status"));
            snprintf(m->modified_by, sizeof m->modified_by, "%s", sf_text(r, "LastModifiedById"));
            if (event_parse_time(sf_text(r, "LastModifiedDate"), &m->modified_ms) != 0)
                m->modified_ms = 0;
        }
    }
    cJSON_Delete(recs);
    return rc;
}

void sf_member_rows_free(sf_member_row *rows, size_t n) {
    for (size_t i = 0; rows && i < n; i++) {
        free(rows[i].status);
        free(rows[i].email);
        free(rows[i].first_name);
        free(rows[i].last_name);
        free(rows[i].company);
    }
    free(rows);
}

/* Appends the CampaignMember records of recs to *rows (grown as needed). 0, or -1. */
static int take_rows(const cJSON *recs, sf_member_row **rows, size_t *n) {
    size_t add = (size_t)cJSON_GetArraySize(recs);
    if (add == 0) return 0;
    sf_member_row *grown = realloc(*rows, (*n + add) * sizeof *grown);
    if (!grown) return -1;
    *rows = grown;
    const cJSON *r;
    cJSON_ArrayForEach(r, recs) {
        sf_member_row *m = &grown[*n];
        memset(m, 0, sizeof *m);
        snprintf(m->id, sizeof m->id, "%s", sf_text(r, "Id"));
        snprintf(m->campaign_id, sizeof m->campaign_id, "%s", sf_text(r, "CampaignId"));
        snprintf(m->lead_id, sizeof m->lead_id, "%s", sf_text(r, "LeadId"));
        snprintf(m->contact_id, sizeof m->contact_id, "%s", sf_text(r, "ContactId"));
        m->status = strdup(sf_text(r, "Status"));
        m->email = strdup(sf_text(r, "Email"));
        m->first_name = strdup(sf_text(r, "FirstName"));
        m->last_name = strdup(sf_text(r, "LastName"));
        m->company = strdup(sf_text(r, "CompanyOrAccount"));
        (*n)++;
        if (!m->status || !m->email || !m->first_name || !m->last_name || !m->company) return -1;
        if (event_parse_time(sf_text(r, "LastModifiedDate"), &m->modified_ms) != 0)
            m->modified_ms = 0;
    }
    return 0;
}

/* Runs soql and appends its CampaignMembers to *rows. */
static int query_rows(sf_client *c, const char *soql, sf_member_row **rows, size_t *n,
                      sf_error *err) {
    cJSON *recs = NULL;
    int rc = sf_query(c, soql, &recs, err);
    if (rc == 0 && take_rows(recs, rows, n) != 0) {
        oom(err);
        rc = -1;
    }
    cJSON_Delete(recs);
    return rc;
}

/* Frees *rows after a failure. */
static int rows_failed(sf_member_row **rows, size_t *n) {
    sf_member_rows_free(*rows, *n);
    *rows = NULL;
    *n = 0;
    return -1;
}

int sf_campaign_member_list(sf_client *c, const char *campaign_id, sf_member_row **rows, size_t *n,
                            sf_error *err) {
    char soql[512] = "SELECT Id, LeadId, ContactId, Status, Email, FirstName, LastName, "
                     "CompanyOrAccount, LastModifiedDate FROM CampaignMember WHERE CampaignId = ";
    *rows = NULL;
    *n = 0;
    if (sf_soql_quote(soql, sizeof soql, campaign_id) != 0)
        return unquotable(err, "the campaign id cannot be used in a SOQL query");
    return query_rows(c, soql, rows, n, err) == 0 ? 0 : rows_failed(rows, n);
}

/* What sf_campaign_member_pages hands each page to. */
typedef struct {
    sf_member_page_fn fn;
    void *ud;
    bool oom;
} member_pages;

static int member_page(void *ud, cJSON *recs) {
    member_pages *mp = ud;
    sf_member_row *rows = NULL;
    size_t n = 0;
    int rc = take_rows(recs, &rows, &n);
    cJSON_Delete(recs);
    if (rc != 0) {
        sf_member_rows_free(rows, n);
        mp->oom = true;
        return 1;
    }
    rc = mp->fn(mp->ud, rows, n);
    sf_member_rows_free(rows, n);
    return rc;
}

/* Keyset paging: each page is the CampaignMembers after the last Id seen, so a listing
 * resumes from a stored Id with a new query (Salesforce Help 000387840: sort by Id and filter
 * on the last one returned). A query locator (nextRecordsUrl) expires after 15 minutes of
 * inactivity and a user has at most 10 open (SOAP API Developer Guide, "QueryLocator"); it is
 * followed within one run only. */
int sf_campaign_member_pages(sf_client *c, const char *campaign_id, const char *after_id,
                             sf_member_page_fn page, void *ud, sf_error *err) {
    char soql[640] = "SELECT Id, LeadId, ContactId, Status, Email, FirstName, LastName, "
                     "CompanyOrAccount, LastModifiedDate FROM CampaignMember WHERE CampaignId = ";
    if (sf_soql_quote(soql, sizeof soql, campaign_id) != 0 ||
        (after_id && *after_id &&
         (strcat(soql, " AND Id > "), sf_soql_quote(soql, sizeof soql, after_id) != 0))) {
        sf_set_error(err, SF_PERMANENT, 0, "UNUSABLE",
                     "the campaign id or the listing's cursor cannot be used in a SOQL query");
        return -1;
    }
    strcat(soql, " ORDER BY Id");
    member_pages mp = {page, ud, false};
    int rc = sf_query_pages(c, soql, member_page, &mp, err);
    if (mp.oom) {
        oom(err);
        return -1;
    }
    return rc;
}

int sf_person_memberships(sf_client *c, sf_person_kind kind, const char *const *people, size_t n,
                          sf_member_row **rows, size_t *nrows, sf_error *err) {
    char head[200];
    snprintf(head, sizeof head,
             "SELECT Id, CampaignId, LeadId, ContactId, Status, LastModifiedDate FROM "
             "CampaignMember WHERE %s IN (",
             kind == SF_CONTACT ? "ContactId" : "LeadId");
    for (size_t start = 0; start < n;) {
        char *soql = NULL;
        long k = sf_soql_in(head, ")", people + start, n - start, SOQL_IN_MAX, &soql);
        if (k <= 0) {
            char msg[120];
            snprintf(msg, sizeof msg, "person %s cannot be used in a query", people[start]);
            sf_set_error(err, SF_PERMANENT, 0, "UNUSABLE", msg);
            return rows_failed(rows, nrows);
        }
        int rc = query_rows(c, soql, rows, nrows, err);
        free(soql);
        if (rc != 0) return rows_failed(rows, nrows);
        start += (size_t)k;
    }
    return 0;
}

/* Salesforce Object Reference, "CampaignMember": Email (the lead's or contact's) is filterable. */
int sf_members_with_email(sf_client *c, const char *campaign_id, const char *email,
                          sf_member_row **rows, size_t *n, sf_error *err) {
    char soql[512] = "SELECT Id, Status, LeadId, ContactId FROM CampaignMember WHERE CampaignId = ";
    *rows = NULL;
    *n = 0;
    if (sf_soql_quote(soql, sizeof soql, campaign_id) != 0 ||
        (strcat(soql, " AND Email = "), sf_soql_quote(soql, sizeof soql, email) != 0))
        return unquotable(err, "the campaign id or the email cannot be used in a SOQL query");
    return query_rows(c, soql, rows, n, err) == 0 ? 0 : rows_failed(rows, n);
}

int sf_campaign_status_labels(sf_client *c, const char *campaign_id, char ***labels, size_t *n,
                              sf_error *err) {
    char soql[256] = "SELECT Label FROM CampaignMemberStatus WHERE CampaignId = ";
    *labels = NULL;
    *n = 0;
    if (sf_soql_quote(soql, sizeof soql, campaign_id) != 0)
        return unquotable(err, "the campaign id cannot be used in a SOQL query");
    strcat(soql, " ORDER BY SortOrder");
    cJSON *recs = NULL;
    if (sf_query(c, soql, &recs, err) != 0) {
        cJSON_Delete(recs);
        return -1;
    }
    int count = cJSON_GetArraySize(recs);
    int rc = 0;
    *labels = calloc(count > 0 ? (size_t)count : 1, sizeof **labels);
    const cJSON *r, *list = *labels ? recs : NULL;
    cJSON_ArrayForEach(r, list) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(r, "Label");
        if (!cJSON_IsString(l)) continue;
        if (!((*labels)[*n] = strdup(l->valuestring))) break;
        (*n)++;
    }
    if (!*labels || (r && *n < (size_t)count)) {
        oom(err);
        for (size_t i = 0; *labels && i < *n; i++)
            free((*labels)[i]);
        free(*labels);
        *labels = NULL;
        *n = 0;
        rc = -1;
    }
    cJSON_Delete(recs);
    return rc;
}
