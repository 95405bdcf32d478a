/* salesforce_priv — what salesforce.c shares with salesforce_query.c: the raw REST call and
 * the SOQL runner. Nothing outside salesforce*.c includes it, so SOQL text and JSON field
 * names stay inside the module. */
#ifndef CS_SALESFORCE_PRIV_H
#define CS_SALESFORCE_PRIV_H

#include "salesforce.h"

#include "http_client.h"

#include <cJSON.h>

/* Fills err (and counts a CRM error unless o is SF_OK). */
void sf_set_error(sf_error *e, sf_outcome o, long status, const char *code, const char *msg);

/* One REST call under /services/data/<version>/ (path without that prefix, e.g.
 * "composite/sobjects"), or an absolute path starting with "/services/", past the gate.
 * *out receives the parsed JSON answer (NULL for an empty one); the caller frees it. 0, or -1
 * with err. */
int sf_call(sf_client *c, const char *method, const char *path, const char *body, cJSON **out,
            sf_error *err);

/* Runs a SOQL query and follows nextRecordsUrl; *records is a JSON array the caller frees.
 * A query whose URL would pass SF_URI_MAX is not sent: -1 with code "URI_TOO_LONG". */
int sf_query(sf_client *c, const char *soql, cJSON **records, sf_error *err);

/* Runs a SOQL query and hands each page's records (a JSON array, the callee's to free) to
 * fn as Salesforce answers it, following nextRecordsUrl: one page in memory at a time. fn
 * returns 0 to go on; any other value stops the query and is returned. 0 when every page was
 * handed, -1 with err when a call failed. */
typedef int (*sf_records_fn)(void *ud, cJSON *records);
int sf_query_pages(sf_client *c, const char *soql, sf_records_fn fn, void *ud, sf_error *err);

/* A text field of a record, "" when absent or not a string. */
const char *sf_text(const cJSON *record, const char *field);

/* A GET under /services/data/<version>/ whose 2xx answer is streamed to on_data (and its
 * header lines to on_header) instead of parsed (Bulk API 2.0 results, salesforce_bulk.c),
 * past the gate, with sf_call's token refresh on 401 and its classification of failures. A
 * transfer on_data aborted is -1 with code "aborted". 0, or -1 with err. */
int sf_stream_get(sf_client *c, const char *path, http_data_fn on_data, http_header_fn on_header,
                  void *ud, sf_error *err);

#endif
