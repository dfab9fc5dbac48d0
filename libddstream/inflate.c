/* inflate.c — compressed answer bodies to plain bytes with libdeflate (see inflate.h for why).
 * With cache_entry.c (the chunk cache's entries), the only file that includes libdeflate.h. */
#include "inflate.h"

#include "bigalloc.h"

#include <libdeflate.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct dds_inflater {
    struct libdeflate_decompressor *d;
};

/* The smallest gzip member: a 10-byte header, an empty final block, the 8-byte trailer. */
#define GZIP_MIN_MEMBER 18
/* First guess for the output of a "deflate" answer, whose size is not written anywhere: a JSON
 * answer compresses about 6:1. */
#define DEFLATE_RATIO_GUESS 8
#define MIN_GUESS           (64 * 1024)

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

static int token_is(const char *s, size_t n, const char *name) {
    size_t k = strlen(name);
    if (n != k) return 0;
    for (size_t i = 0; i < k; i++)
        if (lower((unsigned char)s[i]) != name[i]) return 0;
    return 1;
}

dds_encoding dds_encoding_parse(const char *value, size_t n) {
    while (n > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        n--;
    }
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t' || value[n - 1] == '\r' ||
                     value[n - 1] == '\n'))
        n--;
    if (n == 0 || token_is(value, n, "identity")) return DDS_ENCODING_IDENTITY;
    if (token_is(value, n, "gzip") || token_is(value, n, "x-gzip")) return DDS_ENCODING_GZIP;
    if (token_is(value, n, "deflate")) return DDS_ENCODING_DEFLATE;
    return DDS_ENCODING_UNKNOWN;
}

dds_inflater *dds_inflater_new(void) {
    dds_inflater *z = calloc(1, sizeof *z);
    if (!z) return NULL;
    z->d = libdeflate_alloc_decompressor();
    if (!z->d) {
        free(z);
        return NULL;
    }
    return z;
}

void dds_inflater_free(dds_inflater *z) {
    if (!z) return;
    libdeflate_free_decompressor(z->d);
    free(z);
}

/* Make *buf hold at least need + 1 bytes (the NUL), keeping its first keep bytes. A buffer that
 * holds nothing worth keeping is replaced rather than realloc'd: no copy of stale bytes. */
static int reserve(char **buf, size_t *cap, size_t need, size_t keep, size_t limit) {
    if (*cap > need) return 0;
    char *grown;
    /* A fresh buffer gets a quarter more than asked: a stream's answers differ by a few bytes,
     * and one a byte longer than the last would otherwise cost a new buffer, every page of it
     * faulted in again (fetch.c keeps the buffer from one answer to the next). Never past the
     * limit, which no output may reach. */
    size_t want = need;
    if (keep == 0 && need < limit) want = need / 4 < limit - need ? need + need / 4 : limit;
    want++;
    if (keep == 0) {
        free(*buf);
        *buf = NULL;
        *cap = 0;
        grown = dds_big_alloc(want);
    } else {
        grown = realloc(*buf, want);
    }
    if (!grown) return -1;
    *buf = grown;
    *cap = want;
    return 0;
}

/* The next output size to try after `have` proved too small; 0 when `have` was the limit. */
static size_t grow(size_t have, size_t limit) {
    if (have >= limit) return 0;
    size_t next = have < MIN_GUESS ? MIN_GUESS : have;
    next = next > limit / 2 ? limit : next * 2;
    return next;
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static dds_inflate_result gunzip(dds_inflater *z, const unsigned char *in, size_t in_len,
                                 size_t limit, char **out, size_t *out_cap, size_t *out_len) {
    /* ISIZE, the last member's size mod 2^32: the whole output of a single member, which is what
     * servers send. More members (or a lie) are found out below, within the limit. Past the
     * limit it is not believed outright: the last four bytes of a body cut short are not a
     * trailer, and a cut body must come out corrupt (retried), not too large (final). So the
     * output grows towards the limit instead, and the data decide. */
    size_t want = in_len >= GZIP_MIN_MEMBER ? le32(in + in_len - 4) : 0;
    if (want > limit) {
        want = in_len > limit / DEFLATE_RATIO_GUESS ? limit : in_len * DEFLATE_RATIO_GUESS;
        if (want < MIN_GUESS) want = MIN_GUESS < limit ? MIN_GUESS : limit;
    }
    if (reserve(out, out_cap, want, 0, limit) != 0) return DDS_INFLATE_NOMEM;
    size_t pos = 0, written = 0;
    while (pos < in_len) {
        if (in_len - pos < GZIP_MIN_MEMBER || in[pos] != 0x1f || in[pos + 1] != 0x8b) {
            if (pos > 0 && all_zero(in + pos, in_len - pos)) break;
            return DDS_INFLATE_CORRUPT;
        }
        size_t room = *out_cap - 1 < limit ? *out_cap - 1 : limit; /* a kept buffer may be larger */
        size_t used_in = 0, used_out = 0;
        enum libdeflate_result r = libdeflate_gzip_decompress_ex(
            z->d, in + pos, in_len - pos, *out + written, room - written, &used_in, &used_out);
        if (r == LIBDEFLATE_SUCCESS) {
            pos += used_in;
            written += used_out;
            continue;
        }
        if (r != LIBDEFLATE_INSUFFICIENT_SPACE) return DDS_INFLATE_CORRUPT;
        size_t next = grow(room, limit);
        if (next == 0) return DDS_INFLATE_TOO_LARGE;
        if (reserve(out, out_cap, next, written, limit) != 0) return DDS_INFLATE_NOMEM;
    }
    (*out)[written] = 0;
    *out_len = written;
    return DDS_INFLATE_OK;
}

/* "deflate" means zlib-wrapped data (RFC 9110), but some servers send raw deflate: try both, as
 * browsers and libcurl do. Neither says its size: guess, and start again larger if short. */
static dds_inflate_result inflate_deflate(dds_inflater *z, const unsigned char *in, size_t in_len,
                                          size_t limit, char **out, size_t *out_cap,
                                          size_t *out_len) {
    size_t want = in_len > (limit / DEFLATE_RATIO_GUESS) ? limit : in_len * DEFLATE_RATIO_GUESS;
    if (want < MIN_GUESS) want = MIN_GUESS < limit ? MIN_GUESS : limit;
    if (*out_cap > 0 && *out_cap - 1 > want) want = *out_cap - 1 <= limit ? *out_cap - 1 : limit;
    int raw = in_len < 2 || (((unsigned)in[0] << 8 | in[1]) % 31 != 0) || (in[0] & 0x0f) != 8;
    for (;;) {
        if (reserve(out, out_cap, want, 0, limit) != 0) return DDS_INFLATE_NOMEM;
        size_t used_out = 0;
        enum libdeflate_result r =
            raw ? libdeflate_deflate_decompress(z->d, in, in_len, *out, want, &used_out)
                : libdeflate_zlib_decompress(z->d, in, in_len, *out, want, &used_out);
        if (r == LIBDEFLATE_SUCCESS) {
            (*out)[used_out] = 0;
            *out_len = used_out;
            return DDS_INFLATE_OK;
        }
        if (r != LIBDEFLATE_INSUFFICIENT_SPACE) {
            if (raw) return DDS_INFLATE_CORRUPT;
            raw = 1; /* a raw stream whose first bytes happen to look like a zlib header */
            continue;
        }
        want = grow(want, limit);
        if (want == 0) return DDS_INFLATE_TOO_LARGE;
    }
}

dds_inflate_result dds_inflate(dds_inflater *z, dds_encoding enc, const unsigned char *in,
                               size_t in_len, size_t limit, char **out, size_t *out_cap,
                               size_t *out_len) {
    *out_len = 0;
    if (limit > SIZE_MAX / 2) limit = SIZE_MAX / 2; /* room for the NUL and for doubling */
    if (in_len == 0) {
        if (reserve(out, out_cap, 0, 0, limit) != 0) return DDS_INFLATE_NOMEM;
        (*out)[0] = 0;
        return DDS_INFLATE_OK;
    }
    switch (enc) {
    case DDS_ENCODING_GZIP: return gunzip(z, in, in_len, limit, out, out_cap, out_len);
    case DDS_ENCODING_DEFLATE: return inflate_deflate(z, in, in_len, limit, out, out_cap, out_len);
    default: return DDS_INFLATE_CORRUPT;
    }
}
