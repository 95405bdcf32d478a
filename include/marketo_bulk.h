/* marketo_bulk — Marketo's bulk program member extract, in typed values.
 *
 * Owns the wire of /bulk/v1/program/members/export/...: creating an export of one program's
 * members with the fields a member listing needs (member_lists.h), enqueuing it, reading its
 * status, reading its file a byte range at a time, cancelling it; the CSV the file holds
 * (quoted fields with commas, quotes and line breaks, parsed incrementally so that a record
 * may span two reads); and what the extract's errors mean. Every call goes through the
 * caller's crm handle: it takes a permit of the shared Marketo call budget (within the
 * handle's share, crm.h) and is gated by the daily API quota like any Marketo call.
 * Sources: Adobe developer docs "Bulk Extract" and "Bulk Program Member Extract". */
#ifndef CS_MARKETO_BULK_H
#define CS_MARKETO_BULK_H

#include "crm.h"

#include <stdbool.h>
#include <stddef.h>

#define MKB_ID_MAX     64    /* an export's id (a UUID) */
#define MKB_RECORD_MAX 16384 /* the longest record of the file accepted, in bytes */
#define MKB_FIELDS_MAX 16    /* the most fields a record may have */

typedef enum {
    MKB_CREATED = 0,
    MKB_QUEUED,
    MKB_PROCESSING,
    MKB_COMPLETED,
    MKB_FAILED,
    MKB_CANCELLED,
} mkb_state;

/* An export job as its status answers it. */
typedef struct {
    char id[MKB_ID_MAX];
    mkb_state state;
    long long file_size; /* MKB_COMPLETED: the file's length in bytes */
    long long records;   /* MKB_COMPLETED: its records (the header row not counted) */
    char error[300];     /* MKB_FAILED: Marketo's errorMsg */
} mkb_export;

/* The file's columns, in this order (the fields the export asks for, no header renamed). */
enum {
    MKB_COL_LEAD_ID = 0,
    MKB_COL_EMAIL,
    MKB_COL_FIRST_NAME,
    MKB_COL_LAST_NAME,
    MKB_COL_COMPANY,
    MKB_COL_STATUS,
    MKB_COL_UPDATED,
    MKB_NCOLS,
};

/* The field name of a column, as the export asks for it and the header row names it. */
const char *mkb_column(int col);

/* Each returns 0 and fills *out, or -1 with err. */
int mkb_create(crm *c, const char *program_id, mkb_export *out, mk_error *err);
int mkb_enqueue(crm *c, const char *export_id, mkb_export *out, mk_error *err);
int mkb_status(crm *c, const char *export_id, mkb_export *out, mk_error *err);
int mkb_cancel(crm *c, const char *export_id, mkb_export *out, mk_error *err);

/* Bytes [first, last] of a completed export's file: *data (malloc'd, caller frees) and
 * *len. 0, or -1 with err. */
int mkb_file_range(crm *c, const char *export_id, long long first, long long last, char **data,
                   size_t *len, mk_error *err);

/* What a failed call means. */
bool mkb_daily_quota(const mk_error *e); /* the daily export allocation is spent (1029) */
bool mkb_queue_full(const mk_error *e);  /* the export queue is full (1029) */
bool mkb_gone(const mk_error *e);        /* no such export, or its file is gone */
/* As mkto_failure (marketo.h), the extract's 1029 a CRM_RETRY (it clears by itself). */
crm_failure mkb_failure(const mk_error *e);

/* ---------------------------------------------------------------- the file's CSV */

/* One record: n fields (NUL-terminated, unquoted, "null" kept as is) and the byte offset in
 * the file just after it. Returns 0 to go on; any other value stops the parse. */
typedef int (*mkb_record_fn)(void *ud, char *const *fields, int n, long long next);

/* An incremental RFC 4180 parser: feed it the file's bytes in pieces of any size. */
typedef struct {
    char buf[MKB_RECORD_MAX];      /* the record being read, fields NUL-separated */
    size_t len;                    /* bytes used in buf */
    size_t starts[MKB_FIELDS_MAX]; /* where each field starts in buf */
    int nf;                        /* fields begun */
    int state;                     /* where in a field the parser is */
    bool too_long;                 /* the record passed MKB_RECORD_MAX or MKB_FIELDS_MAX */
    long long offset;              /* the file offset of the next byte fed */
    long long record_start;        /* the file offset of the record being read */
} mkb_csv;

/* Starts a parse at a record's first byte, at file offset `offset`. */
void mkb_csv_init(mkb_csv *p, long long offset);

/* What feeding the parser came to. */
typedef enum {
    MKB_CSV_TOO_LONG = -1, /* a record is too long or has too many fields (p->record_start is
                              that record's offset) */
    MKB_CSV_FED = 0,       /* every record handed on; feed the next bytes */
    MKB_CSV_STOPPED = 1,   /* fn stopped: the rest of data is not parsed */
} mkb_csv_rc;

/* Feeds len bytes; at_end: they are the file's last (a last record without a line break is
 * handed then). */
mkb_csv_rc mkb_csv_feed(mkb_csv *p, const char *data, size_t len, bool at_end, mkb_record_fn fn,
                        void *ud);

#endif
