/* salesforce — the Salesforce REST API as the service needs it, in typed values.
 *
 * Owns the OAuth 2.0 client-credentials token ($SF_LOGIN_URL/services/oauth2/token; calls go
 * to the returned instance_url, the token is fetched again once on 401 INVALID_SESSION_ID),
 * every SOQL text and its paging (salesforce_query.c), sObject Collections (at most 200
 * records a call) and every record built for them, the objects' field names, the
 * classification of failures and of each record's SaveResult (its error-code table), and the
 * Sforce-Limit-Info gauge. Callers get typed structs (crm_types.h), never JSON. One client
 * per thread. */
#ifndef CS_SALESFORCE_H
#define CS_SALESFORCE_H

#include "config.h"
#include "crm_types.h"

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

/* The share of the org's API allowance used, as the last Sforce-Limit-Info seen by any client
 * given it says (0 when none yet): one per group of clients that pace themselves together
 * (the worker pool's). sf_usage_new: NULL when out of memory; sf_usage_free accepts NULL. */
typedef struct sf_usage sf_usage;
sf_usage *sf_usage_new(void);
void sf_usage_free(sf_usage *u);
double sf_usage_share(const sf_usage *u); /* 0..1 */

/* usage: where this client reports the share it sees, or NULL (borrowed; must outlive it). */
sf_client *sf_client_new(const struct config *cfg, sf_usage *usage);
void sf_client_free(sf_client *c);

/* What a failed call means (crm_types.h): SF_RETRY a retry, SF_BUSY a spent allowance,
 * anything else refused. */
crm_failure sf_failure(const sf_error *e);

/* Asked before every call: 0 lets it go, > 0 is the milliseconds to wait (the call is not
 * made: SF_BUSY). Told when Salesforce answered REQUEST_LIMIT_EXCEEDED. */
typedef long (*sf_gate_fn)(void *ud);
typedef void (*sf_spent_fn)(void *ud);
void sf_client_set_gate(sf_client *c, sf_gate_fn gate, sf_spent_fn spent, void *ud);

/* GET limits, past the gate: the org's DailyApiRequests Max and Remaining. 0 or -1. */
int sf_daily_requests(sf_client *c, long *max, long *remaining, sf_error *err);

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

/* The existing record a DUPLICATES_DETECTED SaveResult names, from its error's
 * duplicateResult.matchResults[].matchRecords[].record.Id (also read under
 * "duplicateResut", the spelling REST answers have been seen to use): a Contact when one is
 * named (a Contact wins, SPEC section 8), else a Lead. True with id filled; false when it
 * names none (another error, or an error without match details). */
bool sf_duplicate_match(const cJSON *result, char *id, size_t idlen);

/* Reads a token now (start-up checks); 0 or -1 with err. */
int sf_authenticate(sf_client *c, sf_error *err);

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

/* ---------------------------------------------------------------- typed calls
 * Each returns 0, or -1 with err; what it fills is said with it. Ids are 15 or 18 characters. */

/* Who a person lookup is about: Contacts, Leads not converted (a converted Lead is its
 * Contact now), or every Lead. */
typedef enum { SF_CONTACT, SF_LEAD, SF_LEAD_ANY } sf_person_kind;

/* The result of one record of a save or delete, in request order. */
typedef struct {
    sf_record_outcome outcome;
    crm_failure failure;   /* SF_REC_FAILED: retry or refused */
    char id[CRM_SFID_MAX]; /* SF_REC_OK: the record's id; SF_REC_DUPLICATE_PERSON: the person */
    char code[64];         /* the error's statusCode, when not SF_REC_OK */
    char message[512];
} sf_record;

/* The label of the campaign's default member status into *label (malloc'd; caller frees),
 * NULL when the campaign has none or does not exist. */
int sf_default_status(sf_client *c, const char *campaign_id, char **label, sf_error *err);

/* Which of ids[0..n) are `kind` records (SF_CONTACT or SF_LEAD): sets exists[k] (the caller
 * clears it first). An id that cannot be put in a query is no match. */
int sf_people_exist(sf_client *c, sf_person_kind kind, const char *const *ids, size_t n,
                    bool *exists, sf_error *err);

/* For each of emails[0..n) (lower case, passed sf_email_check, each once): the first `kind`
 * record (SF_CONTACT or SF_LEAD) with that Email, in ids[k] ("" when none); unusable[k] when the
 * email cannot be put in a query (the caller clears both first). */
int sf_people_by_email(sf_client *c, sf_person_kind kind, const char *const *emails, size_t n,
                       char (*ids)[CRM_SFID_MAX], bool *unusable, sf_error *err);

/* Every `kind` record with Email = email, at most max, into ids[0..*n). An email that cannot
 * be put in a query has none (0). */
int sf_people_with_email(sf_client *c, sf_person_kind kind, const char *email,
                         char (*ids)[CRM_SFID_MAX], size_t max, size_t *n, sf_error *err);

/* One query for the CampaignMembers in campaign_id of people[0..*taken) (all Contacts, or all
 * Leads: kind SF_CONTACT or SF_LEAD), as many as the query carries: out[k] for people[k]
 * (found false when none). -1 with err for that query; *taken 0 when people[0] or the campaign
 * cannot be put in a query (err says so) or out of memory. */
int sf_campaign_members(sf_client *c, const char *campaign_id, sf_person_kind kind,
                        const char *const *people, size_t n, sf_campaign_member *out, size_t *taken,
                        sf_error *err);

/* A CampaignMember as a listing answers it; strings are never NULL ("" when absent). */
typedef struct {
    char id[CRM_SFID_MAX], campaign_id[CRM_SFID_MAX];
    char lead_id[CRM_SFID_MAX], contact_id[CRM_SFID_MAX];
    char *status, *email, *first_name, *last_name, *company;
    int64_t modified_ms; /* LastModifiedDate; 0 when absent */
} sf_member_row;
void sf_member_rows_free(sf_member_row *rows, size_t n);

/* Every CampaignMember of the campaign, with its person's email, names and company
 * (reconciliation). *rows (sf_member_rows_free) holds *n. */
int sf_campaign_member_list(sf_client *c, const char *campaign_id, sf_member_row **rows, size_t *n,
                            sf_error *err);

/* Every CampaignMember of the campaign whose Id sorts after after_id ("" or NULL: all), in
 * Id order, with its person's email, names and company, handed to page() a page at a time as
 * Salesforce answers them (one page in memory at a time; rows are the callee's only during
 * the call). page() returns 0 to go on, or a positive value that stops the listing and is
 * returned. 0 when every page was handed, -1 with err. */
typedef int (*sf_member_page_fn)(void *ud, const sf_member_row *rows, size_t n);
int sf_campaign_member_pages(sf_client *c, const char *campaign_id, const char *after_id,
                             sf_member_page_fn page, void *ud, sf_error *err);

/* The CampaignMembers, in every campaign, of people[0..n) (all Contacts or all Leads); no
 * names. err says which person cannot be put in a query. */
int sf_person_memberships(sf_client *c, sf_person_kind kind, const char *const *people, size_t n,
                          sf_member_row **rows, size_t *nrows, sf_error *err);

/* The CampaignMembers of the campaign whose person has this Email; no names. */
int sf_members_with_email(sf_client *c, const char *campaign_id, const char *email,
                          sf_member_row **rows, size_t *n, sf_error *err);

/* The campaign's member status labels, in their sort order, into *labels (malloc'd array of
 * malloc'd strings; caller frees both) and *n: 0 labels when the campaign has none or does not
 * exist. On failure nothing is left to free. */
int sf_campaign_status_labels(sf_client *c, const char *campaign_id, char ***labels, size_t *n,
                              sf_error *err);

/* Creates up to SF_COLLECTION_MAX Leads, one sObject Collections call; out[k] for leads[k].
 * A DUPLICATES_DETECTED answer without the matched record is asked again as a single create,
 * whose error carries it (or which creates the Lead when the rule no longer matches):
 * SF_REC_DUPLICATE_PERSON always names the person. */
int sf_create_leads(sf_client *c, const sf_new_lead *leads, size_t n, sf_record *out,
                    sf_error *err);

/* One CampaignMember to create (campaign_id, person_id: a Contact's or a Lead's id) or update
 * (member_id); status "" leaves the Status as Salesforce has it. */
typedef struct {
    const char *campaign_id, *person_id, *member_id, *status;
} sf_member_write;

/* Creates (create true) or updates up to SF_COLLECTION_MAX CampaignMembers in one sObject
 * Collections call; out[k] for w[k]. */
int sf_save_members(sf_client *c, bool create, const sf_member_write *w, size_t n, sf_record *out,
                    sf_error *err);

/* Deletes up to SF_COLLECTION_MAX records by id in one sObject Collections call. */
int sf_delete_records(sf_client *c, const char *const *ids, size_t n, sf_record *out,
                      sf_error *err);

/* Sets the campaign's Type (unless type is "") and ActualCost. */
int sf_update_campaign(sf_client *c, const char *campaign_id, const char *type, double cost,
                       sf_error *err);

/* What the integration user may do with an object (its describe). */
typedef struct {
    bool queryable, createable, updateable;
} sf_rights;
int sf_object_rights(sf_client *c, const char *object, sf_rights *out, sf_error *err);

/* One CampaignMember deletion of the org's delete log. */
typedef struct {
    char id[64];           /* as Salesforce answers it; the caller checks it */
    char deleted_date[64]; /* its deletedDate, as Salesforce answers it */
} sf_deleted_record;

/* What the delete log holds between start_ms and end_ms (REST "sObject Get Deleted"). */
typedef struct {
    sf_deleted_record *records; /* malloc'd; free with sf_deleted_free */
    size_t n;
    char earliest[64]; /* earliestDateAvailable, "" when absent */
    char latest[64];   /* latestDateCovered, "" when absent */
} sf_deleted;
int sf_deleted_members(sf_client *c, int64_t start_ms, int64_t end_ms, sf_deleted *out,
                       sf_error *err);
void sf_deleted_free(sf_deleted *d);

#endif
