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

typedef enum { SF_OK = 0, SF_RETRY, SF_PERMANENT } sf_outcome;

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

/* One REST call under /services/data/<version>/ (path without that prefix, e.g.
 * "composite/sobjects"), or an absolute path starting with "/services/". *out receives the
 * parsed JSON answer (NULL for an empty one); the caller frees it. Returns 0, or -1 with err. */
int sf_call(sf_client *c, const char *method, const char *path, const char *body, cJSON **out,
            sf_error *err);

/* Runs a SOQL query and follows nextRecordsUrl; *records is a JSON array the caller frees. */
int sf_query(sf_client *c, const char *soql, cJSON **records, sf_error *err);

/* Appends s to buf as a SOQL string literal ('...' with \\ and \' escaped). */
void sf_soql_quote(char *buf, size_t size, const char *s);

/* sObject Collections create (POST) or update (PATCH) of up to 200 records (a JSON array of
 * objects with attributes.type); *results is the array of SaveResults in request order. */
int sf_collection_save(sf_client *c, const char *method, const cJSON *records, cJSON **results,
                       sf_error *err);
/* sObject Collections delete of up to 200 ids. */
int sf_collection_delete(sf_client *c, const char *const *ids, size_t n, cJSON **results,
                         sf_error *err);

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
