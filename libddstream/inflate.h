/* inflate.h — a compressed answer body to plain bytes, whole-buffer, output allocated once.
 *
 * fetch.c asks for gzip and keeps the compressed bytes as they arrive; this turns them into the
 * JSON the parser reads. Whole-buffer decompression (libdeflate) is 2-3x faster than a streaming
 * inflate, and the gzip trailer's ISIZE gives the output size before any byte is written, so the
 * output is allocated once at its final size (no growth by copying, no page faults twice).
 * One dds_inflater per thread of use (fetch.c: one per client). */
#ifndef DDSTREAM_INFLATE_H
#define DDSTREAM_INFLATE_H

#include <stddef.h>

typedef struct dds_inflater dds_inflater;

/* The Content-Encoding of an answer, as far as ddstream understands it. */
typedef enum {
    DDS_ENCODING_IDENTITY, /* none sent, or "identity" */
    DDS_ENCODING_GZIP,     /* "gzip" or "x-gzip" */
    DDS_ENCODING_DEFLATE,  /* "deflate": zlib-wrapped, or raw deflate as some servers send it */
    DDS_ENCODING_UNKNOWN   /* anything else, or several stacked: not asked for, not decoded */
} dds_encoding;

typedef enum {
    DDS_INFLATE_OK,
    DDS_INFLATE_TOO_LARGE, /* the output would exceed the limit: nothing more was written */
    DDS_INFLATE_CORRUPT,   /* not valid compressed data, or its sizes or checksum do not match */
    DDS_INFLATE_NOMEM
} dds_inflate_result;

/* The value of a Content-Encoding header (n bytes, not NUL-terminated, surrounding blanks
 * allowed), case-insensitively. */
dds_encoding dds_encoding_parse(const char *value, size_t n);

/* NULL when out of memory. */
dds_inflater *dds_inflater_new(void);
void dds_inflater_free(dds_inflater *z);

/*
 * Decode in[0..in_len) of the given encoding (GZIP or DEFLATE) into *out, a malloc'd buffer of
 * *out_cap bytes that the caller keeps between calls (NULL/0 at first; it is replaced when too
 * small, never grown by copying more than the members already decoded). On DDS_INFLATE_OK
 * *out_len is the decoded size and (*out)[*out_len] is a NUL. limit: the most decoded bytes
 * accepted: the output never grows past it, so a gzip bomb costs at most that much work, and a
 * member that says less than it holds is caught by libdeflate's bounded output (and then its
 * ISIZE check) rather than overflowing anything. An ISIZE within the limit sizes the output
 * exactly; one beyond it is not trusted (a body cut short ends in four arbitrary bytes). Several gzip members are
 * decoded one after the other; zero bytes after the last are ignored (padding some servers add).
 */
dds_inflate_result dds_inflate(dds_inflater *z, dds_encoding enc, const unsigned char *in,
                               size_t in_len, size_t limit, char **out, size_t *out_cap,
                               size_t *out_len);

#endif
