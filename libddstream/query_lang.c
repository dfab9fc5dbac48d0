/*
 * query_lang.c — PROVISIONAL stand-in for the query-language parser (replaced at merge by the
 * real one, which keeps query_lang.h). It implements the header's contract with the simplest
 * rules, enough to build and test several queries per stream on top of it:
 *   - split at top-level commas (commas inside {} or () do not split); unbalanced brackets are
 *     errors pointing at the bracket;
 *   - a query with a `pNN:` aggregator or its own `.rollup(` is value-only: one sub-query, its own
 *     rollup kept (an interval missing is filled with the granularity), else `.rollup(avg,g)`
 *     appended;
 *   - any other query: the whole expression with `.rollup(s,g)` appended, one per statistic in
 *     the mask (right for a single metric term, which is all this stand-in promises);
 *   - distribution_metrics are not looked at.
 */
#include "query_lang.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define QUERY_MAX_LEN 4000

static const char *const stat_names[4] = {"avg", "min", "max", "sum"};

/* "at character N: <what>" and a caret line under the offending character. */
static ddstream_status fail_at(dds_query_error *err, const char *text, size_t offset,
                               const char *what) {
    if (!err) return DDSTREAM_E_CONFIG;
    size_t len = strlen(text);
    size_t from = offset > 30 ? offset - 30 : 0;
    size_t to = from + 60 < len ? from + 60 : len;
    char excerpt[64];
    size_t n = 0;
    for (size_t i = from; i < to && n < sizeof excerpt - 1; i++)
        excerpt[n++] = (text[i] >= 0x20 && text[i] != 0x7f) ? text[i] : ' ';
    excerpt[n] = 0;
    char caret[64];
    size_t c = offset - from < sizeof caret - 2 ? offset - from : sizeof caret - 2;
    memset(caret, ' ', c);
    caret[c] = '^';
    caret[c + 1] = 0;
    err->offset = offset;
    dds_set_msg(err->message, sizeof err->message, "at character %zu: %s\n  %s\n  %s", offset + 1,
                what, excerpt, caret);
    return DDSTREAM_E_CONFIG;
}

static int is_blank_range(const char *s, size_t a, size_t b) {
    for (size_t i = a; i < b; i++)
        if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

static const char *find_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n) return hay;
    }
    return NULL;
}

/* A percentile aggregator: "p" digits ["." digits] ":" at the start of a word. */
static int has_percentile(const char *q) {
    for (const char *p = q; *p; p++) {
        if ((*p != 'p' && *p != 'P') ||
            (p > q && (isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == '.')))
            continue;
        const char *r = p + 1;
        if (!isdigit((unsigned char)*r)) continue;
        while (isdigit((unsigned char)*r)) r++;
        if (*r == '.' && isdigit((unsigned char)r[1])) {
            r++;
            while (isdigit((unsigned char)*r)) r++;
        }
        if (*r == ':') return 1;
    }
    return 0;
}

static int is_grouped(const char *q) {
    int brace = 0;
    for (const char *p = q; *p; p++) {
        if (*p == '{') brace++;
        else if (*p == '}') brace--;
        else if (brace == 0 && (p[0] == 'b' || p[0] == 'B') && (p[1] == 'y' || p[1] == 'Y') &&
                 (p == q || isspace((unsigned char)p[-1]) || p[-1] == '}' || p[-1] == ')')) {
            const char *r = p + 2;
            while (isspace((unsigned char)*r)) r++;
            if (*r == '{') return 1;
        }
    }
    return 0;
}

static char *printf_dup(const char *fmt, ...) DDS_PRINTF(1, 2);
static char *printf_dup(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* The user's own rollup, with the granularity filled in when it gives no interval. */
static char *own_rollup_filled(const char *q, int64_t g) {
    const char *r = find_ci(q, ".rollup(");
    const char *open = r + strlen(".rollup(");
    const char *close = strchr(open, ')');
    if (!close || memchr(open, ',', (size_t)(close - open))) return printf_dup("%s", q);
    return printf_dup("%.*s,%" PRId64 "%s", (int)(close - q), q, g, close);
}

static ddstream_status compile_one(const char *text, size_t a, size_t b,
                                   const dds_query_options *opt, dds_compiled_query *out) {
    while (a < b && isspace((unsigned char)text[a])) a++;
    while (b > a && isspace((unsigned char)text[b - 1])) b--;
    out->source = printf_dup("%.*s", (int)(b - a), text + a);
    if (!out->source) return DDSTREAM_E_NOMEM;
    const char *q = out->source;
    out->grouped = is_grouped(q);
    int pct = has_percentile(q), own = find_ci(q, ".rollup(") != NULL;
    if (pct || own) {
        out->value_only = 1;
        out->value_reason = own ? "has its own .rollup(): one value per bucket"
                                : "a pNN: percentile: one value per bucket";
        out->subquery_count = 1;
        out->subqueries[0].stat = DDS_STAT_VALUE;
        out->subqueries[0].text =
            own ? own_rollup_filled(q, opt->granularity)
                : printf_dup("%s.rollup(avg,%" PRId64 ")", q, opt->granularity);
        return out->subqueries[0].text ? DDSTREAM_OK : DDSTREAM_E_NOMEM;
    }
    uint32_t mask = opt->statistics ? opt->statistics : 0xFu;
    for (int s = 0; s < 4; s++) {
        if (!(mask & (1u << s))) continue;
        dds_subquery *sq = &out->subqueries[out->subquery_count++];
        sq->stat = s;
        sq->text = printf_dup("%s.rollup(%s,%" PRId64 ")", q, stat_names[s], opt->granularity);
        if (!sq->text) return DDSTREAM_E_NOMEM;
    }
    return DDSTREAM_OK;
}

ddstream_status dds_query_compile_all(const char *text, const dds_query_options *opt,
                                      dds_compiled_query **out, size_t *count,
                                      dds_query_error *err) {
    *out = NULL;
    *count = 0;
    if (!text || is_blank_range(text, 0, strlen(text)))
        return fail_at(err, text ? text : "", 0,
                       "the query is empty: write a metric query such as avg:system.cpu.user{*}");
    size_t len = strlen(text);
    if (len > QUERY_MAX_LEN)
        return fail_at(err, text, QUERY_MAX_LEN, "the query is longer than 4000 characters");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            return fail_at(err, text, i, "control character in the query");

    /* Split at top-level commas; every bracket matched. */
    size_t starts[QUERY_MAX_LEN / 2 + 2], nparts = 0;
    char stack[QUERY_MAX_LEN];
    size_t where[QUERY_MAX_LEN], depth = 0;
    starts[nparts++] = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '{' || c == '(') {
            stack[depth] = c;
            where[depth++] = i;
        } else if (c == '}' || c == ')') {
            char want = c == '}' ? '{' : '(';
            if (depth == 0 || stack[depth - 1] != want) {
                char what[120];
                snprintf(what, sizeof what, "'%c' without a matching '%c'", c, want);
                return fail_at(err, text, i, what);
            }
            depth--;
        } else if (c == ',' && depth == 0) {
            starts[nparts++] = i + 1;
        }
    }
    if (depth) {
        char what[120];
        int brace = stack[depth - 1] == '{';
        snprintf(what, sizeof what, "expected '%c' to close the %s opened at character %zu",
                 brace ? '}' : ')', brace ? "scope" : "parenthesis", where[depth - 1] + 1);
        return fail_at(err, text, len, what);
    }
    for (size_t k = 0; k < nparts; k++) {
        size_t a = starts[k], b = k + 1 < nparts ? starts[k + 1] - 1 : len;
        if (is_blank_range(text, a, b))
            return fail_at(err, text, b < len ? b : (a > 0 ? a - 1 : 0),
                           "empty query between commas");
    }
    dds_compiled_query *qs = calloc(nparts, sizeof *qs);
    if (!qs) return DDSTREAM_E_NOMEM;
    for (size_t k = 0; k < nparts; k++) {
        size_t a = starts[k], b = k + 1 < nparts ? starts[k + 1] - 1 : len;
        if (compile_one(text, a, b, opt, &qs[k]) != DDSTREAM_OK) {
            dds_compiled_queries_free(qs, nparts);
            return DDSTREAM_E_NOMEM;
        }
    }
    *out = qs;
    *count = nparts;
    return DDSTREAM_OK;
}

void dds_compiled_queries_free(dds_compiled_query *q, size_t count) {
    if (!q) return;
    for (size_t k = 0; k < count; k++) {
        free(q[k].source);
        for (size_t i = 0; i < 4; i++) free(q[k].subqueries[i].text);
    }
    free(q);
}
