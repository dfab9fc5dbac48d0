/*
 * check.h — the C tests' assertions: no framework, one header.
 *
 * A failed check prints "file:line: message" and counts; the test goes on so one run shows every
 * failure. main() ends with `return check_report(argv[0]);`, which exits nonzero on any failure.
 * Each test program is one translation unit, so the counter below is private to it.
 */
#ifndef DDS_TEST_CHECK_H
#define DDS_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK_FAIL_(...)                                                                           \
  do {                                                                                             \
    check_failures++;                                                                              \
    fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                                \
    fprintf(stderr, __VA_ARGS__);                                                                  \
    fputc('\n', stderr);                                                                           \
  } while (0)

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    check_count++;                                                                                 \
    if (!(cond)) CHECK_FAIL_("check failed: %s", #cond);                                           \
  } while (0)

/* A check with its own message (printf-style), for conditions whose operands say little alone. */
#define CHECK_MSG(cond, ...)                                                                       \
  do {                                                                                             \
    check_count++;                                                                                 \
    if (!(cond)) CHECK_FAIL_(__VA_ARGS__);                                                         \
  } while (0)

#define CHECK_INT(actual, expected)                                                                \
  do {                                                                                             \
    long long a_ = (long long)(actual), e_ = (long long)(expected);                                \
    check_count++;                                                                                 \
    if (a_ != e_) CHECK_FAIL_("%s is %lld, expected %lld", #actual, a_, e_);                       \
  } while (0)

/* Equal doubles, where NaN equals NaN (a NaN cell means "no value", which is what we compare). */
#define CHECK_DBL(actual, expected)                                                                \
  do {                                                                                             \
    double a_ = (actual), e_ = (expected);                                                         \
    check_count++;                                                                                 \
    if (!((isnan(a_) && isnan(e_)) || a_ == e_))                                                   \
      CHECK_FAIL_("%s is %.17g, expected %.17g", #actual, a_, e_);                                 \
  } while (0)

#define CHECK_STR(actual, expected)                                                                \
  do {                                                                                             \
    const char *a_ = (actual), *e_ = (expected);                                                   \
    check_count++;                                                                                 \
    if (a_ == NULL || e_ == NULL || strcmp(a_, e_) != 0)                                           \
      CHECK_FAIL_("%s is \"%s\", expected \"%s\"", #actual, a_ ? a_ : "(null)",                    \
                  e_ ? e_ : "(null)");                                                             \
  } while (0)

#define CHECK_CONTAINS(haystack, needle)                                                           \
  do {                                                                                             \
    const char *h_ = (haystack), *n_ = (needle);                                                   \
    check_count++;                                                                                 \
    if (h_ == NULL || strstr(h_, n_) == NULL)                                                      \
      CHECK_FAIL_("%s is \"%s\", expected it to contain \"%s\"", #haystack, h_ ? h_ : "(null)",    \
                  n_);                                                                             \
  } while (0)

static inline int check_report(const char *program) {
    if (check_failures > 0) {
        fprintf(stderr, "%s: %d of %d checks failed\n", program, check_failures, check_count);
        return EXIT_FAILURE;
    }
    printf("%s: %d checks passed\n", program, check_count);
    return EXIT_SUCCESS;
}

#ifdef FIXTURES_DIR
/*
 * The bytes of tests/fixtures/<name>, in a buffer of exactly that size with no NUL after it, so
 * the sanitizers catch any parser that reads past the length it was given. Aborts if unreadable:
 * a missing fixture is a broken test, not a failed check.
 */
static inline char *read_fixture(const char *name, size_t *len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot open fixture %s\n", path);
        abort();
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf != NULL && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *grown = realloc(buf, cap * 2);
            if (grown == NULL) free(buf);
            buf = grown;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf == NULL) {
        fprintf(stderr, "out of memory reading fixture %s\n", path);
        abort();
    }
    char *exact = malloc(n > 0 ? n : 1);
    if (exact == NULL) abort();
    memcpy(exact, buf, n);
    free(buf);
    *len = n;
    return exact;
}
#endif

#endif
