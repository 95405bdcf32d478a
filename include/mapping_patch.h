/* mapping_patch — a JSON merge patch of a mapping (PATCH /v1/mappings/{programId}).
 *
 * Owns the merge rules of RFC 7396 (which obsoletes RFC 7386; same rules) as they apply to a
 * mapping: a member of the patch replaces the stored member, `null` removes it, and an object
 * (statusMap) is merged member by member, so `{"enabled": false}` leaves the status map as it
 * is and `{"statusMap": {"No Show": null}}` removes one entry. The result is written as the
 * body a PUT of the whole mapping would carry, so that it goes through exactly PUT's checks
 * (status_map.h: mapping_from_request). Pure apart from cJSON. */
#ifndef CS_MAPPING_PATCH_H
#define CS_MAPPING_PATCH_H

#include "status_map.h"

#include <stdbool.h>
#include <stddef.h>

/* What applying a patch came to. */
typedef enum {
    MAPPING_PATCH_OUT_OF_MEMORY = -2,
    MAPPING_PATCH_REFUSED = -1, /* err has a sentence for the client */
    MAPPING_PATCH_APPLIED = 0,
} mapping_patch_rc;

/* Applies the patch document (len bytes) to the stored mapping. When APPLIED, *put_body is
 * the malloc'd PUT body {"campaignId", "enabled", "statusMap"[, "force"]} of the result
 * (caller frees; `force` is a flag of the request, copied when given, never stored).
 * REFUSED when the patch is not one JSON object, names members a mapping does not have (all
 * of them named), tries to change programId, createdAt or updatedAt, or removes campaignId or
 * enabled. Values are not checked here: the PUT body's reader does that. */
mapping_patch_rc mapping_patch_apply(const mapping *stored, const char *patch, size_t len,
                                     char **put_body, char *err, size_t errlen);

#endif
