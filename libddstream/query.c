/*
 * query.c — the user's metric query: what shapes ddstream accepts, whether it is grouped, and the
 * four-rollup query it sends. Today a walk over brackets; the place for a parser of the Datadog
 * query language when one is needed.
 */
#include "query.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text_sanitize.h"

/* Longest query accepted: far beyond any real one, short enough to keep four copies small. */
#define QUERY_MAX_LEN 4000

/* Case-insensitive search for needle in hay. */
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

/*
 * Walk the query once, tracking {} and () depth: ddstream appends ".rollup(...)" to the whole
 * query and joins four copies with commas, so a top-level comma or unbalanced brackets would
 * change what the server sees. Returns NULL if fine, else a message.
 */
static const char *query_shape_error(const char *q) {
    int brace = 0, paren = 0;
    for (const char *p = q; *p; p++) {
        switch (*p) {
        case '{': brace++; break;
        case '}':
            if (--brace < 0) return "query has a '}' without a matching '{'";
            break;
        case '(': paren++; break;
        case ')':
            if (--paren < 0) return "query has a ')' without a matching '('";
            break;
        case ',':
            if (brace == 0 && paren == 0)
                return "query must be a single expression: a top-level ',' would join several "
                       "queries";
            break;
        default: break;
        }
    }
    if (brace) return "query has an unclosed '{'";
    if (paren) return "query has an unclosed '('";
    return NULL;
}

const char *dds_query_problem(const char *q) {
    if (!q || dds_str_is_blank(q))
        return "query is empty: set a metric query such as 'avg:system.cpu.user{*}'";
    if (strlen(q) > QUERY_MAX_LEN) return "query is longer than 4000 characters";
    if (dds_str_has_control_chars(q)) return "query contains control characters";
    if (find_ci(q, ".rollup(") || find_ci(q, "rollup("))
        return "query must not contain rollup(): ddstream adds the avg/min/max/sum rollups at the "
               "granularity";
    return query_shape_error(q);
}

int dds_query_is_grouped(const char *q) {
    int brace = 0, paren = 0;
    for (const char *p = q; *p; p++) {
        if (*p == '{') brace++;
        else if (*p == '}') brace--;
        else if (*p == '(') paren++;
        else if (*p == ')') paren--;
        else if (brace == 0 && (p[0] == 'b' || p[0] == 'B') && (p[1] == 'y' || p[1] == 'Y') &&
                 (p == q || isspace((unsigned char)p[-1]) || p[-1] == '}' || p[-1] == ')')) {
            const char *r = p + 2;
            while (isspace((unsigned char)*r)) r++;
            if (*r == '{') return 1;
        }
    }
    return 0;
}

char *dds_rollup_query(const char *query, int64_t g) {
    static const char *const methods[4] = {"avg", "min", "max", "sum"};
    size_t qlen = strlen(query);
    size_t cap = 4 * (qlen + 40) + 1;
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t used = 0;
    for (int i = 0; i < 4; i++) {
        int n = snprintf(out + used, cap - used, "%s%s.rollup(%s,%" PRId64 ")", i ? "," : "", query,
                         methods[i], g);
        if (n < 0 || (size_t)n >= cap - used) {
            free(out);
            return NULL;
        }
        used += (size_t)n;
    }
    return out;
}
