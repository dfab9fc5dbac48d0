/*
 * test_inflate.c — inflate.c's edge cases: what a server (or a proxy, or an attacker) may send
 * as a compressed body. Round trips through libdeflate's own compressor; gzip members, trailers
 * and headers are also built by hand where the case needs a lie.
 */
#include <libdeflate.h>
#include <stdint.h>

#include "check.h"
#include "inflate.h"

static struct libdeflate_compressor *comp;

/* gzip (or zlib, or raw deflate) of text; malloc'd, *n its size. */
static unsigned char *compress_as(const char *text, size_t len, int kind, size_t *n) {
    size_t cap = libdeflate_gzip_compress_bound(comp, len) + 64;
    unsigned char *out = malloc(cap);
    *n = kind == 0   ? libdeflate_gzip_compress(comp, text, len, out, cap)
         : kind == 1 ? libdeflate_zlib_compress(comp, text, len, out, cap)
                     : libdeflate_deflate_compress(comp, text, len, out, cap);
    CHECK(*n > 0);
    return out;
}

static void put_le32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static dds_inflate_result run(dds_inflater *z, dds_encoding enc, const unsigned char *in, size_t n,
                              size_t limit, char **out, size_t *cap, size_t *len) {
    return dds_inflate(z, enc, in, n, limit, out, cap, len);
}

static void test_encoding_names(void) {
    CHECK_INT(dds_encoding_parse("gzip", 4), DDS_ENCODING_GZIP);
    CHECK_INT(dds_encoding_parse(" GZip\r\n", 7), DDS_ENCODING_GZIP);
    CHECK_INT(dds_encoding_parse("x-gzip", 6), DDS_ENCODING_GZIP);
    CHECK_INT(dds_encoding_parse("Deflate", 7), DDS_ENCODING_DEFLATE);
    CHECK_INT(dds_encoding_parse("identity", 8), DDS_ENCODING_IDENTITY);
    CHECK_INT(dds_encoding_parse("  \r\n", 4), DDS_ENCODING_IDENTITY);
    CHECK_INT(dds_encoding_parse("br", 2), DDS_ENCODING_UNKNOWN);
    CHECK_INT(dds_encoding_parse("gzip, gzip", 10), DDS_ENCODING_UNKNOWN);
    CHECK_INT(dds_encoding_parse("gzipx", 5), DDS_ENCODING_UNKNOWN);
}

static void test_round_trips(dds_inflater *z) {
    static const char text[] = "{\"series\":[{\"pointlist\":[[1000.0,1.5],[2000.0,null]]}]}";
    char *out = NULL;
    size_t cap = 0, len = 0;
    for (int kind = 0; kind < 3; kind++) {
        size_t n;
        unsigned char *in = compress_as(text, sizeof text - 1, kind, &n);
        dds_encoding enc = kind == 0 ? DDS_ENCODING_GZIP : DDS_ENCODING_DEFLATE;
        CHECK_INT(run(z, enc, in, n, 1 << 20, &out, &cap, &len), DDS_INFLATE_OK);
        CHECK_INT((long long)len, (long long)(sizeof text - 1));
        CHECK(memcmp(out, text, len) == 0 && out[len] == 0);
        free(in);
    }
    /* An empty body decodes to "" whatever it claims to be. */
    CHECK_INT(run(z, DDS_ENCODING_GZIP, (const unsigned char *)"", 0, 10, &out, &cap, &len),
              DDS_INFLATE_OK);
    CHECK(len == 0 && out[0] == 0);
    free(out);
}

/* The output is sized from ISIZE once, and reused by the next answer when large enough. */
static void test_sized_once_and_reused(dds_inflater *z) {
    size_t big = 3 << 20;
    char *text = malloc(big);
    for (size_t i = 0; i < big; i++) text[i] = (char)('0' + (i * 7919) % 10);
    size_t n;
    unsigned char *in = compress_as(text, big, 0, &n);
    char *out = NULL;
    size_t cap = 0, len = 0;
    CHECK_INT(run(z, DDS_ENCODING_GZIP, in, n, big, &out, &cap, &len), DDS_INFLATE_OK);
    CHECK_INT((long long)cap, (long long)big + 1); /* exactly: the limit itself is accepted */
    CHECK(len == big && memcmp(out, text, big) == 0);
    char *first = out;
    CHECK_INT(run(z, DDS_ENCODING_GZIP, in, n, big, &out, &cap, &len), DDS_INFLATE_OK);
    CHECK(out == first); /* the same buffer again */
    /* One byte under the limit: refused before anything is written. */
    CHECK_INT(run(z, DDS_ENCODING_GZIP, in, n, big - 1, &out, &cap, &len), DDS_INFLATE_TOO_LARGE);
    free(in);
    free(text);
    free(out);
}

static void test_bombs_and_lies(dds_inflater *z) {
    size_t big = 1 << 20;
    char *zeros = calloc(1, big);
    size_t n;
    unsigned char *in = compress_as(zeros, big, 0, &n);
    char *out = NULL;
    size_t cap = 0, len = 0;
    /* A bomb that says its size: refused, the output never past the limit. */
    CHECK_INT(run(z, DDS_ENCODING_GZIP, in, n, 4096, &out, &cap, &len), DDS_INFLATE_TOO_LARGE);
    CHECK(cap <= 4097);
    /* A bomb that lies small: found out by the bounded output, still refused at the limit. */
    put_le32(in + n - 4, 100);
    CHECK_INT(run(z, DDS_ENCODING_GZIP, in, n, 200000, &out, &cap, &len), DDS_INFLATE_TOO_LARGE);
    CHECK(cap <= 200001);
    /* The same lie within the limit: the data are read, but the size check fails. */
    CHECK_INT(run(z, DDS_ENCODING_GZIP, in, n, 4 << 20, &out, &cap, &len), DDS_INFLATE_CORRUPT);
    /* A lie on the large side (within the limit): corrupt, not an overflow or a read past. */
    put_le32(in + n - 4, (uint32_t)(big + 12345));
    CHECK_INT(run(z, DDS_ENCODING_GZIP, in, n, 4 << 20, &out, &cap, &len), DDS_INFLATE_CORRUPT);
    /* The largest ISIZE there is, past the limit: not believed; the data fit, the size lies. */
    put_le32(in + n - 4, UINT32_MAX);
    CHECK_INT(run(z, DDS_ENCODING_GZIP, in, n, 1 << 20, &out, &cap, &len), DDS_INFLATE_CORRUPT);
    CHECK_INT(run(z, DDS_ENCODING_GZIP, in, n, (1 << 20) - 1, &out, &cap, &len),
              DDS_INFLATE_TOO_LARGE);
    free(in);
    free(zeros);
    free(out);
}

static void test_members_and_damage(dds_inflater *z) {
    size_t n1, n2;
    unsigned char *a = compress_as("{\"a\":", 5, 0, &n1);
    unsigned char *b = compress_as("1}", 2, 0, &n2);
    unsigned char *two = malloc(n1 + n2 + 8);
    memcpy(two, a, n1);
    memcpy(two + n1, b, n2);
    char *out = NULL;
    size_t cap = 0, len = 0;
    CHECK_INT(run(z, DDS_ENCODING_GZIP, two, n1 + n2, 100, &out, &cap, &len), DDS_INFLATE_OK);
    CHECK(len == 7 && memcmp(out, "{\"a\":1}", 7) == 0);
    /* Zero padding after the last member is ignored; anything else is not. */
    memset(two + n1 + n2, 0, 8);
    CHECK_INT(run(z, DDS_ENCODING_GZIP, two, n1 + n2 + 8, 100, &out, &cap, &len), DDS_INFLATE_OK);
    CHECK(len == 7);
    two[n1 + n2 + 3] = 'x';
    CHECK_INT(run(z, DDS_ENCODING_GZIP, two, n1 + n2 + 8, 100, &out, &cap, &len),
              DDS_INFLATE_CORRUPT);
    /* Cut short (its last four bytes are no size: corrupt, to be retried, never "too large"),
     * a flipped byte in the data, not gzip at all. */
    CHECK_INT(run(z, DDS_ENCODING_GZIP, a, n1 - 3, 100, &out, &cap, &len), DDS_INFLATE_CORRUPT);
    a[n1 - 5] ^= 0x55;
    CHECK_INT(run(z, DDS_ENCODING_GZIP, a, n1, 100, &out, &cap, &len), DDS_INFLATE_CORRUPT);
    static const unsigned char plain[] = "{\"series\":[]} plain JSON, not gzip";
    CHECK_INT(run(z, DDS_ENCODING_GZIP, plain, sizeof plain - 1, 100, &out, &cap, &len),
              DDS_INFLATE_CORRUPT);
    CHECK_INT(run(z, DDS_ENCODING_DEFLATE, plain, sizeof plain - 1, 100, &out, &cap, &len),
              DDS_INFLATE_CORRUPT);
    CHECK_INT(run(z, DDS_ENCODING_UNKNOWN, b, n2, 100, &out, &cap, &len), DDS_INFLATE_CORRUPT);
    free(a);
    free(b);
    free(two);
    free(out);
}

/* "deflate" says no size: the guess grows until it fits, or until the limit. */
static void test_deflate_growth(dds_inflater *z) {
    size_t big = 2 << 20;
    char *zeros = calloc(1, big);
    size_t n;
    unsigned char *in = compress_as(zeros, big, 1, &n);
    char *out = NULL;
    size_t cap = 0, len = 0;
    CHECK_INT(run(z, DDS_ENCODING_DEFLATE, in, n, big, &out, &cap, &len), DDS_INFLATE_OK);
    CHECK(len == big && out[0] == 0 && out[big - 1] == 0);
    CHECK_INT(run(z, DDS_ENCODING_DEFLATE, in, n, big - 1, &out, &cap, &len),
              DDS_INFLATE_TOO_LARGE);
    free(in);
    free(zeros);
    free(out);
}

int main(void) {
    comp = libdeflate_alloc_compressor(6);
    dds_inflater *z = dds_inflater_new();
    CHECK(comp != NULL && z != NULL);
    test_encoding_names();
    test_round_trips(z);
    test_sized_once_and_reused(z);
    test_bombs_and_lies(z);
    test_members_and_damage(z);
    test_deflate_growth(z);
    dds_inflater_free(z);
    libdeflate_free_compressor(comp);
    return check_report("inflate");
}
