/* pace — the changes a paced read toward Marketo holds back. See include/pace.h. */
#include "pace.h"

#include <stdlib.h>
#include <string.h>

static bool same_call(const pace_change *a, const pace_change *b) {
    return !strcmp(a->program_id, b->program_id) && a->member == b->member &&
           !strcmp(a->status, b->status);
}

static bool young(const pace_change *c, int64_t now, long pace_ms) {
    return now - c->received_ms < pace_ms;
}

/* The call groups of the changes still going: rep[g] (a change's index, in order of first
 * appearance), size[g], old[g] (some change of it is not young); returns the calls. */
typedef struct {
    size_t *rep, *size;
    bool *old;
    size_t n;
} groups;

static int group(const pace_change *c, size_t n, groups *g, long pace_ms, int64_t now) {
    bool lookup = false;
    int calls = 0;
    g->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i].verdict != PACE_GO) continue;
        lookup = lookup || c[i].needs_lead;
        size_t k = 0;
        while (k < g->n && !same_call(&c[g->rep[k]], &c[i]))
            k++;
        if (k == g->n) {
            g->rep[g->n] = i;
            g->size[g->n] = 0;
            g->old[g->n++] = false;
        }
        g->size[k]++;
        g->old[k] = g->old[k] || !young(&c[i], now, pace_ms);
    }
    for (size_t k = 0; k < g->n; k++)
        calls += (int)((g->size[k] + PACE_LEADS_PER_CALL - 1) / PACE_LEADS_PER_CALL);
    return calls + lookup;
}

static bool groups_new(groups *g, size_t n) {
    g->rep = calloc(n ? n : 1, sizeof *g->rep);
    g->size = calloc(n ? n : 1, sizeof *g->size);
    g->old = calloc(n ? n : 1, sizeof *g->old);
    return g->rep && g->size && g->old;
}

static void groups_free(groups *g) {
    free(g->rep);
    free(g->size);
    free(g->old);
}

int pace_calls(const pace_change *c, size_t n) {
    groups g;
    int calls = groups_new(&g, n) ? group(c, n, &g, 1, 0) : -1;
    groups_free(&g);
    return calls;
}

/* The people whose lead is not known wait together, when all are young, none is the oldest
 * change and they are fewer than half the changes. */
static size_t hold_lookups(pace_change *c, size_t n, const pace_change *oldest, long pace_ms,
                           int64_t now) {
    size_t need = 0, go = 0;
    bool all_young = true;
    for (size_t i = 0; i < n; i++) {
        if (c[i].verdict != PACE_GO) continue;
        go++;
        if (!c[i].needs_lead) continue;
        need++;
        all_young = all_young && young(&c[i], now, pace_ms) && &c[i] != oldest;
    }
    if (!need || !all_young || 2 * need >= go) return 0;
    for (size_t i = 0; i < n; i++)
        if (c[i].verdict == PACE_GO && c[i].needs_lead) c[i].verdict = PACE_LOOKUP_NEXT;
    return need;
}

size_t pace_hold(pace_change *c, size_t n, long pace_ms, int room, int64_t now) {
    const pace_change *oldest = NULL;
    size_t held = 0;
    groups g;
    for (size_t i = 0; i < n; i++) {
        c[i].verdict = PACE_GO;
        if (!oldest || c[i].received_ms < oldest->received_ms) oldest = &c[i];
    }
    /* Out of memory, the calls go as planned. */
    if (pace_ms <= 0 || !oldest || !groups_new(&g, n)) goto out;
    int calls = group(c, n, &g, pace_ms, now);
    if (calls <= room) goto out;
    held += hold_lookups(c, n, oldest, pace_ms, now);
    calls = group(c, n, &g, pace_ms, now);
    /* Then whole groups of one status, smallest first; never the oldest change's. */
    while (calls > room) {
        size_t pick = g.n;
        for (size_t k = 0; k < g.n; k++)
            if (!g.old[k] && !same_call(&c[g.rep[k]], oldest) &&
                (pick == g.n || g.size[k] < g.size[pick]))
                pick = k;
        if (pick == g.n) break;
        pace_change key = c[g.rep[pick]]; /* by value: its verdict changes below */
        for (size_t j = 0; j < n; j++)
            if (c[j].verdict == PACE_GO && same_call(&c[j], &key)) {
                c[j].verdict = PACE_GROUP_NEXT;
                held++;
            }
        calls = group(c, n, &g, pace_ms, now);
    }
out:
    if (pace_ms > 0 && oldest) groups_free(&g);
    return held;
}

int pace_share_calls(int calls_per_window, double share) {
    int n = (int)(calls_per_window * share + 1e-9); /* 50 x 0.3 is 15, not 14.99... */
    if (share < 1 && n > calls_per_window - 1) n = calls_per_window - 1;
    return n < 1 ? 1 : n;
}

int pace_share_concurrent(int max_concurrent, double share) {
    int n = (int)(max_concurrent * share + 1e-9);
    if (share < 1 && n > max_concurrent - 1) n = max_concurrent - 1;
    return n < 1 ? 1 : n;
}
