/* salesforce_bulk — Bulk API 2.0 query jobs of a campaign's members. See
 * include/salesforce_bulk.h. */
#include "salesforce_bulk.h"

#include "salesforce_priv.h"

#include "event.h"
#include "log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The fields sf_campaign_member_pages reads (salesforce_query.c), in the same names. */
#define MEMBER_FIELDS                                                                              \
    "Id, LeadId, ContactId, Status, Email, FirstName, LastName, CompanyOrAccount, "                \
    "LastModifiedDate"

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Percent-encodes s (all but A-Z a-z 0-9 - . _ ~) after out's text; -1 when out is too small. */
static int url_append(char *out, size_t size, const char *s) {
    size_t n = strlen(out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        if (n + (plain ? 1 : 3) >= size) return -1;
        n += (size_t)snprintf(out + n, size - n, plain ? "%c" : "%%%02X", *p);
    }
    return 0;
}

static bool id_ok(const char *id) {
    size_t n = strlen(id);
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i])) return false;
    return n == 15 || n == 18;
}

/* ---------------------------------------------------------------- count, create, wait */

/* SOQL and SOSL Reference, "COUNT()": the query result's size (totalSize) is the count; no
 * records. */
int sfb_member_count(sf_client *c, const char *campaign_id, long *count, sf_error *err) {
    char soql[256] = "SELECT COUNT() FROM CampaignMember WHERE CampaignId = ",
         path[512] = "query?q=";
    *count = 0;
    if (sf_soql_quote(soql, sizeof soql, campaign_id) != 0 ||
        url_append(path, sizeof path, soql) != 0) {
        sf_set_error(err, SF_PERMANENT, 0, "UNUSABLE", "the campaign id cannot be put in a query");
        return -1;
    }
    cJSON *o = NULL;
    if (sf_call(c, "GET", path, NULL, &o, err) != 0) return -1;
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "totalSize");
    int rc = 0;
    if (cJSON_IsNumber(n) && n->valuedouble >= 0)
        *count = (long)n->valuedouble;
    else {
        sf_set_error(err, SF_RETRY, 200, "unexpected",
                     "a COUNT() query answered without totalSize");
        rc = -1;
    }
    cJSON_Delete(o);
    return rc;
}

int sfb_create_member_job(sf_client *c, const char *campaign_id, char job_id[SFB_JOB_ID_MAX],
                          sf_error *err) {
    char soql[320] = "SELECT " MEMBER_FIELDS " FROM CampaignMember WHERE CampaignId = ";
    job_id[0] = '\0';
    if (sf_soql_quote(soql, sizeof soql, campaign_id) != 0) {
        sf_set_error(err, SF_PERMANENT, 0, "UNUSABLE", "the campaign id cannot be put in a query");
        return -1;
    }
    /* Bulk API 2.0 Developer Guide, "Create a Query Job": POST jobs/query {operation, query,
     * contentType CSV, columnDelimiter, lineEnding}; the answer's id names the job. */
    cJSON *body = cJSON_CreateObject(), *o = NULL;
    cJSON_AddStringToObject(body, "operation", "query");
    cJSON_AddStringToObject(body, "query", soql);
    cJSON_AddStringToObject(body, "contentType", "CSV");
    cJSON_AddStringToObject(body, "columnDelimiter", "COMMA");
    cJSON_AddStringToObject(body, "lineEnding", "LF");
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!text) {
        sf_set_error(err, SF_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    int rc = sf_call(c, "POST", "jobs/query", text, &o, err);
    free(text);
    if (rc != 0) {
        /* Bulk API 2.0 errors, "ExceededQuota": the 24-hour allocation is spent; later works. */
        if (sfb_no_allocation(err)) err->outcome = SF_RETRY;
        return -1;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    if (cJSON_IsString(id) && id_ok(id->valuestring))
        snprintf(job_id, SFB_JOB_ID_MAX, "%s", id->valuestring);
    else {
        sf_set_error(err, SF_RETRY, 200, "unexpected", "a query job was created without an id");
        rc = -1;
    }
    cJSON_Delete(o);
    return rc;
}

/* The job's state into state (and its errorMessage into msg). 0, or -1 with err. */
static int job_state(sf_client *c, const char *job_id, char *state, size_t ssize, char *msg,
                     size_t msize, sf_error *err) {
    char path[96];
    snprintf(path, sizeof path, "jobs/query/%s", job_id);
    cJSON *o = NULL;
    if (sf_call(c, "GET", path, NULL, &o, err) != 0) return -1;
    snprintf(state, ssize, "%s", sf_text(o, "state"));
    snprintf(msg, msize, "%s", sf_text(o, "errorMessage"));
    cJSON_Delete(o);
    return 0;
}

int sfb_wait(sf_client *c, const char *job_id, long max_wait_ms, sf_error *err) {
    long waited = 0, step = 250;
    for (;;) {
        char state[32], msg[400];
        if (job_state(c, job_id, state, sizeof state, msg, sizeof msg, err) != 0) return -1;
        /* "Get Information About a Query Job": state UploadComplete, InProgress, then
         * JobComplete, Failed or Aborted (Bulk API 2.0 "Job States"). */
        if (strcmp(state, "JobComplete") == 0) return 0;
        char text[600];
        if (strcmp(state, "Failed") == 0) {
            snprintf(text, sizeof text, "query job %s failed: %s", job_id, msg);
            sf_set_error(err, SF_PERMANENT, 200, "JOB_FAILED", text);
            return -1;
        }
        if (strcmp(state, "Aborted") == 0 || waited >= max_wait_ms) {
            snprintf(text, sizeof text, "query job %s %s", job_id,
                     waited >= max_wait_ms ? "is still running; giving up waiting for now"
                                           : "was aborted in Salesforce");
            sf_set_error(err, SF_RETRY, 200, "JOB_NOT_COMPLETE", text);
            return -1;
        }
        sleep_ms(step);
        waited += step;
        step = step * 2 > 5000 ? 5000 : step * 2;
    }
}

void sfb_discard(sf_client *c, const char *job_id) {
    char path[96];
    snprintf(path, sizeof path, "jobs/query/%s", job_id);
    cJSON *o = NULL;
    sf_error e;
    /* "Delete a Query Job": only a job in JobComplete, Aborted or Failed; "Abort a Query Job":
     * PATCH {"state": "Aborted"} for one in UploadComplete or InProgress. */
    if (sf_call(c, "DELETE", path, NULL, &o, &e) == 0) return;
    cJSON_Delete(o);
    o = NULL;
    if (sf_call(c, "PATCH", path, "{\"state\":\"Aborted\"}", &o, &e) == 0) {
        cJSON_Delete(o);
        o = NULL;
        if (sf_call(c, "DELETE", path, NULL, &o, &e) == 0) return;
    }
    cJSON_Delete(o);
    LOG_KV(LOG_INFO,
           "salesforce: a bulk query job was not deleted (Salesforce deletes it within "
           "7 days)",
           "job_id", job_id, "error", e.message);
}

bool sfb_no_allocation(const sf_error *err) {
    char code[64];
    size_t n = 0;
    for (const char *p = err->code; *p && n + 1 < sizeof code; p++)
        if (*p != '_') code[n++] = (char)toupper((unsigned char)*p);
    code[n] = '\0';
    return strcmp(code, "EXCEEDEDQUOTA") == 0;
}

bool sfb_gone(const sf_error *err) {
    return err->status == 404;
}

/* ---------------------------------------------------------------- results */

typedef struct {
    sfb_csv *csv;
    char *next;
    int stopped; /* the row function's or the parser's (-1) non-zero value */
} page_read;

static size_t on_data(void *ud, const char *data, size_t n) {
    page_read *pr = ud;
    if (pr->stopped) return 0;
    pr->stopped = sfb_csv_feed(pr->csv, data, n);
    return pr->stopped ? 0 : n;
}

/* "Get Results for a Query Job": Sforce-Locator names the next page, "null" after the last. */
static void on_line(void *ud, const char *line, size_t n) {
    page_read *pr = ud;
    static const char name[] = "Sforce-Locator:";
    size_t nl = sizeof name - 1;
    if (n <= nl || strncasecmp(line, name, nl) != 0) return;
    const char *v = line + nl, *end = line + n;
    while (v < end && isspace((unsigned char)*v))
        v++;
    while (end > v && isspace((unsigned char)end[-1]))
        end--;
    size_t len = (size_t)(end - v);
    if (len >= SFB_LOCATOR_MAX || (len == 4 && strncmp(v, "null", 4) == 0)) len = 0;
    memcpy(pr->next, v, len);
    pr->next[len] = '\0';
}

sfb_page_rc sfb_read_page(sf_client *c, const char *job_id, const char *locator, long max_records,
                          sfb_row_fn fn, void *ud, char *next, sf_error *err) {
    char path[SFB_LOCATOR_MAX * 3 + 128];
    next[0] = '\0';
    snprintf(path, sizeof path, "jobs/query/%s/results?maxRecords=%ld", job_id, max_records);
    if (locator && *locator &&
        (strcat(path, "&locator="), url_append(path, sizeof path, locator) != 0)) {
        sf_set_error(err, SF_PERMANENT, 0, "UNUSABLE", "the results locator is too long");
        return SFB_PAGE_ERROR;
    }
    page_read pr = {sfb_csv_new(fn, ud), next, 0};
    if (!pr.csv) {
        sf_set_error(err, SF_RETRY, 0, "internal", "out of memory");
        return SFB_PAGE_ERROR;
    }
    int rc = sf_stream_get(c, path, on_data, on_line, &pr, err);
    if (rc == 0 && !pr.stopped) pr.stopped = sfb_csv_end(pr.csv);
    if (pr.stopped < 0) {
        char msg[400];
        snprintf(msg, sizeof msg, "the results of query job %s are not CSV as expected: %s", job_id,
                 sfb_csv_why(pr.csv));
        sf_set_error(err, SF_PERMANENT, 200, "BAD_CSV", msg);
    }
    sfb_csv_free(pr.csv);
    if (pr.stopped) return pr.stopped < 0 ? SFB_PAGE_ERROR : SFB_PAGE_STOPPED;
    return rc == 0 ? SFB_PAGE_READ : SFB_PAGE_ERROR;
}

/* ---------------------------------------------------------------- the CSV reader */

enum { F_ID, F_LEAD, F_CONTACT, F_STATUS, F_EMAIL, F_FIRST, F_LAST, F_COMPANY, F_MODIFIED, F_N };
static const char *const field_names[F_N] = {
    "Id",        "LeadId",   "ContactId",        "Status",          "Email",
    "FirstName", "LastName", "CompanyOrAccount", "LastModifiedDate"};

#define CSV_COLS_MAX  64   /* columns a header may have */
#define CSV_VALUE_MAX 1024 /* bytes of a value kept (these fields hold 255 characters at most) */

enum { S_START, S_PLAIN, S_QUOTED, S_QUOTE };

struct sfb_csv {
    sfb_row_fn fn;
    void *ud;
    int state;
    bool header, touched;
    size_t col, ncols;
    int map[CSV_COLS_MAX]; /* column -> F_*, -1 for a column not read */
    char name[CSV_VALUE_MAX];
    size_t name_len;
    char value[F_N][CSV_VALUE_MAX];
    size_t len[F_N];
    char why[200];
};

sfb_csv *sfb_csv_new(sfb_row_fn fn, void *ud) {
    sfb_csv *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->fn = fn;
    p->ud = ud;
    sfb_csv_page(p);
    return p;
}

void sfb_csv_free(sfb_csv *p) {
    free(p);
}

void sfb_csv_page(sfb_csv *p) {
    p->state = S_START;
    p->header = true;
    p->touched = false;
    p->col = p->ncols = p->name_len = 0;
    memset(p->len, 0, sizeof p->len);
}

const char *sfb_csv_why(const sfb_csv *p) {
    return p->why;
}

static int bad(sfb_csv *p, const char *why) {
    snprintf(p->why, sizeof p->why, "%s", why);
    return -1;
}

static void put(sfb_csv *p, char ch) {
    p->touched = true;
    if (p->header) {
        if (p->name_len + 1 < sizeof p->name) p->name[p->name_len++] = ch;
        return;
    }
    int f = p->col < p->ncols ? p->map[p->col] : -1;
    if (f >= 0 && p->len[f] + 1 < CSV_VALUE_MAX) p->value[f][p->len[f]++] = ch;
}

static int end_field(sfb_csv *p) {
    if (p->header) {
        if (p->col >= CSV_COLS_MAX) return bad(p, "a header row with too many columns");
        p->name[p->name_len] = '\0';
        p->map[p->col] = -1;
        for (int f = 0; f < F_N; f++)
            if (strcasecmp(p->name, field_names[f]) == 0) p->map[p->col] = f;
        p->name_len = 0;
        p->ncols = p->col + 1;
    }
    p->col++;
    return 0;
}

/* Copies an id of len bytes into a CRM_SFID_MAX field; false when it does not fit. */
static bool id_copy(char *dst, const char *src, size_t len) {
    if (len >= CRM_SFID_MAX) return false;
    memcpy(dst, src, len + 1);
    return true;
}

static int end_record(sfb_csv *p) {
    int rc = 0;
    if (!p->touched && p->col == 1) { /* an empty line */
    } else if (p->header) {
        bool has_id = false;
        for (size_t i = 0; i < p->ncols; i++)
            has_id = has_id || p->map[i] == F_ID;
        if (!has_id) return bad(p, "the header row has no Id column");
        p->header = false;
    } else {
        for (int f = 0; f < F_N; f++)
            p->value[f][p->len[f]] = '\0';
        sf_member_row r = {.status = p->value[F_STATUS],
                           .email = p->value[F_EMAIL],
                           .first_name = p->value[F_FIRST],
                           .last_name = p->value[F_LAST],
                           .company = p->value[F_COMPANY]};
        if (!id_copy(r.id, p->value[F_ID], p->len[F_ID]) ||
            !id_copy(r.lead_id, p->value[F_LEAD], p->len[F_LEAD]) ||
            !id_copy(r.contact_id, p->value[F_CONTACT], p->len[F_CONTACT]))
            return bad(p, "an id longer than 18 characters");
        if (!p->value[F_MODIFIED][0] || event_parse_time(p->value[F_MODIFIED], &r.modified_ms) != 0)
            r.modified_ms = 0;
        if (!r.id[0]) return bad(p, "a row without an Id");
        rc = p->fn(p->ud, &r);
    }
    memset(p->len, 0, sizeof p->len);
    p->col = 0;
    p->touched = false;
    return rc;
}

/* One byte of the text, through the states of a field: at its start, plain, quoted, or just
 * after a quote inside a quoted one (a doubled quote, or its end). */
static int step(sfb_csv *p, char ch) {
    switch (p->state) {
    case S_START:
    case S_PLAIN:
        if (ch == '"' && p->state == S_START) {
            p->state = S_QUOTED;
            p->touched = true;
            return 0;
        }
        if (ch == '"') return bad(p, "a quote inside an unquoted value");
        break;
    case S_QUOTED:
        if (ch == '"')
            p->state = S_QUOTE;
        else
            put(p, ch);
        return 0;
    case S_QUOTE:
        if (ch == '"') {
            put(p, '"');
            p->state = S_QUOTED;
            return 0;
        }
        if (ch == '\r') return 0;
        if (ch != ',' && ch != '\n') return bad(p, "text after a closing quote");
        break;
    }
    if (ch == '\r') return 0; /* of a CRLF line ending */
    if (ch == ',' || ch == '\n') {
        p->state = S_START;
        int rc = end_field(p);
        return rc || ch == ',' ? rc : end_record(p);
    }
    put(p, ch);
    p->state = S_PLAIN;
    return 0;
}

int sfb_csv_feed(sfb_csv *p, const char *data, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int rc = step(p, data[i]);
        if (rc) return rc;
    }
    return 0;
}

int sfb_csv_end(sfb_csv *p) {
    if (p->state == S_QUOTED) return bad(p, "the text ends inside a quoted value");
    if (p->state == S_START && p->col == 0 && !p->touched) return 0;
    p->state = S_START;
    int rc = end_field(p);
    return rc ? rc : end_record(p);
}
