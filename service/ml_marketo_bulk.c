/* ml_marketo_bulk — a program's members through the bulk program member extract. See
 * include/ml_marketo_bulk.h. */
#include "ml_marketo_bulk.h"

#include "log.h"
#include "marketo_bulk.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BULK_PAGE      1000 /* members handed to the sink at once */
#define WAIT_MAX_MS    (26LL * 3600 * 1000)
#define EXPORTS_MAX    3 /* exports one listing makes (one failed or cancelled: another) */
#define POLL_MAX_TIMES 5 /* the backoff's ceiling, in MARKETO_BULK_POLL_MS */

typedef struct {
    crm *c;
    const char *program_id;
    ml_mk_sink sink;
    void *ud;
    ml_error *err;
    char id[MKB_ID_MAX]; /* the export in use, "" before one is made */
    int exports;         /* exports this listing made */
    long long waited_ms; /* waits of this listing, in all */
    long interval_ms;    /* the next wait */
    ml_mk_member *page;
    size_t n;
    bool header;          /* the next record is the file's header row */
    ml_result r;          /* what stopped a parse from inside a record */
    bool anew;            /* the export is gone: a new one is needed */
    char last_error[300]; /* why the last export ended without a file */
} bulk;

static ml_result fail(bulk *b, crm_failure f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ml_result fail(bulk *b, crm_failure f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    b->err->failure = f;
    vsnprintf(b->err->message, sizeof b->err->message, fmt, ap);
    va_end(ap);
    return ML_FAILED;
}

static ml_result mk_fail(bulk *b, const char *what, const mk_error *e) {
    return fail(b, mkb_failure(e), "Marketo: %s of program %s (bulk extract %s): %s %s", what,
                b->program_id, b->id[0] ? b->id : "not made", e->code, e->message);
}

static void cursor_of(const bulk *b, long long offset, char *out, size_t size) {
    list_cursor lc = {.kind = LC_MARKETO_BULK, .offset = offset};
    snprintf(lc.export_id, sizeof lc.export_id, "%s", b->id);
    if (list_cursor_format(&lc, out, size) != 0) snprintf(out, size, "%s", "");
}

/* A page of no members: the job records the cursor and says whether to go on. */
static ml_result progress(bulk *b, long long offset) {
    char next[LIST_CURSOR_MAX] = "";
    if (b->id[0]) cursor_of(b, offset, next, sizeof next);
    return b->sink(b->ud, b->page, 0, next) != 0 ? ML_STOPPED : ML_DONE;
}

/* Sleeps the next wait (ending it when the process stops), then lengthens the one after. */
static ml_result pause_for(bulk *b, const char *why) {
    if (b->waited_ms >= WAIT_MAX_MS)
        return fail(b, CRM_REFUSED,
                    "Marketo: program %s: waited 26 hours for its bulk export (%s); start the "
                    "job again later",
                    b->program_id, why);
    for (long slept = 0; slept < b->interval_ms; slept += 250) {
        if (crm_stopping(b->c)) return ML_STOPPED;
        long ms = b->interval_ms - slept < 250 ? b->interval_ms - slept : 250;
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    b->waited_ms += b->interval_ms;
    long most = crm_config(b->c)->marketo_bulk_poll_ms * POLL_MAX_TIMES;
    b->interval_ms = b->interval_ms * 2 < most ? b->interval_ms * 2 : most;
    return ML_DONE;
}

/* Whether a failed create or enqueue is one to wait out: the export queue is full, or the
 * day's export allocation is spent (until midnight Central Time). */
static bool to_wait_out(const mk_error *e) {
    return mkb_queue_full(e) || mkb_daily_quota(e);
}

/* Makes a new export (waiting out a full queue or a spent allocation); b->id names it. */
static ml_result start_export(bulk *b) {
    if (++b->exports > EXPORTS_MAX)
        return fail(b, CRM_REFUSED,
                    "Marketo: program %s: %d bulk exports of its members ended without a file "
                    "(the last: %s); start the job again later",
                    b->program_id, EXPORTS_MAX, b->last_error[0] ? b->last_error : "gone");
    b->id[0] = '\0';
    for (;;) {
        mkb_export ex;
        mk_error e;
        if (mkb_create(b->c, b->program_id, &ex, &e) == 0) {
            snprintf(b->id, sizeof b->id, "%s", ex.id);
            LOG_KV(LOG_INFO, "member lists: bulk export made", "program_id", b->program_id,
                   "export_id", b->id);
            return progress(b, 0);
        }
        if (!to_wait_out(&e)) return mk_fail(b, "creating the bulk export", &e);
        LOG_KV_LIMITED(LOG_WARN, "member lists: bulk export waits", "program_id", b->program_id,
                       "error", e.message);
        ml_result r = progress(b, 0);
        if (r == ML_DONE) r = pause_for(b, e.message);
        if (r != ML_DONE) return r;
    }
}

/* Enqueues a created export; a full queue or a spent allocation is waited out by the
 * caller's next poll. */
static ml_result enqueue(bulk *b) {
    mkb_export ex;
    mk_error e;
    if (mkb_enqueue(b->c, b->id, &ex, &e) == 0 || to_wait_out(&e)) return ML_DONE;
    if (mkb_gone(&e)) {
        b->anew = true;
        return ML_DONE;
    }
    return mk_fail(b, "enqueuing the bulk export", &e);
}

/* Polls b->id until it is completed (*ex), or gone (b->anew). */
static ml_result await_completed(bulk *b, mkb_export *ex) {
    for (;;) {
        mk_error e;
        ml_result r = ML_DONE;
        if (mkb_status(b->c, b->id, ex, &e) != 0) {
            if (!mkb_gone(&e)) return mk_fail(b, "reading the bulk export's status", &e);
            b->anew = true;
            return ML_DONE;
        }
        switch (ex->state) {
        case MKB_COMPLETED: return ML_DONE;
        case MKB_FAILED:
        case MKB_CANCELLED:
            /* Adobe "Bulk Extract", File Size: "If a job fails for some reason, you must
             * recreate it." */
            LOG_KV(LOG_WARN, "member lists: bulk export ended without a file; making another",
                   "program_id", b->program_id, "export_id", b->id, "error", ex->error);
            snprintf(b->last_error, sizeof b->last_error, "%s %.200s",
                     ex->state == MKB_FAILED ? "failed:" : "cancelled", ex->error);
            b->anew = true;
            return ML_DONE;
        case MKB_CREATED: r = enqueue(b); break;
        case MKB_QUEUED:
        case MKB_PROCESSING: break;
        }
        if (r == ML_DONE && !b->anew) r = progress(b, 0);
        if (r == ML_DONE && !b->anew) r = pause_for(b, "queued or processing");
        if (r == ML_FAILED) {
            mkb_export gone; /* free its place in Marketo's queue; its outcome is moot */
            mkb_cancel(b->c, b->id, &gone, &e);
        }
        if (r != ML_DONE || b->anew) return r;
    }
}

static void copy_field(char *dst, size_t size, const char *v, bool lower) {
    /* Adobe "Bulk Program Member Extract", Retrieving Your Data: an empty field is "null". */
    if (strcmp(v, "null") == 0) v = "";
    size_t i = 0;
    for (; v[i] && i + 1 < size; i++)
        dst[i] = lower ? (char)tolower((unsigned char)v[i]) : v[i];
    dst[i] = '\0';
}

/* One record of the file: the header row checked, each member added to the page, a full page
 * handed on with the offset after its last record. */
static int on_record(void *ud, char *const *f, int n, long long next) {
    bulk *b = ud;
    if (b->header) {
        for (int i = 0; i < MKB_NCOLS; i++)
            if (n != MKB_NCOLS || strcmp(f[i], mkb_column(i)) != 0) {
                b->r = fail(b, CRM_REFUSED,
                            "Marketo: program %s: bulk export %s has a header row that is not "
                            "the fields asked for (column %d is \"%.60s\", not \"%s\")",
                            b->program_id, b->id, i + 1, i < n ? f[i] : "", mkb_column(i));
                return 1;
            }
        b->header = false;
        return 0;
    }
    if (n != MKB_NCOLS) {
        b->r = fail(b, CRM_REFUSED,
                    "Marketo: program %s: bulk export %s has a record of %d fields, not %d, "
                    "before byte %lld",
                    b->program_id, b->id, n, MKB_NCOLS, next);
        return 1;
    }
    ml_mk_member *m = &b->page[b->n++];
    memset(m, 0, sizeof *m);
    copy_field(m->lead_id, sizeof m->lead_id, f[MKB_COL_LEAD_ID], false);
    copy_field(m->email, sizeof m->email, f[MKB_COL_EMAIL], true);
    copy_field(m->first_name, sizeof m->first_name, f[MKB_COL_FIRST_NAME], false);
    copy_field(m->last_name, sizeof m->last_name, f[MKB_COL_LAST_NAME], false);
    copy_field(m->company, sizeof m->company, f[MKB_COL_COMPANY], false);
    copy_field(m->status, sizeof m->status, f[MKB_COL_STATUS], false);
    if (event_parse_time(f[MKB_COL_UPDATED], &m->updated_ms) != 0) m->updated_ms = 0;
    if (b->n < BULK_PAGE) return 0;
    char cur[LIST_CURSOR_MAX];
    cursor_of(b, next, cur, sizeof cur);
    b->n = 0;
    if (b->sink(b->ud, b->page, BULK_PAGE, cur) == 0) return 0;
    b->r = ML_STOPPED;
    return 1;
}

/* Reads the completed export's file from offset, a read at a time, handing its members. */
static ml_result read_file(bulk *b, const mkb_export *ex, long long offset) {
    long long size = ex->file_size, step = crm_config(b->c)->marketo_bulk_read_bytes;
    if (offset > size) {
        b->anew = true; /* not this file's offset: read a new export from its start */
        return ML_DONE;
    }
    mkb_csv *p = malloc(sizeof *p);
    if (!p) return fail(b, CRM_RETRY, "out of memory listing program %s", b->program_id);
    mkb_csv_init(p, offset);
    b->header = offset == 0;
    b->n = 0;
    b->r = ML_DONE;
    ml_result r = ML_DONE;
    for (long long at = offset; r == ML_DONE && at < size;) {
        long long last = (size - at > step ? at + step : size) - 1;
        char *data = NULL;
        size_t len = 0;
        mk_error e;
        /* Adobe "Bulk Extract", Partial Retrieval and Resumption: Range: bytes=first-last. */
        if (mkb_file_range(b->c, b->id, at, last, &data, &len, &e) != 0) {
            if (mkb_gone(&e))
                b->anew = true; /* its file expired: a new export */
            else
                r = mk_fail(b, "reading the bulk export's file", &e);
            break;
        }
        if (len == 0) {
            free(data);
            r = fail(b, CRM_RETRY, "Marketo: program %s: bulk export %s: no bytes at %lld of %lld",
                     b->program_id, b->id, at, size);
            break;
        }
        at += (long long)len;
        mkb_csv_rc rc = mkb_csv_feed(p, data, len, at >= size, on_record, b);
        free(data);
        if (rc == MKB_CSV_STOPPED) r = b->r;
        if (rc == MKB_CSV_TOO_LONG)
            r = fail(b, CRM_REFUSED,
                     "Marketo: program %s: bulk export %s has a record over %d bytes or %d "
                     "fields at byte %lld",
                     b->program_id, b->id, MKB_RECORD_MAX, MKB_FIELDS_MAX, p->record_start);
    }
    free(p);
    if (r != ML_DONE || b->anew) return r;
    return b->sink(b->ud, b->page, b->n, "end") != 0 ? ML_STOPPED : ML_DONE;
}

ml_result ml_marketo_bulk(crm *c, const char *program_id, const list_cursor *from, ml_mk_sink sink,
                          void *ud, ml_error *err) {
    bulk b = {.c = c, .program_id = program_id, .sink = sink, .ud = ud, .err = err};
    b.interval_ms = crm_config(c)->marketo_bulk_poll_ms;
    b.page = malloc(BULK_PAGE * sizeof *b.page);
    if (!b.page) return fail(&b, CRM_RETRY, "out of memory listing program %s", program_id);
    long long offset = 0;
    if (from->kind == LC_MARKETO_BULK) {
        snprintf(b.id, sizeof b.id, "%s", from->export_id);
        offset = from->offset;
    }
    ml_result r = ML_DONE;
    for (;;) {
        if (!b.id[0]) {
            offset = 0;
            if ((r = start_export(&b)) != ML_DONE) break;
        }
        mkb_export ex;
        b.anew = false;
        r = await_completed(&b, &ex);
        if (r == ML_DONE && !b.anew) r = read_file(&b, &ex, offset);
        if (r != ML_DONE || !b.anew) break;
        LOG_KV(LOG_WARN, "member lists: bulk export gone; listing from a new one", "program_id",
               program_id, "export_id", b.id);
        b.id[0] = '\0';
    }
    free(b.page);
    return r;
}
