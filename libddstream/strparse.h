/* strparse.h — the one home of the small text scanners the library needs in several places:
 * JSON whitespace, case-insensitive matching and searching, and bounded decimal numbers.
 * Every function reads a bounded span (s, n): none needs a NUL, none reads past n. Pure and
 * thread-safe. */
#ifndef DDSTREAM_STRPARSE_H
#define DDSTREAM_STRPARSE_H

#include <stddef.h>
#include <stdint.h>

/* The index of the first byte at or after i that is not JSON whitespace (space, tab, LF, CR),
 * or n. Inline: the streaming point-list scanner calls it per token. */
static inline size_t dds_skip_json_ws(const char *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

/* Whether s[0..n) starts with prefix (given in lower case), ignoring ASCII case. */
int dds_starts_with_ci(const char *s, size_t n, const char *prefix);

/* The index of the first occurrence of needle (given in lower case) in s[0..n), ignoring ASCII
 * case; n when there is none (or needle is empty). */
size_t dds_find_ci(const char *s, size_t n, const char *needle);

/*
 * The decimal number at the start of s[0..n), after any spaces and tabs. Every digit is read;
 * a value above max reads as max. Returns how many bytes were read (0 when no digit comes first:
 * *value is then left alone) and sets *over when the number exceeded max (over may be NULL).
 */
size_t dds_parse_uint(const char *s, size_t n, uint64_t max, uint64_t *value, int *over);

#endif
