/*
 * fuzz_number.c — arbitrary bytes through number_parse.c, against strtod.
 *
 * Input: the bytes, parsed from their start (the buffer is exactly the input: no NUL after it).
 * The contracts, each against an independent computation; a broken one aborts like a crash:
 *   - accepted <=> the bytes start with a JSON number (RFC 8259, checked by the matcher below),
 *     except that one of DDS_NUMBER_TEXT_LIMIT bytes or more may be refused (it would need a copy
 *     for strtod);
 *   - accepted: exactly that number was read (the longest match, no byte more or less), and its
 *     double is strtod's for the same text, bit for bit (so -0, infinity for 1e309, zero for
 *     1e-400, subnormals and every rounding tie);
 *   - refused: the position and the output are untouched.
 * Built with clang's libFuzzer (tests/fuzz/meson.build; scripts/fuzz.sh 600 fuzz_number) and with
 * replay.c in every build (tests/c/meson.build), over tests/fuzz/number_seeds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "number_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void violated(const char *what, const char *s, size_t n) {
    fprintf(stderr, "contract broken: %s: \"%.*s\"\n", what, (int)(n > 200 ? 200 : n), s);
    abort();
}

static int digit(const char *s, size_t n, size_t i) { return i < n && s[i] >= '0' && s[i] <= '9'; }

/* The length of the JSON number at the start of s[0..n), or 0 when there is none. */
static size_t json_number_length(const char *s, size_t n) {
    size_t i = 0;
    if (i < n && s[i] == '-') i++;
    if (!digit(s, n, i)) return 0;
    if (s[i] == '0') {
        i++;
    } else {
        while (digit(s, n, i)) i++;
    }
    if (i < n && s[i] == '.') {
        if (!digit(s, n, i + 1)) return 0;
        i++;
        while (digit(s, n, i)) i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (s[j] == '+' || s[j] == '-')) j++;
        if (!digit(s, n, j)) return 0;
        while (digit(s, n, j)) j++;
        i = j;
    }
    return i;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    size_t expected = json_number_length(s, size);
    size_t pos = 0;
    double got = 12345.0;
    int r = dds_number_parse(s, size, &pos, &got, NULL);
    if (r != 0) {
        if (pos != 0 || got != 12345.0) violated("refused, yet moved or wrote", s, size);
        if (expected != 0 && expected < DDS_NUMBER_TEXT_LIMIT)
            violated("a JSON number refused", s, size);
        return 0;
    }
    if (expected == 0) violated("accepted what is not a JSON number", s, size);
    if (pos != expected) violated("read another length than the number's", s, size);
    char *text = malloc(pos + 1);
    if (text == NULL) abort();
    memcpy(text, s, pos);
    text[pos] = 0;
    char *end = NULL;
    double want = strtod(text, &end);
    int same = end == text + pos && memcmp(&got, &want, sizeof got) == 0;
    free(text);
    if (!same) violated("a double other than strtod's", s, pos);
    return 0;
}
