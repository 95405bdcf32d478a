/* routes_people — "why didn't Jane sync?": GET /v1/people answers a person's trace (trace.h,
 * store_trace.h) by email, Marketo lead id or Salesforce Lead/Contact id; POST
 * /v1/people/resync re-reads the person on both sides and queues the corrections
 * (resync.h).
 *
 * Owns the parameter checks and the JSON shapes of both (openapi.yaml, /v1/people*), with the
 * admin API's bearer-token authentication (ADMIN_TOKEN compared in constant time; every path
 * answers 404 while ADMIN_TOKEN is unset). */
#ifndef CS_ROUTES_PEOPLE_H
#define CS_ROUTES_PEOPLE_H

#include "config.h"
#include "http_server.h"
#include "routes_admin.h"

#include <stddef.h>

/* Writes the routes into out; returns how many. ctx (routes_admin.h) must outlive the
 * server. */
size_t routes_people(http_route *out, size_t max, const routes_ctx *ctx);

#endif
