/* member_lists — a mapping's two member lists, page by page. See include/member_lists.h. */
#include "member_lists.h"

#include "log.h"
#include "ml_marketo_bulk.h"
#include "ml_salesforce_bulk.h"
#include "salesforce_bulk.h"
#include "status_map.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MK_PAGE 300 /* members.json and leads.json: batchSize and values at most 300 */

static void lower_copy(char *dst, size_t size, const char *src) {
    size_t i = 0;
    for (; src && src[i] && i + 1 < size; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

static void copy(char *dst, size_t size, const char *src) {
    snprintf(dst, size, "%s", src ? src : "");
}

static ml_result failed(ml_error *err, crm_failure f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ml_result failed(ml_error *err, crm_failure f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err->failure = f;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return ML_FAILED;
}

static ml_result mk_failed(ml_error *err, const char *what, const char *program_id,
                           const mk_error *e) {
    return failed(err, mkto_failure(e), "Marketo: %s of program %s: %s %s", what, program_id,
                  e->code, e->message);
}

/* ---------------------------------------------------------------- Marketo, paged */

/* The program's channel statuses that are memberships (all but "Not in Program"), in the
 * channel's order. *names (malloc'd strings) and *n; ML_DONE or ML_FAILED. */
static ml_result marketo_statuses(crm *c, const char *program_id, char ***names, size_t *n,
                                  ml_error *err) {
    mk_program prog;
    mk_error e;
    if (mkto_get_program(crm_marketo(c), program_id, &prog, &e) != 0)
        return mk_failed(err, "reading the program", program_id, &e);
    if (!prog.found)
        return failed(err, CRM_REFUSED,
                      "Marketo has no program %s (deleted?): map an existing program or delete "
                      "the mapping",
                      program_id);
    if (mkto_channel_statuses(crm_marketo(c), prog.channel, names, n, &e) != 0)
        return mk_failed(err, "the channel's statuses", program_id, &e);
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*names)[i], NOT_IN_PROGRAM) == 0)
            free((*names)[i]);
        else
            (*names)[k++] = (*names)[i];
    }
    *n = k;
    return ML_DONE;
}

/* Fills out[0..n) from one members.json page: the leads' emails and names read in one call. */
static ml_result marketo_emails(crm *c, const char *program_id, const mk_member *page, size_t n,
                                ml_mk_member *out, ml_error *err) {
    const char *ids[MK_PAGE];
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        copy(out[i].lead_id, sizeof out[i].lead_id, page[i].lead_id);
        copy(out[i].status, sizeof out[i].status, page[i].status);
        out[i].updated_ms = page[i].updated_ms;
        ids[i] = page[i].lead_id;
    }
    mk_lead *leads = NULL;
    size_t nl = 0;
    mk_error e;
    if (n && mkto_leads_by(crm_marketo(c), MK_BY_ID, ids, n, MK_LEAD_EMAIL | MK_LEAD_NAMES, &leads,
                           &nl, &e) != 0)
        return mk_failed(err, "the members' leads", program_id, &e);
    for (size_t j = 0; j < nl; j++)
        for (size_t i = 0; i < n; i++) {
            if (strcmp(leads[j].id, out[i].lead_id) != 0) continue;
            lower_copy(out[i].email, sizeof out[i].email, leads[j].email);
            copy(out[i].first_name, sizeof out[i].first_name, leads[j].first_name);
            copy(out[i].last_name, sizeof out[i].last_name, leads[j].last_name);
            copy(out[i].company, sizeof out[i].company, leads[j].company);
        }
    mkto_leads_free(leads, nl);
    return ML_DONE;
}

/* The cursor after a page of status names[s] whose next page token is token: that status's
 * next page, else the next status's first, else the end. */
static int marketo_next(char **names, size_t n, size_t s, const char *token, char *out,
                        size_t size) {
    list_cursor lc = {.kind = LC_MARKETO_PAGED};
    if (!token[0] && s + 1 >= n) lc.kind = LC_END;
    copy(lc.status, sizeof lc.status, token[0] ? names[s] : s + 1 < n ? names[s + 1] : "");
    copy(lc.token, sizeof lc.token, token);
    return list_cursor_format(&lc, out, size);
}

/* Lists the program's statuses from the one `from` names (its page token), each status's
 * pages in turn, handing each page on. */
static ml_result marketo_paged(crm *c, const char *program_id, const list_cursor *from,
                               ml_mk_sink sink, void *ud, ml_error *err) {
    char **names = NULL, token[LIST_CURSOR_TOKEN_MAX] = "", next[LIST_CURSOR_MAX];
    size_t n = 0, s = 0;
    ml_mk_member *out = NULL;
    ml_result r = marketo_statuses(c, program_id, &names, &n, err);
    if (r == ML_DONE && from->kind == LC_MARKETO_PAGED) {
        /* A status no longer in the channel: the whole program again, rather than skip one. */
        while (s < n && strcmp(names[s], from->status) != 0)
            s++;
        if (s < n)
            copy(token, sizeof token, from->token);
        else
            s = 0;
    }
    if (r == ML_DONE && !(out = malloc(MK_PAGE * sizeof *out)))
        r = failed(err, CRM_RETRY, "out of memory listing program %s", program_id);
    bool resumed = token[0] != '\0';
    while (r == ML_DONE && s < n) {
        mk_member *page = NULL;
        size_t np = 0;
        mk_error e;
        if (mkto_members_page(crm_marketo(c), program_id, names[s], token, sizeof token, &page, &np,
                              &e) != 0) {
            if (mkto_members_too_many(&e) && resumed) {
                /* A page token Marketo no longer takes: the status again from its start (the
                 * sink keeps members by email, so a page handed twice is harmless). */
                resumed = false;
                token[0] = '\0';
                continue;
            }
            r = mkto_members_too_many(&e) ? ML_TOO_LARGE
                                          : mk_failed(err, "listing the members", program_id, &e);
            break;
        }
        resumed = false;
        if (np > MK_PAGE) np = MK_PAGE; /* batchSize=300: never more */
        r = marketo_emails(c, program_id, page, np, out, err);
        mkto_members_free(page, np);
        if (r == ML_DONE && marketo_next(names, n, s, token, next, sizeof next) != 0)
            r = failed(err, CRM_REFUSED,
                       "Marketo: program %s: a page token too long to keep as a cursor",
                       program_id);
        if (r == ML_DONE && np && sink(ud, out, np, next) != 0) r = ML_STOPPED;
        if (!token[0]) s++;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(out);
    return r;
}

/* ---------------------------------------------------------------- Marketo, which way */

/* The paged listing's sink while it may go on: it stops the listing instead of handing a
 * page that would pass MARKETO_BULK_ABOVE_MEMBERS. */
typedef struct {
    ml_mk_sink sink;
    void *ud;
    long long handed, above;
    bool over;
} paged_upto;

static int hand_upto(void *ud, const ml_mk_member *m, size_t n, const char *next) {
    paged_upto *pu = ud;
    if (pu->handed + (long long)n > pu->above) {
        pu->over = true;
        return 1;
    }
    pu->handed += (long long)n;
    return pu->sink(pu->ud, m, n, next);
}

/* Paged while the program has at most MARKETO_BULK_ABOVE_MEMBERS (Marketo has no cheap member
 * count: the pages tell), else, or when Marketo refuses the paged listing (1003: over 100,000
 * members), the bulk extract from its start (the members handed already are handed again:
 * harmless, the sink keeps them by email). A bulk cursor goes on with its export. */
static ml_result choose_marketo(crm *c, const char *program_id, const list_cursor *from,
                                ml_mk_sink sink, void *ud, ml_error *err) {
    if (from->kind == LC_MARKETO_BULK) return ml_marketo_bulk(c, program_id, from, sink, ud, err);
    long long above = crm_config(c)->marketo_bulk_above_members;
    if (above > 0) {
        paged_upto pu = {sink, ud, 0, above, false};
        ml_result r = marketo_paged(c, program_id, from, hand_upto, &pu, err);
        if (r != ML_TOO_LARGE && !(r == ML_STOPPED && pu.over)) return r;
        LOG_KV(LOG_INFO, "member lists: program listed through the bulk extract", "program_id",
               program_id, "why",
               r == ML_TOO_LARGE ? "Marketo refused the paged listing (1003)"
                                 : "more members than MARKETO_BULK_ABOVE_MEMBERS");
    }
    list_cursor start = {.kind = LC_START};
    return ml_marketo_bulk(c, program_id, &start, sink, ud, err);
}

ml_result member_lists_marketo(crm *c, const char *program_id, const char *cursor, ml_mk_sink sink,
                               void *ud, ml_error *err) {
    list_cursor from;
    if (list_cursor_parse(cursor, &from) != 0 || from.kind == LC_SALESFORCE_PAGED ||
        from.kind == LC_SALESFORCE_BULK)
        return failed(err, CRM_REFUSED,
                      "program %s: the listing's cursor \"%.60s\" is not one of a Marketo "
                      "listing",
                      program_id, cursor);
    if (from.kind == LC_END) return ML_DONE;
    return choose_marketo(c, program_id, &from, sink, ud, err);
}

/* ---------------------------------------------------------------- Salesforce, paged */

typedef struct {
    ml_sf_sink sink;
    void *ud;
    ml_sf_member *out;
    bool stopped;
} sf_pages;

static int sf_page(void *ud, const sf_member_row *rows, size_t n) {
    sf_pages *sp = ud;
    size_t k = 0;
    list_cursor lc = {.kind = LC_SALESFORCE_PAGED};
    char next[LIST_CURSOR_MAX];
    for (size_t start = 0; start < n; start += k) {
        k = n - start < ML_PAGE_MAX ? n - start : ML_PAGE_MAX;
        for (size_t i = 0; i < k; i++) {
            const sf_member_row *r = &rows[start + i];
            ml_sf_member *m = &sp->out[i];
            memset(m, 0, sizeof *m);
            copy(m->member_id, sizeof m->member_id, r->id);
            copy(m->person_id, sizeof m->person_id, r->contact_id[0] ? r->contact_id : r->lead_id);
            lower_copy(m->email, sizeof m->email, r->email);
            copy(m->status, sizeof m->status, r->status);
            m->modified_ms = r->modified_ms;
            copy(m->first_name, sizeof m->first_name, r->first_name);
            copy(m->last_name, sizeof m->last_name, r->last_name);
            copy(m->company, sizeof m->company, r->company);
        }
        copy(lc.after_id, sizeof lc.after_id, rows[start + k - 1].id);
        if (list_cursor_format(&lc, next, sizeof next) != 0 || sp->sink(sp->ud, sp->out, k, next)) {
            sp->stopped = true;
            return 1;
        }
    }
    return 0;
}

/* Whether the campaign is listed by a Bulk API 2.0 query job: a listing resumed goes on as it
 * began (its cursor's kind); one from the start does when the campaign has more members than
 * SF_BULK_ABOVE_MEMBERS (one COUNT() query). 0, or -1 with err. */
static int choose_salesforce(crm *c, const char *campaign_id, const list_cursor *from, bool *bulk,
                             ml_error *err) {
    *bulk = from->kind == LC_SALESFORCE_BULK;
    if (from->kind != LC_START) return 0;
    long count = 0;
    sf_error e;
    if (sfb_member_count(crm_salesforce(c), campaign_id, &count, &e) != 0) {
        failed(err, sf_failure(&e), "Salesforce: counting the members of campaign %s: %s: %s",
               campaign_id, e.code, e.message);
        return -1;
    }
    *bulk = count > crm_config(c)->sf_bulk_above_members;
    return 0;
}

ml_result member_lists_salesforce(crm *c, const char *campaign_id, const char *cursor,
                                  ml_sf_sink sink, void *ud, ml_error *err) {
    list_cursor from;
    if (list_cursor_parse(cursor, &from) != 0 || from.kind == LC_MARKETO_PAGED ||
        from.kind == LC_MARKETO_BULK)
        return failed(err, CRM_REFUSED,
                      "campaign %s: the listing's cursor \"%.60s\" is not one of a Salesforce "
                      "listing",
                      campaign_id, cursor);
    if (from.kind == LC_END) return ML_DONE;
    bool bulk = false, no_allocation = false;
    if (choose_salesforce(c, campaign_id, &from, &bulk, err) != 0) return ML_FAILED;
    if (bulk) {
        ml_result r = ml_salesforce_bulk(c, campaign_id, &from, sink, ud, &no_allocation, err);
        if (!no_allocation) return r;
        LOG_KV(LOG_WARN, "member lists: Bulk API 2.0 allocation spent; listing by SOQL instead",
               "campaign_id", campaign_id, "error", err->message);
        from = (list_cursor){.kind = LC_START};
    }
    sf_pages sp = {sink, ud, malloc(ML_PAGE_MAX * sizeof(ml_sf_member)), false};
    if (!sp.out) return failed(err, CRM_RETRY, "out of memory listing campaign %s", campaign_id);
    sf_error e;
    int rc =
        sf_campaign_member_pages(crm_salesforce(c), campaign_id, from.after_id, sf_page, &sp, &e);
    free(sp.out);
    if (rc == 0) return ML_DONE;
    if (sp.stopped) return ML_STOPPED;
    return failed(err, sf_failure(&e), "Salesforce: members of campaign %s: %s: %s", campaign_id,
                  e.code, e.message);
}
