/* dead_filter — which dead letters an operator means: the filter of GET /v1/deadletters and
 * of POST /v1/deadletters/replay, and the kind of each dead letter.
 *
 * Owns the filter's fields and their checks (each refused with a sentence naming it), the
 * kinds a dead letter's reason falls into (told apart by the texts plan.c and the worker
 * write, in dead_filter_classify), the match of one listed dead letter against a filter,
 * and the cursor text of a filtered walk. Pure apart from cJSON. */
#ifndef CS_DEAD_FILTER_H
#define CS_DEAD_FILTER_H

#include "event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The kinds of reason; DEAD_ANY matches every one. */
typedef enum {
    DEAD_ANY = 0,
    DEAD_UNKNOWN_STATUS, /* "unknown_status": a status without a counterpart (F11) */
    DEAD_GAVE_UP,        /* "gave_up": a retryable failure after MAX_ATTEMPTS tries */
    DEAD_UNUSABLE,       /* "unusable": a notification that never became an event */
    DEAD_REFUSED,        /* "refused": any other permanent failure: a CRM refused the change
                            (its error follows) or the event lacks what the CRM needs */
} dead_kind;

/* The code of a kind ("" for DEAD_ANY). */
const char *dead_kind_name(dead_kind k);

/* The kind of a dead letter with this error text; unusable: it holds no event. */
dead_kind dead_filter_classify(const char *error, bool unusable);

#define DEAD_TEXT_MAX  201 /* errorContains, with the NUL */
#define DEAD_ID_MAX    48  /* a dead letter's id, with the NUL */
#define DEAD_LIMIT_MAX 1000

typedef struct {
    char program_id[EV_NUMID_MAX]; /* "" any */
    char campaign_id[EV_SFID_MAX]; /* "" any; the first 15 characters compared */
    /* Filled by the caller from the mappings before matching: the campaign mapped to
     * program_id and the program mapped to campaign_id ("" when none), so that a program
     * also takes the Salesforce-side events of its campaign and a campaign the Marketo-side
     * events of its program. */
    char program_campaign[EV_SFID_MAX];
    char campaign_program[EV_NUMID_MAX];
    dead_kind reason;
    char error_contains[DEAD_TEXT_MAX]; /* "" any; ASCII letters compared case-insensitively */
    int64_t from_ms, to_ms;             /* when it was dead-lettered, both inclusive */
    /* The request fields of a replay (dead_filter_from_json). */
    long limit; /* 1..DEAD_LIMIT_MAX, default 100 */
    bool dry_run;
    bool has_cursor;
    int64_t cursor_at_ms;
    char cursor_id[DEAD_ID_MAX];
} dead_filter;

/* An empty filter: everything, limit 100. */
void dead_filter_init(dead_filter *f);

/* What setting one named field of a filter did. */
typedef enum {
    DEAD_FIELD_ERROR = -1,  /* a bad value: err has a sentence naming the field */
    DEAD_FIELD_SET = 0,     /* the field is set */
    DEAD_FIELD_UNKNOWN = 1, /* no such field here: the caller's to judge */
} dead_field_rc;

/* Sets one of the fields a list query and a replay body share (programId, campaignId,
 * reason, errorContains, from, to) from its text. */
dead_field_rc dead_filter_set(dead_filter *f, const char *name, const char *value, char *err,
                              size_t errlen);

/* Checks what the fields say together (from not after to). 0, or -1 with err. */
int dead_filter_check(const dead_filter *f, char *err, size_t errlen);

/* True when any of the shared fields narrows the list. */
bool dead_filter_narrows(const dead_filter *f);

/* Reads a replay body: one JSON object with the shared fields as strings and limit
 * (integer), dryRun (boolean), cursor (a previous answer's next); an empty body is {}.
 * Unknown fields are refused, all of them named. 0, or -1 with err. */
int dead_filter_from_json(dead_filter *f, const char *body, size_t len, char *err, size_t errlen);

/* Reads a cursor "<ms>:<id>" (dead_filter_cursor's); false when s is not one. */
bool dead_filter_parse_cursor(const char *s, int64_t *at_ms, char *id, size_t idlen);
/* Writes the cursor of a place in the index. */
void dead_filter_cursor(int64_t at_ms, const char *id, char *out, size_t size);

/* Whether a dead letter, as listed (JSON {"id","at","attempts","error","event"}) and
 * whether it is unusable, is one the filter takes (its time is the caller's to check). */
bool dead_filter_match(const dead_filter *f, const char *item, size_t len, bool unusable);

#endif
