/* cache_entry.h — the chunk cache's on-disk entry: a fixed header and the body, deflated.
 *
 * Layout (all integers little-endian; include/ddstream.h documents it for users):
 *   0  magic "DDSCACHE" (8 bytes)      48 body_len: the answer's length, decoded (u64)
 *   8  format version, 1 (u32)         56 stored_len: the bytes after the header (u64)
 *  12  header length, 88 (u32)         64 stored_at: epoch seconds when written (i64)
 *  16  key: SHA-256 of the request     72 body_crc: CRC-32 of the decoded answer (u32)
 *      as sent, scope included (32)    76 reserved, 0 (u32)
 *                                      80 encoding: 0 as is, 1 raw deflate (u32)
 *                                      84 header_crc: CRC-32 of bytes 0..84 (u32)
 *  88  the body (stored_len bytes)
 * A file is an entry only if it is exactly 88 + stored_len bytes long and every check holds:
 * anything else (truncated, torn, another version, another key, a flipped bit) is refused. */
#ifndef DDSTREAM_CACHE_ENTRY_H
#define DDSTREAM_CACHE_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

#define DDS_CACHE_MAGIC        "DDSCACHE"
#define DDS_CACHE_FORMAT       1
#define DDS_CACHE_HEADER_BYTES 88

typedef enum {
    DDS_ENTRY_OK,
    DDS_ENTRY_NOMEM,
    DDS_ENTRY_CORRUPT,  /* not an entry: msg says which check failed */
    DDS_ENTRY_VERSION,  /* an entry of another format version */
    DDS_ENTRY_TOO_LARGE /* a valid-looking entry whose body is over the caller's limit */
} dds_entry_result;

/*
 * The entry for body[0..len) under key: header + deflated body (or the body as is, when deflate
 * does not make it smaller). *out is malloc'd (free() it), *out_len its length. stored_at is
 * written into the header. DDS_ENTRY_OK or DDS_ENTRY_NOMEM.
 */
dds_entry_result dds_cache_entry_encode(const uint8_t key[DDS_SHA256_BYTES], const char *body,
                                        size_t len, int64_t stored_at, uint8_t **out,
                                        size_t *out_len);

/*
 * Check file[0..file_len) as the entry for key and decode its body into *body (malloc'd,
 * NUL-terminated, *len excluding the NUL). A body over max_len is DDS_ENTRY_TOO_LARGE without
 * decoding it. On any failure *body is NULL and msg (may be NULL) says why, without the key.
 */
dds_entry_result dds_cache_entry_decode(const uint8_t key[DDS_SHA256_BYTES], const uint8_t *file,
                                        size_t file_len, size_t max_len, char **body, size_t *len,
                                        char *msg, size_t msg_cap);

#endif
