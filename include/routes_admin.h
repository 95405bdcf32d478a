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
#include "routes_health.h"
#include "store.h"

#include <cJSON.h>

#include <stdbool.h>
#include <stddef.h>

/* What the /v1 routes share (their ud): the Redis handles and the CRM clients of the server's
 * threads (through the clients, the config), and the readiness checks (GET /v1/overview).
 * Owned by main; must outlive the server. */
typedef struct {
    store_pool *stores;
    crm_pool *crms;
    routes_health_ctx *health;
} routes_ctx;

/* The config of a /v1 route's ud (a routes_ctx). */
const struct config *routes_config(const void *ud);

/* The admin API's route authorizer (http_server runs it on a request's first callback): the
 * bearer ADMIN_TOKEN, 404 while it is unset. ud: the routes_ctx. Also for /v1 routes of other
 * files (routes_people.c). */
bool routes_admin_authorize(http_request *req, void *ud);

/* The body cap of the admin routes. */
#define ROUTES_ADMIN_MAX_BODY (64 * 1024) /* a mapping of 50 status pairs is under 8 KB */

/* Helpers of every admin route file (routes_deadletters.c, routes_people.c): */
/* The bearer token; answers (404 without ADMIN_TOKEN, 401) and returns false when the request
 * may not go on. */
bool admin_authorized(http_request *req, const struct config *cfg);
/* This thread's Redis handle (from the routes_ctx ud's pool); NULL after answering 503. */
store *admin_redis(http_request *req, const void *ud);
/* 503 naming Redis's error. */
void admin_unavailable(http_request *req, const char *err);
/* Answers o (taken) as JSON. */
void admin_reply_json(http_request *req, int status, cJSON *o);
/* ?limit= within 1..1000 (default 100); false after answering 400. */
bool admin_read_limit(http_request *req, long *limit);
/* {"items": items, "next": next or null}, 200. items is taken. */
void admin_list_page(http_request *req, cJSON *items, const char *next);

/* Writes the admin routes into out; returns how many. ctx must outlive the server. */
size_t routes_admin(http_route *out, size_t max, const routes_ctx *ctx);

#endif
