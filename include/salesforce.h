/* salesforce — the Salesforce REST API as the worker needs it.
 *
 * Owns the OAuth 2.0 client-credentials token ($SF_LOGIN_URL/services/oauth2/token; calls go
 * to the returned instance_url, the token is fetched again once on 401 INVALID_SESSION_ID),
 * SOQL queries with paging, sObject Collections (at most 200 records a call), the
 * classification of failures (retryable: transport, timeouts, 5xx, REQUEST_LIMIT_EXCEEDED,
 * UNABLE_TO_LOCK_ROW; permanent: everything Salesforce refuses on validation, with its own
 * errorCode and message), and the Sforce-Limit-Info gauge. One client per thread. */
#ifndef CS_SALESFORCE_H
#define CS_SALESFORCE_H

#include "config.h"

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define SF_COLLECTION_MAX 200

/* SF_BUSY: only a wait, no failure: the org's API allowance is spent (REQUEST_LIMIT_EXCEEDED)
 * or the gate (sf_client_set_gate) holds calls until it has room again; retry_after_ms says
 * when to ask again, and a caller spends no attempt on it. */
typedef enum { SF_OK = 0, SF_RETRY, SF_PERMANENT, SF_BUSY } sf_outcome;

typedef struct {
    sf_outcome outcome;
    long status;         /* HTTP status, 0 for a transport failure */
    char code[64];       /* Salesforce errorCode (or "network", "timeout") */
    char message[512];   /* Salesforce's own text, or the transport error */
    long retry_after_ms; /* from Retry-After, -1 when not given */
} sf_error;

typedef struct sf_client sf_client;

sf_client *sf_client_new(const struct config *cfg);
void sf_client_free(sf_client *c);

/* Asked before every call: 0 lets it go, > 0 is the milliseconds to wait (the call is not
 * made: SF_BUSY). Told when Salesforce answered REQUEST_LIMIT_EXCEEDED. */
typedef long (*sf_gate_fn)(void *ud);
typedef void (*sf_spent_fn)(void *ud);
void sf_client_set_gate(sf_client *c, sf_gate_fn gate, sf_spent_fn spent, void *ud);

/* GET limits, past the gate: the org's DailyApiRequests Max and Remaining. 0 or -1. */
int sf_daily_requests(sf_client *c, long *max, long *remaining, sf_error *err);

/* One REST call under /services/data/<version>/ (path without that prefix, e.g.
 * "composite/sobjects"), or an absolute path starting with "/services/". *out receives the
 * parsed JSON answer (NULL for an empty one); the caller frees it. Returns 0, or -1 with err. */
int sf_call(sf_client *c, const char *method, const char *path, const char *body, cJSON **out,
            sf_error *err);

/* Runs a SOQL query and follows nextRecordsUrl; *records is a JSON array the caller frees.
 * A query whose URL would pass SF_URI_MAX is not sent: -1 with code "URI_TOO_LONG". */
int sf_query(sf_client *c, const char *soql, cJSON **records, sf_error *err);

/* Salesforce refuses a request URI over 16,384 bytes (414 URI Too Long; URI and headers
 * together: 431), and recommends URIs of at most 2,000 characters because the server expands
 * a query before running it (Salesforce Help 000386264). sf_call never sends a longer URI;
 * the IN-lists built by sf_soql_in keep query URLs within SF_QUERY_URI_BUDGET. */
#define SF_URI_MAX          16384
#define SF_QUERY_URI_BUDGET 2000
#define SF_EMAIL_MAX        80 /* Lead.Email and Contact.Email (Salesforce Field Reference) */

/* Writes s as a SOQL string literal ('...') into out, with SOQL's escape sequences for
 * newline, carriage return, tab, form feed, both quotes and backslash ("Quoted String Escape
 * Sequences", SOQL and SOSL Reference). Returns the literal's length, or -1 when s holds
 * another control character (no Salesforce text value can) or out is too small. */
long sf_soql_literal(char *out, size_t size, const char *s);

/* Appends the literal of s to the NUL-terminated buf; 0, or -1 (buf unchanged) as above. */
int sf_soql_quote(char *buf, size_t size, const char *s);

/* The length of s once percent-encoded for a URL query (every byte other than A-Z a-z 0-9
 * - . _ ~ takes three), as http_client_escape encodes it. */
size_t sf_url_escaped_len(const char *s);

/* Builds head + "'v0', 'v1', ..." + tail into *soql (malloc'd; caller frees), taking values
 * from the front, at most max, while the query's URL (/services/data/vNN.N/query?q= and the
 * encoded text) stays within SF_QUERY_URI_BUDGET. Returns how many it took; 0 when values[0]
 * cannot be a literal or alone passes the budget (*soql NULL; the caller fails that value's
 * own item); -1 when out of memory. */
long sf_soql_in(const char *head, const char *tail, const char *const *values, size_t n, size_t max,
                char **soql);

/* Whether email can be a Salesforce Lead's or Contact's Email (and so be looked up): not
 * empty, at most SF_EMAIL_MAX characters, no control characters. 0, or -1 with a sentence
 * naming the problem in why. */
int sf_email_check(const char *email, char *why, size_t whylen);

/* sObject Collections create (POST) or update (PATCH) of up to 200 records (a JSON array of
 * objects with attributes.type); *results is the array of SaveResults in request order. */
int sf_collection_save(sf_client *c, const char *method, const cJSON *records, cJSON **results,
                       sf_error *err);
/* sObject Collections delete of up to 200 ids. */
int sf_collection_delete(sf_client *c, const char *const *ids, size_t n, cJSON **results,
                         sf_error *err);

/* Creates one record (POST sobjects/<type>; record is a JSON object, attributes ignored).
 * *result is a SaveResult: {"id","success":true} or, when Salesforce refused the record
 * (HTTP 400), {"success":false,"errors":[...]} holding its error objects as sent (with
 * "statusCode" added from "errorCode"); the caller frees it. 0, or -1 with err when the call
 * itself failed (transport, token, 5xx, limits). */
int sf_create_record(sf_client *c, const char *type, const cJSON *record, cJSON **result,
                     sf_error *err);

/* The existing record a DUPLICATES_DETECTED SaveResult names, from its error's
 * duplicateResult.matchResults[].matchRecords[].record.Id (also read under
 * "duplicateResut", the spelling REST answers have been seen to use): a Contact when one is
 * named (a Contact wins, SPEC section 8), else a Lead. 1 with id filled, 0 when it names
 * none (another error, or an error without match details). */
int sf_duplicate_match(const cJSON *result, char *id, size_t idlen);

/* Classifies one SaveResult: SF_OK, or the error's outcome with its code and message. */
sf_outcome sf_save_result(const cJSON *result, char *code, size_t codelen, char *msg,
                          size_t msglen);

/* Reads a token now (start-up checks); 0 or -1 with err. */
int sf_authenticate(sf_client *c, sf_error *err);

/* The share of the org's API allowance used (0..1) as the last Sforce-Limit-Info this process
 * saw said (0 when none yet). Every client of the process updates it. */
double sf_api_usage_share(void);

/* One member status of a campaign, as sf_campaign_statuses reads it. */
typedef struct {
    char campaign_id[19]; /* the campaign's 18-character id, as Salesforce answers it */
    char *label;          /* CampaignMemberStatus.Label, malloc'd */
} sf_member_status;

#define SF_STATUS_CAMPAIGNS_MAX 100 /* campaigns per sf_campaign_statuses call */

/* The member status labels of up to SF_STATUS_CAMPAIGNS_MAX campaigns, in one SOQL query on
 * CampaignMemberStatus. *out (free with sf_member_statuses_free) holds *n labels, in no
 * particular order; a campaign with none (or that does not exist) has no entry. 0, or -1 with
 * err. */
int sf_campaign_statuses(sf_client *c, const char *const *campaign_ids, size_t ncampaigns,
                         sf_member_status **out, size_t *n, sf_error *err);
void sf_member_statuses_free(sf_member_status *s, size_t n);

#endif
