/* routes_health — GET /healthz, /readyz and /metrics.
 *
 * Owns the readiness checks: Redis always (PING with a short timeout), plus checks that
 * other parts register (worker progress where workers run; CRM checks, which are listed
 * but never fail readiness). /readyz answers each check's name and state only: "ok",
 * "failing", or the one lowercase word a check's detail starts with ("waiting: ..." shows
 * as "waiting"); why a check fails (hosts, ports, a CRM's error text) goes to the log.
 * Also refreshes the queue gauges from Redis before each /metrics render. With
 * MANAGEMENT_PORT, main serves the three routes there and only /healthz on the public
 * port. */
#ifndef CS_ROUTES_HEALTH_H
#define CS_ROUTES_HEALTH_H

#include "http_server.h"

#include <cJSON.h>

#include <stdbool.h>
#include <stddef.h>

/* A readiness check: 0 when fine; otherwise -1 with a sentence in detail (logged, never
 * answered), which may start with a one-word state and a colon ("waiting: ..."). */
typedef int (*health_check_fn)(void *ud, char *detail, size_t len);

/* Adds a check shown under its name in /readyz; a failing `required` check makes /readyz
 * answer 503. At most 8 checks. Call before the server starts. */
void routes_health_add_check(const char *name, health_check_fn fn, void *ud, bool required);

/* Runs every check: {"status": "ready"|"not_ready", "checks": {name: state}, and when not
 * ready "error" and "message"}, as /readyz answers it (NULL when out of memory; caller frees).
 * *ready: whether no required check fails. For /readyz and GET /v1/overview. */
cJSON *routes_health_readiness(bool *ready);

/* Writes the three routes into out (room for at least 3); returns how many. */
size_t routes_health(http_route *out, size_t max);

/* Writes /healthz alone into out (room for 1); returns how many. */
size_t routes_health_liveness(http_route *out, size_t max);

/* Registers the collector that copies queue depth and age from Redis into the gauges. */
void routes_health_init(void);
void routes_health_shutdown(void);

#endif
