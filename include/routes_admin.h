/* routes_admin — the /v1 admin API: mappings (F1, F10; replaced by PUT, changed field by
 * field by PATCH, a JSON merge patch that goes through PUT's checks), the global sync switch
 * (F10), the dead-letter list with replay one by one or by a filter (F11; dead_filter.h), the
 * synced members of a campaign (F9) and the audit log of applied changes.
 *
 * Owns bearer-token authentication with ADMIN_TOKEN (compared in constant time; without
 * ADMIN_TOKEN every /v1 path answers 404), the JSON shapes of SPEC section 5, paging
 * (`?limit=` default 100, at most 1000, `?cursor=`), and the side effects of a mapping
 * change on waiting events: enabling or deleting a mapping queues its parked events again. */
#ifndef CS_ROUTES_ADMIN_H
#define CS_ROUTES_ADMIN_H

#include "config.h"
#include "http_server.h"

#include <stddef.h>

/* Writes the admin routes into out; returns how many. cfg must outlive the server. */
size_t routes_admin(http_route *out, size_t max, const struct config *cfg);

#endif
