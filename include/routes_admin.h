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
#include "crm.h"
#include "http_server.h"

#include <stdbool.h>
#include <stddef.h>

/* What the /v1 routes share (their ud): the CRM clients of the server's threads, and through
 * them the config. Owned by main; must outlive the server. */
typedef struct {
    crm_pool *crms;
} routes_ctx;

/* The config of a /v1 route's ud (a routes_ctx). */
const struct config *routes_config(const void *ud);

/* The admin API's route authorizer (http_server runs it on a request's first callback): the
 * bearer ADMIN_TOKEN, 404 while it is unset. ud: the routes_ctx. Also for /v1 routes of other
 * files (routes_people.c). */
bool routes_admin_authorize(http_request *req, void *ud);

/* The body cap of the admin routes. */
#define ROUTES_ADMIN_MAX_BODY (64 * 1024) /* a mapping of 50 status pairs is under 8 KB */

/* Writes the admin routes into out; returns how many. ctx must outlive the server. */
size_t routes_admin(http_route *out, size_t max, const routes_ctx *ctx);

#endif
