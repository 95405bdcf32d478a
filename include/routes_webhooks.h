/* routes_webhooks — POST /webhooks/salesforce and POST /webhooks/marketo.
 *
 * Owns the receive path of SPEC sections 6–8: authenticate, parse, store durably, and only
 * then acknowledge. Salesforce gets a SOAP Ack or Fault (503 when Redis cannot take the
 * message: Salesforce retries); Marketo gets 202 {"accepted","duplicates"}, and its events go
 * to the spool journal when Redis is unreachable (Marketo never retries). Receiving never
 * calls a CRM. */
#ifndef CS_ROUTES_WEBHOOKS_H
#define CS_ROUTES_WEBHOOKS_H

#include "config.h"
#include "http_server.h"
#include "spool.h"

#include <stddef.h>

typedef struct {
    const struct config *cfg;
    spool *spool; /* Marketo journal; NULL: a Redis outage answers Marketo 503 */
} webhooks_ctx;

/* Writes the two routes into out; returns how many. ctx must outlive the server. */
size_t routes_webhooks(http_route *out, size_t max, webhooks_ctx *ctx);

#endif
