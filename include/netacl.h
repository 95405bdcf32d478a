/* netacl — source-address allowlists (SF_ALLOWED_CIDRS, MARKETO_ALLOWED_CIDRS) and the
 * client address behind trusted proxies (TRUSTED_PROXIES + X-Forwarded-For).
 *
 * Pure: parses comma-separated IPv4/IPv6 CIDR lists ("10.0.0.0/8, 2001:db8::/32, 1.2.3.4";
 * a bare address is a /32 or /128) and answers membership. An IPv4-mapped IPv6 address
 * (::ffff:1.2.3.4) matches IPv4 ranges. The client of a request is the peer address, unless
 * the peer is a trusted proxy: then it is the right-most X-Forwarded-For address that is not
 * itself a trusted proxy, so a client cannot forge its way in by prepending addresses; every
 * header line counts, none is cut short, and a list that cannot be read is refused. */
#ifndef CS_NETACL_H
#define CS_NETACL_H

#include <stdbool.h>
#include <stddef.h>

#define NETACL_MAX 64

typedef struct {
    int n;
    struct {
        unsigned char addr[16]; /* IPv4 as ::ffff:a.b.c.d */
        int bits;               /* prefix length over the 128-bit form */
    } nets[NETACL_MAX];
} netacl;

/* Parses a list; 0, or -1 with the offending entry named in err. An empty list parses to
 * n == 0 (which callers read as "no restriction"). */
int netacl_parse(const char *list, netacl *out, char *err, size_t errlen);

/* True when the textual address ip (v4 or v6) lies in one of the ranges. */
bool netacl_contains(const netacl *acl, const char *ip);

/* X-Forwarded-For entries read at most (all lines together); a longer list is refused. */
#define NETACL_XFF_MAX_ENTRIES 64

/* Writes the request's client address into out: the peer, unless the peer is in trusted;
 * then the right-most X-Forwarded-For entry that is not in trusted (or the left-most entry
 * when all are). xff holds the request's X-Forwarded-For header lines in the order received
 * (nxff of them; a proxy may add a line rather than extend the last one): they are one
 * list, read right to left, whatever their length. An entry is an IPv4 or IPv6 address,
 * optionally with a port ("1.2.3.4:80", "[2001:db8::1]:443"). Returns 0; or -1 with the
 * reason in why when the peer is a trusted proxy and the list holds an entry that is not an
 * address (an empty one too) or more than NETACL_XFF_MAX_ENTRIES entries: the caller refuses
 * the request rather than guess (out then holds the peer). From a peer that is not trusted
 * the header is ignored, whatever it holds. trusted may be NULL or empty. */
int netacl_client(const netacl *trusted, const char *peer, const char *const *xff, size_t nxff,
                  char *out, size_t size, char *why, size_t whylen);

#endif
