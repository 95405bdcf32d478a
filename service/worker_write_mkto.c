/* worker_write_mkto — the writes toward Marketo: the changes a paced read holds back
 * (pace.h), then one status call (or removal) per program and status for 300 leads at most;
 * a skipped status change (1037) is read back to tell "already there" from a backward move
 * Marketo keeps one-way. See service/worker_priv.h. */
#include "worker_priv.h"

#include "log.h"
#include "metrics.h"
#include "pace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Marketo's member statuses of the leads of one status call that it skipped (1037) and whose
 * record does not already show the wanted status, in one read for all of them (they share the
 * program): a lead not at the wanted status was a backward move. One read per lead spent the
 * Marketo budget on reads when many members moved back at once (a bulk reset in Salesforce).
 * A failed read fails them all: the outcome of their write is unknown. */
static void read_skipped_statuses(batch *b, item **its, const char **ids, size_t n) {
    if (!n) return;
    mk_member *res = NULL;
    size_t nres = 0;
    mk_error e;
    if (mkto_member_statuses(crm_marketo(b->w->c), its[0]->p.program_id, ids, n, &res, &nres, &e) !=
        0) {
        for (size_t k = 0; k < n; k++)
            item_fail(its[k], item_mk_failed(&e), "marketo", e.retry_after_ms,
                      "Marketo program %s skipped lead %s (1037) and its status could not be read: "
                      "%s %s",
                      its[k]->p.program_id, its[k]->lead, e.code, e.message);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        const char *now = worker_member_status(res, nres, its[k]->lead);
        if (now) snprintf(its[k]->mkto_now, sizeof its[k]->mkto_now, "%s", now);
        its[k]->backward = plan_backward(now, its[k]->p.mkto_status);
    }
    mkto_members_free(res, nres);
}

bool item_to_marketo(const item *it) {
    return it->state == IT_PENDING && it->p.kind == PLAN_APPLY && it->p.to_mkto;
}

/* A paced read makes no more calls than the pace has room for (b->paced_calls): the changes
 * pace_hold holds back wait for the next read. */
void batch_pace_marketo(batch *b) {
    if (b->paced_ms <= 0 || b->n == 0) return;
    pace_change *c = calloc(b->n, sizeof *c);
    item **its = calloc(b->n, sizeof *its);
    size_t n = 0;
    if (!c || !its) goto out; /* then the calls go as planned */
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (!item_to_marketo(it)) continue;
        its[n] = it;
        c[n++] = (pace_change){it->p.program_id,    it->p.mkto_member,  it->p.mkto_status,
                               item_needs_lead(it), it->ev.received_ms, PACE_GO};
    }
    pace_hold(c, n, b->paced_ms, b->paced_calls, event_now_ms());
    for (size_t k = 0; k < n; k++) {
        switch (c[k].verdict) {
        case PACE_GO: break;
        case PACE_LOOKUP_NEXT:
            item_fail(its[k], IT_DEFER, NULL, b->paced_ms / 2,
                      "its Marketo lead is looked up with the next read's");
            break;
        case PACE_GROUP_NEXT:
            item_fail(its[k], IT_DEFER, NULL, b->paced_ms / 2,
                      "written with the next read's changes of status %s", its[k]->p.mkto_status);
            break;
        }
    }
out:
    free(c);
    free(its);
}

void batch_write_marketo(batch *b) {
    batch_mark_writes(b, false);
    for (size_t i = 0; i < b->n; i++) {
        item *first = &b->items[i];
        if (first->state != IT_PENDING || first->p.kind != PLAN_APPLY || !first->p.to_mkto ||
            !first->lead[0] || first->mk_grouped)
            continue;
        /* One call per program and wanted status (or removal), 300 leads at most. */
        item *group[MKTO_BATCH], *unread[MKTO_BATCH];
        const char *ids[MKTO_BATCH], *unread_ids[MKTO_BATCH];
        size_t n = 0, nu = 0;
        for (size_t j = i; j < b->n && n < MKTO_BATCH; j++) {
            item *it = &b->items[j];
            if (it->state != IT_PENDING || it->p.kind != PLAN_APPLY || !it->p.to_mkto ||
                !it->lead[0] || it->mk_grouped ||
                strcmp(it->p.program_id, first->p.program_id) != 0 ||
                it->p.mkto_member != first->p.mkto_member ||
                strcmp(it->p.mkto_status, first->p.mkto_status) != 0)
                continue;
            it->mk_grouped = true;
            group[n] = it;
            ids[n++] = it->lead;
        }
        mk_record res[MKTO_BATCH];
        mk_error e;
        int rc = first->p.mkto_member ? mkto_set_status(crm_marketo(b->w->c), first->p.program_id,
                                                        first->p.mkto_status, ids, n, res, &e)
                                      : mkto_remove_members(crm_marketo(b->w->c),
                                                            first->p.program_id, ids, n, res, &e);
        for (size_t k = 0; k < n; k++) {
            item *it = group[k];
            if (rc != 0) {
                if (mkto_unknown_status(&e))
                    item_fail(it, IT_DEAD, "marketo", -1,
                              "Marketo program %s has no status \"%s\" for Salesforce campaign %s "
                              "status \"%s\" (%s %s): add it to the program's channel or a "
                              "statusMap entry, then replay",
                              it->p.program_id, it->p.mkto_status, it->campaign, it->ev.status,
                              e.code, e.message);
                else
                    item_fail(it, item_mk_failed(&e), "marketo", e.retry_after_ms,
                              "Marketo program %s: %s %s", it->p.program_id, e.code, e.message);
                continue;
            }
            it_state st = plan_after_mk_record(res[k].outcome, res[k].failure, false);
            if (st != IT_PENDING)
                item_fail(it, st, "marketo", -1,
                          "Marketo skipped lead %s in program %s (reason %s)", it->lead,
                          it->p.program_id, res[k].reason);
            else if (res[k].outcome == MK_REC_AT_OR_PAST && plan_skip_needs_read(&it->st, &it->p)) {
                /* Already at that status (success) or past it (a backward move): Marketo's
                 * current status tells (an earlier try may have timed out after Marketo
                 * applied it, or nothing is recorded yet). */
                unread[nu] = it;
                unread_ids[nu++] = it->lead;
            }
        }
        read_skipped_statuses(b, unread, unread_ids, nu);
    }
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->state != IT_PENDING || it->p.kind != PLAN_APPLY || !it->p.to_mkto) continue;
        if (it->backward) {
            metrics_add(M_EVENTS_DROPPED, 1, plan_drop_reason_name(DROP_BACKWARD));
            LOG_KV(LOG_INFO,
                   "marketo: backward move not applied (Marketo keeps progression "
                   "one-way)",
                   "event_id", it->ev.id, "program_id", it->p.program_id, "lead_id", it->lead,
                   "from", it->st.mkto_status, "to", it->p.mkto_status);
        } else {
            metrics_add(M_EVENTS_APPLIED, 1, "marketo");
        }
    }
}
