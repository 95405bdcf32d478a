/* sf_outbound — Outbound Message parsing and SOAP answers. See include/sf_outbound.h. */
#include "sf_outbound.h"

#include <ctype.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/dict.h>
#include <libxml/encoding.h>
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
/* Process-wide on purpose: the parsers are called from any HTTP thread through a pure API
 * (sf_outbound_parse takes no context), and a libxml2 parser context serves one thread; the
 * key (with each thread's count of uses) frees a thread's context when the thread ends. */
static pthread_key_t ctxt_key;
static int ctxt_key_rc = -1; /* pthread_key_create's answer */
static _Thread_local int ctxt_uses;

static void ctxt_free(void *pc) {
    xmlFreeParserCtxt(pc);
}

static void ctxt_key_create(void) {
    ctxt_key_rc = pthread_key_create(&ctxt_key, ctxt_free);
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
        if (pthread_setspecific(ctxt_key, pc) != 0) {
            xmlFreeParserCtxt(pc); /* not kept: it would leak */
            return NULL;
        }
        ctxt_uses = 0;
    }
    ctxt_uses++;
    return pc;
}

int sf_outbound_init(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (pthread_once(&once, ctxt_key_create) != 0 || ctxt_key_rc != 0) return -1;
    xmlInitParser();
    /* Parse errors are reported through the fault, not printed by libxml2. */
    xmlSetGenericErrorFunc(NULL, silent);
    return 0;
}

void sf_outbound_cleanup(void) {
    if (ctxt_key_rc != 0) return; /* never set up */
    /* The calling thread's context; the others went with their threads. */
    xmlParserCtxtPtr pc = pthread_getspecific(ctxt_key);
    if (pc) {
        xmlFreeParserCtxt(pc);
        (void)pthread_setspecific(ctxt_key, NULL); /* cannot fail: the key exists, and NULL */
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

/* ---- pre-scan ----
 * libxml2 2.9 compares each attribute of an element with every earlier one (duplicates)
 * before any SAX callback sees the element, so an element with 90,000 attributes costs
 * seconds of CPU. This pass over the raw bytes refuses such input first. It reads the same
 * bytes libxml2 reads (both read UTF-8 only) and is never stricter than XML about a
 * start tag, so it counts at least the attributes libxml2 would parse: every '<' starts a
 * tag here (libxml2 may give up inside a comment, CDATA section or processing instruction
 * and parse what follows as content), and an attribute is `name S? = S? quoted value`, as
 * in XML. The depth counted is a cheap first bound; libxml2 itself stops at 256. */

/* Bytes that end a name here: XML white space, NUL, and those of markup. */
static const bool name_stop[256] = {
    [' '] = true, ['\t'] = true, ['\r'] = true, ['\n'] = true, ['\0'] = true, ['/'] = true,
    ['>'] = true, ['<'] = true,  ['='] = true,  ['"'] = true,  ['\''] = true};

static bool xml_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Where a name starting at p ends: at white space or a byte that cannot be in a name here. */
static const unsigned char *name_end(const unsigned char *p, const unsigned char *end) {
    while (p < end && !name_stop[*p])
        p++;
    return p;
}

static const unsigned char *skip_space(const unsigned char *p, const unsigned char *end) {
    while (p < end && xml_space(*p))
        p++;
    return p;
}

static int line_at(const unsigned char *b, const unsigned char *at) {
    int line = 1;
    for (; b < at; b++)
        line += *b == '\n';
    return line;
}

typedef struct {
    const unsigned char *b, *end;
    int depth;
    char *msg;
    size_t msglen;
} prescan_state;

static int over(prescan_state *ps, const unsigned char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int over(prescan_state *ps, const unsigned char *at, const char *fmt, ...) {
    char what[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(ps->msg, ps->msglen, "the XML is refused before parsing: %s (line %d)", what,
             line_at(ps->b, at));
    return -1;
}

/* The attributes of a start tag from p (after its name) to its end; *p is left after the
 * tag, or where it stopped making sense (libxml2 reads the rest as content, and so do we).
 * sized: names and values are held to their limits (not in what may be a comment, CDATA
 * section or processing instruction, whose text is no name). */
static int prescan_attrs(prescan_state *ps, const unsigned char **pp, bool sized, bool *opened) {
    const unsigned char *p = *pp, *end = ps->end;
    int n = 0;
    *opened = false;
    for (;;) {
        p = skip_space(p, end);
        if (p >= end) break;
        if (*p == '>') {
            *opened = true;
            p++;
            break;
        }
        if (*p == '/' && p + 1 < end && p[1] == '>') {
            p += 2;
            break;
        }
        const unsigned char *name = p;
        p = name_end(p, end);
        if (p == name) break;
        if (sized && p - name > SF_XML_MAX_NAME)
            return over(ps, name, "a name is longer than %d bytes", SF_XML_MAX_NAME);
        p = skip_space(p, end);
        if (p >= end || *p != '=') break;
        p = skip_space(p + 1, end);
        if (p >= end || (*p != '"' && *p != '\'')) break;
        unsigned char quote = *p++;
        const unsigned char *value = p;
        while (p < end && *p != quote && *p != '<')
            p++;
        if (sized && p - value > SF_XML_MAX_TEXT)
            return over(ps, value, "an attribute value is longer than %d bytes", SF_XML_MAX_TEXT);
        if (p >= end || *p == '<') break; /* '<' cannot be in a value: it starts markup */
        p++;
        if (++n > SF_XML_MAX_ATTRS)
            return over(ps, name, "an element has more than %d attributes", SF_XML_MAX_ATTRS);
    }
    *pp = p;
    return 0;
}

int sf_outbound_prescan(const char *xml, size_t len, char *msg, size_t msglen) {
    prescan_state ps = {(const unsigned char *)xml, (const unsigned char *)xml + len, 0, msg,
                        msglen};
    const unsigned char *p = ps.b, *end = ps.end;
    /* libxml2 guesses the encoding from the first bytes (a BOM, or "<?xml" in UTF-16 or
     * EBCDIC): only UTF-8 is read byte for byte as here. */
    xmlCharEncoding enc = xmlDetectCharEncoding(p, len < 4 ? (int)len : 4);
    if (enc != XML_CHAR_ENCODING_NONE && enc != XML_CHAR_ENCODING_UTF8) {
        snprintf(msg, msglen,
                 "the body is not UTF-8 (Salesforce sends Outbound Messages in UTF-8)");
        return -1;
    }
    while (p < end) {
        if (*p != '<') { /* text (also what a comment or CDATA section holds) */
            const unsigned char *lt = memchr(p, '<', (size_t)(end - p));
            const unsigned char *stop = lt ? lt : end;
            if (stop - p > SF_XML_MAX_TEXT)
                return over(&ps, p, "a text is longer than %d bytes", SF_XML_MAX_TEXT);
            p = stop;
            continue;
        }
        if ((size_t)(end - p) >= 9 && memcmp(p, "<!DOCTYPE", 9) == 0) {
            snprintf(msg, msglen, "DOCTYPE declarations are not accepted");
            return -1;
        }
        if ((size_t)(end - p) >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
            /* A text too; what it holds is still scanned as below. */
            const unsigned char *close = memmem(p + 9, (size_t)(end - p - 9), "]]>", 3);
            if ((close ? close : end) - (p + 9) > SF_XML_MAX_TEXT)
                return over(&ps, p, "a text is longer than %d bytes", SF_XML_MAX_TEXT);
        }
        bool closing = p + 1 < end && p[1] == '/';
        p += closing ? 2 : 1;
        const unsigned char *name = p;
        p = name_end(p, end);
        /* A comment, CDATA section or processing instruction: no element, no name. */
        bool element = name < end && *name != '!' && *name != '?';
        if (element && p - name > SF_XML_MAX_NAME)
            return over(&ps, name, "a name is longer than %d bytes", SF_XML_MAX_NAME);
        if (closing) {
            if (ps.depth > 0) ps.depth--;
            continue;
        }
        bool opened;
        if (prescan_attrs(&ps, &p, element, &opened) != 0) return -1;
        if (element && opened && ++ps.depth > SF_XML_MAX_DEPTH)
            return over(&ps, name, "elements are nested deeper than %d", SF_XML_MAX_DEPTH);
    }
    return 0;
}

/* Copies at most size - 1 bytes of s into buf, never cutting a UTF-8 sequence in two. */
static void copy_cut(char *buf, size_t size, const char *s) {
    size_t n = strlen(s);
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
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
    bool has_so, so_nil;
    bool has_data; /* a field other than the record Id, not nil */
    bool type_present, type_ok;
    char type[96];      /* xsi:type as written, for the fault */
    int bad_field;      /* -1, or the first field that is not usable (FIELD_DATE: the date) */
    char bad_value[48]; /* its value as written (cut) */
    event ev;           /* the fields that could be read */
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
    bool attrs_over; /* an element had more attributes than the pre-scan let through */
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

/* A field of the sObject has been read: into the event when usable (a dead letter shows
 * what could be read), and the first unusable one is remembered. */
static void field_end(sax_state *st) {
    notif *n = st->cur;
    int f = st->text_field;
    const char *v = text_end(st);
    bool ok;
    if (f == FIELD_DATE) {
        ok = event_parse_time(v, &n->ev.source_ts_ms) == 0;
        if (!ok) n->ev.source_ts_ms = 0;
    } else {
        char *dst = (char *)&n->ev + member_fields[f].off;
        ok = event_set(dst, member_fields[f].size, v);
        if (ok && member_fields[f].is_id && *v && !event_valid_sfid(v)) {
            ok = false;
            dst[0] = '\0';
        }
    }
    if (!ok && n->bad_field < 0) {
        n->bad_field = f;
        copy_cut(n->bad_value, sizeof n->bad_value, v);
    }
}

static void on_start(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri,
                     int nb_ns, const xmlChar **namespaces, int nb_attrs, int nb_defaulted,
                     const xmlChar **attrs) {
    (void)prefix;
    (void)nb_defaulted;
    sax_state *st = ((xmlParserCtxtPtr)ctx)->_private;
    if (nb_attrs + nb_ns > SF_XML_MAX_ATTRS) { /* the pre-scan should have refused it */
        st->attrs_over = true;
        xmlStopParser(ctx);
        return;
    }
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
        if (!same(uri, SF_SOBJECT_NS) || nil_attr(nb_attrs, attrs)) return;
        if (!same(local, "Id")) st->cur->has_data = true;
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

/* Why a notification on CampaignMember cannot become an event (into why); false when it can. */
static bool unusable(const notif *n, int64_t received_ms, char *why, size_t size) {
    const char *nid = n->nid;
    const event *ev = &n->ev;
    if (n->bad_field == FIELD_DATE) {
        snprintf(why, size, "Notification %s: LastModifiedDate \"%s\" is not a date-time", nid,
                 n->bad_value);
        return true;
    }
    if (n->bad_field >= 0) {
        if (member_fields[n->bad_field].is_id)
            snprintf(why, size,
                     "Notification %s: %s \"%s\" is not a 15- or 18-character Salesforce id", nid,
                     member_fields[n->bad_field].name, n->bad_value);
        else
            snprintf(why, size, "Notification %s: %s is longer than %zu bytes", nid,
                     member_fields[n->bad_field].name, member_fields[n->bad_field].size - 1);
        return true;
    }
    const char *missing = !ev->member_id[0]     ? "Id"
                          : !ev->campaign_id[0] ? "CampaignId"
                          : !ev->status[0]      ? "Status"
                                                : NULL;
    if (missing) {
        snprintf(why, size,
                 "Notification %s: the CampaignMember has no %s; add it to the Outbound "
                 "Message's fields",
                 nid, missing);
        return true;
    }
    if (!ev->sf_lead_id[0] && !ev->sf_contact_id[0]) {
        snprintf(why, size,
                 "Notification %s: the CampaignMember has neither LeadId nor ContactId; only "
                 "Lead and Contact members are synced (if the Outbound Message lacks these "
                 "fields, add both)",
                 nid);
        return true;
    }
    if (ev->source_ts_ms > received_ms + SF_OUTBOUND_MAX_SKEW_MS) {
        char at[40], rx[40];
        event_format_time(ev->source_ts_ms, at, sizeof at);
        event_format_time(received_ms, rx, sizeof rx);
        snprintf(why, size,
                 "Notification %s: LastModifiedDate %s is more than %d minutes after the "
                 "message arrived (%s); not queued: a change dated in the future would make "
                 "this member's real changes look stale (a forged message, or a clock far off)",
                 nid, at, SF_OUTBOUND_MAX_SKEW_MS / 60000, rx);
        return true;
    }
    return false;
}

/* The message's OrganizationId is this org's: a 15- or 18-character id, nothing more, whose
 * first 15 characters (case-sensitive) are those of expected_org. The WSDL types it ent:ID,
 * 18 characters (sforce_api_om_outboundmessaging_wsdl.htm); users know the 15 of Setup. */
static bool org_matches(const sax_state *st, const char *expected_org) {
    return !st->org_too_long && event_valid_sfid(st->org) &&
           strncmp(st->org, expected_org, 15) == 0;
}

/* Judges what was read, in order; fills out. One answer covers the message: the Ack is a
 * boolean for all its notifications (sforce_api_om_outboundmessaging_wsdl.htm), so only what
 * makes the whole message foreign is a fault; an unusable notification is a dead letter. */
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
    if (!org_matches(st, expected_org)) {
        char shown[48];
        copy_cut(shown, sizeof shown, st->org);
        reject(out, 403, "OrganizationId %s%s does not match this service's SF_ORG_ID", shown,
               st->org_too_long || strlen(st->org) >= sizeof shown ? "..." : "");
        return;
    }
    event_set(out->org_id, sizeof out->org_id, st->org);
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
            reject(out, 400, "Notification %zu has no valid Id (a 15- or 18-character id)", k + 1);
            return;
        }
        /* Record deleted before delivery: "the notification contains no data" (Help,
         * platform.workflow_om_considerations.htm); acknowledged, nothing to sync. */
        if (!n->has_so || n->so_nil || !n->has_data) {
            out->nempty++;
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
        event *ev = &n->ev;
        ev->source = SRC_SALESFORCE;
        ev->type = EV_SF_MEMBER_CHANGED;
        ev->received_ms = received_ms;
        memcpy(ev->id, nid, sizeof ev->id);
        char why[SF_OUTBOUND_REASON_MAX];
        if (unusable(n, received_ms, why, sizeof why)) {
            if (!out->dead) out->dead = calloc(st->count, sizeof *out->dead); /* rarely needed */
            if (!out->dead) {
                reject(out, 500, "out of memory");
                return;
            }
            out->dead[out->ndead].ev = *ev;
            memcpy(out->dead[out->ndead++].reason, why, sizeof why);
            continue;
        }
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
    char why[200];
    if (sf_outbound_prescan(xml, len, why, sizeof why) != 0) {
        reject(out, 400, "%s", why);
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
    /* UTF-8 whatever the document declares: Salesforce sends UTF-8, and the pre-scan read
     * the bytes as such (and refused a body whose first bytes say otherwise). */
    xmlDocPtr doc = xmlCtxtReadMemory(pc, xml, (int)len, NULL, NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                                          XML_PARSE_IGNORE_ENC);
    if (saw_dtd) {
        reject(out, 400, "DOCTYPE declarations are not accepted");
    } else if (st.attrs_over) {
        reject(out, 400, "an element has more than %d attributes (found while parsing)",
               SF_XML_MAX_ATTRS);
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
        free(out->dead);
        out->events = NULL;
        out->dead = NULL;
        out->nevents = out->ndead = out->nempty = 0;
    }
}

void sf_outbound_result_free(sf_outbound_result *r) {
    if (!r) return;
    free(r->events);
    free(r->dead);
    r->events = NULL;
    r->dead = NULL;
    r->nevents = r->ndead = 0;
}
