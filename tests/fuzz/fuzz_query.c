/*
 * fuzz_query.c — arbitrary text through the query language (query_lang.c): parser, rules and
 * rewriter.
 *
 * Input: one options byte (bits 0-3: the statistics mask, 0 = all four; bit 4: two metrics are
 * distributions; bits 5-6: the granularity, 60, 1, 3600 or 86400 s), then the text (up to its
 * first NUL). The contracts, each checked against an independent computation or a second run;
 * a broken one aborts like a crash:
 *   - the result is DDSTREAM_OK or DDSTREAM_E_CONFIG, never anything else;
 *   - refused: no queries, an offset within the text, a message "at character N: ...", an
 *     excerpt and a caret line, valid UTF-8, no control character but the two newlines; text
 *     with unbalanced brackets (outside quoted strings), a control character or over 4000 bytes
 *     is always refused; the canonical printer refuses it the same way, except for the one rule
 *     it does not check (a rollup interval that differs from the granularity);
 *   - accepted: 1..4 sub-queries per query; value-only <=> a reason <=> one DDS_STAT_VALUE
 *     sub-query; otherwise exactly the statistics of the mask, in order, each sub-query holding
 *     ".rollup(<stat>,"; every sub-query valid UTF-8 without control characters, and compiled
 *     again it is value-only and prints itself (the rewriting is idempotent) unless the added
 *     rollups took it past 4000 bytes; the source is the text's own, trimmed; a grouped query's
 *     source holds "by" and '{';
 *   - the canonical text is a fixed point and compiles to the same sub-queries (when it is
 *     within the 4000 bytes: single spaces around operators can lengthen a compact text).
 * Built with clang's libFuzzer (tests/fuzz/meson.build, scripts/fuzz.sh 600 fuzz_query) and
 * with replay.c in every build (tests/c/meson.build), over tests/fuzz/query_seeds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query_lang.h"
#include "text_sanitize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void violated(int line, const char *what, const char *text) {
    fprintf(stderr, "fuzz_query.c:%d: contract broken: %s\n  input: \"%.300s\"\n", line, what,
            text);
    abort();
}

#define REQUIRE(cond, text)                                                                        \
  do {                                                                                             \
    if (!(cond)) violated(__LINE__, #cond, text);                                                  \
  } while (0)

static const char *const dists[] = {"dist.latency", "trace.http.request.duration"};
static const char *const stat_names[] = {"avg", "min", "max", "sum"};

/* ---------------------------------------------------------------------------------------------
 * References, written apart from the code under test.
 */

/* Brackets balanced once quoted strings (pairs of ' or ", left to right) are taken out. */
static int ref_balanced(const char *t) {
    long brace = 0, paren = 0;
    for (const char *p = t; *p; p++) {
        if (*p == '\'' || *p == '"') {
            const char *close = strchr(p + 1, *p);
            if (close == NULL) return 1; /* an unterminated string: refused for that anyway */
            p = close;
            continue;
        }
        brace += *p == '{';
        brace -= *p == '}';
        paren += *p == '(';
        paren -= *p == ')';
        if (brace < 0 || paren < 0) return 0;
    }
    return brace == 0 && paren == 0;
}

static int ref_has_control(const char *t) {
    for (const char *p = t; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return 1;
    }
    return 0;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* ---------------------------------------------------------------------------------------------
 * The checks.
 */

static void check_refusal(const char *text, const dds_query_error *e) {
    size_t n = strlen(text);
    REQUIRE(e->offset <= n, text);
    REQUIRE(strncmp(e->message, "at character ", 13) == 0, text);
    REQUIRE(dds_utf8_valid(e->message, strlen(e->message)), text);
    int lines = 0;
    for (const char *p = e->message; *p; p++) {
        REQUIRE((unsigned char)*p >= 0x20 || *p == '\n', text);
        lines += *p == '\n';
    }
    REQUIRE(lines == 2, text);
    size_t len = strlen(e->message);
    REQUIRE(len > 0 && e->message[len - 1] == '^', text);
}

static void check_subquery_text(const char *text, const char *sq) {
    REQUIRE(sq != NULL && sq[0] != 0, text);
    REQUIRE(dds_utf8_valid(sq, strlen(sq)), text);
    for (const char *p = sq; *p; p++) REQUIRE((unsigned char)*p >= 0x20 && *p != 0x7f, text);
    REQUIRE(strstr(sq, ".rollup(") != NULL, text);
}

static void check_idempotent(const char *text, const char *sq, const dds_query_options *o) {
    dds_compiled_query *again = NULL;
    size_t n = 0;
    dds_query_error e;
    ddstream_status st = dds_query_compile_all(sq, o, &again, &n, &e);
    if (strlen(sq) > 4000) {
        /* The rollups added can take a query past the bound on what users write; what is sent
         * is not bound by it (the request packing has its own URI budget). */
        REQUIRE(st == DDSTREAM_E_CONFIG && e.offset == 4000, text);
        return;
    }
    REQUIRE(st == DDSTREAM_OK, text);
    REQUIRE(n == 1 && again[0].value_only && again[0].subquery_count == 1, text);
    REQUIRE(strcmp(again[0].subqueries[0].text, sq) == 0, text);
    dds_compiled_queries_free(again, n);
}

static void check_accepted(const char *text, const dds_compiled_query *q, size_t n,
                           const dds_query_options *o) {
    uint32_t mask = o->statistics ? o->statistics : 15u;
    REQUIRE(n >= 1, text);
    for (size_t k = 0; k < n; k++) {
        const dds_compiled_query *c = &q[k];
        REQUIRE(c->source != NULL && c->source[0] != 0, text);
        REQUIRE(!is_space(c->source[0]) && !is_space(c->source[strlen(c->source) - 1]), text);
        REQUIRE(strstr(text, c->source) != NULL, text);
        if (c->grouped) {
            const char *s = c->source;
            REQUIRE(strchr(s, '{') != NULL, text);
            int by = 0;
            for (size_t i = 0; s[i] && s[i + 1]; i++) by |= strncasecmp(s + i, "by", 2) == 0;
            REQUIRE(by, text);
        }
        REQUIRE((c->value_only != 0) == (c->value_reason != NULL), text);
        if (c->value_only) {
            REQUIRE(c->subquery_count == 1 && c->subqueries[0].stat == DDS_STAT_VALUE, text);
        } else {
            size_t j = 0;
            for (int s = 0; s < 4; s++) {
                if (!(mask & (1u << s))) continue;
                REQUIRE(j < c->subquery_count && c->subqueries[j].stat == s, text);
                char want[16];
                snprintf(want, sizeof want, ".rollup(%s,", stat_names[s]);
                REQUIRE(strstr(c->subqueries[j].text, want) != NULL, text);
                j++;
            }
            REQUIRE(j == c->subquery_count, text);
        }
        for (size_t j = 0; j < c->subquery_count; j++) {
            check_subquery_text(text, c->subqueries[j].text);
            check_idempotent(text, c->subqueries[j].text, o);
        }
    }
}

static void check_canonical(const char *text, const dds_compiled_query *q, size_t n,
                            const dds_query_options *o) {
    char *canon = NULL, *canon2 = NULL;
    dds_query_error e;
    REQUIRE(dds_query_canonical(text, &canon, &e) == DDSTREAM_OK, text);
    if (strlen(canon) > 4000) {
        /* Single spaces around operators can take a compact text past the bound. */
        REQUIRE(dds_query_canonical(canon, &canon2, &e) == DDSTREAM_E_CONFIG && e.offset == 4000,
                text);
        free(canon);
        return;
    }
    REQUIRE(dds_query_canonical(canon, &canon2, &e) == DDSTREAM_OK, text);
    REQUIRE(strcmp(canon, canon2) == 0, text);
    dds_compiled_query *again = NULL;
    size_t m = 0;
    REQUIRE(dds_query_compile_all(canon, o, &again, &m, &e) == DDSTREAM_OK && m == n, text);
    for (size_t k = 0; k < n; k++) {
        REQUIRE(again[k].subquery_count == q[k].subquery_count, text);
        REQUIRE(again[k].grouped == q[k].grouped, text);
        for (size_t j = 0; j < q[k].subquery_count; j++)
            REQUIRE(strcmp(again[k].subqueries[j].text, q[k].subqueries[j].text) == 0, text);
    }
    dds_compiled_queries_free(again, m);
    free(canon);
    free(canon2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    static const int64_t grains[] = {60, 1, 3600, 86400};
    dds_query_options o;
    memset(&o, 0, sizeof o);
    o.statistics = data[0] & 15u;
    if (data[0] & 16u) {
        o.distribution_metrics = dists;
        o.distribution_metric_count = 2;
    }
    o.granularity = grains[(data[0] >> 5) & 3u];
    char *text = malloc(size);
    if (text == NULL) abort();
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0; /* up to the first NUL: what a C caller can pass */

    dds_compiled_query *q = NULL;
    size_t n = 12345;
    dds_query_error e;
    ddstream_status st = dds_query_compile_all(text, &o, &q, &n, &e);
    REQUIRE(st == DDSTREAM_OK || st == DDSTREAM_E_CONFIG, text);
    char *canon = NULL;
    dds_query_error ce;
    ddstream_status cst = dds_query_canonical(text, &canon, &ce);
    REQUIRE(cst == DDSTREAM_OK || cst == DDSTREAM_E_CONFIG, text);
    if (st == DDSTREAM_OK) {
        REQUIRE(ref_balanced(text) && !ref_has_control(text) && strlen(text) <= 4000, text);
        REQUIRE(cst == DDSTREAM_OK, text);
        check_accepted(text, q, n, &o);
        check_canonical(text, q, n, &o);
        dds_compiled_queries_free(q, n);
    } else {
        REQUIRE(q == NULL && n == 0, text);
        check_refusal(text, &e);
        if (cst != DDSTREAM_OK) {
            REQUIRE(ce.offset == e.offset && strcmp(ce.message, e.message) == 0, text);
        } else {
            REQUIRE(strstr(e.message, "rollup interval") != NULL, text);
        }
    }
    free(canon);
    free(text);
    return 0;
}
