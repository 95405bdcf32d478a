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
#define CTXT_USES     1000
#define CTXT_DICT_MAX 4096
static pthread_key_t ctxt_key;
static _Thread_local int ctxt_uses;

static void ctxt_free(void *pc) {
    xmlFreeParserCtxt(pc);
}

static void ctxt_key_create(void) {
    pthread_key_create(&ctxt_key, ctxt_free);
}

/* A DTD is refused as soon as the parser meets it, before any entity is declared. */
static void refuse_dtd(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys);
static void sax_setup(xmlSAXHandler *h);

static xmlParserCtxtPtr thread_ctxt(void) {
    xmlParserCtxtPtr pc = pthread_getspecific(ctxt_key);
    if (pc && (ctxt_uses >= CTXT_USES || (pc->dict && xmlDictSize(pc->dict) > CTXT_DICT_MAX))) {
        xmlFreeParserCtxt(pc);
        pc = NULL;
    }
    if (!pc) {
        pc = xmlNewParserCtxt();
        if (pc) sax_setup(pc->sax);
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
#define FAULT_FMT                                                                                  \
    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">"               \
    "<soapenv:Body><soapenv:Fault><faultcode>soapenv:%s</faultcode>"                               \
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

/* ---- parsing ----
 * A SAX2 pass (no tree: building and freeing one cost more than the parse). It keeps what
 * the message says, then judges it in the order a reader would: the envelope, the org, the
 * count, then each notification in order, so that the first problem named is the same
 * whatever order the elements came in. */

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
#define NFIELDS    (sizeof member_fields / sizeof member_fields[0])
#define FIELD_DATE ((int)NFIELDS) /* LastModifiedDate */

/* One Notification as read: its Id, and its (last) sObject. */
typedef struct {
    char nid[EV_ID_MAX];
    bool has_so, so_nil, so_has_child;
    bool type_present, type_ok;
    char type[96];      /* xsi:type as written, for the fault */
    int bad_field;      /* -1, or the first field that is not usable (FIELD_DATE: the date) */
    char bad_value[48]; /* the date as written */
    event ev;
} notif;

/* What a text being read belongs to. */
enum { TEXT_NONE, TEXT_ORG, TEXT_NID, TEXT_FIELD };

/* Namespace declarations in scope, innermost last. */
typedef struct {
    const xmlChar *prefix, *uri;
} ns_decl;

typedef struct {
    bool *saw_dtd;
    int depth; /* of the element being read; the root is 0 */
    bool root_seen, root_ok;
    bool in_body;    /* inside the last Body seen so far (depth 1) */
    bool body_first; /* the Body's first element child was seen */
    bool body_ok;    /* ... and it is notifications in the Outbound namespace */
    bool in_notifs;  /* inside that notifications element (depth 2) */
    bool org_seen;
    char org[64];
    bool org_too_long;
    size_t count;  /* Notification elements */
    notif *notifs; /* the first SF_OUTBOUND_MAX_NOTIFICATIONS of them */
    size_t notifs_cap;
    notif *cur; /* the Notification being read (NULL past the limit) */
    bool in_so; /* inside cur's sObject (depth 4) */
    int text_kind, text_depth, text_field;
    char *text;
    size_t text_len, text_cap;
    bool oom;
    ns_decl *ns;
    int *ns_mark; /* per depth: the ns count before the element's declarations */
    size_t nns, ns_cap, mark_cap;
} sax_state;

static bool same(const xmlChar *a, const char *b) {
    return a && strcmp((const char *)a, b) == 0;
}

static void text_start(sax_state *st, int kind, int field) {
    st->text_kind = kind;
    st->text_depth = st->depth - 1; /* the element's own depth (on_start counted it in) */
    st->text_field = field;
    st->text_len = 0;
}

/* The text read, trimmed of surrounding white space (NUL-terminated in place). */
static const char *text_end(sax_state *st) {
    st->text_kind = TEXT_NONE;
    if (!st->text) return "";
    size_t a = 0, len = st->text_len;
    while (a < len && isspace((unsigned char)st->text[a]))
        a++;
    while (len > a && isspace((unsigned char)st->text[len - 1]))
        len--;
    st->text[len] = '\0';
    return st->text + a;
}

/* p (room for *cap elements of size elem) with room for need, allocated on first use and
 * grown by doubling from first; NULL when out of memory (p is left as it was). */
static void *reserve(void *p, size_t *cap, size_t need, size_t elem, size_t first) {
    if (p && need <= *cap) return p;
    size_t n = *cap ? *cap : first;
    while (n < need)
        n *= 2;
    void *q = realloc(p, n * elem);
    if (q) *cap = n;
    return q;
}

/* Out of memory while reading: the parse stops and the message is refused. */
static void stop_oom(void *ctx, sax_state *st) {
    st->oom = true;
    xmlStopParser(ctx);
}

static void on_text(void *ctx, const xmlChar *ch, int len) {
    sax_state *st = ((xmlParserCtxtPtr)ctx)->_private;
    if (st->text_kind == TEXT_NONE || len <= 0) return;
    char *t = reserve(st->text, &st->text_cap, st->text_len + (size_t)len + 1, 1, 256);
    if (!t) {
        stop_oom(ctx, st);
        return;
    }
    st->text = t;
    memcpy(st->text + st->text_len, ch, (size_t)len);
    st->text_len += (size_t)len;
}

static bool push_ns(sax_state *st, int nb, const xmlChar **namespaces) {
    int *m = reserve(st->ns_mark, &st->mark_cap, (size_t)st->depth + 1, sizeof *m, 32);
    if (!m) return false;
    st->ns_mark = m;
    st->ns_mark[st->depth] = (int)st->nns;
    ns_decl *n = reserve(st->ns, &st->ns_cap, st->nns + (size_t)nb, sizeof *n, 16);
    if (!n) return false;
    st->ns = n;
    for (int i = 0; i < nb; i++)
        st->ns[st->nns++] = (ns_decl){namespaces[2 * i], namespaces[2 * i + 1]};
    return true;
}

/* The namespace a prefix (NULL: the default one) names where the element is. */
static const xmlChar *ns_lookup(const sax_state *st, const char *prefix) {
    for (size_t i = st->nns; i-- > 0;) {
        const xmlChar *p = st->ns[i].prefix;
        if ((!prefix && !p) || (prefix && p && strcmp((const char *)p, prefix) == 0))
            return st->ns[i].uri;
    }
    return NULL;
}

/* The value of attribute XSI_NS:name, copied into buf; false when absent. */
static bool xsi_attr(int nb, const xmlChar **attrs, const char *name, char *buf, size_t size) {
    for (int i = 0; i < nb; i++) {
        const xmlChar **a = attrs + 5 * i;
        if (same(a[0], name) && same(a[2], XSI_NS)) {
            size_t n = (size_t)(a[4] - a[3]);
            snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), (const char *)a[3]);
            return true;
        }
    }
    return false;
}

static bool nil_attr(int nb, const xmlChar **attrs) {
    char v[8];
    return xsi_attr(nb, attrs, "nil", v, sizeof v) &&
           (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

/* A new sObject of the current Notification: the last one counts. */
static void sobject_start(sax_state *st, int nb_attrs, const xmlChar **attrs) {
    notif *n = st->cur;
    char nid[EV_ID_MAX];
    memcpy(nid, n->nid, sizeof nid);
    memset(n, 0, sizeof *n);
    memcpy(n->nid, nid, sizeof nid);
    n->bad_field = -1;
    n->has_so = true;
    n->so_nil = nil_attr(nb_attrs, attrs);
    char t[256];
    n->type_present = xsi_attr(nb_attrs, attrs, "type", t, sizeof t);
    if (n->type_present) {
        snprintf(n->type, sizeof n->type, "%.90s", t);
        const char *colon = strchr(t, ':');
        const char *local = colon ? colon + 1 : t;
        char prefix[64] = "";
        if (colon && (size_t)(colon - t) < sizeof prefix) memcpy(prefix, t, (size_t)(colon - t));
        const xmlChar *uri = ns_lookup(st, colon ? prefix : NULL);
        n->type_ok = same(uri, SF_SOBJECT_NS) && strcmp(local, "CampaignMember") == 0;
    }
}

/* A field of the sObject has been read: into the event, unless an earlier one was bad. */
static void field_end(sax_state *st) {
    notif *n = st->cur;
    int f = st->text_field;
    const char *v = text_end(st);
    if (n->bad_field >= 0) return;
    if (f == FIELD_DATE) {
        if (event_parse_time(v, &n->ev.source_ts_ms) != 0) {
            n->bad_field = FIELD_DATE;
            snprintf(n->bad_value, sizeof n->bad_value, "%.40s", v);
        }
        return;
    }
    char *dst = (char *)&n->ev + member_fields[f].off;
    bool ok = event_set(dst, member_fields[f].size, v);
    if (ok && member_fields[f].is_id && *v && !event_valid_sfid(v)) ok = false;
    if (!ok) n->bad_field = f;
}

static void on_start(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri,
                     int nb_ns, const xmlChar **namespaces, int nb_attrs, int nb_defaulted,
                     const xmlChar **attrs) {
    (void)prefix;
    (void)nb_defaulted;
    sax_state *st = ((xmlParserCtxtPtr)ctx)->_private;
    if (!push_ns(st, nb_ns, namespaces)) {
        stop_oom(ctx, st);
        return;
    }
    int d = st->depth++;
    if (st->text_kind != TEXT_NONE) return; /* inside a text being read */
    if (d == 0) {
        st->root_seen = true;
        st->root_ok = same(uri, SOAP_ENV_NS) && same(local, "Envelope");
    } else if (d == 1 && st->root_ok) {
        if (same(uri, SOAP_ENV_NS) && same(local, "Body")) {
            /* The last Body counts: forget what an earlier one held. */
            st->in_body = true;
            st->body_first = st->body_ok = st->org_seen = st->org_too_long = false;
            st->org[0] = '\0';
            st->count = 0;
        }
    } else if (d == 2 && st->in_body && !st->body_first) {
        st->body_first = true;
        st->body_ok = st->in_notifs = same(uri, SF_OUTBOUND_NS) && same(local, "notifications");
    } else if (d == 3 && st->in_notifs) {
        if (same(uri, SF_OUTBOUND_NS) && same(local, "OrganizationId") && !st->org_seen) {
            text_start(st, TEXT_ORG, 0);
        } else if (same(uri, SF_OUTBOUND_NS) && same(local, "Notification")) {
            st->cur = NULL;
            if (st->count < SF_OUTBOUND_MAX_NOTIFICATIONS) {
                /* Grown from one: most messages hold one, and 100 are 140 KB. */
                notif *nn = reserve(st->notifs, &st->notifs_cap, st->count + 1, sizeof *nn, 1);
                if (!nn) {
                    stop_oom(ctx, st);
                    return;
                }
                st->notifs = nn;
                st->cur = &st->notifs[st->count];
                memset(st->cur, 0, sizeof *st->cur);
                st->cur->bad_field = -1;
            }
            st->count++;
        }
    } else if (d == 4 && st->cur) {
        if (same(uri, SF_OUTBOUND_NS) && same(local, "Id")) {
            text_start(st, TEXT_NID, 0);
        } else if (same(uri, SF_OUTBOUND_NS) && same(local, "sObject")) {
            sobject_start(st, nb_attrs, attrs);
            st->in_so = true;
        }
    } else if (d == 5 && st->in_so) {
        st->cur->so_has_child = true;
        if (!same(uri, SF_SOBJECT_NS) || nil_attr(nb_attrs, attrs)) return;
        if (same(local, "LastModifiedDate")) {
            text_start(st, TEXT_FIELD, FIELD_DATE);
            return;
        }
        for (size_t i = 0; i < NFIELDS; i++)
            if (same(local, member_fields[i].name)) {
                text_start(st, TEXT_FIELD, (int)i);
                return;
            }
    }
}

static void on_end(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri) {
    (void)local;
    (void)prefix;
    (void)uri;
    sax_state *st = ((xmlParserCtxtPtr)ctx)->_private;
    int d = --st->depth;
    st->nns = (size_t)st->ns_mark[d];
    if (st->text_kind != TEXT_NONE && d == st->text_depth) {
        if (st->text_kind == TEXT_ORG) {
            const char *v = text_end(st);
            st->org_seen = true;
            snprintf(st->org, sizeof st->org, "%s", v);
            st->org_too_long = strlen(v) >= sizeof st->org;
        } else if (st->text_kind == TEXT_NID) {
            const char *v = text_end(st);
            if (!event_set(st->cur->nid, sizeof st->cur->nid, v)) st->cur->nid[0] = '\0';
        } else {
            field_end(st);
        }
        return;
    }
    if (st->text_kind != TEXT_NONE) return;
    if (d == 4) st->in_so = false;
    if (d == 3) st->cur = NULL;
    if (d == 2) st->in_notifs = false;
    if (d == 1) st->in_body = false;
}

/* Judges what was read, in order; fills out. */
static void judge(sax_state *st, const char *expected_org, int64_t received_ms,
                  sf_outbound_result *out) {
    if (!st->root_ok) {
        reject(out, 400,
               "not a SOAP 1.1 Envelope; this endpoint takes Salesforce Outbound "
               "Messages");
        return;
    }
    if (!st->body_ok) {
        reject(out, 400,
               "not a Salesforce Outbound Message: the SOAP Body holds no "
               "notifications element in " SF_OUTBOUND_NS);
        return;
    }
    if (!st->org_seen || !st->org[0]) {
        reject(out, 400, "the Outbound Message has no OrganizationId");
        return;
    }
    if (st->org_too_long || !event_set(out->org_id, sizeof out->org_id, st->org))
        snprintf(out->org_id, sizeof out->org_id, "%.18s", st->org);
    if (strlen(out->org_id) < 15 || strncmp(out->org_id, expected_org, 15) != 0) {
        reject(out, 403, "OrganizationId %s does not match this service's SF_ORG_ID", out->org_id);
        return;
    }
    if (st->count == 0 || st->count > SF_OUTBOUND_MAX_NOTIFICATIONS) {
        reject(out, 400,
               "an Outbound Message holds 1 to %d Notification elements, this one "
               "has %zu",
               SF_OUTBOUND_MAX_NOTIFICATIONS, st->count);
        return;
    }
    out->events = calloc(st->count, sizeof *out->events);
    if (!out->events) {
        reject(out, 500, "out of memory");
        return;
    }
    for (size_t k = 0; k < st->count; k++) {
        notif *n = &st->notifs[k];
        const char *nid = n->nid;
        if (!event_valid_sfid(nid)) {
            reject(out, 400, "Notification %zu has no valid Id (a 15- or 18-character id)",
                   out->nevents + out->nempty + 1);
            return;
        }
        if (!n->has_so || n->so_nil || !n->so_has_child) {
            out->nempty++; /* deleted before delivery: acknowledged, nothing to sync */
            continue;
        }
        if (!n->type_present) {
            reject(out, 400,
                   "Notification %s: sObject has no xsi:type; this endpoint takes "
                   "Outbound Messages on CampaignMember",
                   nid);
            return;
        }
        if (!n->type_ok) {
            reject(out, 400,
                   "Notification %s: sObject type %.80s is not CampaignMember; point "
                   "this endpoint at an Outbound Message on CampaignMember",
                   nid, n->type);
            return;
        }
        if (n->bad_field == FIELD_DATE) {
            reject(out, 400, "Notification %s: LastModifiedDate \"%.40s\" is not a date-time", nid,
                   n->bad_value);
            return;
        }
        if (n->bad_field >= 0) {
            reject(out, 400, "Notification %s: %s %s", nid, member_fields[n->bad_field].name,
                   member_fields[n->bad_field].is_id ? "is not a 15- or 18-character Salesforce id"
                                                     : "is too long");
            return;
        }
        event *ev = &n->ev;
        const char *missing = !ev->member_id[0]                             ? "Id"
                              : !ev->campaign_id[0]                         ? "CampaignId"
                              : !ev->sf_lead_id[0] && !ev->sf_contact_id[0] ? "LeadId or ContactId"
                              : !ev->status[0]                              ? "Status"
                                                                            : NULL;
        if (missing) {
            reject(out, 400,
                   "Notification %s: the CampaignMember has no %s; add it to the "
                   "Outbound Message's fields",
                   nid, missing);
            return;
        }
        ev->source = SRC_SALESFORCE;
        ev->type = EV_SF_MEMBER_CHANGED;
        ev->received_ms = received_ms;
        memcpy(ev->id, nid, sizeof ev->id);
        out->events[out->nevents++] = *ev;
    }
}

static void refuse_dtd(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys) {
    (void)name;
    (void)ext;
    (void)sys;
    sax_state *st = ((xmlParserCtxtPtr)ctx)->_private;
    *st->saw_dtd = true;
    xmlStopParser(ctx);
}

/* The SAX handler of every thread's parser context. */
static void sax_setup(xmlSAXHandler *h) {
    memset(h, 0, sizeof *h);
    h->initialized = XML_SAX2_MAGIC;
    h->startElementNs = on_start;
    h->endElementNs = on_end;
    h->characters = on_text;
    h->ignorableWhitespace = on_text;
    h->cdataBlock = on_text;
    h->internalSubset = refuse_dtd;
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
    sax_state st = {.saw_dtd = &saw_dtd};
    pc->_private = &st;
    xmlDocPtr doc = xmlCtxtReadMemory(pc, xml, (int)len, NULL, NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (saw_dtd) {
        reject(out, 400, "DOCTYPE declarations are not accepted");
    } else if (st.oom) {
        reject(out, 500, "out of memory");
    } else if (!pc->wellFormed || !st.root_seen) {
        const xmlError *e = xmlCtxtGetLastError(pc);
        if (e && e->message) {
            char msg[200];
            snprintf(msg, sizeof msg, "%s", e->message);
            size_t n = strlen(msg);
            while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
                msg[--n] = '\0';
            reject(out, 400, "the body is not well-formed XML (line %d): %s", e->line, msg);
        } else {
            reject(out, 400, "the body is not well-formed XML");
        }
    } else {
        judge(&st, expected_org, received_ms, out);
    }
    if (doc) xmlFreeDoc(doc); /* none: the handler builds no tree */
    pc->_private = NULL;
    free(st.notifs);
    free(st.text);
    free(st.ns);
    free(st.ns_mark);
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
