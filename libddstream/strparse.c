/* strparse.c — small text scanners shared by the parsers, the HTTP headers and the config. */
#include "strparse.h"

#include <string.h>

static char lower_ascii(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

int dds_starts_with_ci(const char *s, size_t n, const char *prefix) {
    size_t k = strlen(prefix);
    if (n < k) return 0;
    for (size_t i = 0; i < k; i++)
        if (lower_ascii(s[i]) != prefix[i]) return 0;
    return 1;
}

size_t dds_find_ci(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    if (k == 0 || n < k) return n;
    for (size_t i = 0; i + k <= n; i++)
        if (dds_starts_with_ci(s + i, n - i, needle)) return i;
    return n;
}

size_t dds_parse_uint(const char *s, size_t n, uint64_t max, uint64_t *value, int *over) {
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    if (i >= n || s[i] < '0' || s[i] > '9') return 0;
    uint64_t x = 0;
    int exceeded = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (exceeded || d > max || x > (max - d) / 10) {
            exceeded = 1; /* keep reading: the caller learns where the number ends */
            continue;
        }
        x = x * 10 + d;
    }
    *value = exceeded ? max : x;
    if (over) *over = exceeded;
    return i;
}
