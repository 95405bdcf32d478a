/* sf_outbound — Salesforce Outbound Messages (SOAP 1.1) on CampaignMember turned into events,
 * and the exact Ack and SOAP Fault bodies we answer with.
 *
 * Pure: no I/O. A cheap pre-scan of the raw bytes first refuses pathological XML (too many
 * attributes on an element, names, texts or attribute values too long, elements nested too
 * deep) before libxml2 sees it: libxml2 2.9 checks an element's attributes for duplicates in
 * quadratic time, before any SAX callback could count them. Parsing is then one libxml2 SAX2
 * pass (no tree) with network access off, the encoding fixed to UTF-8 (what the pre-scan
 * read), entities left unexpanded and any DTD refused before it is read, and decides by
 * namespace URI, never by prefix.
 *
 * The message as a whole is refused (a Fault: Salesforce redelivers all of it) only when it is
 * not an Outbound Message on CampaignMember from this org. Within an accepted message each
 * Notification is judged alone, because Salesforce has no per-notification answer and would
 * otherwise redeliver, then drop, its good neighbours with it:
 *   - usable: one event, keyed by the notification Id;
 *   - no record data (an empty sObject, or one that carries only the record Id: the record was
 *     deleted before delivery): counted in nempty, nothing to store;
 *   - anything else unusable (a required field missing, an id malformed, a field too long, a
 *     LastModifiedDate that is not a date or lies more than SF_OUTBOUND_MAX_SKEW_MS after
 *     receipt): one dead letter with the reason, keyed by the notification Id like an event.
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

/* A change dated later than its receipt plus this is not queued (dead-lettered): the
 * ordering rule would take it for the newest change of its member for good. Salesforce
 * stamps LastModifiedDate when it saves, before it sends, so only a forged message or a
 * clock far off passes this. */
#define SF_OUTBOUND_MAX_SKEW_MS (5 * 60 * 1000)

/* Limits of the pre-scan. An Outbound Message has at most 3 attributes on an element, names
 * of a few dozen bytes, short texts, and a depth of 6. */
#define SF_XML_MAX_ATTRS 32    /* attributes (namespace declarations included) per element */
#define SF_XML_MAX_NAME  256   /* bytes of an element or attribute name, prefix included */
#define SF_XML_MAX_TEXT  65536 /* bytes of a text run, a CDATA section or an attribute value */
#define SF_XML_MAX_DEPTH 32    /* elements nested in one another */

#define SF_OUTBOUND_REASON_MAX 512

/* A notification that cannot become an event: stored as a dead letter. */
typedef struct {
    event ev; /* what could be read of it; ev.id is the notification Id */
    char reason[SF_OUTBOUND_REASON_MAX];
} sf_outbound_dead;

typedef struct {
    int status;        /* 0 when usable; otherwise the HTTP status for the fault (400, 403) */
    char message[512]; /* the fault's sentence when status != 0 */
    event *events;     /* nevents events, malloc'd; free with sf_outbound_result_free */
    size_t nevents;
    sf_outbound_dead *dead; /* ndead unusable notifications, malloc'd; freed with the result */
    size_t ndead;
    size_t nempty; /* notifications without record data */
    char org_id[EV_SFID_MAX];
} sf_outbound_result;

/* Process-wide set-up of libxml2 and the per-thread parser contexts: 0, or -1 when no thread
 * key is left for them (nothing can be parsed then). Idempotent. */
int sf_outbound_init(void);
void sf_outbound_cleanup(void);

/* Parses one Outbound Message. expected_org: SF_ORG_ID. The message's OrganizationId must be
 * a 15- or 18-character id whose first 15 characters are those of expected_org.
 * received_ms: the time of receipt (events' received_ms, and the bound of LastModifiedDate).
 * Always fills out; out->status says whether it was accepted. */
void sf_outbound_parse(const char *xml, size_t len, const char *expected_org, int64_t received_ms,
                       sf_outbound_result *out);
void sf_outbound_result_free(sf_outbound_result *r);

/* The pre-scan alone: 0 when xml keeps within the SF_XML_* limits, else -1 with the limit
 * named in msg. Conservative: it never counts fewer attributes, or less depth, than libxml2
 * would parse from the same bytes read as UTF-8. */
int sf_outbound_prescan(const char *xml, size_t len, char *msg, size_t msglen);

/* The Ack body (static, exact bytes of SPEC section 6). */
const char *sf_outbound_ack(size_t *len);

/* A SOAP Fault: faultcode soapenv:Server for 5xx, soapenv:Client otherwise; the message is
 * XML-escaped. Caller frees. Signature matches http_error_renderer. */
char *sf_outbound_fault(int status, const char *code, const char *message,
                        const char **content_type, size_t *len);

#endif
