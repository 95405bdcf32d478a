/* sf_outbound — Outbound Message parsing and SOAP answers. See include/sf_outbound.h. */
#include "sf_outbound.h"

#include <ctype.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/dict.h>
#include <libxml/xmlerror.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XSI_NS "http://www.w3.org/2001/XMLSchema-instance"

static const char ack[] =
    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">"
    "<soapenv:Body><notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\">"
    "<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>";

const char *sf_outbound_ack(size_t *len) {
    if (len) *len = sizeof ack - 1;
    return ack;
}

static void silent(void *ctx, const char *msg, ...) {
    (void)ctx;
    (void)msg;
}

/* Each thread keeps its parser context: creating one (buffers, name dictionary) cost as much
 * as parsing a one-notification message. A context is replaced after CTXT_USES parses or
 * once its dictionary holds CTXT_DICT_MAX names, so hostile names cannot grow it for good. */
#define CTXT_USES 1000
#define CTXT_DICT_MAX 4096
static pthread_key_t ctxt_key;
static _Thread_local int ctxt_uses;

static void ctxt_free(void *pc) { xmlFreeParserCtxt(pc); }

static void ctxt_key_create(void) { pthread_key_create(&ctxt_key, ctxt_free); }

/* A DTD is refused as soon as the parser meets it, before any entity is declared. */
static void refuse_dtd(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys);

static xmlParserCtxtPtr thread_ctxt(void) {
    xmlParserCtxtPtr pc = pthread_getspecific(ctxt_key);
    if (pc && (ctxt_uses >= CTXT_USES || (pc->dict && xmlDictSize(pc->dict) > CTXT_DICT_MAX))) {
        xmlFreeParserCtxt(pc);
        pc = NULL;
    }
    if (!pc) {
        pc = xmlNewParserCtxt();
        if (pc) pc->sax->internalSubset = refuse_dtd;
        pthread_setspecific(ctxt_key, pc);
        ctxt_uses = 0;
    }
    ctxt_uses++;
    return pc;
}

void sf_outbound_init(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, ctxt_key_create);
    xmlInitParser();
    /* Parse errors are reported through the fault, not printed by libxml2. */
    xmlSetGenericErrorFunc(NULL, silent);
}

void sf_outbound_cleanup(void) {
    /* The calling thread's context; the others went with their threads. */
    xmlParserCtxtPtr pc = pthread_getspecific(ctxt_key);
    if (pc) {
        xmlFreeParserCtxt(pc);
        pthread_setspecific(ctxt_key, NULL);
    }
    xmlCleanupParser();
}

char *sf_outbound_fault(int status, const char *code, const char *message,
                        const char **content_type, size_t *len) {
    (void)code;
    xmlChar *esc = xmlEncodeSpecialChars(NULL, (const xmlChar *)message);
#define FAULT_FMT                                                                          \
    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">"          \
    "<soapenv:Body><soapenv:Fault><faultcode>soapenv:%s</faultcode>"                           \
    "<faultstring>%s</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    const char *who = status >= 500 ? "Server" : "Client";
    const char *text = esc ? (const char *)esc : "error";
    int n = snprintf(NULL, 0, FAULT_FMT, who, text);
    char *body = malloc((size_t)n + 1);
    if (body) snprintf(body, (size_t)n + 1, FAULT_FMT, who, text);
#undef FAULT_FMT
    xmlFree(esc);
    *content_type = "text/xml; charset=utf-8";
    *len = body ? (size_t)n : 0;
    return body;
}

/* ---- parsing ---- */

static void reject(sf_outbound_result *out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reject(sf_outbound_result *out, int status, const char *fmt, ...) {
    if (out->status) return; /* keep the first reason */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof out->message, fmt, ap);
    va_end(ap);
    out->status = status;
}

static void refuse_dtd(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys) {
    (void)name;
    (void)ext;
    (void)sys;
    xmlParserCtxtPtr pc = ctx;
    *(bool *)pc->_private = true;
    xmlStopParser(pc);
}

static bool in_ns(const xmlNode *n, const char *ns, const char *local) {
    return n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
           strcmp((const char *)n->ns->href, ns) == 0 &&
           (!local || strcmp((const char *)n->name, local) == 0);
}

static const xmlNode *first_element(const xmlNode *n) {
    for (; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE) return n;
    return NULL;
}

static bool is_nil(const xmlNode *n) {
    xmlChar *v = xmlGetNsProp(n, (const xmlChar *)"nil", (const xmlChar *)XSI_NS);
    bool nil = v && (strcmp((const char *)v, "true") == 0 || strcmp((const char *)v, "1") == 0);
    xmlFree(v);
    return nil;
}

/* Text of an element, trimmed of surrounding white space; caller frees with xmlFree. */
static char *text_of(const xmlNode *n) {
    xmlChar *raw = xmlNodeGetContent(n);
    if (!raw) return NULL;
    char *s = (char *)raw;
    size_t len = strlen(s);
    size_t a = 0;
    while (a < len && isspace((unsigned char)s[a])) a++;
    while (len > a && isspace((unsigned char)s[len - 1])) len--;
    memmove(s, s + a, len - a);
    s[len - a] = '\0';
    return s;
}

/* Which event field a CampaignMember field fills, and whether it must be an id. */
static const struct {
    const char *name;
    size_t off, size;
    bool is_id;
} member_fields[] = {
    {"Id", offsetof(event, member_id), EV_SFID_MAX, true},
    {"CampaignId", offsetof(event, campaign_id), EV_SFID_MAX, true},
    {"LeadId", offsetof(event, sf_lead_id), EV_SFID_MAX, true},
    {"ContactId", offsetof(event, sf_contact_id), EV_SFID_MAX, true},
    {"Status", offsetof(event, status), EV_STATUS_MAX, false},
    {"Email", offsetof(event, email), EV_TEXT_MAX, false},
    {"FirstName", offsetof(event, first_name), EV_NAME_MAX, false},
    {"LastName", offsetof(event, last_name), EV_NAME_MAX, false},
    {"CompanyOrAccount", offsetof(event, company), EV_TEXT_MAX, false},
    {"LastModifiedById", offsetof(event, modified_by), EV_SFID_MAX, true},
};

/* Checks xsi:type names CampaignMember in the enterprise sObject namespace. */
static bool check_type(const xmlNode *so, const char *nid, sf_outbound_result *out) {
    xmlChar *t = xmlGetNsProp(so, (const xmlChar *)"type", (const xmlChar *)XSI_NS);
    if (!t) {
        reject(out, 400, "Notification %s: sObject has no xsi:type; this endpoint takes "
                         "Outbound Messages on CampaignMember", nid);
        return false;
    }
    const char *colon = strchr((const char *)t, ':');
    const char *local = colon ? colon + 1 : (const char *)t;
    char prefix[64] = "";
    if (colon && (size_t)(colon - (const char *)t) < sizeof prefix)
        memcpy(prefix, t, (size_t)(colon - (const char *)t));
    xmlNsPtr ns = xmlSearchNs(so->doc, (xmlNodePtr)so, colon ? (const xmlChar *)prefix : NULL);
    bool ok = ns && strcmp((const char *)ns->href, SF_SOBJECT_NS) == 0 &&
              strcmp(local, "CampaignMember") == 0;
    if (!ok)
        reject(out, 400, "Notification %s: sObject type %.80s is not CampaignMember; point "
                         "this endpoint at an Outbound Message on CampaignMember", nid,
               (const char *)t);
    xmlFree(t);
    return ok;
}

/* Fills ev from the sObject's fields; false (with out->status set) when unusable. */
static bool read_member(const xmlNode *so, const char *nid, event *ev, sf_outbound_result *out) {
    for (const xmlNode *f = so->children; f; f = f->next) {
        if (!in_ns(f, SF_SOBJECT_NS, NULL) || is_nil(f)) continue;
        const char *name = (const char *)f->name;
        if (strcmp(name, "LastModifiedDate") == 0) {
            char *v = text_of(f);
            bool ok = v && event_parse_time(v, &ev->source_ts_ms) == 0;
            if (!ok)
                reject(out, 400, "Notification %s: LastModifiedDate \"%.40s\" is not a "
                                 "date-time", nid, v ? v : "");
            xmlFree(v);
            if (!ok) return false;
            continue;
        }
        for (size_t i = 0; i < sizeof member_fields / sizeof member_fields[0]; i++) {
            if (strcmp(name, member_fields[i].name) != 0) continue;
            char *v = text_of(f);
            char *dst = (char *)ev + member_fields[i].off;
            bool ok = v && event_set(dst, member_fields[i].size, v);
            if (ok && member_fields[i].is_id && *v && !event_valid_sfid(v)) ok = false;
            if (!ok)
                reject(out, 400, "Notification %s: %s %s", nid, name,
                       member_fields[i].is_id ? "is not a 15- or 18-character Salesforce id"
                                              : "is too long");
            xmlFree(v);
            if (!ok) return false;
            break;
        }
    }
    const char *missing = !ev->member_id[0]                        ? "Id"
                          : !ev->campaign_id[0]                    ? "CampaignId"
                          : !ev->sf_lead_id[0] && !ev->sf_contact_id[0] ? "LeadId or ContactId"
                          : !ev->status[0]                         ? "Status"
                                                                   : NULL;
    if (missing) {
        reject(out, 400, "Notification %s: the CampaignMember has no %s; add it to the "
                         "Outbound Message's fields", nid, missing);
        return false;
    }
    return true;
}

static void parse_doc(xmlDocPtr doc, const char *expected_org, int64_t received_ms,
                      sf_outbound_result *out) {
    const xmlNode *env = xmlDocGetRootElement(doc);
    if (!env || !in_ns(env, SOAP_ENV_NS, "Envelope")) {
        reject(out, 400, "not a SOAP 1.1 Envelope; this endpoint takes Salesforce Outbound "
                         "Messages");
        return;
    }
    const xmlNode *body = NULL;
    for (const xmlNode *n = env->children; n; n = n->next)
        if (in_ns(n, SOAP_ENV_NS, "Body")) body = n;
    const xmlNode *notifs = body ? first_element(body->children) : NULL;
    if (!notifs || !in_ns(notifs, SF_OUTBOUND_NS, "notifications")) {
        reject(out, 400, "not a Salesforce Outbound Message: the SOAP Body holds no "
                         "notifications element in " SF_OUTBOUND_NS);
        return;
    }
    size_t count = 0;
    for (const xmlNode *n = notifs->children; n; n = n->next)
        if (in_ns(n, SF_OUTBOUND_NS, "Notification")) count++;
    bool have_org = false;
    for (const xmlNode *n = notifs->children; n; n = n->next) {
        if (!in_ns(n, SF_OUTBOUND_NS, "OrganizationId")) continue;
        char *org = text_of(n);
        have_org = org && *org;
        if (have_org && !event_set(out->org_id, sizeof out->org_id, org))
            snprintf(out->org_id, sizeof out->org_id, "%.18s", org);
        xmlFree(org);
        break;
    }
    if (!have_org) {
        reject(out, 400, "the Outbound Message has no OrganizationId");
        return;
    }
    if (strlen(out->org_id) < 15 || strncmp(out->org_id, expected_org, 15) != 0) {
        reject(out, 403, "OrganizationId %s does not match this service's SF_ORG_ID",
               out->org_id);
        return;
    }
    if (count == 0 || count > SF_OUTBOUND_MAX_NOTIFICATIONS) {
        reject(out, 400, "an Outbound Message holds 1 to %d Notification elements, this one "
                         "has %zu", SF_OUTBOUND_MAX_NOTIFICATIONS, count);
        return;
    }
    out->events = calloc(count, sizeof *out->events);
    if (!out->events) {
        reject(out, 500, "out of memory");
        return;
    }
    for (const xmlNode *n = notifs->children; n; n = n->next) {
        if (!in_ns(n, SF_OUTBOUND_NS, "Notification")) continue;
        char nid[EV_ID_MAX] = "";
        const xmlNode *so = NULL;
        for (const xmlNode *c = n->children; c; c = c->next) {
            if (in_ns(c, SF_OUTBOUND_NS, "Id")) {
                char *v = text_of(c);
                if (v && !event_set(nid, sizeof nid, v)) nid[0] = '\0';
                xmlFree(v);
            } else if (in_ns(c, SF_OUTBOUND_NS, "sObject")) {
                so = c;
            }
        }
        if (!event_valid_sfid(nid)) {
            reject(out, 400, "Notification %zu has no valid Id (a 15- or 18-character id)",
                   out->nevents + out->nempty + 1);
            return;
        }
        if (!so || is_nil(so) || !first_element(so->children)) {
            out->nempty++; /* deleted before delivery: acknowledged, nothing to sync */
            continue;
        }
        if (!check_type(so, nid, out)) return;
        event *ev = &out->events[out->nevents];
        ev->source = SRC_SALESFORCE;
        ev->type = EV_SF_MEMBER_CHANGED;
        ev->received_ms = received_ms;
        memcpy(ev->id, nid, sizeof nid);
        if (!read_member(so, nid, ev, out)) return;
        out->nevents++;
    }
}

void sf_outbound_parse(const char *xml, size_t len, const char *expected_org, int64_t received_ms,
                       sf_outbound_result *out) {
    memset(out, 0, sizeof *out);
    if (len == 0 || len > INT32_MAX) {
        reject(out, 400, "empty request body; expected a SOAP Outbound Message");
        return;
    }
    xmlParserCtxtPtr pc = thread_ctxt();
    if (!pc) {
        reject(out, 500, "out of memory");
        return;
    }
    bool saw_dtd = false;
    pc->_private = &saw_dtd;
    xmlDocPtr doc = xmlCtxtReadMemory(pc, xml, (int)len, NULL, NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                                          XML_PARSE_NOBLANKS | XML_PARSE_COMPACT);
    if (saw_dtd) {
        reject(out, 400, "DOCTYPE declarations are not accepted");
    } else if (!doc || !pc->wellFormed) {
        const xmlError *e = xmlCtxtGetLastError(pc);
        if (e && e->message) {
            char msg[200];
            snprintf(msg, sizeof msg, "%s", e->message);
            size_t n = strlen(msg);
            while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = '\0';
            reject(out, 400, "the body is not well-formed XML (line %d): %s", e->line, msg);
        } else {
            reject(out, 400, "the body is not well-formed XML");
        }
    } else {
        parse_doc(doc, expected_org, received_ms, out);
    }
    if (doc) xmlFreeDoc(doc);
    pc->_private = NULL;
    if (out->status) {
        free(out->events);
        out->events = NULL;
        out->nevents = 0;
        out->nempty = 0;
    }
}

void sf_outbound_result_free(sf_outbound_result *r) {
    if (!r) return;
    free(r->events);
    r->events = NULL;
    r->nevents = 0;
}
