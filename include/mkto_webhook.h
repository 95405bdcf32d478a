/* mkto_webhook — Marketo webhook JSON (SPEC section 7) turned into events, with errors that
 * name the field and, for an array, the 0-based index.
 *
 * Pure: no I/O. Accepts one event object or an array of up to 1000; ids as numbers or
 * strings of digits; `occurredAt` as ISO-8601 or Marketo's `yyyy-MM-dd HH:mm:ss` (read in
 * the process time zone, set to MARKETO_TIMEZONE). Unknown fields are ignored; one bad event
 * rejects the whole request, so nothing of it is queued. An event without `eventId` gets a
 * derived one (SHA-256 of its fields and its time), so a resent identical call is a
 * duplicate. */
#ifndef CS_MKTO_WEBHOOK_H
#define CS_MKTO_WEBHOOK_H

#include "event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MKTO_WEBHOOK_MAX_EVENTS 1000
#define MKTO_EVENT_ID_MAX       80

typedef struct {
    int status;     /* 0 when usable; otherwise 400 */
    char field[32]; /* the offending field ("" for the body as a whole) */
    long index;     /* its event's index in an array, -1 for a single object */
    char message[512];
    event *events; /* malloc'd; free with mkto_webhook_result_free */
    size_t nevents;
} mkto_webhook_result;

void mkto_webhook_parse(const char *json, size_t len, int64_t received_ms,
                        mkto_webhook_result *out);
void mkto_webhook_result_free(mkto_webhook_result *r);

/* True for application/json, with any parameters (charset...), case-insensitive. */
bool mkto_webhook_content_type_ok(const char *content_type);

#endif
