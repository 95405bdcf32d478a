/* pace — which changes of a paced read toward Marketo wait for the next read.
 *
 * Owns the decision part of the Marketo pace (store_mkto_gate sets the pace: how far apart
 * reads toward Marketo go, and how many calls each has room for). A paced read makes no more
 * calls than that room: each call beyond pushes the next read back a pace, and that read then
 * finds more waiting than one call carries (BENCHMARKS.md, "Marketo pace"). So changes that
 * would need more calls wait for the next read, if all were received within the last pace:
 * first the people whose lead is not known yet (often linked meanwhile by their change in the
 * other direction; if not, the next read's lookup takes them with its own), then the smallest
 * groups of one status. The group of the oldest change always goes. Pure: no I/O, no clock. */
#ifndef CS_PACE_H
#define CS_PACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Leads per Marketo status call (members/status.json and delete.json take 300). */
#define PACE_LEADS_PER_CALL 300

/* Changes/s toward Marketo below which reads are not paced (an occasional change goes at
 * once). */
#define PACE_LIGHT_RATE 50

typedef enum {
    PACE_GO = 0,      /* written with this read */
    PACE_LOOKUP_NEXT, /* its lead is looked up with the next read's */
    PACE_GROUP_NEXT,  /* written with the next read's changes of its status */
} pace_verdict;

/* One change toward Marketo of a batch: its call group (program, membership, status) and
 * whether its lead must be looked up first. verdict: the answer (set by pace_hold). */
typedef struct {
    const char *program_id;
    bool member;
    const char *status;
    bool needs_lead;
    int64_t received_ms;
    pace_verdict verdict;
} pace_change;

/* The Marketo calls the changes with verdict PACE_GO make: one per program and status (or
 * removal) per PACE_LEADS_PER_CALL changes, and one lead lookup when any needs one. */
int pace_calls(const pace_change *c, size_t n);

/* Sets each change's verdict for a read paced at pace_ms with room for `room` calls, at now
 * (a read that is not paced, pace_ms <= 0, holds nothing back). Returns how many wait. */
size_t pace_hold(pace_change *c, size_t n, long pace_ms, int room, int64_t now);

/* The share of the Marketo budget that jobs' calls (their listings and their corrections) may
 * take (BACKFILL_MARKETO_SHARE): of calls_per_window calls in Marketo's window, and of
 * max_concurrent calls in flight. At least one each, so that a job always moves; never all
 * of the window's calls but one when share < 1, so that a live change always finds a call.
 * Live calls are paced on what the window has left (store_budget.h).
 * While live changes toward Marketo arrive at PACE_LIGHT_RATE or more, jobs take no more than
 * PACE_BUSY_SHARE_CALLS calls per window and as many in flight: a paced read waits up to a
 * pace, window / (the window's calls less the jobs' ones), so the live latency holds only
 * with nearly the whole window; the jobs go on at their share once the stream ends. */
#define PACE_BUSY_SHARE_CALLS 1
int pace_share_calls(int calls_per_window, double share);
int pace_share_concurrent(int max_concurrent, double share);

#endif
