/* marketo_bulk — the bulk program member extract's wire. See include/marketo_bulk.h. */
#include "marketo_bulk.h"

#include "marketo_priv.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EXPORTS "/bulk/v1/program/members/export"

/* Adobe "Bulk Program Member Extract", Describe and Options: leadId, statusName and updatedAt
 * are program member fields, email and the names lead fields; both kinds may be exported. */
static const char *const columns[MKB_NCOLS] = {
    "leadId", "email", "firstName", "lastName", "company", "statusName", "updatedAt",
};

const char *mkb_column(int col) {
    return col >= 0 && col < MKB_NCOLS ? columns[col] : "";
}

/* An export's id as a path segment: letters, digits and '-' (a UUID). */
static bool id_ok(const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n >= MKB_ID_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '-') return false;
    return true;
}

static int refuse(mk_error *err, const char *code, const char *msg) {
    memset(err, 0, sizeof *err);
    err->retry_after_ms = -1;
    mk_set_error(err, MK_PERMANENT, 0, code, msg);
    return -1;
}

static mkb_state state_of(const char *s) {
    /* Adobe "Bulk Extract", Polling Job Status: Created, Queued, Processing, Canceled,
     * Completed, Failed (the answers spell it "Cancelled"). */
    static const struct {
        const char *name;
        mkb_state state;
    } names[] = {{"Created", MKB_CREATED},       {"Queued", MKB_QUEUED},
                 {"Processing", MKB_PROCESSING}, {"Completed", MKB_COMPLETED},
                 {"Failed", MKB_FAILED},         {"Cancelled", MKB_CANCELLED},
                 {"Canceled", MKB_CANCELLED}};
    for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(s, names[i].name) == 0) return names[i].state;
    return (mkb_state)-1;
}

/* The export job in an answer's result (one ExportResponse). */
static int read_export(cJSON *env, mkb_export *out, mk_error *err) {
    const cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(env, "result"), 0);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "exportId");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(r, "status");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(r, "fileSize");
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(r, "numberOfRecords");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(r, "errorMsg");
    memset(out, 0, sizeof *out);
    int state = cJSON_IsString(st) ? (int)state_of(st->valuestring) : -1;
    if (!cJSON_IsString(id) || !id_ok(id->valuestring) || state < 0) {
        mk_set_error(err, MK_RETRY, 200, "unexpected",
                     "Marketo answered an export job without a valid exportId and status");
        return -1;
    }
    snprintf(out->id, sizeof out->id, "%s", id->valuestring);
    out->state = (mkb_state)state;
    out->file_size = cJSON_IsNumber(size) ? (long long)size->valuedouble : 0;
    out->records = cJSON_IsNumber(recs) ? (long long)recs->valuedouble : 0;
    snprintf(out->error, sizeof out->error, "%s", cJSON_IsString(msg) ? msg->valuestring : "");
    if (out->state == MKB_COMPLETED && out->file_size < 0) out->file_size = 0;
    return 0;
}

/* One call on an export (path "/<id>/<verb>.json"). */
static int on_export(crm *c, const char *method, const char *export_id, const char *verb,
                     mkb_export *out, mk_error *err) {
    if (!id_ok(export_id)) return refuse(err, "bad_export_id", "not an export id");
    char path[160];
    snprintf(path, sizeof path, EXPORTS "/%s/%s.json", export_id, verb);
    cJSON *env = NULL;
    if (mkto_call(crm_marketo(c), method, path, NULL, &env, err) != 0) return -1;
    int rc = read_export(env, out, err);
    cJSON_Delete(env);
    return rc;
}

int mkb_create(crm *c, const char *program_id, mkb_export *out, mk_error *err) {
    size_t n = strlen(program_id);
    if (n == 0 || n > 15 || strspn(program_id, "0123456789") != n)
        return refuse(err, "bad_program_id", "a program id is a number");
    cJSON *body = cJSON_CreateObject();
    cJSON *fields = cJSON_AddArrayToObject(body, "fields");
    for (int i = 0; fields && i < MKB_NCOLS; i++)
        cJSON_AddItemToArray(fields, cJSON_CreateString(columns[i]));
    cJSON *filter = cJSON_AddObjectToObject(body, "filter");
    if (filter) cJSON_AddNumberToObject(filter, "programId", (double)strtoll(program_id, NULL, 10));
    cJSON_AddStringToObject(body, "format", "CSV");
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!text) {
        memset(err, 0, sizeof *err);
        mk_set_error(err, MK_RETRY, 0, "internal", "out of memory");
        return -1;
    }
    cJSON *env = NULL;
    int rc = mkto_call(crm_marketo(c), "POST", EXPORTS "/create.json", text, &env, err);
    free(text);
    if (rc == 0) rc = read_export(env, out, err);
    cJSON_Delete(env);
    return rc;
}

int mkb_enqueue(crm *c, const char *export_id, mkb_export *out, mk_error *err) {
    return on_export(c, "POST", export_id, "enqueue", out, err);
}

int mkb_status(crm *c, const char *export_id, mkb_export *out, mk_error *err) {
    return on_export(c, "GET", export_id, "status", out, err);
}

int mkb_cancel(crm *c, const char *export_id, mkb_export *out, mk_error *err) {
    return on_export(c, "POST", export_id, "cancel", out, err);
}

int mkb_file_range(crm *c, const char *export_id, long long first, long long last, char **data,
                   size_t *len, mk_error *err) {
    *data = NULL;
    *len = 0;
    if (!id_ok(export_id)) return refuse(err, "bad_export_id", "not an export id");
    if (first < 0 || last < first) return refuse(err, "bad_range", "an empty byte range");
    char path[160];
    snprintf(path, sizeof path, EXPORTS "/%s/file.json", export_id);
    http_result res;
    if (mk_get_file(crm_marketo(c), path, first, last, &res, err) != 0) return -1;
    /* RFC 7233: a server may ignore Range and answer 200 with the whole file; keep only the
     * bytes asked for then. */
    size_t from = res.status == 200 ? (size_t)first : 0;
    size_t want = (size_t)(last - first + 1);
    if (from > res.len) from = res.len;
    size_t n = res.len - from < want ? res.len - from : want;
    memmove(res.body, res.body + from, n);
    res.body[n] = '\0';
    *data = res.body; /* handed over: not freed here */
    *len = n;
    return 0;
}

/* Adobe "Bulk Extract", File Size and Queue: 1029 "Export daily quota exceeded" until the
 * daily quota resets at midnight Central Time; 1029 "Too many jobs in queue" when 10 are
 * queued. Both clear by themselves. */
bool mkb_daily_quota(const mk_error *e) {
    return strcmp(e->code, "1029") == 0 && strcasestr(e->message, "quota") != NULL;
}

bool mkb_queue_full(const mk_error *e) {
    return strcmp(e->code, "1029") == 0 && !mkb_daily_quota(e);
}

/* Adobe "Bulk Extract", Retrieving Your Data: a bad job id (or a job not completed) is 404
 * on the file endpoint; the status endpoint's answer for an unknown id is not documented:
 * 1003 (invalid data) or 610 (resource not found) are taken as "no such export". */
bool mkb_gone(const mk_error *e) {
    return e->status == 404 || strcmp(e->code, "1003") == 0 || strcmp(e->code, "610") == 0;
}

crm_failure mkb_failure(const mk_error *e) {
    return strcmp(e->code, "1029") == 0 ? CRM_RETRY : mkto_failure(e);
}

/* ---------------------------------------------------------------- CSV */

enum { CSV_FIELD_START = 0, CSV_UNQUOTED, CSV_QUOTED, CSV_QUOTE_IN_QUOTED };

void mkb_csv_init(mkb_csv *p, long long offset) {
    memset(p, 0, sizeof *p);
    p->offset = offset;
    p->record_start = offset;
}

static void put(mkb_csv *p, char ch) {
    if (p->len + 1 >= sizeof p->buf)
        p->too_long = true;
    else
        p->buf[p->len++] = ch;
}

static void begin_field(mkb_csv *p) {
    if (p->nf >= MKB_FIELDS_MAX) {
        p->too_long = true;
        return;
    }
    p->starts[p->nf++] = p->len;
}

/* Ends the field being read (its NUL). */
static void end_field(mkb_csv *p) {
    if (p->nf == 0) begin_field(p);
    if (p->len + 1 >= sizeof p->buf) p->too_long = true;
    if (!p->too_long) p->buf[p->len++] = '\0';
    p->state = CSV_FIELD_START;
}

/* Ends the record. A blank line is no record. */
static mkb_csv_rc end_record(mkb_csv *p, mkb_record_fn fn, void *ud) {
    bool blank = p->nf == 0 && p->len == 0;
    mkb_csv_rc rc = MKB_CSV_FED;
    if (!blank) {
        end_field(p);
        if (p->too_long) return MKB_CSV_TOO_LONG;
        char *fields[MKB_FIELDS_MAX];
        for (int i = 0; i < p->nf; i++)
            fields[i] = p->buf + p->starts[i];
        rc = fn(ud, fields, p->nf, p->offset) != 0 ? MKB_CSV_STOPPED : MKB_CSV_FED;
    }
    p->len = 0;
    p->nf = 0;
    p->state = CSV_FIELD_START;
    p->record_start = p->offset;
    return rc;
}

/* One byte outside quotes: true when it ends a field or the record (handled). */
static bool separator(mkb_csv *p, char ch, mkb_record_fn fn, void *ud, mkb_csv_rc *rc) {
    if (ch == ',') {
        if (p->nf == 0) begin_field(p);
        end_field(p);
        begin_field(p);
        return true;
    }
    if (ch == '\n') {
        *rc = end_record(p, fn, ud);
        return true;
    }
    return ch == '\r'; /* CRLF: the CR is dropped */
}

mkb_csv_rc mkb_csv_feed(mkb_csv *p, const char *data, size_t len, bool at_end, mkb_record_fn fn,
                        void *ud) {
    for (size_t i = 0; i < len; i++) {
        char ch = data[i];
        mkb_csv_rc rc = MKB_CSV_FED;
        p->offset++;
        switch (p->state) {
        case CSV_QUOTED:
            if (ch == '"')
                p->state = CSV_QUOTE_IN_QUOTED;
            else
                put(p, ch);
            break;
        case CSV_QUOTE_IN_QUOTED:
            if (ch == '"') { /* "" inside quotes: one quote */
                put(p, '"');
                p->state = CSV_QUOTED;
            } else if (!separator(p, ch, fn, ud, &rc)) {
                put(p, ch); /* lenient: text after a closing quote is kept */
                p->state = CSV_UNQUOTED;
            }
            break;
        case CSV_FIELD_START:
            if (ch == '"') {
                if (p->nf == 0) begin_field(p);
                p->state = CSV_QUOTED;
                break;
            }
            /* fall through */
        case CSV_UNQUOTED:
            if (!separator(p, ch, fn, ud, &rc)) {
                if (p->nf == 0) begin_field(p);
                put(p, ch);
                p->state = CSV_UNQUOTED;
            }
        }
        if (p->too_long) return MKB_CSV_TOO_LONG;
        if (rc != MKB_CSV_FED) return rc;
    }
    if (at_end && (p->nf > 0 || p->len > 0)) return end_record(p, fn, ud);
    return MKB_CSV_FED;
}
