/* marketo — the Marketo Engage REST API as the service needs it, in typed values.
 *
 * Owns the identity token (GET $MARKETO_BASE_URL/identity/oauth/token, client credentials;
 * sent only as `Authorization: Bearer`; fetched again once on 601/602), the response
 * envelope (errors arrive as HTTP 200 with success:false) and the classification of every
 * error code of the reference: retry with backoff (502, 604, 606, 608, 611, 614, 615, 713,
 * 719, transport failures, HTTP 5xx), wait for the daily reset (607), permanent (the rest).
 * Before every REST call (identity calls excepted) it asks the limiter given with
 * mkto_client_set_limiter for a permit and returns it after, so that all processes share
 * one budget. Every REST path, JSON field name and per-record reason code is here
 * (marketo.c: the client; marketo_calls.c: the calls); callers get typed structs
 * (crm_types.h), never JSON. One client per thread. */
#ifndef CS_MARKETO_H
#define CS_MARKETO_H

#include "config.h"
#include "crm_types.h"

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

/* Fetches a token now (start-up checks). */
int mkto_authenticate(mkto_client *c, mk_error *err);

/* What a failed call means (crm_types.h): MK_RETRY a retry, MK_BUSY a missing budget permit
 * (CRM_NO_PERMIT) or a spent daily quota (607: CRM_SPENT), anything else refused. */
crm_failure mkto_failure(const mk_error *e);

/* Whether a status call failed because the program's channel has no such status (1025). */
bool mkto_unknown_status(const mk_error *e);

/* Whether a listing of a program's members by status (mkto_members_page) failed because the
 * program has too many members for it (1003): the bulk extract must list it. */
bool mkto_members_too_many(const mk_error *e);

/* Classifies a Marketo error code (also used for per-record reasons). */
mk_outcome mkto_classify(const char *code);

/* ---------------------------------------------------------------- typed calls
 * Each returns 0, or -1 with err; what it fills is said with it. */

/* How leads are looked up (leads.json filterType). */
typedef enum { MK_BY_ID, MK_BY_EMAIL, MK_BY_SFDC_LEAD_ID, MK_BY_SFDC_CONTACT_ID } mk_lead_filter;

/* Which fields of a lead to read besides its id (or'ed). */
enum { MK_LEAD_EMAIL = 1, MK_LEAD_NAMES = 2, MK_LEAD_SFDC_IDS = 4 };

/* GET /rest/v1/leads.json by a filter for up to 300 values; *out (free with mkto_leads_free)
 * holds the *n leads of every page. A query whose URL would pass ~7 KB goes as POST
 * ...?_method=GET with the query as a form body (Marketo answers 414 over 8 KB); no URL is
 * ever cut. */
int mkto_leads_by(mkto_client *c, mk_lead_filter filter, const char *const *values, size_t n,
                  unsigned fields, mk_lead **out, size_t *nout, mk_error *err);
void mkto_leads_free(mk_lead *leads, size_t n);

/* A lead's membership of a program; status NULL when Marketo gave none. */
typedef struct {
    char lead_id[CRM_MKID_MAX];
    char *status;
    int64_t updated_ms; /* the membership's last change; 0 when unknown */
} mk_member;
void mkto_members_free(mk_member *m, size_t n);

/* The memberships of up to 300 leads in a program (members.json?filterType=leadId, long
 * queries as for mkto_leads_by); leads not in the program are absent. */
int mkto_member_statuses(mkto_client *c, const char *program_id, const char *const *lead_ids,
                         size_t n, mk_member **out, size_t *nout, mk_error *err);

/* One page of a program's members with one status (filterType=statusName); *token is the page
 * token in and out ("" at start and end). */
int mkto_members_page(mkto_client *c, const char *program_id, const char *status, char *token,
                      size_t tokenlen, mk_member **out, size_t *nout, mk_error *err);

/* The result for one lead of a per-record call, in request order. */
typedef struct {
    mk_record_outcome outcome;
    crm_failure failure;   /* MK_REC_FAILED: CRM_RETRY when the reason is transient */
    char reason[16];       /* the first reason code of a skipped record ("" when none) */
    char id[CRM_MKID_MAX]; /* mkto_create_leads: the lead's id */
    char status[16];       /* as Marketo answered it: created, updated, deleted, skipped */
} mk_record;

/* Sets up to 300 leads' status in a program (members/status.json); out[k] for lead_ids[k]. */
int mkto_set_status(mkto_client *c, const char *program_id, const char *status,
                    const char *const *lead_ids, size_t n, mk_record *out, mk_error *err);

/* Removes up to 300 leads from a program (members/delete.json). */
int mkto_remove_members(mkto_client *c, const char *program_id, const char *const *lead_ids,
                        size_t n, mk_record *out, mk_error *err);

/* A lead to create; empty fields are not sent. */
typedef struct {
    const char *email, *first_name, *last_name, *company;
} mk_new_lead;

/* createOrUpdate on email of up to 300 leads (leads.json); out[k] for in[k], MK_REC_OK with its
 * id, else MK_REC_FAILED. */
int mkto_create_leads(mkto_client *c, const mk_new_lead *in, size_t n, mk_record *out,
                      mk_error *err);

/* createOnly on email, as mkto_create_leads: a lead that exists already is not touched and
 * answers MK_REC_FAILED with reason "1005". */
int mkto_create_new_leads(mkto_client *c, const mk_new_lead *in, size_t n, mk_record *out,
                          mk_error *err);

/* Deletes up to 300 leads (leads/delete.json): MK_REC_OK when deleted. */
int mkto_delete_leads(mkto_client *c, const char *const *lead_ids, size_t n, mk_record *out,
                      mk_error *err);

/* A program as the asset API answers it. */
typedef struct {
    bool found;        /* false: Marketo has no such program */
    char channel[256]; /* its channel's name */
    double cost;       /* the sum of its period costs */
    char sfdc_id[64];  /* the campaign Marketo's native sync links it to, or "" */
} mk_program;
int mkto_get_program(mkto_client *c, const char *program_id, mk_program *out, mk_error *err);

/* The progression status names of a channel (channel/byName.json), "Not in Program"
 * included; *names (malloc'd array of malloc'd strings) and *n; caller frees. */
int mkto_channel_statuses(mkto_client *c, const char *channel, char ***names, size_t *n,
                          mk_error *err);

/* A channel's progression status with its step (0: "Not in Program"). */
typedef struct {
    char *name;
    int step; /* -1 when Marketo gave none */
} mk_step;
/* The channel's progression statuses; *steps (free with mkto_steps_free) holds *n (at least
 * one: a channel with none is an error). */
int mkto_channel_steps(mkto_client *c, const char *channel, mk_step **steps, size_t *n,
                       mk_error *err);
void mkto_steps_free(mk_step *steps, size_t n);

/* What `campaign-sync check` asks of the API user's role: reading channels, leads, program
 * members. 0 when allowed, -1 with Marketo's answer. */
typedef enum { MK_ACCESS_CHANNELS, MK_ACCESS_LEADS, MK_ACCESS_MEMBERS } mk_access;
int mkto_check_access(mkto_client *c, mk_access what, mk_error *err);

#endif
