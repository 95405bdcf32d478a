/* crm_types — the typed answers of the CRM modules, shared with plan.
 *
 * Owns the vocabulary between the CRM modules (salesforce, marketo), which turn their wire
 * formats and error-code tables into these values, and plan, which decides what each value
 * means for an event. No functions and no dependencies beyond event.h's sizes, so that plan
 * stays pure and its tests need no CRM. Strings in records are the CRMs' own values; who
 * frees them is said by the function that answered them. */
#ifndef CS_CRM_TYPES_H
#define CS_CRM_TYPES_H

#include "event.h"

#include <stdbool.h>
#include <stdint.h>

#define CRM_SFID_MAX EV_SFID_MAX  /* an 18-character Salesforce id + NUL */
#define CRM_MKID_MAX EV_NUMID_MAX /* a Marketo numeric id as text */

/* What a failed CRM call means, as the CRM module classified its own codes. */
typedef enum {
    CRM_RETRY = 1, /* may succeed when tried again: transport, timeout, 5xx, lock contention */
    CRM_REFUSED,   /* the CRM refused the request for good; its text says why */
    CRM_NO_PERMIT, /* Marketo's shared call budget had no permit soon enough: nothing sent */
    CRM_SPENT,     /* the CRM's daily API allowance is spent: nothing sent until it has room */
} crm_failure;

/* One record of a Salesforce save (sObject Collections create or update, a single create) or
 * delete, as salesforce.c classified its SaveResult. */
typedef enum {
    SF_REC_OK = 0,
    SF_REC_FAILED,           /* refused or failed: the record's crm_failure says how */
    SF_REC_DUPLICATE_PERSON, /* DUPLICATES_DETECTED: a duplicate rule names an existing person */
    SF_REC_EXISTS,           /* DUPLICATE_VALUE: the record exists already */
    SF_REC_BAD_STATUS,       /* the Status is not one of the campaign's member statuses */
    SF_REC_GONE,             /* the record is deleted or does not exist */
} sf_record_outcome;

/* One lead of a Marketo per-record result (members/status.json, members/delete.json,
 * leads.json, leads/delete.json), as marketo.c classified it. */
typedef enum {
    MK_REC_OK = 0,     /* created, updated or deleted */
    MK_REC_AT_OR_PAST, /* status change skipped (1037): already at that status, or past it */
    MK_REC_NOT_MEMBER, /* removal skipped (1037): not in the program */
    MK_REC_FAILED,     /* skipped for another reason: the record's crm_failure says how */
} mk_record_outcome;

/* A Marketo lead as leads.json answers it; absent fields are NULL. */
typedef struct {
    char id[CRM_MKID_MAX]; /* "" when the record had no numeric id */
    char *email, *first_name, *last_name, *company;
    char *sfdc_lead_id, *sfdc_contact_id; /* the Salesforce ids Marketo's own sync keeps */
} mk_lead;

/* The Lead to create in Salesforce for a person (plan_new_lead fills it). */
typedef struct {
    const char *email, *first_name, *last_name, *company; /* first_name may be "" */
} sf_new_lead;

/* A CampaignMember as Salesforce answers it to a lookup. */
typedef struct {
    bool found;
    char id[CRM_SFID_MAX];
    char status[EV_STATUS_MAX];
    int64_t modified_ms;            /* LastModifiedDate; 0 when unreadable */
    char modified_by[CRM_SFID_MAX]; /* LastModifiedById */
} sf_campaign_member;

#endif
