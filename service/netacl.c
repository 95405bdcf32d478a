/* netacl — CIDR allowlists and X-Forwarded-For. See include/netacl.h. */
#include "netacl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Any address as 16 bytes, IPv4 mapped into ::ffff:0:0/96. */
static bool to16(const char *ip, unsigned char out[16], bool *v4) {
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, ip, &a4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        *v4 = true;
        return true;
    }
    if (inet_pton(AF_INET6, ip, &a6) == 1) {
        memcpy(out, &a6, 16);
        *v4 = false;
        return true;
    }
    return false;
}

int netacl_parse(const char *list, netacl *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!list) return 0;
    const char *p = list;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (!*p) break;
        size_t len = strcspn(p, ", \t");
        char entry[80];
        if (len >= sizeof entry) {
            snprintf(err, errlen, "entry \"%.40s...\" is too long", p);
            return -1;
        }
        memcpy(entry, p, len);
        entry[len] = '\0';
        p += len;
        if (out->n >= NETACL_MAX) {
            snprintf(err, errlen, "at most %d ranges", NETACL_MAX);
            return -1;
        }
        char *slash = strchr(entry, '/');
        if (slash) *slash = '\0';
        bool v4;
        if (!to16(entry, out->nets[out->n].addr, &v4)) {
            snprintf(err, errlen, "\"%s\" is not an IPv4 or IPv6 address", entry);
            return -1;
        }
        int max = v4 ? 32 : 128, bits = max;
        if (slash) {
            char *end;
            long b = strtol(slash + 1, &end, 10);
            if (!slash[1] || *end || b < 0 || b > max) {
                snprintf(err, errlen, "\"%s/%s\" has a prefix length outside 0-%d", entry,
                         slash + 1, max);
                return -1;
            }
            bits = (int)b;
        }
        out->nets[out->n].bits = v4 ? bits + 96 : bits;
        out->n++;
    }
    return 0;
}

static bool in_net(const unsigned char a[16], const unsigned char net[16], int bits) {
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, net, (size_t)full) != 0) return false;
    if (rest == 0) return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

bool netacl_contains(const netacl *acl, const char *ip) {
    unsigned char a[16];
    bool v4;
    if (!acl || !ip || !to16(ip, a, &v4)) return false;
    for (int i = 0; i < acl->n; i++)
        if (in_net(a, acl->nets[i].addr, acl->nets[i].bits)) return true;
    return false;
}

/* An X-Forwarded-For entry ("1.2.3.4", "1.2.3.4:80", "2001:db8::1", "[2001:db8::1]:443"),
 * already trimmed, as its bare address in addr; false when it is none of those. */
static bool xff_entry(const char *p, size_t len, char *addr, size_t size) {
    char e[80];
    if (len == 0 || len >= sizeof e) return false;
    memcpy(e, p, len);
    e[len] = '\0';
    char *a = e, *port = NULL;
    if (e[0] == '[') { /* [v6] or [v6]:port */
        char *rb = strchr(e, ']');
        if (!rb || (rb[1] && rb[1] != ':')) return false;
        *rb = '\0';
        a = e + 1;
        if (rb[1] == ':') port = rb + 2;
    } else {
        char *colon = strchr(e, ':');
        if (colon && !strchr(colon + 1, ':')) { /* one colon: v4:port */
            *colon = '\0';
            port = colon + 1;
        }
    }
    if (port) {
        char *end;
        long n = strtol(port, &end, 10);
        if (!isdigit((unsigned char)*port) || *end || n < 1 || n > 65535) return false;
    }
    unsigned char tmp[16];
    bool v4;
    if (!to16(a, tmp, &v4) || (port && !v4 && e[0] != '[')) return false;
    if (strlen(a) >= size) return false;
    memcpy(addr, a, strlen(a) + 1);
    return true;
}

/* The next entry of one header line, walking right to left from *end (exclusive); false when
 * the line is used up. The entry is trimmed of spaces and tabs. */
static bool prev_entry(const char *line, size_t *end, const char **entry, size_t *len) {
    if (*end == (size_t)-1) return false;
    size_t stop = *end, start = stop;
    while (start > 0 && line[start - 1] != ',')
        start--;
    *end = start > 0 ? start - 1 : (size_t)-1; /* past the comma, or used up */
    while (start < stop && (line[start] == ' ' || line[start] == '\t'))
        start++;
    while (stop > start && (line[stop - 1] == ' ' || line[stop - 1] == '\t'))
        stop--;
    *entry = line + start;
    *len = stop - start;
    return true;
}

int netacl_client(const netacl *trusted, const char *peer, const char *const *xff, size_t nxff,
                  char *out, size_t size, char *why, size_t whylen) {
    snprintf(out, size, "%s", peer ? peer : "");
    if (!trusted || trusted->n == 0 || nxff == 0 || !netacl_contains(trusted, peer)) return 0;
    /* Every entry is read, right to left (proxies append, so the right-most entries are the
     * ones our own proxies wrote); the client is the first one not among them. */
    char client[64] = "";
    bool found = false;
    size_t n = 0;
    for (size_t i = nxff; i-- > 0;) {
        const char *line = xff[i] ? xff[i] : "";
        size_t end = strlen(line), len;
        const char *entry;
        while (prev_entry(line, &end, &entry, &len)) {
            char addr[64];
            if (++n > NETACL_XFF_MAX_ENTRIES) {
                snprintf(why, whylen, "X-Forwarded-For holds more than %d addresses",
                         NETACL_XFF_MAX_ENTRIES);
                return -1;
            }
            if (!xff_entry(entry, len, addr, sizeof addr)) {
                snprintf(why, whylen, "X-Forwarded-For holds \"%.*s\", which is not an address",
                         (int)(len < 60 ? len : 60), entry);
                return -1;
            }
            if (found) continue; /* read on only to refuse a malformed list */
            snprintf(client, sizeof client, "%s", addr);
            found = !netacl_contains(trusted, addr);
        }
    }
    if (client[0]) snprintf(out, size, "%s", client);
    return 0;
}
