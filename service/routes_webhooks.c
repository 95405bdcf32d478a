/* routes_webhooks — the two inbound webhooks. See include/routes_webhooks.h. */
#include "routes_webhooks.h"

#include "log.h"
#include "metrics.h"
#include "mkto_webhook.h"
#include "secure.h"
#include "sf_outbound.h"
#include "spool.h"
#include "store_dead.h"

#include <cJSON.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void routes_webhooks_acl(webhooks_ctx *ctx) {
    char err[160];
    netacl_parse(ctx->cfg->sf_allowed_cidrs, &ctx->sf_allowed, err, sizeof err);
    netacl_parse(ctx->cfg->marketo_allowed_cidrs, &ctx->mkto_allowed, err, sizeof err);
    netacl_parse(ctx->cfg->trusted_proxies, &ctx->trusted, err, sizeof err);
}

/* True when the request's client may use this webhook; otherwise answers 403, also when
 * our proxy's X-Forwarded-For cannot be read (refused rather than guessed at). */
static bool source_allowed(http_request *req, const webhooks_ctx *ctx, const netacl *allowed,
                           const char *variable, const char *source) {
    if (allowed->n == 0) return true;
    /* One line more than entries allowed is enough to refuse a list that is too long. */
    const char *lines[NETACL_XFF_MAX_ENTRIES + 1];
    size_t n = http_req_header_lines(req, "X-Forwarded-For", lines, NETACL_XFF_MAX_ENTRIES + 1);
    if (n > NETACL_XFF_MAX_ENTRIES + 1) n = NETACL_XFF_MAX_ENTRIES + 1;
    char client[64], why[160];
    if (netacl_client(&ctx->trusted, http_req_client_ip(req), lines, n, client, sizeof client, why,
                      sizeof why) != 0) {
        metrics_add(M_EVENTS_RECEIVED, 1, source, "rejected");
        LOG_KV_LIMITED(LOG_WARN, "webhook with an unreadable X-Forwarded-For", "client", client,
                       "source", source, "reason", why);
        http_reply_error(req, 403, "forbidden", "%s; the request is refused", why);
        return false;
    }
    if (netacl_contains(allowed, client)) return true;
    metrics_add(M_EVENTS_RECEIVED, 1, source, "rejected");
    LOG_KV_LIMITED(LOG_WARN, "webhook from a source outside the allowlist", "client", client,
                   "source", source);
    http_reply_error(req, 403, "forbidden", "source address %s is not in %s", client, variable);
    return false;
}

/* The Salesforce webhook's authorizer (on the first callback, before the body): the source
 * allowlist, the client certificate (with TLS_CLIENT_CA_FILE) and the token in the endpoint
 * URL (with SF_WEBHOOK_TOKEN), each when configured. */
static bool salesforce_authorize(http_request *req, void *ud) {
    const webhooks_ctx *ctx = ud;
    const struct config *cfg = ctx->cfg;
    if (!source_allowed(req, ctx, &ctx->sf_allowed, "SF_ALLOWED_CIDRS", "salesforce")) return false;
    char why[160];
    if (cfg->tls_client_ca_file && !http_req_client_certified(req, why, sizeof why)) {
        metrics_add(M_EVENTS_RECEIVED, 1, "salesforce", "rejected");
        LOG_KV_LIMITED(LOG_WARN, "salesforce: client certificate refused", "client",
                       http_req_client_ip(req), "reason", why);
        http_reply_error(req, 403, "forbidden", "%s", why);
        return false;
    }
    /* The token is a path segment; compared in constant time, and never logged (the route's
     * template is what logs and metrics name). */
    const char *token = http_req_param(req, "token");
    if (cfg->sf_webhook_token ? secure_equals(token, cfg->sf_webhook_token) : token == NULL)
        return true;
    metrics_add(M_EVENTS_RECEIVED, 1, "salesforce", "rejected");
    if (!cfg->sf_webhook_token)
        http_reply_error(req, 401, "unauthorized",
                         "this service has no SF_WEBHOOK_TOKEN; set the Outbound Message's "
                         "endpoint URL to https://<host>/webhooks/salesforce");
    else
        http_reply_error(req, 401, "unauthorized",
                         "missing or wrong token in the endpoint URL; set the Outbound "
                         "Message's endpoint URL to https://<host>/webhooks/salesforce/"
                         "<SF_WEBHOOK_TOKEN>");
    return false;
}

/* A request authenticated by MARKETO_WEBHOOK_SECRET_PREVIOUS: counted, and logged at most
 * once a minute (with how many came since the last line), so that the log says that Marketo
 * still sends the old secret without a line per event. */
static void previous_secret_used(void) {
    /* Process-wide on purpose: a log throttle, as LOG_KV_LIMITED keeps one per call site. */
    static _Atomic long long last_s = -1;
    static atomic_long since_line;
    metrics_add(M_WEBHOOK_PREVIOUS_SECRET, 1);
    long n = atomic_fetch_add(&since_line, 1) + 1;
    long long now = log_now_s(), last = atomic_load(&last_s);
    if ((last >= 0 && now - last < 60) || !atomic_compare_exchange_strong(&last_s, &last, now))
        return;
    n = atomic_exchange(&since_line, 0);
    char count[24];
    snprintf(count, sizeof count, "%ld", n);
    LOG_KV(LOG_WARN,
           "marketo: webhook authenticated with MARKETO_WEBHOOK_SECRET_PREVIOUS; put the new "
           "secret into the webhook's X-Webhook-Secret header in Marketo",
           "requests", count);
}

/* The Marketo webhook's authorizer: the source allowlist, then the shared secret: the current
 * one, or during a rotation the previous one. Both are compared every time, each in constant
 * time. A webhook sends one custom header value, and Marketo does not retry a refused call
 * (ADE help/webhooks/webhooks.md; /work/shared/reference/marketo-api.md section 1): without
 * the previous secret, every event between the two changes would be lost. */
static bool marketo_authorize(http_request *req, void *ud) {
    const webhooks_ctx *ctx = ud;
    if (!source_allowed(req, ctx, &ctx->mkto_allowed, "MARKETO_ALLOWED_CIDRS", "marketo"))
        return false;
    const char *presented = http_req_header(req, "X-Webhook-Secret");
    bool current = secure_equals(presented, ctx->cfg->marketo_webhook_secret);
    bool previous = secure_equals(presented, ctx->cfg->marketo_webhook_secret_previous);
    if (current) return true;
    if (previous) {
        previous_secret_used();
        return true;
    }
    metrics_add(M_EVENTS_RECEIVED, 1, "marketo", "rejected");
    http_reply_error(req, 401, "unauthorized",
                     "missing or wrong X-Webhook-Secret header; set it in the Marketo "
                     "webhook's custom headers");
    return false;
}

static void count(const char *source, const char *outcome, size_t n) {
    if (n) metrics_add(M_EVENTS_RECEIVED, (double)n, source, outcome);
}

/* A request's events on their way to Redis: kept with the request while it is deferred. */
typedef struct {
    commit_job job; /* job.added, job.dead_added: malloc'd, one flag per event / dead letter */
    union {
        sf_outbound_result sf;
        mkto_webhook_result mkto;
    } res;
    bool is_sf;
    store_unusable *dead; /* the job's dead letters: res.sf's unusable notifications */
} pending;

static void pending_free(pending *pd, bool owned) {
    if (pd->is_sf)
        sf_outbound_result_free(&pd->res.sf);
    else
        mkto_webhook_result_free(&pd->res.mkto);
    free(pd->job.added);
    free(pd->job.dead_added);
    free(pd->dead);
    if (owned) free(pd);
}

static void pending_release(void *pd) {
    pending_free(pd, true);
}

static void pending_done(commit_job *job, void *ud) {
    (void)job;
    http_req_resume(ud);
}

/* Defers the request until the committer has stored the events of p's parse result, which
 * it takes (freed with the request). */
static void defer_store(http_request *req, const webhooks_ctx *ctx, pending p) {
    const event *evs = p.is_sf ? p.res.sf.events : p.res.mkto.events;
    size_t n = p.is_sf ? p.res.sf.nevents : p.res.mkto.nevents;
    size_t m = p.is_sf ? p.res.sf.ndead : 0;
    p.dead = calloc(m + 1, sizeof *p.dead);
    for (size_t i = 0; p.dead && i < m; i++)
        p.dead[i] = (store_unusable){&p.res.sf.dead[i].ev, p.res.sf.dead[i].reason};
    p.job = (commit_job){.evs = evs,
                         .n = n,
                         .added = calloc(n + 1, sizeof(bool)),
                         .dead = p.dead,
                         .ndead = m,
                         .dead_added = calloc(m + 1, sizeof(bool)),
                         .done = pending_done,
                         .ud = req};
    pending *pd = p.dead && p.job.added && p.job.dead_added ? malloc(sizeof *pd) : NULL;
    if (!pd) {
        pending_free(&p, false);
        http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    *pd = p;
    http_req_defer(req, pd, pending_release);
    committer_submit(ctx->commit, &pd->job);
}

/* The unusable notifications of a stored message: each one new is a dead letter, counted
 * and logged; returns how many were new (the others were dead-lettered before). */
static size_t sf_dead_stored(const pending *pd) {
    const sf_outbound_result *res = &pd->res.sf;
    size_t n = 0;
    for (size_t i = 0; i < res->ndead; i++) {
        if (!pd->job.dead_added[i]) continue;
        n++;
        LOG_KV_LIMITED(LOG_WARN, "salesforce: notification dead-lettered", "event_id",
                       res->dead[i].ev.id, "reason", res->dead[i].reason);
    }
    if (n) metrics_add(M_DEAD_LETTERS, (double)n);
    return n;
}

static void salesforce(http_request *req, void *ud) {
    const webhooks_ctx *ctx = ud;
    pending *pd = http_req_state(req);
    if (!pd) {
        size_t len;
        const char *body = http_req_body(req, &len);
        sf_outbound_result res;
        sf_outbound_parse(body, len, ctx->cfg->sf_org_id, event_now_ms(), &res);
        if (res.status) {
            count("salesforce", "rejected", 1);
            LOG_KV_LIMITED(LOG_WARN, "salesforce: outbound message refused", "reason", res.message,
                           "client", http_req_client_ip(req));
            http_reply_error(req, res.status, res.status == 403 ? "wrong_org" : "bad_request", "%s",
                             res.message);
            return;
        }
        if (res.nevents || res.ndead) {
            defer_store(req, ctx, (pending){.is_sf = true, .res.sf = res});
            return;
        }
        /* Only empty notifications: nothing to store. */
        if (res.nempty) metrics_add(M_EVENTS_DROPPED, (double)res.nempty, "empty");
        sf_outbound_result_free(&res);
    } else {
        const sf_outbound_result *res = &pd->res.sf;
        if (pd->job.rc != 0) {
            count("salesforce", "rejected", 1);
            LOG_KV_LIMITED(LOG_WARN,
                           "salesforce: cannot store the message; answering 503 so "
                           "Salesforce retries",
                           "error", pd->job.err);
            if (pd->job.rc == COMMIT_BUSY)
                http_reply_error(req, 503, "unavailable",
                                 "the message could not be stored now (%s); Salesforce will "
                                 "deliver it again",
                                 pd->job.err);
            else
                http_reply_error(req, 503, "unavailable",
                                 "the message could not be stored (Redis is unavailable); "
                                 "Salesforce will deliver it again");
            return;
        }
        size_t n_added = 0;
        for (size_t i = 0; i < res->nevents; i++) {
            if (pd->job.added[i]) n_added++;
            if (log_enabled(LOG_DEBUG))
                LOG_KV(LOG_DEBUG, pd->job.added[i] ? "salesforce: queued" : "salesforce: duplicate",
                       "event_id", res->events[i].id, "campaign_id", res->events[i].campaign_id);
        }
        size_t n_dead = sf_dead_stored(pd);
        count("salesforce", "accepted", n_added);
        count("salesforce", "duplicate", res->nevents - n_added + res->ndead - n_dead);
        if (res->nempty) metrics_add(M_EVENTS_DROPPED, (double)res->nempty, "empty");
    }
    size_t alen;
    const char *ack = sf_outbound_ack(&alen);
    http_reply(req, 200, "text/xml; charset=utf-8", ack, alen);
}

static void reply_counts(http_request *req, size_t accepted, size_t duplicates) {
    char body[96];
    int n =
        snprintf(body, sizeof body, "{\"accepted\":%zu,\"duplicates\":%zu}", accepted, duplicates);
    http_reply(req, 202, "application/json", body, (size_t)n);
}

static void reply_invalid(http_request *req, const mkto_webhook_result *res) {
    cJSON *o = cJSON_CreateObject();
    /* A problem with one field is "invalid_field"; with the body as a whole "invalid_body". */
    cJSON_AddStringToObject(o, "error", res->field[0] ? "invalid_field" : "invalid_body");
    cJSON_AddStringToObject(o, "message", res->message);
    if (res->field[0]) cJSON_AddStringToObject(o, "field", res->field);
    if (res->index >= 0) cJSON_AddNumberToObject(o, "index", (double)res->index);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s)
        http_reply_owned(req, 400, "application/json", s, strlen(s));
    else
        http_reply_error(req, 500, "internal", "out of memory");
}

/* Redis could not take the events (why): the spool journal keeps them, or 503. */
static void spool_or_refuse(http_request *req, const webhooks_ctx *ctx,
                            const mkto_webhook_result *res, const char *why) {
    char err[STORE_ERR_MAX] = "";
    if (ctx->spool && spool_append(ctx->spool, res->events, res->nevents, err, sizeof err) == 0) {
        count("marketo", "spooled", res->nevents);
        LOGF_LIMITED(LOG_WARN, "marketo: %zu events written to the spool journal (%s)",
                     res->nevents, why);
        reply_counts(req, res->nevents, 0);
        return;
    }
    count("marketo", "rejected", 1);
    LOG_KV_LIMITED(LOG_ERROR, "marketo: events could not be stored anywhere", "error", why, "spool",
                   err);
    http_reply_error(req, 503, "unavailable",
                     "the events could not be stored: Redis is unavailable and the local "
                     "journal cannot be written; see the service's log");
}

static void marketo_stored(http_request *req, const webhooks_ctx *ctx, const pending *pd);

static void marketo(http_request *req, void *ud) {
    const webhooks_ctx *ctx = ud;
    const pending *pd = http_req_state(req);
    if (pd) {
        marketo_stored(req, ctx, pd);
        return;
    }
    const char *ctype = http_req_header(req, "Content-Type");
    if (!mkto_webhook_content_type_ok(ctype)) {
        count("marketo", "rejected", 1);
        http_reply_error(req, 415, "unsupported_media_type",
                         "Content-Type must be application/json, got \"%.60s\"; add the custom "
                         "header Content-Type: application/json to the webhook",
                         ctype ? ctype : "(none)");
        return;
    }
    size_t len;
    const char *body = http_req_body(req, &len);
    mkto_webhook_result res;
    mkto_webhook_parse(body, len, event_now_ms(), &res);
    if (res.status) {
        count("marketo", "rejected", 1);
        LOG_KV_LIMITED(LOG_WARN, "marketo: webhook refused", "reason", res.message);
        reply_invalid(req, &res);
        return;
    }
    if (res.nevents == 0) {
        mkto_webhook_result_free(&res);
        reply_counts(req, 0, 0);
        return;
    }
    /* Behind a non-empty journal, new events queue up after it to keep their order. */
    if (spool_pending(ctx->spool) > 0) {
        spool_or_refuse(req, ctx, &res, "the spool journal is not yet drained");
        mkto_webhook_result_free(&res);
        return;
    }
    defer_store(req, ctx, (pending){.res.mkto = res});
}

/* The second run, once the committer stored the events (or could not). */
static void marketo_stored(http_request *req, const webhooks_ctx *ctx, const pending *pd) {
    const mkto_webhook_result *res = &pd->res.mkto;
    if (pd->job.rc != 0) {
        spool_or_refuse(req, ctx, res, pd->job.err);
        return;
    }
    size_t n_added = 0;
    for (size_t i = 0; i < res->nevents; i++) {
        n_added += pd->job.added[i];
        if (log_enabled(LOG_DEBUG))
            LOG_KV(LOG_DEBUG, pd->job.added[i] ? "marketo: queued" : "marketo: duplicate",
                   "event_id", res->events[i].id);
    }
    count("marketo", "accepted", n_added);
    count("marketo", "duplicate", res->nevents - n_added);
    reply_counts(req, n_added, res->nevents - n_added);
}

size_t routes_webhooks(http_route *out, size_t max, webhooks_ctx *ctx) {
    size_t sf_max = (size_t)ctx->cfg->sf_max_body_bytes; /* the Marketo route: MAX_BODY_BYTES */
    const http_route r[] = {
        {"POST", "/webhooks/salesforce", salesforce, ctx, sf_outbound_fault, salesforce_authorize,
         sf_max},
        {"POST", "/webhooks/salesforce/{token}", salesforce, ctx, sf_outbound_fault,
         salesforce_authorize, sf_max},
        {"POST", "/webhooks/marketo", marketo, ctx, NULL, marketo_authorize, 0},
    };
    size_t n = sizeof r / sizeof r[0];
    if (n > max) n = max;
    memcpy(out, r, sizeof r[0] * n);
    return n;
}
