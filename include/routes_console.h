/* routes_console — GET /console/: the operator console, one page whose HTML, CSS and
 * JavaScript are embedded in the binary at build time (console/embed.sh turns the files under
 * console/ into build/gen/console_assets.c; nothing is read from disk or the network at run
 * time).
 *
 * Owns the console's HTTP answers: the page at /console/ (revalidated on every load), its
 * assets at /console/<name>.<content hash>.<ext> (cacheable for a year: a change of content
 * is a change of name), /console redirected to /console/, and the security headers of each: a
 * Content-Security-Policy that allows script and style from this origin only (no inline
 * script or style), no framing, no referrer, no content sniffing. Any other name answers 404,
 * so no path reaches beyond the embedded table. The page holds no secret: it asks for
 * ADMIN_TOKEN, keeps it in the tab's sessionStorage and sends it as a bearer token to the /v1
 * admin API. Like the admin API, every console path answers 404 while ADMIN_TOKEN is unset. */
#ifndef CS_ROUTES_CONSOLE_H
#define CS_ROUTES_CONSOLE_H

#include "config.h"
#include "http_server.h"

#include <stdbool.h>
#include <stddef.h>

/* One embedded file, as the generated table holds it. */
typedef struct {
    const char *name;         /* "index.html", or "<name>.<hash>.<ext>" for an asset */
    const char *content_type; /* with its charset for text */
    const unsigned char *data;
    size_t len;
    bool immutable; /* named by its content hash: served at /console/<name>, cached for good */
} console_asset;

/* The generated table (build/gen/console_assets.c); index.html is among them. */
extern const console_asset console_assets[];
extern const size_t console_nassets;

/* The asset served at /console/<name>: an exact match among the hashed assets, or NULL
 * (index.html, an unhashed name, "..", anything else). */
const console_asset *console_asset_find(const char *name);

/* Writes the console routes into out (room for at least 3); returns how many. cfg must
 * outlive the server. */
size_t routes_console(http_route *out, size_t max, const struct config *cfg);

#endif
