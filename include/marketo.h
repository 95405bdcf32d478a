/* marketo — the Marketo Engage REST API as the worker needs it.
 *
 * Owns the identity token (GET $MARKETO_BASE_URL/identity/oauth/token, client credentials;
 * sent only as `Authorization: Bearer`; fetched again once on 601/602), the response
 * envelope (errors arrive as HTTP 200 with success:false) and the classification of every
 * error code of the reference: retry with backoff (502, 604, 606, 608, 611, 614, 615, 713,
 * 719, transport failures, HTTP 5xx), wait for the daily reset (607), permanent (the rest).
 * Before every REST call (identity calls excepted) it asks the limiter given with
 * mkto_client_set_limiter for a permit and returns it after, so that all processes share
 * one budget. One client per thread. */
#ifndef CS_MARKETO_H
#define CS_MARKETO_H

#include "config.h"

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* MK_BUSY: only a wait, no failure: the shared call budget has no permit soon enough (the
 * limiter's answer; nothing was sent), or Marketo's daily quota is spent (607). retry_after_ms
 * says when to ask again; a caller spends no attempt on it. */
typedef enum { MK_OK = 0, MK_RETRY, MK_PERMANENT, MK_BUSY } mk_outcome;

typedef struct {
    mk_outcome outcome;
    long status;         /* HTTP status, 0 for a transport failure */
    char code[32];       /* Marketo error code ("606"), or "network"/"timeout"/"HTTP_503" */
    char message[512];   /* Marketo's own message */
    long retry_after_ms; /* at least this long before retrying; -1 when not known */
} mk_error;

typedef struct mkto_client mkto_client;

/* acquire returns 0 when a call may start (waiting as needed), -1 when it cannot (Redis
 * down: the caller retries later), or the milliseconds until a permit frees up when the
 * limiter will not wait that long (MK_BUSY); release is called once per successful acquire. */
typedef int (*mk_acquire_fn)(void *ud);
typedef void (*mk_release_fn)(void *ud);

/* Asked before every REST call: 0 lets it go, > 0 is the milliseconds to wait (the call is
 * not made: MK_BUSY, code 607). Told when Marketo answered 607 (daily quota spent), with
 * when the quota resets (epoch ms). */
typedef long (*mk_gate_fn)(void *ud);
typedef void (*mk_quota_fn)(void *ud, int64_t reset_ms);

mkto_client *mkto_client_new(const struct config *cfg);
void mkto_client_free(mkto_client *c);
void mkto_client_set_limiter(mkto_client *c, mk_acquire_fn acquire, mk_release_fn release,
                             void *ud);

void mkto_client_set_quota(mkto_client *c, mk_gate_fn gate, mk_quota_fn spent, void *ud);

/* When Marketo's daily quota next resets after now_ms: midnight US Central time (CST or
 * CDT), as epoch ms. */
int64_t mkto_quota_reset_ms(int64_t now_ms);

/* One REST call; path starts with "/rest/". *envelope receives the parsed answer on
 * success (success:true); the caller frees it. 0, or -1 with err. A URL over 8 KB is not
 * sent: -1 with code "URI_TOO_LONG". */
int mkto_call(mkto_client *c, const char *method, const char *path, const char *body,
              cJSON **envelope, mk_error *err);

/* Fetches a token now (start-up checks). */
int mkto_authenticate(mkto_client *c, mk_error *err);

/* GET /rest/v1/leads.json by a filter (id, email, sfdcLeadId, sfdcContactId) for up to 300
 * values; *result holds the records of every page (caller frees). A query whose URL would pass
 * ~7 KB goes as POST ...?_method=GET with the query as a form body (Marketo answers 414 over
 * 8 KB); no URL is ever cut. */
int mkto_leads_by(mkto_client *c, const char *filter_type, const char *const *values, size_t n,
                  const char *fields, cJSON **result, mk_error *err);

/* GET /rest/v1/programs/{id}/members.json?filterType=leadId with statusName and updatedAt
 * (the membership's last change), for up to 300
 * leads (long queries as for mkto_leads_by); *result holds the members of every page (leads
 * not in the program are absent). */
int mkto_member_statuses(mkto_client *c, const char *program_id, const char *const *lead_ids,
                         size_t n, cJSON **result, mk_error *err);

/* POST /rest/v1/programs/{id}/members/status.json for up to 300 leads; *result is the
 * per-lead result array (seq, leadId, status created|updated|skipped, reasons). */
int mkto_set_status(mkto_client *c, const char *program_id, const char *status,
                    const char *const *lead_ids, size_t n, cJSON **result, mk_error *err);

/* POST /rest/v1/programs/{id}/members/delete.json for up to 300 leads. */
int mkto_remove_members(mkto_client *c, const char *program_id, const char *const *lead_ids,
                        size_t n, cJSON **result, mk_error *err);

/* POST /rest/v1/leads.json createOrUpdate on email for up to 300 people given as a JSON array
 * of {email, firstName, lastName, company}; *result per input (id, status, reasons). */
int mkto_upsert_leads(mkto_client *c, const cJSON *input, cJSON **result, mk_error *err);

/* GET /rest/asset/v1/program/{id}.json; *program is result[0] (caller frees), or NULL when
 * Marketo has no such program. */
int mkto_get_program(mkto_client *c, const char *program_id, cJSON **program, mk_error *err);

/* The progression status names of a channel (channel/byName.json), "Not in Program"
 * included; *names (malloc'd array of malloc'd strings) and *n; caller frees. */
int mkto_channel_statuses(mkto_client *c, const char *channel, char ***names, size_t *n,
                          mk_error *err);

/* One page of a program's members with one status (filterType=statusName), with leadId,
 * statusName and updatedAt; *token is the page token in and out ("" at start and end). */
int mkto_members_page(mkto_client *c, const char *program_id, const char *status, char *token,
                      size_t tokenlen, cJSON **result, mk_error *err);

/* The first reason code of a skipped per-record result ("1037"), or "" when none. */
const char *mkto_reason_code(const cJSON *item, char *buf, size_t size);

/* Classifies a Marketo error code (also used for per-record reasons). */
mk_outcome mkto_classify(const char *code);

/* A channel's progression statuses as Marketo lists them (channel/byName.json): *statuses is
 * the array of {name, step, success, hidden, description} (step 0: "Not in Program"); caller
 * frees. */
int mkto_channel_steps(mkto_client *c, const char *channel, cJSON **statuses, mk_error *err);

/* POST /rest/v1/leads/delete.json for up to 300 leads; *result per lead (id, status deleted or
 * skipped with reasons). */
int mkto_delete_leads(mkto_client *c, const char *const *lead_ids, size_t n, cJSON **result,
                      mk_error *err);

#endif
