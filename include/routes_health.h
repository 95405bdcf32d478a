/* routes_health — GET /healthz, /readyz and /metrics.
 *
 * Owns the readiness checks, held in a routes_health_ctx that main makes and passes as the
 * routes' ud (and to GET /v1/overview through routes_ctx): Redis always (PING with a short
 * timeout, on the calling thread's handle of a store_pool), plus checks that other parts
 * register (worker progress where workers run; CRM checks, which are listed but never fail
 * readiness). /readyz answers each check's name and state only: "ok",
 * "failing", or the one lowercase word a check's detail starts with ("waiting: ..." shows
 * as "waiting"); why a check fails (hosts, ports, a CRM's error text) goes to the log.
 * Also refreshes the queue gauges from Redis before each /metrics render (a collector the
 * context registers with metrics while it lives). With
 * MANAGEMENT_PORT, main serves the three routes there and only /healthz on the public
 * port. */
#ifndef CS_ROUTES_HEALTH_H
#define CS_ROUTES_HEALTH_H

#include "http_server.h"
#include "store.h"

#include <cJSON.h>

#include <stdbool.h>
#include <stddef.h>

/* A readiness check: 0 when fine; otherwise -1 with a sentence in detail (logged, never
 * answered), which may start with a one-word state and a colon ("waiting: ..."). st: the
 * calling thread's Redis handle, NULL when out of memory (borrowed). */
typedef int (*health_check_fn)(void *ud, store *st, char *detail, size_t len);

/* The checks and the queue gauges' collector. routes_health_new registers the collector that
 * copies queue depth and age from Redis into the gauges (stores is borrowed and must outlive
 * the context); NULL when out of memory or metrics has no room for another collector.
 * routes_health_free removes the collector and frees the context (accepts NULL); call it after the
 * servers using it stopped. */
typedef struct routes_health_ctx routes_health_ctx;
routes_health_ctx *routes_health_new(store_pool *stores);
void routes_health_free(routes_health_ctx *h);

/* Adds a check shown under its name in /readyz; a failing `required` check makes /readyz
 * answer 503. name and ud are borrowed. At most 8 checks: -1 when full. Call before the
 * server starts. */
int routes_health_add_check(routes_health_ctx *h, const char *name, health_check_fn fn, void *ud,
                            bool required);

/* Runs every check: {"status": "ready"|"not_ready", "checks": {name: state}, and when not
 * ready "error" and "message"}, as /readyz answers it (NULL when out of memory; caller frees).
 * *ready: whether no required check fails. For /readyz and GET /v1/overview. */
cJSON *routes_health_readiness(routes_health_ctx *h, bool *ready);

/* Writes the three routes into out (room for at least 3); returns how many. h must outlive
 * the server. */
size_t routes_health(http_route *out, size_t max, routes_health_ctx *h);

/* Writes /healthz alone into out (room for 1); returns how many. */
size_t routes_health_liveness(http_route *out, size_t max, routes_health_ctx *h);

#endif
