/* cache_entry.c — encoding and checking one chunk-cache entry (layout in cache_entry.h). Uses
 * libdeflate, which the library links already for answers (inflate.c), for the body and CRC-32. */
#include "cache_entry.h"

#include <libdeflate.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

/* Level 1: JSON pointlists shrink to about a third at 1 as at 6, and 1 runs several times
 * faster; the body is written once per settled chunk, on the fetcher's thread. */
#define DEFLATE_LEVEL 1

enum { ENC_PLAIN = 0, ENC_DEFLATE = 1 };

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

dds_entry_result dds_cache_entry_encode(const uint8_t key[DDS_SHA256_BYTES], const char *body,
                                        size_t len, int64_t stored_at, uint8_t **out,
                                        size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    struct libdeflate_compressor *z = libdeflate_alloc_compressor(DEFLATE_LEVEL);
    if (!z) return DDS_ENTRY_NOMEM;
    size_t bound = libdeflate_deflate_compress_bound(z, len);
    size_t room = bound > len ? bound : len;
    uint8_t *file = malloc(DDS_CACHE_HEADER_BYTES + room);
    if (!file) {
        libdeflate_free_compressor(z);
        return DDS_ENTRY_NOMEM;
    }
    uint8_t *payload = file + DDS_CACHE_HEADER_BYTES;
    size_t stored = len > 0 ? libdeflate_deflate_compress(z, body, len, payload, room) : 0;
    libdeflate_free_compressor(z);
    uint32_t encoding = ENC_DEFLATE;
    if (stored == 0 || stored >= len) { /* incompressible (or empty): kept as it came */
        if (len > 0) memcpy(payload, body, len);
        stored = len;
        encoding = ENC_PLAIN;
    }
    memcpy(file, DDS_CACHE_MAGIC, 8);
    put32(file + 8, DDS_CACHE_FORMAT);
    put32(file + 12, DDS_CACHE_HEADER_BYTES);
    memcpy(file + 16, key, DDS_SHA256_BYTES);
    put64(file + 48, (uint64_t)len);
    put64(file + 56, (uint64_t)stored);
    put64(file + 64, (uint64_t)stored_at);
    put32(file + 72, (uint32_t)libdeflate_crc32(0, body, len));
    put32(file + 76, 0);
    put32(file + 80, encoding);
    put32(file + 84, (uint32_t)libdeflate_crc32(0, file, 84));
    *out = file;
    *out_len = DDS_CACHE_HEADER_BYTES + stored;
    return DDS_ENTRY_OK;
}

static dds_entry_result refuse(dds_entry_result r, char *msg, size_t cap, const char *fmt, ...)
    DDS_PRINTF(4, 5);

static dds_entry_result refuse(dds_entry_result r, char *msg, size_t cap, const char *fmt, ...) {
    if (msg && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, cap, fmt, ap);
        va_end(ap);
    }
    return r;
}

dds_entry_result dds_cache_entry_decode(const uint8_t key[DDS_SHA256_BYTES], const uint8_t *file,
                                        size_t file_len, size_t max_len, char **body, size_t *len,
                                        char *msg, size_t msg_cap) {
    *body = NULL;
    *len = 0;
    if (file_len == 0) return refuse(DDS_ENTRY_CORRUPT, msg, msg_cap, "the file is empty");
    if (file_len < 16 || memcmp(file, DDS_CACHE_MAGIC, 8) != 0)
        return refuse(DDS_ENTRY_CORRUPT, msg, msg_cap, "not a cache entry (no magic)");
    uint32_t version = get32(file + 8);
    if (version != DDS_CACHE_FORMAT)
        return refuse(DDS_ENTRY_VERSION, msg, msg_cap, "format version %lu, this library reads %d",
                      (unsigned long)version, DDS_CACHE_FORMAT);
    if (get32(file + 12) != DDS_CACHE_HEADER_BYTES || file_len < DDS_CACHE_HEADER_BYTES)
        return refuse(DDS_ENTRY_CORRUPT, msg, msg_cap, "the header is cut short (%zu bytes)",
                      file_len);
    if (get32(file + 84) != (uint32_t)libdeflate_crc32(0, file, 84))
        return refuse(DDS_ENTRY_CORRUPT, msg, msg_cap, "the header's checksum does not match");
    if (memcmp(file + 16, key, DDS_SHA256_BYTES) != 0)
        return refuse(DDS_ENTRY_CORRUPT, msg, msg_cap, "the entry is for another request");
    uint64_t body_len = get64(file + 48), stored = get64(file + 56);
    uint32_t encoding = get32(file + 80);
    if (stored != file_len - DDS_CACHE_HEADER_BYTES)
        return refuse(DDS_ENTRY_CORRUPT, msg, msg_cap,
                      "the file holds %zu bytes of body where the header says %llu (truncated?)",
                      file_len - DDS_CACHE_HEADER_BYTES, (unsigned long long)stored);
    if (encoding > ENC_DEFLATE || (encoding == ENC_PLAIN && stored != body_len))
        return refuse(DDS_ENTRY_CORRUPT, msg, msg_cap, "unknown encoding %lu",
                      (unsigned long)encoding);
    if (body_len > max_len)
        return refuse(DDS_ENTRY_TOO_LARGE, msg, msg_cap,
                      "the body is %llu bytes, over the limit of %zu", (unsigned long long)body_len,
                      max_len);
    char *out = malloc((size_t)body_len + 1);
    if (!out) return refuse(DDS_ENTRY_NOMEM, msg, msg_cap, "out of memory");
    const uint8_t *payload = file + DDS_CACHE_HEADER_BYTES;
    if (encoding == ENC_DEFLATE) {
        struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
        if (!d) {
            free(out);
            return refuse(DDS_ENTRY_NOMEM, msg, msg_cap, "out of memory");
        }
        enum libdeflate_result r =
            libdeflate_deflate_decompress(d, payload, (size_t)stored, out, (size_t)body_len, NULL);
        libdeflate_free_decompressor(d);
        if (r != LIBDEFLATE_SUCCESS) {
            free(out);
            return refuse(DDS_ENTRY_CORRUPT, msg, msg_cap, "the body does not decompress");
        }
    } else if (body_len > 0) {
        memcpy(out, payload, (size_t)body_len);
    }
    if ((uint32_t)libdeflate_crc32(0, out, (size_t)body_len) != get32(file + 72)) {
        free(out);
        return refuse(DDS_ENTRY_CORRUPT, msg, msg_cap, "the body's checksum does not match");
    }
    out[body_len] = 0;
    *body = out;
    *len = (size_t)body_len;
    return DDS_ENTRY_OK;
}
