/* Shared by the fuzz targets: an accepted event's queue form must parse back to an event
 * whose queue form is the same bytes. (Compared as JSON, not as structs: a field given twice
 * in one record leaves bytes of the longer value after the terminator of the later one.) */
#ifndef CS_FUZZ_ROUNDTRIP_H
#define CS_FUZZ_ROUNDTRIP_H

#include "event.h"

#include <stdlib.h>
#include <string.h>

static void check_roundtrip(const event *ev) {
    char *j = event_to_json(ev);
    event back;
    char err[128];
    if (!j || event_from_json(j, strlen(j), &back, err, sizeof err) != 0) abort();
    char *j2 = event_to_json(&back);
    if (!j2 || strcmp(j, j2) != 0) abort();
    free(j);
    free(j2);
}

#endif
