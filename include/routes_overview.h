/* routes_overview — GET /v1/overview: what the console's Overview shows, in one bearer-
 * authenticated JSON answer on the public port.
 *
 * With MANAGEMENT_PORT set, /readyz and /metrics are served on the management port only, and
 * a browser on the public port cannot read them; this route answers the same readiness
 * checks (names and states only, as /readyz) and the figures: the queues per direction, the
 * events parked by disabled mappings, the dead letters of the last 24 hours, the jobs this
 * process runs, and the Prometheus lines of the few families the console charts (applied
 * changes, apply latency, CRM errors, retries, Salesforce API usage). Bounded: at most
 * OVERVIEW_PARKED_MAX programs, OVERVIEW_DEAD_MAX dead letters counted, OVERVIEW_METRICS_MAX
 * bytes of metric lines. Registered whether or not MANAGEMENT_PORT is set. */
#ifndef CS_ROUTES_OVERVIEW_H
#define CS_ROUTES_OVERVIEW_H

#include "http_server.h"
#include "routes_admin.h"

#include <stddef.h>

#define OVERVIEW_PARKED_MAX  20    /* programs listed under "parked" (the ones with most) */
#define OVERVIEW_DEAD_MAX    1000  /* dead letters of the last 24 h counted at most */
#define OVERVIEW_METRICS_MAX 32768 /* bytes of metric lines at most (whole lines) */

/* Writes the route into out; returns how many. ctx must outlive the server. */
size_t routes_overview(http_route *out, size_t max, const routes_ctx *ctx);

#endif
