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

#endif
