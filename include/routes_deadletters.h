/* routes_deadletters — GET /v1/deadletters, POST /v1/deadletters/{id}/replay, DELETE
 * /v1/deadletters/{id} and POST /v1/deadletters/replay.
 *
 * Owns the dead-letter half of the admin API: the list (newest first, paged, with the filter of
 * issue 21: program, campaign, kind, words of the error, time range), the replay of one dead
 * letter past de-duplication (409 for a received item that never became an event), its
 * deletion, and the bulk replay of what a filter takes (bounded work per call, a cursor for
 * the rest, a dry run). Same bearer token as the rest of the admin API (routes_admin). */
#ifndef CS_ROUTES_DEADLETTERS_H
#define CS_ROUTES_DEADLETTERS_H

#include "http_server.h"
#include "routes_admin.h"

#include <stddef.h>

/* Writes the dead-letter routes into out; returns how many. ctx must outlive the server. */
size_t routes_deadletters(http_route *out, size_t max, const routes_ctx *ctx);

#endif
