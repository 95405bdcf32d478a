/* trace — one entry of a person's trace: what became of one event of that person (applied,
 * to which side; dropped and why; retried; dead-lettered; parked) and what the CRM answered.
 *
 * Owns the JSON form of an entry, the contract of GET /v1/people (openapi.yaml,
 * TraceEntry). Pure: no I/O, no clock. The worker (and the deleted-records poll, for its own
 * deletions) fills a trace_record at the end of each event's turn; store_trace keeps the
 * entries per person. Deferring an event (a busy member, a paced read) is not an outcome and
 * makes no entry. */
#ifndef CS_TRACE_H
#define CS_TRACE_H

#include "event.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    TRACE_APPLIED = 0, /* written to one or both CRMs (or found already there) */
    TRACE_DROPPED,     /* not applied: reason is duplicate, echo, stale, unmapped, ... */
    TRACE_RETRY,       /* a retryable failure: tried again later (attempt, error) */
    TRACE_DEAD_LETTER, /* given up: dead letter dead_letter_id, error */
    TRACE_PARKED       /* waits outside the queue: mapping disabled, daily allowance spent */
} trace_outcome;

typedef struct {
    int64_t at_ms;     /* when the outcome was recorded */
    const event *ev;   /* the event (its id, source, type, status and times) */
    const char *email; /* the person as known then ("" when unknown) */
    const char *mkto_lead;
    const char *sf_person; /* Lead or Contact id */
    const char *program_id, *campaign_id;
    trace_outcome outcome;
    const char *reason; /* TRACE_DROPPED, TRACE_PARKED (and a side skipped when applied) */
    /* TRACE_APPLIED: the sides written and what each was set to (member false: removed). */
    bool to_sf, sf_member, to_mkto, mkto_member;
    const char *sf_status, *mkto_status;
    const char *cm_id;   /* Salesforce's answer: the CampaignMember written */
    int attempt;         /* TRACE_RETRY, TRACE_DEAD_LETTER: attempts made so far */
    const char *error;   /* TRACE_RETRY, TRACE_DEAD_LETTER: the reason, with the CRM's text */
    const char *dead_id; /* TRACE_DEAD_LETTER: the dead letter's id */
} trace_record;

/* The name of an outcome in the JSON ("applied", "dropped", "retry", "dead_letter",
 * "parked"). */
const char *trace_outcome_name(trace_outcome o);

/* The entry as a JSON text (caller frees); NULL only when out of memory. Empty fields are
 * left out; texts are cut to what an entry may hold (an error to 700 bytes). */
char *trace_entry_json(const trace_record *r);

#endif
