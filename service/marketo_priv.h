/* marketo_priv — what marketo.c shares with marketo_calls.c: the enveloped REST call and its
 * paging. Nothing outside marketo*.c includes it, so REST paths and JSON field names stay
 * inside the module. */
#ifndef CS_MARKETO_PRIV_H
#define CS_MARKETO_PRIV_H

#include "marketo.h"

#include "http_client.h"

#include <cJSON.h>

/* Fills err (and counts a CRM error unless o is MK_OK). */
void mk_set_error(mk_error *e, mk_outcome o, long status, const char *code, const char *msg);

/* One REST call; path starts with "/rest/". *envelope receives the parsed answer on success
 * (success:true); the caller frees it. 0, or -1 with err. A URL over 8 KB is not sent: -1 with
 * code "URI_TOO_LONG". */
int mkto_call(mkto_client *c, const char *method, const char *path, const char *body,
              cJSON **envelope, mk_error *err);

/* One page of GET path?query: as a GET while the URL stays short, else as POST
 * path?_method=GET with the query as a form body. */
int mk_get_page(mkto_client *c, const char *path, const char *query, cJSON **envelope,
                mk_error *err);

/* GET path?query and every further page (nextPageToken); *result holds the records of all
 * pages (caller frees). */
int mk_get_all(mkto_client *c, const char *path, const char *query, cJSON **result, mk_error *err);

/* GET path; *result is the envelope's result array (caller frees). */
int mk_get_result(mkto_client *c, const char *path, cJSON **result, mk_error *err);

/* POST with a JSON body; *result is the envelope's result array (caller frees). */
int mk_post_result(mkto_client *c, const char *path, cJSON *body, cJSON **result, mk_error *err);

/* "a,b,c" of n values, each URL-escaped; printf into a new string; one value URL-escaped.
 * malloc'd; NULL when out of memory. */
char *mk_joined(mkto_client *c, const char *const *values, size_t n);
char *mk_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *mk_escape(mkto_client *c, const char *s);

/* GET path (a bulk export's file) with Range: bytes=first-last, under a budget permit: the
 * raw answer of a 200 or 206 in *out (the caller frees it with http_result_free). 0, or -1
 * with err (HTTP 404: the export is unknown, not completed, or its file is gone). */
int mk_get_file(mkto_client *c, const char *path, long long first, long long last, http_result *out,
                mk_error *err);

#endif
