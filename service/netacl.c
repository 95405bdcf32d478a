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

void netacl_client(const netacl *trusted, const char *peer, const char *xff, char *out,
                   size_t size) {
    snprintf(out, size, "%s", peer ? peer : "");
    if (!trusted || trusted->n == 0 || !xff || !netacl_contains(trusted, peer)) return;
    /* Walk X-Forwarded-For from the right: proxies append, so the right-most entries are
     * the ones our own proxies wrote. */
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", xff);
    for (;;) {
        char *comma = strrchr(buf, ',');
        char *entry = comma ? comma + 1 : buf;
        while (isspace((unsigned char)*entry))
            entry++;
        size_t n = strlen(entry);
        while (n && isspace((unsigned char)entry[n - 1]))
            entry[--n] = '\0';
        unsigned char tmp[16];
        bool v4;
        if (!to16(entry, tmp, &v4)) return; /* garbage: keep the last trustworthy address */
        snprintf(out, size, "%s", entry);
        if (!netacl_contains(trusted, entry) || !comma) return;
        *comma = '\0';
    }
}
