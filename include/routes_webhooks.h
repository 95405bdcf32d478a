/* routes_webhooks — POST /webhooks/salesforce[/{token}] and POST /webhooks/marketo.
 *
 * Owns the receive path of SPEC sections 6–8: authenticate, parse, store durably, and only
 * then acknowledge (the events go to Redis through commit's groups; the request waits
 * suspended, holding no thread). Salesforce gets a SOAP Ack or Fault (503 when Redis cannot take
 * the message: Salesforce retries); Marketo gets 202 {"accepted","duplicates"}, and its events go
 * to the spool journal when Redis is unreachable (Marketo never retries). Receiving never
 * calls a CRM. Authentication runs in each route's authorizer, on the request's first
 * callback, before any of the body is read: with SF_ALLOWED_CIDRS / MARKETO_ALLOWED_CIDRS
 * set, other sources get 403 (the client address taken from X-Forwarded-For only behind
 * TRUSTED_PROXIES, and a list from them that cannot be read is refused); with
 * TLS_CLIENT_CA_FILE the Salesforce webhook needs a client certificate from that CA (and
 * one of TLS_CLIENT_CERT_PINS when set), else 403; with SF_WEBHOOK_TOKEN only
 * /webhooks/salesforce/<token> is accepted (compared in constant time; the bare path and a
 * wrong token get a 401 SOAP Fault); Marketo's X-Webhook-Secret must match (else 401). The
 * Salesforce routes take bodies up to SF_MAX_BODY_BYTES, Marketo's up to MAX_BODY_BYTES. */
#ifndef CS_ROUTES_WEBHOOKS_H
#define CS_ROUTES_WEBHOOKS_H

#include "commit.h"
#include "config.h"
#include "http_server.h"
#include "netacl.h"
#include "spool.h"

#include <stddef.h>

typedef struct {
    const struct config *cfg;
    spool *spool;      /* Marketo journal; NULL: a Redis outage answers Marketo 503 */
    committer *commit; /* stores the events of many requests in one round trip */
    netacl sf_allowed, mkto_allowed, trusted; /* empty allowlist: any source */
} webhooks_ctx;

/* Fills the allowlists from cfg (already validated by config_load). */
void routes_webhooks_acl(webhooks_ctx *ctx);

/* Writes the two routes into out; returns how many. ctx must outlive the server. */
size_t routes_webhooks(http_route *out, size_t max, webhooks_ctx *ctx);

#endif
