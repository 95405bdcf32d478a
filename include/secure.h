/* secure — the small pieces of cryptography the service needs, from OpenSSL: comparing a
 * presented secret with the configured one in constant time (neither its content nor its
 * length leaks through timing), and SHA-256 hex digests for derived idempotency keys. */
#ifndef CS_SECURE_H
#define CS_SECURE_H

#include <stdbool.h>
#include <stddef.h>

/* True when both are non-NULL and equal; time does not depend on where they differ. */
bool secure_equals(const char *presented, const char *expected);

/* Writes the lowercase hex SHA-256 of data (65 bytes with the NUL) into out. */
void secure_sha256_hex(const void *data, size_t len, char out[65]);

#define SECURE_PIN_BYTES 32 /* a SHA-256 certificate fingerprint */
#define SECURE_PINS_MAX  16

/* Parses a comma-separated list of SHA-256 certificate fingerprints as
 * `openssl x509 -noout -fingerprint -sha256` prints them ("sha256 Fingerprint=AB:CD:..."):
 * the "... Fingerprint=" prefix, the colons and the case are optional. Writes up to max
 * fingerprints of SECURE_PIN_BYTES bytes each, one after the other, into out (may be NULL
 * to validate only). Returns how many, or -1 with the offending entry named in err (an empty
 * list is an error too). */
int secure_parse_pins(const char *list, unsigned char *out, size_t max, char *err, size_t errlen);

#endif
