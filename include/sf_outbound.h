/* sf_outbound — Salesforce Outbound Messages (SOAP 1.1) on CampaignMember turned into events,
 * and the exact Ack and SOAP Fault bodies we answer with.
 *
 * Pure: no I/O. Parsing is one libxml2 SAX2 pass (no tree) with network access off, entities
 * left unexpanded and any DTD refused before it is read, and decides by namespace URI, never
 * by prefix. One event per Notification, keyed by the notification Id; a notification whose
 * sObject carries no fields (the record was deleted before delivery) is counted, not turned
 * into an event.
 * Call sf_outbound_init once per process before threads parse. */
#ifndef CS_SF_OUTBOUND_H
#define CS_SF_OUTBOUND_H

#include "event.h"

#include <stddef.h>
#include <stdint.h>

#define SF_OUTBOUND_MAX_NOTIFICATIONS 100
#define SF_OUTBOUND_NS                "http://soap.sforce.com/2005/09/outbound"
#define SF_SOBJECT_NS                 "urn:sobject.enterprise.soap.sforce.com"
#define SOAP_ENV_NS                   "http://schemas.xmlsoap.org/soap/envelope/"

typedef struct {
    int status;        /* 0 when usable; otherwise the HTTP status for the fault (400, 403) */
    char message[512]; /* the fault's sentence when status != 0 */
    event *events;     /* nevents events, malloc'd; free with sf_outbound_result_free */
    size_t nevents;
    size_t nempty; /* notifications without record data */
    char org_id[EV_SFID_MAX];
} sf_outbound_result;

void sf_outbound_init(void);
void sf_outbound_cleanup(void);

/* Parses one Outbound Message. expected_org: SF_ORG_ID (first 15 characters compared).
 * Always fills out; out->status says whether it was accepted. */
void sf_outbound_parse(const char *xml, size_t len, const char *expected_org, int64_t received_ms,
                       sf_outbound_result *out);
void sf_outbound_result_free(sf_outbound_result *r);

/* The Ack body (static, exact bytes of SPEC section 6). */
const char *sf_outbound_ack(size_t *len);

/* A SOAP Fault: faultcode soapenv:Server for 5xx, soapenv:Client otherwise; the message is
 * XML-escaped. Caller frees. Signature matches http_error_renderer. */
char *sf_outbound_fault(int status, const char *code, const char *message,
                        const char **content_type, size_t *len);

#endif
