/* routes_console — the operator console's page and assets. See include/routes_console.h. */
#include "routes_console.h"

#include <string.h>

/* Script, style and API calls from this origin only; nothing inline, no plugins, no frames,
 * no form posts elsewhere. The page draws its charts as SVG elements from script. */
#define CONSOLE_CSP                                                                                \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "                    \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
#define CACHE_IMMUTABLE "public, max-age=31536000, immutable"
/* The page names its assets by content hash, so it must be asked for again on each load. */
#define CACHE_PAGE "no-cache"

const console_asset *console_asset_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < console_nassets; i++)
        if (console_assets[i].immutable && strcmp(console_assets[i].name, name) == 0)
            return &console_assets[i];
    return NULL;
}

static const console_asset *console_page(void) {
    for (size_t i = 0; i < console_nassets; i++)
        if (!console_assets[i].immutable && strcmp(console_assets[i].name, "index.html") == 0)
            return &console_assets[i];
    return NULL;
}

/* Answers 404 and returns false while the admin API (and so the console) is disabled. */
static bool console_enabled(http_request *req, const struct config *cfg) {
    if (cfg->admin_token) return true;
    http_reply_error(req, 404, "not_found",
                     "the console is disabled, like the admin API; set ADMIN_TOKEN to enable it");
    return false;
}

static void serve(http_request *req, const console_asset *a) {
    http_reply_header(req, "Content-Security-Policy", CONSOLE_CSP);
    http_reply_header(req, "X-Frame-Options", "DENY");
    http_reply_header(req, "Referrer-Policy", "no-referrer");
    http_reply_header(req, "X-Content-Type-Options", "nosniff");
    http_reply_header(req, "Cache-Control", a->immutable ? CACHE_IMMUTABLE : CACHE_PAGE);
    /* The table is static: no copy, no free. */
    http_reply(req, 200, a->content_type, (const char *)a->data, a->len);
}

static void page(http_request *req, void *ud) {
    if (!console_enabled(req, ud)) return;
    const console_asset *a = console_page();
    if (!a) {
        http_reply_error(req, 500, "internal", "this build has no console page");
        return;
    }
    serve(req, a);
}

static void asset(http_request *req, void *ud) {
    if (!console_enabled(req, ud)) return;
    const char *name = http_req_param(req, "asset");
    const console_asset *a = console_asset_find(name);
    if (!a) {
        http_reply_error(req, 404, "not_found", "the console has no file %s", name);
        return;
    }
    serve(req, a);
}

/* Relative links in the page resolve against /console/, so /console goes there. */
static void to_page(http_request *req, void *ud) {
    if (!console_enabled(req, ud)) return;
    static const char body[] = "The console is at /console/\n";
    http_reply_header(req, "Location", "/console/");
    http_reply(req, 308, "text/plain; charset=utf-8", body, sizeof body - 1);
}

#define CONSOLE_MAX_BODY 4096

size_t routes_console(http_route *out, size_t max, const struct config *cfg) {
    void *ud = (void *)cfg;
    /* The page and its assets are public (the page asks for the token; every call it makes
     * goes to the admin API with it); a GET carries no body worth more than a few bytes. */
    const http_route r[] = {
        {"GET", "/console", to_page, ud, NULL, NULL, CONSOLE_MAX_BODY},
        {"GET", "/console/", page, ud, NULL, NULL, CONSOLE_MAX_BODY},
        {"GET", "/console/{asset}", asset, ud, NULL, NULL, CONSOLE_MAX_BODY},
    };
    size_t n = sizeof r / sizeof r[0];
    if (n > max) n = max;
    memcpy(out, r, sizeof r[0] * n);
    return n;
}
