/* secure — constant-time comparison and digests. See include/secure.h. */
#include "secure.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <ctype.h>
#include <strings.h>
#include <stdio.h>
#include <string.h>

bool secure_equals(const char *presented, const char *expected) {
    if (!presented || !expected) return false;
    /* Comparing digests makes the time independent of both contents and lengths. */
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)presented, strlen(presented), a);
    SHA256((const unsigned char *)expected, strlen(expected), b);
    return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

void secure_sha256_hex(const void *data, size_t len, char out[65]) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(data, len, d);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* One fingerprint: 64 hex digits, with or without a colon between each pair. */
static bool parse_pin(const char *p, size_t len, unsigned char out[SECURE_PIN_BYTES]) {
    const char *eq = memchr(p, '=', len); /* "sha256 Fingerprint=" */
    if (eq) {
        size_t plen = (size_t)(eq - p);
        if (plen < 11 || strncasecmp(eq - 11, "fingerprint", 11) != 0) return false;
        len -= plen + 1;
        p = eq + 1;
    }
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        if (n == SECURE_PIN_BYTES || i + 1 >= len || !isxdigit((unsigned char)p[i]) ||
            !isxdigit((unsigned char)p[i + 1]))
            return false;
        char hex[3] = {p[i], p[i + 1], 0};
        out[n++] = (unsigned char)strtoul(hex, NULL, 16);
        i += 2;
        if (i < len && p[i] == ':') {
            i++;
            if (i == len) return false; /* a trailing colon */
        }
    }
    return n == SECURE_PIN_BYTES;
}

int secure_parse_pins(const char *list, unsigned char *out, size_t max, char *err, size_t errlen) {
    int n = 0;
    const char *p = list ? list : "";
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t len = strcspn(p, ",");
        size_t tlen = len;
        while (tlen && (p[tlen - 1] == ' ' || p[tlen - 1] == '\t'))
            tlen--;
        unsigned char pin[SECURE_PIN_BYTES];
        if (!parse_pin(p, tlen, pin)) {
            snprintf(err, errlen,
                     "\"%.*s\" is not a SHA-256 fingerprint (64 hex digits, colons optional, "
                     "as `openssl x509 -noout -fingerprint -sha256 -in cert.pem` prints it)",
                     (int)(tlen < 40 ? tlen : 40), p);
            return -1;
        }
        if ((size_t)n >= max && out) {
            snprintf(err, errlen, "at most %zu fingerprints", max);
            return -1;
        }
        if (out) memcpy(out + (size_t)n * SECURE_PIN_BYTES, pin, SECURE_PIN_BYTES);
        n++;
        p += len;
        if (*p != ',') break;
        p++;
    }
    return n;
}
