/* sha256.h — SHA-256 (FIPS 180-4), for the chunk cache's keys and its scope of an API key.
 *
 * Written for this library from the standard rather than taken from a crypto library: libcurl
 * exposes no hash, libdeflate has only CRC-32 and Adler-32, and the TLS library under libcurl
 * differs by platform (OpenSSL on Debian, Secure Transport on macOS wheels, GnuTLS elsewhere), so
 * linking one for a hash would add a dependency the wheels do not carry. Checked against the
 * standard's examples and Python's hashlib (tests/c/test_chunk_cache.c). Not constant-time: it
 * hashes request text and the API key once per stream, never a secret an attacker can time. */
#ifndef DDSTREAM_SHA256_H
#define DDSTREAM_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define DDS_SHA256_BYTES 32

typedef struct dds_sha256 {
    uint32_t h[8];
    uint64_t total; /* bytes hashed so far */
    uint8_t block[64];
    size_t used; /* bytes of block filled */
} dds_sha256;

void dds_sha256_init(dds_sha256 *c);
void dds_sha256_update(dds_sha256 *c, const void *data, size_t len);
void dds_sha256_final(dds_sha256 *c, uint8_t out[DDS_SHA256_BYTES]);

/* The digest of data[0..len) in one call. */
void dds_sha256_digest(const void *data, size_t len, uint8_t out[DDS_SHA256_BYTES]);

/* Lower-case hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void dds_hex(const uint8_t *bytes, size_t n, char *out);

#endif
