/* number_parse.h — JSON number text to the double strtod gives, without strtod on the hot path.
 *
 * Datadog writes values with a float64's full precision (15-17 significant digits, as Python's
 * repr does): most of them have a mantissa above 2^53, where Clinger's fast path does not apply
 * and strtod's exact slow path (glibc's multi-precision arithmetic) used to cost a fifth of the
 * parse. Here such numbers go through the Eisel-Lemire algorithm (a 64x128-bit product with a
 * table of powers of five, pow5_table.h); strtod, on a NUL-terminated copy, is left only for
 * what it cannot settle: more than 19 significant digits whose two roundings differ, a product
 * too close to a halfway point, and subnormal results. Every result is bit-identical to strtod's
 * under the default rounding mode (tests/c/test_number_parse.c, tests/fuzz/fuzz_number.c),
 * including its overflow to infinity (1e309), its underflow to zero (1e-400) and -0.
 * Pure and thread-safe; reads s[0..n) only, never needs a NUL. */
#ifndef DDSTREAM_NUMBER_PARSE_H
#define DDSTREAM_NUMBER_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Number text longer than this (bytes) that needs the strtod fallback is refused rather than
 * copied: the caller leaves such a document to the general parser (cJSON, which has no limit). */
#define DDS_NUMBER_TEXT_LIMIT 64

/* How a number was converted (for the tests and the benchmark: what stays on the hot path). */
typedef enum dds_number_path {
    DDS_NUMBER_ZERO,     /* a zero mantissa: +-0 */
    DDS_NUMBER_CLINGER,  /* mantissa <= 2^53, |exponent| <= 22: one exact IEEE operation */
    DDS_NUMBER_LEMIRE,   /* Eisel-Lemire (also an out-of-range exponent: 0 or infinity) */
    DDS_NUMBER_FALLBACK, /* strtod on a copy */
} dds_number_path;

/*
 * The JSON number (RFC 8259 grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?) at s[*pos..n):
 * on success returns 0, stores the double strtod would give for that text in *out, and moves *pos
 * just past the number (the grammar decides where it ends: "01" is the number 0 followed by "1").
 * Returns -1, *pos unchanged, when the text there does not start with a JSON number, or when it
 * needs the fallback and is DDS_NUMBER_TEXT_LIMIT bytes or longer. how may be NULL.
 */
int dds_number_parse(const char *s, size_t n, size_t *pos, double *out, dds_number_path *how);

/* dds_number_parse for a hot loop that keeps its position in a register: the position just past
 * the number, or 0 (which no number ends at) where dds_number_parse returns -1. */
size_t dds_number_scan(const char *s, size_t n, size_t pos, double *out);

/*
 * The double nearest to w * 10^q (round half to even), w != 0 being the first 19 significant
 * digits of the text and truncated set when digits followed them: 0 and *out set (without sign),
 * or -1 when only an exact method can decide. The core of dds_number_parse, for the tests.
 */
int dds_decimal_to_double(uint64_t w, int64_t q, int truncated, double *out);

#endif
