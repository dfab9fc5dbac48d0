/*
 * query_lang.c — the Datadog metric query language: a recursive-descent parser into a small AST
 * (kept in one arena per call), the checks Datadog's documentation states, and the printer that
 * writes each query's sub-queries: one per statistic with `.rollup(<s>,g)` on every metric term,
 * or one value-only sub-query. docs/queries.md is the reference for the grammar and the rewriting
 * table; the comments below say why where the docs leave a choice.
 */
#include "query_lang.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "strparse.h"
#include "text_sanitize.h"

/* Nesting of parentheses, functions and unary minus: deep enough for any real query, shallow
 * enough that the recursion cannot exhaust a thread's stack. */
#define MAX_DEPTH 64
/* Parentheses inside one scope's boolean filter. */
#define MAX_SCOPE_DEPTH 16
/* Arguments a function may be given (Datadog's take at most four). */
#define MAX_ARGS 8
/* Datadog's limit on metric names. */
#define MAX_METRIC_NAME 200
/* Largest rollup interval accepted: the library's bound on spans of time. */
#define MAX_INTERVAL INT64_C(1000000000000)
/* .fill()'s limit: "maximum=600" (Datadog's interpolation docs). */
#define MAX_FILL_LIMIT 600

/* ---------------------------------------------------------------------------------------------
 * The arena.
 */

typedef struct ablock {
    struct ablock *next;
    size_t used, cap;
    max_align_t data[];
} ablock;

typedef struct arena {
    ablock *head;
} arena;

static void *arena_alloc(arena *a, size_t n) {
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (a->head == NULL || a->head->used + n > a->head->cap) {
        size_t cap = n > 4096 ? n : 4096;
        ablock *b = malloc(sizeof(ablock) + cap);
        if (b == NULL) return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = (char *)a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

static void arena_free(arena *a) {
    while (a->head) {
        ablock *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

/* ---------------------------------------------------------------------------------------------
 * The AST.
 */

/* N_REF: a v2 formula's reference to a named query (text, len: the name). */
enum { N_NUM, N_STR, N_METRIC, N_FUNC, N_BIN, N_NEG, N_REF };
enum { M_ROLLUP, M_AS_COUNT, M_AS_RATE, M_FILL, M_WEIGHTED };
enum { A_QUERY = 1, A_EXPR, A_NUM, A_STR, A_TOPN, A_TOPBY, A_DIR, A_INTERVAL, A_ROLLAGG };
enum { F_PLAIN = 0, F_SELECT = 1, F_COLLAPSE = 2 };

typedef struct qmod {
    int kind;
    size_t off;         /* of the '.' */
    const char *method; /* rollup or fill method, lower case; NULL when absent */
    int64_t num;        /* rollup interval or fill limit */
    int has_num;
    size_t num_off;
} qmod;

typedef struct func_spec {
    const char *name;
    uint8_t min_args, max_args, cls;
    uint8_t kinds[4];
} func_spec;

typedef struct qnode qnode;
struct qnode {
    int kind;
    size_t off;
    /* N_NUM, N_STR: the literal as written (strings with their quotes) */
    const char *text;
    size_t len;
    /* N_METRIC */
    const char *agg; /* lower case, NULL when the term has none */
    size_t agg_off;
    const char *metric;
    const char *scope; /* canonical filter text, without braces */
    const char *by;    /* canonical tag list, without braces; NULL when absent */
    qmod mods[4];
    size_t nmods;
    int percentile, distribution;
    /* N_FUNC */
    const func_spec *fn;
    const char *fname; /* lower case */
    qnode **args;
    size_t nargs;
    /* N_BIN, N_NEG */
    char op;
    qnode *l, *r;
};

/* Datadog's functions (docs.datadoghq.com/dashboards/functions/...) and their arguments. The
 * top/bottom convenience family ([top|bottom][5|10|15|20][_mean|...]) is matched apart. */
static const func_spec functions[] = {
    {"abs", 1, 1, F_PLAIN, {A_QUERY}},
    {"log2", 1, 1, F_PLAIN, {A_QUERY}},
    {"log10", 1, 1, F_PLAIN, {A_QUERY}},
    {"cumsum", 1, 1, F_PLAIN, {A_QUERY}},
    {"integral", 1, 1, F_PLAIN, {A_QUERY}},
    {"pow", 2, 2, F_PLAIN, {A_EXPR, A_EXPR}},
    {"per_second", 1, 1, F_PLAIN, {A_QUERY}},
    {"per_minute", 1, 1, F_PLAIN, {A_QUERY}},
    {"per_hour", 1, 1, F_PLAIN, {A_QUERY}},
    {"dt", 1, 1, F_COLLAPSE, {A_QUERY}},
    {"diff", 1, 1, F_PLAIN, {A_QUERY}},
    {"monotonic_diff", 1, 1, F_PLAIN, {A_QUERY}},
    {"derivative", 1, 1, F_PLAIN, {A_QUERY}},
    {"throughput", 1, 1, F_PLAIN, {A_QUERY}},
    {"timeshift", 2, 2, F_PLAIN, {A_QUERY, A_NUM}},
    {"calendar_shift", 2, 3, F_PLAIN, {A_QUERY, A_STR, A_STR}},
    {"hour_before", 1, 1, F_PLAIN, {A_QUERY}},
    {"day_before", 1, 1, F_PLAIN, {A_QUERY}},
    {"week_before", 1, 1, F_PLAIN, {A_QUERY}},
    {"month_before", 1, 1, F_PLAIN, {A_QUERY}},
    {"top", 4, 4, F_SELECT, {A_QUERY, A_TOPN, A_TOPBY, A_DIR}},
    {"anomalies", 2, 3, F_SELECT, {A_QUERY, A_STR, A_NUM}},
    {"outliers", 3, 4, F_SELECT, {A_QUERY, A_STR, A_NUM, A_NUM}},
    {"forecast", 3, 3, F_SELECT, {A_QUERY, A_STR, A_NUM}},
    {"robust_trend", 1, 1, F_PLAIN, {A_QUERY}},
    {"trend_line", 1, 1, F_PLAIN, {A_QUERY}},
    {"piecewise_constant", 1, 1, F_PLAIN, {A_QUERY}},
    {"autosmooth", 1, 1, F_PLAIN, {A_QUERY}},
    {"ewma_3", 1, 1, F_PLAIN, {A_QUERY}},
    {"ewma_5", 1, 1, F_PLAIN, {A_QUERY}},
    {"ewma_7", 1, 1, F_PLAIN, {A_QUERY}},
    {"ewma_10", 1, 1, F_PLAIN, {A_QUERY}},
    {"ewma_20", 1, 1, F_PLAIN, {A_QUERY}},
    {"median_3", 1, 1, F_PLAIN, {A_QUERY}},
    {"median_5", 1, 1, F_PLAIN, {A_QUERY}},
    {"median_7", 1, 1, F_PLAIN, {A_QUERY}},
    {"median_9", 1, 1, F_PLAIN, {A_QUERY}},
    {"count_nonzero", 1, 1, F_COLLAPSE, {A_QUERY}},
    {"count_nonzero_finite", 1, 1, F_COLLAPSE, {A_QUERY}},
    {"count_not_null", 1, 1, F_COLLAPSE, {A_QUERY}},
    {"exclude_null", 1, 1, F_PLAIN, {A_QUERY}},
    {"clamp_min", 2, 2, F_PLAIN, {A_QUERY, A_NUM}},
    {"clamp_max", 2, 2, F_PLAIN, {A_QUERY, A_NUM}},
    {"cutoff_min", 2, 2, F_PLAIN, {A_QUERY, A_NUM}},
    {"cutoff_max", 2, 2, F_PLAIN, {A_QUERY, A_NUM}},
    {"default_zero", 1, 1, F_PLAIN, {A_QUERY}},
    {"moving_rollup", 2, 3, F_PLAIN, {A_QUERY, A_INTERVAL, A_ROLLAGG}},
    {"rollingavg_5", 1, 1, F_PLAIN, {A_QUERY}},
    {"rollingavg_13", 1, 1, F_PLAIN, {A_QUERY}},
    {"rollingavg_21", 1, 1, F_PLAIN, {A_QUERY}},
    {"rollingavg_29", 1, 1, F_PLAIN, {A_QUERY}},
};

static const func_spec rank_family = {"top/bottom", 1, 1, F_SELECT, {A_QUERY}};

/* ---------------------------------------------------------------------------------------------
 * The parser.
 */

typedef struct parser {
    const char *s;
    size_t n, i;
    arena a;
    int depth;
    int failed, nomem;
    dds_query_error *err;
    /* Formula mode (dds_formula_compile): names are references to these queries, not metrics. */
    const char *const *refs;
    size_t ref_count;
    unsigned char *ref_used;
} parser;

/* Characters (UTF-8 sequences; a stray byte counts as one) in s[from..to). */
static size_t count_chars(const char *s, size_t from, size_t to) {
    size_t c = 0;
    while (from < to) {
        size_t k = dds_utf8_seq((const unsigned char *)s + from, to - from);
        from += k ? k : 1;
        c++;
    }
    return c;
}

static int is_cont(unsigned char c) { return c >= 0x80 && c <= 0xBF; }

/* "at character N: what\n  excerpt\n  ^" with the excerpt at most 60 bytes around off. */
static void write_error(dds_query_error *e, const char *s, size_t n, size_t off, const char *what) {
    e->offset = off;
    size_t start = off > 30 ? off - 30 : 0;
    while (start < off && is_cont((unsigned char)s[start])) start++;
    size_t end = start + 60 < n ? start + 60 : n;
    while (end > off && end < n && is_cont((unsigned char)s[end])) end--;
    char excerpt[200];
    size_t x = 0, col = 0;
    if (start > 0) {
        memcpy(excerpt, "...", 3);
        x = 3;
        col = 3;
    }
    for (size_t i = start; i < end && x + 8 < sizeof excerpt;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = dds_utf8_seq((const unsigned char *)s + i, end - i);
        if (k == 0) {
            excerpt[x++] = '?';
            k = 1;
        } else if (c < 0x20 || c == 0x7f) {
            excerpt[x++] = ' ';
        } else {
            memcpy(excerpt + x, s + i, k);
            x += k;
        }
        if (i < off) col++;
        i += k;
    }
    if (end < n && x + 3 < sizeof excerpt) {
        memcpy(excerpt + x, "...", 3);
        x += 3;
    }
    excerpt[x] = 0;
    if (col > 100) col = 100;
    snprintf(e->message, sizeof e->message, "at character %zu: %s\n  %s\n  %*s^",
             count_chars(s, 0, off) + 1, what, excerpt, (int)col, "");
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
fail(parser *p, size_t off, const char *fmt, ...) {
    if (p->failed) return;
    p->failed = 1;
    if (off > p->n) off = p->n;
    char what[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    write_error(p->err, p->s, p->n, off, what);
}

static void *p_alloc(parser *p, size_t n) {
    void *r = arena_alloc(&p->a, n);
    if (r == NULL) {
        p->nomem = 1;
        p->failed = 1;
    }
    return r;
}

static char *p_strdup(parser *p, const char *s, size_t n, int lower) {
    char *r = p_alloc(p, n + 1);
    if (r == NULL) return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        r[i] = (char)(lower && c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    r[n] = 0;
    return r;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_ident(char c) { return is_alpha(c) || is_digit(c) || c == '_'; }

static void skip_ws(parser *p) {
    while (p->i < p->n && is_ws(p->s[p->i])) p->i++;
}

static char peek(parser *p) { return p->i < p->n ? p->s[p->i] : 0; }

/* Case-insensitive equality of s[0..n) with word (lower case). */
static int word_is(const char *s, size_t n, const char *word) {
    return strlen(word) == n && dds_starts_with_ci(s, n, word);
}

/* A name: [A-Za-z_][A-Za-z0-9_.]* (periods for metric names). Returns its length. */
static size_t lex_name(parser *p) {
    size_t j = p->i;
    if (j >= p->n || !(is_alpha(p->s[j]) || p->s[j] == '_')) return 0;
    while (j < p->n && (is_ident(p->s[j]) || p->s[j] == '.')) j++;
    return j - p->i;
}

/* What is at off, for a message: the character, or what kind of thing it is. */
static const char *describe(parser *p, size_t off, char *buf, size_t cap) {
    if (off >= p->n) return "the end of the query";
    unsigned char c = (unsigned char)p->s[off];
    if (c >= 0x80) return "a non-ASCII character";
    snprintf(buf, cap, "'%c'", c);
    return buf;
}

static void expected(parser *p, const char *what) {
    char b[8];
    fail(p, p->i, "expected %s, found %s", what, describe(p, p->i, b, sizeof b));
}

/* Positive decimal integer (digits only) at s[off..off+len). -1 when not one or over max. */
static int64_t int_literal(const char *s, size_t len, int64_t max) {
    if (len == 0 || len > 19) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i])) return -1;
        v = v * 10 + (s[i] - '0');
        if (v > max) return -1;
    }
    return v;
}

/* ----- numbers and strings ----- */

static size_t lex_number(const char *s, size_t n, size_t i) {
    size_t j = i, digits = 0;
    while (j < n && is_digit(s[j])) j++, digits++;
    if (j < n && s[j] == '.') {
        size_t k = j + 1, frac = 0;
        while (k < n && is_digit(s[k])) k++, frac++;
        if (frac) {
            j = k;
            digits += frac;
        }
    }
    if (digits == 0) return 0;
    if (j < n && (s[j] == 'e' || s[j] == 'E')) {
        size_t k = j + 1;
        if (k < n && (s[k] == '+' || s[k] == '-')) k++;
        size_t e = 0;
        while (k < n && is_digit(s[k])) k++, e++;
        if (e) j = k;
    }
    return j - i;
}

static qnode *new_node(parser *p, int kind, size_t off) {
    qnode *q = p_alloc(p, sizeof *q);
    if (q) {
        q->kind = kind;
        q->off = off;
    }
    return q;
}

static qnode *parse_number(parser *p) {
    size_t len = lex_number(p->s, p->n, p->i);
    if (len == 0) {
        expected(p, "a number");
        return NULL;
    }
    size_t end = p->i + len;
    if (end < p->n && (is_ident(p->s[end]) || p->s[end] == '.')) {
        char b[8];
        fail(p, end, "unexpected %s after the number", describe(p, end, b, sizeof b));
        return NULL;
    }
    qnode *q = new_node(p, N_NUM, p->i);
    if (q == NULL) return NULL;
    q->text = p->s + p->i;
    q->len = len;
    p->i = end;
    return q;
}

static qnode *parse_string(parser *p) {
    char quote = p->s[p->i];
    size_t start = p->i, j = p->i + 1;
    while (j < p->n && p->s[j] != quote) {
        /* A line break or tab in a string would reach the sub-query sent as it is. */
        if ((unsigned char)p->s[j] < 0x20) {
            fail(p, j, "a string cannot hold a line break or a tab");
            return NULL;
        }
        j++;
    }
    if (j >= p->n) {
        fail(p, start, "unterminated string: no closing %c", quote);
        return NULL;
    }
    qnode *q = new_node(p, N_STR, start);
    if (q == NULL) return NULL;
    q->text = p->s + start;
    q->len = j + 1 - start;
    p->i = j + 1;
    return q;
}

/* ----- scopes: {*}, {a:b,!c:d} or {a:b AND (c:d OR NOT e IN (f, g))} ----- */

typedef struct scope_parser {
    parser *p;
    dds_strbuf out;
    int boolean; /* 1: AND/OR/NOT/IN seen; 0: ',' or '!' seen; -1: neither yet */
    size_t symbol_off, keyword_off;
    int depth;
} scope_parser;

static int is_tag_char(unsigned char c) { return c > 0x20 && c != 0x7f && !strchr("{}(),!'\"", c); }

/* A tag token at p->i: returns its length (0 when none). */
static size_t lex_tag(parser *p) {
    size_t j = p->i;
    while (j < p->n && is_tag_char((unsigned char)p->s[j])) j++;
    return j - p->i;
}

static int scope_keyword(const char *s, size_t n) {
    if (word_is(s, n, "and")) return 'A';
    if (word_is(s, n, "or")) return 'O';
    if (word_is(s, n, "not")) return 'N';
    if (word_is(s, n, "in")) return 'I';
    return 0;
}

/* The symbol form (',' and '!') and the keyword form (AND, OR, NOT, IN) cannot be mixed. */
static void scope_form(scope_parser *sp, int boolean, size_t off) {
    if (sp->boolean == -1) {
        sp->boolean = boolean;
        if (boolean) sp->keyword_off = off;
        else sp->symbol_off = off;
        return;
    }
    if (sp->boolean != boolean)
        fail(sp->p, off,
             "the symbols '!' and ',' cannot be mixed with AND, OR, NOT and IN in one scope");
}

static void scope_or(scope_parser *sp);

/* tag, tag IN (v, ...), tag NOT IN (...), NOT x, (x) */
static void scope_primary(scope_parser *sp) {
    parser *p = sp->p;
    skip_ws(p);
    if (p->failed) return;
    char c = peek(p);
    if (c == '(') {
        if (++sp->depth > MAX_SCOPE_DEPTH) {
            fail(p, p->i, "parentheses in the scope nested more than %d deep", MAX_SCOPE_DEPTH);
            return;
        }
        size_t open = p->i;
        scope_form(sp, 1, p->i);
        p->i++;
        dds_strbuf_putc(&sp->out, '(');
        scope_or(sp);
        skip_ws(p);
        if (p->failed) return;
        if (peek(p) != ')') {
            char b[8];
            fail(p, p->i, "expected ')' to close the '(' at character %zu, found %s",
                 count_chars(p->s, 0, open) + 1, describe(p, p->i, b, sizeof b));
            return;
        }
        p->i++;
        sp->depth--;
        dds_strbuf_putc(&sp->out, ')');
        return;
    }
    size_t len = lex_tag(p);
    if (len == 0) {
        if (c == '}' || c == 0 || c == ')' || c == ',')
            fail(p, p->i, "expected a tag such as host:web-1, found %s",
                 c == '}'   ? "'}'"
                 : c == ')' ? "')'"
                 : c == ',' ? "','"
                            : "the end of the query");
        else expected(p, "a tag such as host:web-1");
        return;
    }
    int kw = scope_keyword(p->s + p->i, len);
    if (kw == 'N') {
        scope_form(sp, 1, p->i);
        p->i += len;
        dds_strbuf_puts(&sp->out, "NOT ");
        scope_primary(sp);
        return;
    }
    if (kw) {
        fail(p, p->i, "expected a tag, found the keyword '%.*s'", (int)len, p->s + p->i);
        return;
    }
    if (len == 1 && p->s[p->i] == '*') {
        fail(p, p->i, "'*' stands alone: write {*} for every source, or a wildcard inside a tag");
        return;
    }
    size_t tag_off = p->i;
    const char *tag = p->s + p->i;
    p->i += len;
    /* [NOT] IN (values) after a tag key */
    size_t save = p->i;
    skip_ws(p);
    size_t l2 = lex_tag(p);
    int k2 = l2 ? scope_keyword(p->s + p->i, l2) : 0;
    int negated = 0;
    if (k2 == 'N') {
        size_t save2 = p->i;
        p->i += l2;
        skip_ws(p);
        size_t l3 = lex_tag(p);
        if (l3 && scope_keyword(p->s + p->i, l3) == 'I') {
            negated = 1;
            l2 = l3;
            k2 = 'I';
        } else {
            p->i = save2;
            k2 = 0;
        }
    }
    if (k2 != 'I') {
        p->i = save;
        dds_strbuf_putn(&sp->out, tag, len);
        return;
    }
    scope_form(sp, 1, p->i);
    if (memchr(tag, ':', len)) {
        fail(p, tag_off, "IN takes a tag key on its left (such as region), not a key:value tag");
        return;
    }
    p->i += l2;
    skip_ws(p);
    if (peek(p) != '(') {
        expected(p, "'(' and the values after IN");
        return;
    }
    p->i++;
    dds_strbuf_putn(&sp->out, tag, len);
    dds_strbuf_puts(&sp->out, negated ? " NOT IN (" : " IN (");
    for (int first = 1;; first = 0) {
        skip_ws(p);
        size_t vl = lex_tag(p);
        if (vl == 0) {
            expected(p, "a tag value");
            return;
        }
        if (!first) dds_strbuf_putc(&sp->out, ',');
        dds_strbuf_putn(&sp->out, p->s + p->i, vl);
        p->i += vl;
        skip_ws(p);
        if (peek(p) == ',') {
            p->i++;
            continue;
        }
        if (peek(p) == ')') {
            p->i++;
            break;
        }
        expected(p, "',' or ')' in the IN list");
        return;
    }
    dds_strbuf_putc(&sp->out, ')');
}

/* One item of the symbol form: [!]tag */
static void scope_item(scope_parser *sp) {
    parser *p = sp->p;
    skip_ws(p);
    if (peek(p) == '!') {
        scope_form(sp, 0, p->i);
        p->i++;
        dds_strbuf_putc(&sp->out, '!');
        if (is_ws(peek(p))) {
            fail(p, p->i, "'!' must be followed directly by the tag it excludes");
            return;
        }
    }
    scope_primary(sp);
}

static void scope_and(scope_parser *sp) {
    parser *p = sp->p;
    scope_item(sp);
    for (;;) {
        if (p->failed) return;
        skip_ws(p);
        size_t len = lex_tag(p);
        if (len == 0 || scope_keyword(p->s + p->i, len) != 'A') return;
        scope_form(sp, 1, p->i);
        p->i += len;
        dds_strbuf_puts(&sp->out, " AND ");
        scope_item(sp);
    }
}

static void scope_or(scope_parser *sp) {
    parser *p = sp->p;
    scope_and(sp);
    for (;;) {
        if (p->failed) return;
        skip_ws(p);
        size_t len = lex_tag(p);
        if (len == 0 || scope_keyword(p->s + p->i, len) != 'O') return;
        scope_form(sp, 1, p->i);
        p->i += len;
        dds_strbuf_puts(&sp->out, " OR ");
        scope_and(sp);
    }
}

/* At '{'. Returns the canonical filter (without braces), or NULL on error. */
static const char *parse_scope(parser *p) {
    size_t open = p->i;
    p->i++;
    skip_ws(p);
    if (peek(p) == '}') {
        fail(p, p->i, "empty scope '{}': write {*} for every source");
        return NULL;
    }
    scope_parser sp = {p, {0}, -1, 0, 0, 0};
    const char *result = NULL;
    if (peek(p) == '*') {
        size_t save = p->i;
        p->i++;
        skip_ws(p);
        if (peek(p) == '}') {
            p->i++;
            return "*";
        }
        if (peek(p) == 0) {
            fail(p, p->i, "expected '}' to close the scope opened at character %zu",
                 count_chars(p->s, 0, open) + 1);
            return NULL;
        }
        p->i = save;
    }
    for (;;) {
        scope_or(&sp);
        if (p->failed) goto out;
        skip_ws(p);
        char c = peek(p);
        if (c == ',') {
            scope_form(&sp, 0, p->i);
            if (p->failed) goto out;
            p->i++;
            dds_strbuf_putc(&sp.out, ',');
            continue;
        }
        if (c == '}') {
            p->i++;
            break;
        }
        if (c == 0) {
            fail(p, p->i, "expected '}' to close the scope opened at character %zu",
                 count_chars(p->s, 0, open) + 1);
            goto out;
        }
        size_t len = lex_tag(p);
        if (len) {
            fail(p, p->i, "expected ',', AND, OR or '}' between tags, found '%.*s'",
                 len > 40 ? 40 : (int)len, p->s + p->i);
            goto out;
        }
        char b[8];
        fail(p, p->i, "unexpected %s in the scope", describe(p, p->i, b, sizeof b));
        goto out;
    }
    if (sp.out.nomem) {
        p->nomem = p->failed = 1;
        goto out;
    }
    result = p_strdup(p, sp.out.p, sp.out.len, 0);
out:
    dds_strbuf_free(&sp.out);
    return result;
}

/* At the '{' after "by". Returns "a,b" or NULL. */
static const char *parse_by(parser *p) {
    size_t open = p->i;
    p->i++;
    dds_strbuf out = {0};
    const char *result = NULL;
    for (int first = 1;; first = 0) {
        skip_ws(p);
        if (first && peek(p) == '}') {
            fail(p, p->i, "empty 'by {}': name the tags to group by");
            goto out;
        }
        size_t len = lex_tag(p);
        if (len == 0) {
            if (peek(p) == 0)
                fail(p, p->i, "expected '}' to close the 'by {' opened at character %zu",
                     count_chars(p->s, 0, open) + 1);
            else expected(p, "a tag key to group by");
            goto out;
        }
        if (!first) dds_strbuf_putc(&out, ',');
        dds_strbuf_putn(&out, p->s + p->i, len);
        p->i += len;
        skip_ws(p);
        if (peek(p) == ',') {
            p->i++;
            continue;
        }
        if (peek(p) == '}') {
            p->i++;
            break;
        }
        if (peek(p) == 0)
            fail(p, p->i, "expected '}' to close the 'by {' opened at character %zu",
                 count_chars(p->s, 0, open) + 1);
        else expected(p, "',' or '}' in the 'by {}' list");
        goto out;
    }
    if (out.nomem) {
        p->nomem = p->failed = 1;
        goto out;
    }
    result = p_strdup(p, out.p, out.len, 0);
out:
    dds_strbuf_free(&out);
    return result;
}

/* ----- modifiers: .rollup(), .as_count(), .as_rate(), .fill(), .weighted() ----- */

static const char *const rollup_methods[] = {"avg", "sum", "min", "max", "count"};
static const char *const fill_methods[] = {"null", "zero", "linear", "last"};

static const char *match_word(const char *s, size_t n, const char *const *words, size_t count) {
    for (size_t k = 0; k < count; k++)
        if (word_is(s, n, words[k])) return words[k];
    return NULL;
}

/* A positive integer argument at p->i; returns -1 (and fails) when not one. */
static int64_t parse_int_arg(parser *p, const char *what, int64_t min, int64_t max,
                             size_t *off_out) {
    skip_ws(p);
    *off_out = p->i;
    size_t len = lex_number(p->s, p->n, p->i);
    if (len == 0) {
        char b[8];
        fail(p, p->i, "expected %s (whole seconds), found %s", what,
             describe(p, p->i, b, sizeof b));
        return -1;
    }
    int64_t v = int_literal(p->s + p->i, len, MAX_INTERVAL);
    if (v < 0) {
        fail(p, p->i, "%s must be a whole number of seconds, at most %lld", what,
             (long long)(max < MAX_INTERVAL ? max : MAX_INTERVAL));
        return -1;
    }
    if (v < min || v > max) {
        fail(p, p->i, "%s must be between %lld and %lld seconds", what, (long long)min,
             (long long)max);
        return -1;
    }
    p->i += len;
    return v;
}

static int expect_close(parser *p, const char *name) {
    skip_ws(p);
    if (peek(p) == ')') {
        p->i++;
        return 1;
    }
    char b[8];
    fail(p, p->i, "expected ')' to close .%s(, found %s", name, describe(p, p->i, b, sizeof b));
    return 0;
}

static void parse_modifier(parser *p, qnode *m) {
    size_t dot = p->i;
    p->i++;
    size_t len = lex_name(p);
    const char *name = p->s + p->i;
    int kind;
    if (word_is(name, len, "rollup")) kind = M_ROLLUP;
    else if (word_is(name, len, "as_count")) kind = M_AS_COUNT;
    else if (word_is(name, len, "as_rate")) kind = M_AS_RATE;
    else if (word_is(name, len, "fill")) kind = M_FILL;
    else if (word_is(name, len, "weighted")) kind = M_WEIGHTED;
    else {
        if (len == 0) fail(p, p->i, "expected a modifier name after '.'");
        else
            fail(p, p->i,
                 "unknown modifier '.%.*s()': Datadog's are .rollup(), .as_count(), .as_rate(), "
                 ".fill() and .weighted()",
                 len > 40 ? 40 : (int)len, name);
        return;
    }
    static const char *const names[] = {"rollup", "as_count", "as_rate", "fill", "weighted"};
    for (size_t k = 0; k < m->nmods; k++) {
        int other = m->mods[k].kind;
        if (other == kind || (kind == M_AS_COUNT && other == M_AS_RATE) ||
            (kind == M_AS_RATE && other == M_AS_COUNT)) {
            if (other == kind) fail(p, dot, "a second .%s() on the same metric term", names[kind]);
            else fail(p, dot, "a metric term takes .as_count() or .as_rate(), not both");
            return;
        }
    }
    p->i += len;
    skip_ws(p);
    if (peek(p) != '(') {
        fail(p, p->i, "expected '(' after .%s", names[kind]);
        return;
    }
    p->i++;
    qmod *mod = &m->mods[m->nmods];
    memset(mod, 0, sizeof *mod);
    mod->kind = kind;
    mod->off = dot;
    skip_ws(p);
    if (kind == M_ROLLUP) {
        size_t wl = lex_name(p);
        if (wl) {
            mod->method = match_word(p->s + p->i, wl, rollup_methods, 5);
            if (mod->method == NULL) {
                fail(p, p->i, "unknown rollup method '%.*s': avg, sum, min, max or count",
                     wl > 40 ? 40 : (int)wl, p->s + p->i);
                return;
            }
            p->i += wl;
            skip_ws(p);
            if (peek(p) == ',') {
                p->i++;
                mod->num = parse_int_arg(p, "the rollup interval", 1, MAX_INTERVAL, &mod->num_off);
                if (p->failed) return;
                mod->has_num = 1;
            }
        } else if (is_digit(peek(p))) {
            mod->num = parse_int_arg(p, "the rollup interval", 1, MAX_INTERVAL, &mod->num_off);
            if (p->failed) return;
            mod->has_num = 1;
        } else {
            char b[8];
            fail(p, p->i,
                 "expected a rollup method (avg, sum, min, max, count) or an interval, "
                 "found %s",
                 describe(p, p->i, b, sizeof b));
            return;
        }
    } else if (kind == M_FILL) {
        size_t wl = lex_name(p);
        mod->method = wl ? match_word(p->s + p->i, wl, fill_methods, 4) : NULL;
        if (mod->method == NULL) {
            if (wl)
                fail(p, p->i, "unknown fill method '%.*s': null, zero, linear or last",
                     wl > 40 ? 40 : (int)wl, p->s + p->i);
            else expected(p, "a fill method (null, zero, linear or last)");
            return;
        }
        p->i += wl;
        skip_ws(p);
        if (peek(p) == ',') {
            p->i++;
            mod->num = parse_int_arg(p, "the fill limit", 0, MAX_FILL_LIMIT, &mod->num_off);
            if (p->failed) return;
            mod->has_num = 1;
        }
    } else if (peek(p) != ')') {
        fail(p, p->i, ".%s() takes no arguments", names[kind]);
        return;
    }
    if (!expect_close(p, names[kind])) return;
    m->nmods++;
}

/* ----- expressions ----- */

static qnode *parse_expr(parser *p);

static int is_percentile(const char *s, size_t n) {
    /* p<1-2 digits>[.<1-2 digits>], between p1 and p99.99 ("any percentile ... with up to two
     * decimal points", Datadog's distributions docs) */
    if (n < 2 || (s[0] != 'p' && s[0] != 'P')) return 0;
    size_t i = 1, d = 0;
    while (i < n && is_digit(s[i])) i++, d++;
    if (d < 1 || d > 2 || (d == 2 && s[1] == '0')) return 0;
    int whole = 0;
    for (size_t k = 1; k < 1 + d; k++) whole = whole * 10 + (s[k] - '0');
    int frac_nonzero = 0;
    if (i < n) {
        if (s[i] != '.') return 0;
        size_t f = 0;
        for (i++; i < n && is_digit(s[i]); i++, f++)
            if (s[i] != '0') frac_nonzero = 1;
        if (f < 1 || f > 2 || i != n) return 0;
    }
    return whole > 0 || frac_nonzero;
}

static const char *const aggregators[] = {"avg", "min", "max", "sum", "count"};

/* [agg:]metric{scope} [by {tags}] [.modifier()...], at the start of the name. */
static qnode *parse_metric(parser *p, size_t name_len, int has_agg) {
    qnode *m = new_node(p, N_METRIC, p->i);
    if (m == NULL) return NULL;
    if (has_agg) {
        const char *a = p->s + p->i;
        m->agg_off = p->i;
        if (is_percentile(a, name_len)) {
            m->percentile = 1;
            m->agg = p_strdup(p, a, name_len, 1);
        } else {
            const char *known = match_word(a, name_len, aggregators, 5);
            if (known == NULL) {
                fail(p, p->i,
                     "unknown aggregator '%.*s:': avg, min, max, sum, count or a percentile such "
                     "as p99 or p99.9",
                     name_len > 40 ? 40 : (int)name_len, a);
                return NULL;
            }
            m->agg = known;
        }
        p->i += name_len + 1; /* and the ':' */
        skip_ws(p);
        name_len = lex_name(p);
        if (name_len == 0 || p->s[p->i] == '_') {
            char b[8];
            fail(p, p->i, "expected a metric name after '%s:', found %s", m->agg,
                 describe(p, p->i, b, sizeof b));
            return NULL;
        }
    }
    if (name_len > MAX_METRIC_NAME) {
        fail(p, p->i, "metric names are at most %d characters", MAX_METRIC_NAME);
        return NULL;
    }
    if (p->s[p->i + name_len - 1] == '.') {
        fail(p, p->i + name_len - 1, "a metric name cannot end with '.'");
        return NULL;
    }
    m->metric = p_strdup(p, p->s + p->i, name_len, 0);
    p->i += name_len;
    skip_ws(p);
    if (peek(p) != '{') {
        char b[8];
        fail(p, p->i, "expected '{' after the metric name (write {*} for every source), found %s",
             describe(p, p->i, b, sizeof b));
        return NULL;
    }
    m->scope = parse_scope(p);
    if (p->failed) return NULL;
    size_t save = p->i;
    skip_ws(p);
    size_t wl = lex_name(p);
    if (word_is(p->s + p->i, wl, "by")) {
        p->i += wl;
        skip_ws(p);
        if (peek(p) != '{') {
            expected(p, "'{' after 'by'");
            return NULL;
        }
        m->by = parse_by(p);
        if (p->failed) return NULL;
    } else {
        p->i = save;
    }
    for (;;) {
        save = p->i;
        skip_ws(p);
        if (peek(p) != '.') {
            p->i = save;
            break;
        }
        parse_modifier(p, m);
        if (p->failed) return NULL;
    }
    return m;
}

static const func_spec *find_function(const char *name, size_t n) {
    for (size_t k = 0; k < sizeof functions / sizeof functions[0]; k++)
        if (word_is(name, n, functions[k].name)) return &functions[k];
    /* [top|bottom][5|10|15|20][_mean|_min|_max|_last|_area|_l2norm|_norm] */
    size_t i;
    if (dds_starts_with_ci(name, n, "top")) i = 3;
    else if (dds_starts_with_ci(name, n, "bottom")) i = 6;
    else return NULL;
    static const char *const counts[] = {"5", "10", "15", "20"};
    static const char *const bys[] = {"",      "_mean", "_min",    "_max",
                                      "_last", "_area", "_l2norm", "_norm"};
    for (size_t c = 0; c < 4; c++) {
        size_t cl = strlen(counts[c]);
        if (n < i + cl || memcmp(name + i, counts[c], cl) != 0) continue;
        for (size_t b = 0; b < 8; b++)
            if (word_is(name + i + cl, n - i - cl, bys[b])) return &rank_family;
    }
    return NULL;
}

static int has_metric(const qnode *q) {
    if (q == NULL) return 0;
    switch (q->kind) {
    case N_METRIC:
    case N_REF: return 1;
    case N_FUNC:
        for (size_t k = 0; k < q->nargs; k++)
            if (has_metric(q->args[k])) return 1;
        return 0;
    case N_BIN: return has_metric(q->l) || has_metric(q->r);
    case N_NEG: return has_metric(q->l);
    default: return 0;
    }
}

static int str_is_one_of(const qnode *a, const char *const *words, size_t count) {
    return a->len >= 2 && match_word(a->text + 1, a->len - 2, words, count) != NULL;
}

static void check_arg(parser *p, const qnode *f, size_t k, const qnode *a) {
    static const char *const ordinal[] = {"first", "second", "third", "fourth"};
    int kind = f->fn->kinds[k];
    const char *fn = f->fname;
    const char *nth = ordinal[k];
    switch (kind) {
    case A_QUERY:
        if (!has_metric(a))
            fail(p, a->off, "%s(): the %s argument must be a metric query", fn, nth);
        return;
    case A_EXPR:
        if (a->kind == N_STR) fail(p, a->off, "%s(): the %s argument cannot be a string", fn, nth);
        return;
    case A_NUM:
        if (!(a->kind == N_NUM || (a->kind == N_NEG && a->l->kind == N_NUM)))
            fail(p, a->off, "%s(): the %s argument must be a number", fn, nth);
        return;
    case A_INTERVAL:
        if (a->kind != N_NUM || int_literal(a->text, a->len, MAX_INTERVAL) < 1)
            fail(p, a->off, "%s(): the %s argument must be a whole number of seconds", fn, nth);
        return;
    case A_TOPN: {
        int64_t v = a->kind == N_NUM ? int_literal(a->text, a->len, 1000) : -1;
        if (!(v == 5 || v == 10 || v == 25 || v == 50 || v == 100))
            fail(p, a->off, "%s(): the number of series must be 5, 10, 25, 50 or 100", fn);
        return;
    }
    default: break;
    }
    if (a->kind != N_STR) {
        fail(p, a->off, "%s(): the %s argument must be a quoted string", fn, nth);
        return;
    }
    static const char *const bys[] = {"max",  "mean",   "min",  "sum",
                                      "last", "l2norm", "area", "norm"};
    static const char *const dirs[] = {"asc", "desc"};
    if (kind == A_TOPBY && !str_is_one_of(a, bys, 8))
        fail(p, a->off,
             "%s(): rank by 'max', 'mean', 'min', 'sum', 'last', 'l2norm', 'area' or "
             "'norm'",
             fn);
    else if (kind == A_DIR && !str_is_one_of(a, dirs, 2))
        fail(p, a->off, "%s(): the direction is 'asc' or 'desc'", fn);
    else if (kind == A_ROLLAGG && !str_is_one_of(a, rollup_methods, 5))
        fail(p, a->off, "%s(): the aggregator is 'avg', 'sum', 'min', 'max' or 'count'", fn);
}

/* A name at p->i that is not a metric term or a call: a string someone forgot to quote. */
static int bare_word(parser *p) {
    size_t wl = lex_name(p);
    if (wl == 0) return 0;
    size_t j = p->i + wl;
    if (j < p->n && p->s[j] == ':') return 0;
    while (j < p->n && is_ws(p->s[j])) j++;
    return !(j < p->n && (p->s[j] == '(' || p->s[j] == '{'));
}

/* At the name; name_len from lex_name; the '(' follows after spaces. */
static qnode *parse_call(parser *p, size_t name_len) {
    const char *name = p->s + p->i;
    const func_spec *fn = find_function(name, name_len);
    if (fn == NULL) {
        fail(p, p->i, "unknown function '%.*s()'", name_len > 40 ? 40 : (int)name_len, name);
        return NULL;
    }
    qnode *f = new_node(p, N_FUNC, p->i);
    if (f == NULL) return NULL;
    f->fn = fn;
    f->fname = p_strdup(p, name, name_len, 1);
    p->i += name_len;
    skip_ws(p);
    size_t open = p->i;
    p->i++; /* '(' */
    qnode *args[MAX_ARGS];
    size_t nargs = 0;
    skip_ws(p);
    if (peek(p) == ')') {
        fail(p, p->i, "%s() takes %s%u argument%s", f->fname,
             fn->min_args == fn->max_args ? "" : "at least ", (unsigned)fn->min_args,
             fn->min_args == 1 ? "" : "s");
        return NULL;
    }
    for (;;) {
        skip_ws(p);
        if (nargs == MAX_ARGS || nargs == fn->max_args) {
            fail(p, p->i, "%s() takes %s%u argument%s", f->fname,
                 fn->min_args == fn->max_args ? "" : "at most ", (unsigned)fn->max_args,
                 fn->max_args == 1 ? "" : "s");
            return NULL;
        }
        qnode *a;
        int want = nargs < 4 ? fn->kinds[nargs] : 0;
        if ((want == A_STR || want == A_TOPBY || want == A_DIR || want == A_ROLLAGG) &&
            bare_word(p)) {
            static const char *const ordinal[] = {"first", "second", "third", "fourth"};
            size_t wl = lex_name(p);
            fail(p, p->i, "%s(): the %s argument must be a quoted string, such as '%.*s'", f->fname,
                 ordinal[nargs], wl > 40 ? 40 : (int)wl, p->s + p->i);
            return NULL;
        }
        if (peek(p) == '\'' || peek(p) == '"') a = parse_string(p);
        else a = parse_expr(p);
        if (a == NULL) return NULL;
        args[nargs++] = a;
        skip_ws(p);
        if (peek(p) == ',') {
            p->i++;
            continue;
        }
        if (peek(p) == ')') {
            p->i++;
            break;
        }
        if (peek(p) == 0)
            fail(p, p->i, "expected ')' to close %s( opened at character %zu", f->fname,
                 count_chars(p->s, 0, open) + 1);
        else expected(p, "',' or ')' after a function argument");
        return NULL;
    }
    if (nargs < fn->min_args) {
        fail(p, p->i - 1, "%s() takes %s%u argument%s, not %zu", f->fname,
             fn->min_args == fn->max_args ? "" : "at least ", (unsigned)fn->min_args,
             fn->min_args == 1 ? "" : "s", nargs);
        return NULL;
    }
    f->args = p_alloc(p, nargs * sizeof *f->args);
    if (f->args == NULL) return NULL;
    memcpy(f->args, args, nargs * sizeof *args);
    f->nargs = nargs;
    for (size_t k = 0; k < nargs && !p->failed; k++) check_arg(p, f, k, args[k]);
    return p->failed ? NULL : f;
}

static qnode *parse_ref_or_call(parser *p);

static qnode *parse_primary(parser *p) {
    skip_ws(p);
    char c = peek(p);
    if (is_digit(c) || (c == '.' && p->i + 1 < p->n && is_digit(p->s[p->i + 1])))
        return parse_number(p);
    if (c == '(') {
        size_t open = p->i;
        p->i++;
        qnode *e = parse_expr(p);
        if (e == NULL) return NULL;
        skip_ws(p);
        if (peek(p) != ')') {
            char b[8];
            fail(p, p->i, "expected ')' to close the '(' at character %zu, found %s",
                 count_chars(p->s, 0, open) + 1, describe(p, p->i, b, sizeof b));
            return NULL;
        }
        p->i++;
        /* A modifier binds to a metric term, never to a parenthesised expression. */
        size_t save = p->i;
        skip_ws(p);
        if (peek(p) == '.') {
            fail(p, p->i, "a modifier such as .rollup() follows a metric term, not ')'");
            return NULL;
        }
        p->i = save;
        return e;
    }
    if (c == '\'' || c == '"') {
        fail(p, p->i, "a quoted string is only allowed as a function argument");
        return NULL;
    }
    size_t len = lex_name(p);
    if (len == 0) {
        if (c == 0) fail(p, p->i, "expected a metric query such as avg:system.cpu.user{*}");
        else {
            char b[8];
            fail(p, p->i, "unexpected %s: expected a metric query, a function or a number",
                 describe(p, p->i, b, sizeof b));
        }
        return NULL;
    }
    if (p->refs != NULL) return parse_ref_or_call(p);
    size_t after = p->i + len;
    if (after < p->n && p->s[after] == ':') return parse_metric(p, len, 1);
    size_t j = after;
    while (j < p->n && is_ws(p->s[j])) j++;
    if (j < p->n && p->s[j] == '(') return parse_call(p, len);
    if (j < p->n && p->s[j] == '{') return parse_metric(p, len, 0);
    if (find_function(p->s + p->i, len))
        fail(p, after, "expected '(' after the function name '%.*s'", len > 40 ? 40 : (int)len,
             p->s + p->i);
    else
        fail(p, p->i,
             "unknown word '%.*s': expected a metric query such as avg:%.*s{*}, a function or a "
             "number",
             len > 40 ? 40 : (int)len, p->s + p->i, len > 40 ? 40 : (int)len, p->s + p->i);
    return NULL;
}

static qnode *parse_unary(parser *p) {
    if (++p->depth > MAX_DEPTH) {
        fail(p, p->i, "the query is nested more than %d deep", MAX_DEPTH);
        return NULL;
    }
    skip_ws(p);
    qnode *r;
    if (peek(p) == '-') {
        qnode *neg = new_node(p, N_NEG, p->i);
        if (neg == NULL) return NULL;
        p->i++;
        neg->l = parse_unary(p);
        r = neg->l ? neg : NULL;
    } else {
        r = parse_primary(p);
    }
    p->depth--;
    return r;
}

static qnode *parse_binary(parser *p, int level) {
    qnode *l = level ? parse_unary(p) : parse_binary(p, 1);
    while (l != NULL) {
        size_t save = p->i;
        skip_ws(p);
        char c = peek(p);
        int ours = level ? (c == '*' || c == '/') : (c == '+' || c == '-');
        if (!ours) {
            p->i = save;
            break;
        }
        qnode *b = new_node(p, N_BIN, p->i);
        if (b == NULL) return NULL;
        p->i++;
        b->op = c;
        b->l = l;
        b->r = level ? parse_unary(p) : parse_binary(p, 1);
        l = b->r ? b : NULL;
    }
    return l;
}

static qnode *parse_expr(parser *p) {
    if (++p->depth > MAX_DEPTH) {
        fail(p, p->i, "the query is nested more than %d deep", MAX_DEPTH);
        return NULL;
    }
    qnode *e = parse_binary(p, 0);
    p->depth--;
    return e;
}

/* ---------------------------------------------------------------------------------------------
 * Printing. mode: PRINT_CANONICAL, DDS_STAT_AVG..SUM (four-statistics) or DDS_STAT_VALUE.
 */

#define PRINT_CANONICAL (-1)

static const char *const stat_names[] = {"avg", "min", "max", "sum"};

typedef struct printer {
    dds_strbuf out;
    int mode;
    int64_t g;
} printer;

static int prec(const qnode *q) {
    if (q->kind == N_BIN) return q->op == '+' || q->op == '-' ? 1 : 2;
    if (q->kind == N_NEG) return 3;
    return 4;
}

static void print_node(printer *pr, const qnode *q, int min_prec);

static void print_mod(printer *pr, const qmod *m) {
    dds_strbuf *o = &pr->out;
    switch (m->kind) {
    case M_ROLLUP:
        dds_strbuf_puts(o, ".rollup(");
        if (m->method) dds_strbuf_puts(o, m->method);
        if (m->has_num || pr->mode != PRINT_CANONICAL) {
            if (m->method) dds_strbuf_putc(o, ',');
            dds_strbuf_printf(o, "%lld", (long long)(m->has_num ? m->num : pr->g));
        }
        dds_strbuf_putc(o, ')');
        break;
    case M_AS_COUNT: dds_strbuf_puts(o, ".as_count()"); break;
    case M_AS_RATE: dds_strbuf_puts(o, ".as_rate()"); break;
    case M_WEIGHTED: dds_strbuf_puts(o, ".weighted()"); break;
    case M_FILL:
        dds_strbuf_puts(o, ".fill(");
        dds_strbuf_puts(o, m->method);
        if (m->has_num) {
            dds_strbuf_putc(o, ',');
            dds_strbuf_printf(o, "%lld", (long long)m->num);
        }
        dds_strbuf_putc(o, ')');
        break;
    default: break;
    }
}

static void print_metric(printer *pr, const qnode *q) {
    dds_strbuf *o = &pr->out;
    int four = pr->mode >= DDS_STAT_AVG && pr->mode <= DDS_STAT_SUM;
    /* Distributions have no rollup method: each statistic comes from its space aggregator. */
    const char *agg = four && q->distribution ? stat_names[pr->mode] : q->agg;
    if (agg) {
        dds_strbuf_puts(o, agg);
        dds_strbuf_putc(o, ':');
    }
    dds_strbuf_puts(o, q->metric);
    dds_strbuf_putc(o, '{');
    dds_strbuf_puts(o, q->scope);
    dds_strbuf_putc(o, '}');
    if (q->by) {
        dds_strbuf_puts(o, " by {");
        dds_strbuf_puts(o, q->by);
        dds_strbuf_putc(o, '}');
    }
    int has_rollup = 0, counted = 0;
    for (size_t k = 0; k < q->nmods; k++) {
        print_mod(pr, &q->mods[k]);
        has_rollup |= q->mods[k].kind == M_ROLLUP;
        counted |= q->mods[k].kind == M_AS_COUNT || q->mods[k].kind == M_AS_RATE;
    }
    if (pr->mode == PRINT_CANONICAL || has_rollup) return;
    /* The rollup goes last, where Datadog's rollup docs append it. */
    const char *method = four ? stat_names[pr->mode] : counted ? "sum" : "avg";
    dds_strbuf_puts(o, ".rollup(");
    dds_strbuf_puts(o, method);
    dds_strbuf_putc(o, ',');
    dds_strbuf_printf(o, "%lld", (long long)pr->g);
    dds_strbuf_putc(o, ')');
}

static void print_node(printer *pr, const qnode *q, int min_prec) {
    dds_strbuf *o = &pr->out;
    int paren = prec(q) < min_prec;
    if (paren) dds_strbuf_putc(o, '(');
    switch (q->kind) {
    case N_NUM:
    case N_STR: dds_strbuf_putn(o, q->text, q->len); break;
    case N_METRIC: print_metric(pr, q); break;
    case N_REF: dds_strbuf_putn(o, q->text, q->len); break;
    case N_FUNC:
        dds_strbuf_puts(o, q->fname);
        dds_strbuf_putc(o, '(');
        for (size_t k = 0; k < q->nargs; k++) {
            if (k) dds_strbuf_puts(o, ", ");
            print_node(pr, q->args[k], 0);
        }
        dds_strbuf_putc(o, ')');
        break;
    case N_NEG:
        dds_strbuf_putc(o, '-');
        print_node(pr, q->l, 3);
        break;
    case N_BIN: {
        int p = prec(q);
        print_node(pr, q->l, p);
        dds_strbuf_putc(o, ' ');
        dds_strbuf_putc(o, q->op);
        dds_strbuf_putc(o, ' ');
        print_node(pr, q->r, p + 1);
        break;
    }
    default: break;
    }
    if (paren) dds_strbuf_putc(o, ')');
}

/* ---------------------------------------------------------------------------------------------
 * Compiling one query: the value-only rules, grouping, the sub-queries.
 */

static const char *const REASON_PERCENTILE =
    "a percentile aggregator (pNN:) has one value per bucket";
static const char *const REASON_DIST_COUNT =
    "count: on a distribution metric has one value per bucket";
static const char *const REASON_SELECT =
    "a series-selecting function (top, bottom, outliers, anomalies, forecast) ranks each "
    "statistic apart: one value per bucket";
static const char *const REASON_ROLLUP =
    "the query's own .rollup() sets the time aggregation: one value per bucket";

typedef struct analysis {
    int percentile, dist_count, select, rollup, grouped;
} analysis;

static int is_distribution(const qnode *m, const dds_query_options *opt) {
    if (m->percentile) return 1;
    for (size_t k = 0; k < opt->distribution_metric_count; k++) {
        const char *d = opt->distribution_metrics[k];
        if (d && strcmp(d, m->metric) == 0) return 1;
    }
    return 0;
}

static void analyse(parser *p, qnode *q, const dds_query_options *opt, analysis *an,
                    int collapsed) {
    switch (q->kind) {
    case N_METRIC:
        q->distribution = is_distribution(q, opt);
        if (q->percentile) an->percentile = 1;
        if (q->distribution && q->agg && strcmp(q->agg, "count") == 0) an->dist_count = 1;
        if (q->by && !collapsed) an->grouped = 1;
        for (size_t k = 0; k < q->nmods; k++) {
            const qmod *m = &q->mods[k];
            if (m->kind != M_ROLLUP) continue;
            an->rollup = 1;
            if (m->has_num && m->num != opt->granularity)
                fail(p, m->num_off,
                     "the query's own rollup interval %lld differs from the granularity %lld: "
                     "leave the interval out or make it %lld",
                     (long long)m->num, (long long)opt->granularity, (long long)opt->granularity);
        }
        return;
    case N_FUNC:
        if (q->fn->cls == F_SELECT) an->select = 1;
        for (size_t k = 0; k < q->nargs; k++)
            analyse(p, q->args[k], opt, an, collapsed || q->fn->cls == F_COLLAPSE);
        return;
    case N_BIN:
        analyse(p, q->l, opt, an, collapsed);
        analyse(p, q->r, opt, an, collapsed);
        return;
    case N_NEG: analyse(p, q->l, opt, an, collapsed); return;
    default: return;
    }
}

static char *print_to_string(const qnode *q, int mode, int64_t g) {
    printer pr = {{0}, mode, g};
    print_node(&pr, q, 0);
    return dds_strbuf_take(&pr.out); /* NULL: out of memory */
}

typedef struct parsed_query {
    qnode *root;
    size_t start, end; /* the trimmed source */
} parsed_query;

/* The whole text: checks that need no grammar, then query (',' query)*. */
static parsed_query *parse_all(parser *p, size_t *count) {
    const char *s = p->s;
    size_t n = p->n;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && !is_ws((char)c)) || c == 0x7f) {
            fail(p, i, "control character 0x%02X in the query", c);
            return NULL;
        }
        size_t k = dds_utf8_seq((const unsigned char *)s + i, n - i);
        if (k == 0) {
            fail(p, i, "the query is not valid UTF-8");
            return NULL;
        }
        i += k;
    }
    if (n > DDS_QUERY_MAX_LEN) {
        fail(p, DDS_QUERY_MAX_LEN, "the query is longer than %d characters", DDS_QUERY_MAX_LEN);
        return NULL;
    }
    skip_ws(p);
    if (p->i == n) {
        fail(p, p->i, "the query is empty: write a metric query such as avg:system.cpu.user{*}");
        return NULL;
    }
    size_t cap = 4;
    parsed_query *list = p_alloc(p, cap * sizeof *list);
    *count = 0;
    while (list != NULL) {
        skip_ws(p);
        size_t start = p->i;
        if (peek(p) == 0 || peek(p) == ',') {
            fail(p, p->i, "expected a query after ','");
            return NULL;
        }
        qnode *root = parse_expr(p);
        if (root == NULL) return NULL;
        if (!has_metric(root)) {
            if (p->refs) fail(p, start, "the formula refers to none of the named queries");
            else fail(p, start, "the query has no metric term such as avg:system.cpu.user{*}");
            return NULL;
        }
        size_t end = p->i;
        if (*count == cap) {
            parsed_query *grown = p_alloc(p, 2 * cap * sizeof *list);
            if (grown == NULL) return NULL;
            memcpy(grown, list, cap * sizeof *list);
            list = grown;
            cap *= 2;
        }
        list[*count].root = root;
        list[*count].start = start;
        list[*count].end = end;
        (*count)++;
        skip_ws(p);
        if (peek(p) == ',') {
            p->i++;
            continue;
        }
        if (p->i == n) return list;
        char b[8];
        if (peek(p) == ')') fail(p, p->i, "')' without a matching '('");
        else if (peek(p) == '}') fail(p, p->i, "'}' without a matching '{'");
        else
            fail(p, p->i, "unexpected %s after the query: join queries with an operator or ','",
                 describe(p, p->i, b, sizeof b));
        return NULL;
    }
    return NULL;
}

static ddstream_status finish_error(parser *p, dds_query_error *err) {
    if (p->nomem) {
        err->offset = 0;
        snprintf(err->message, sizeof err->message, "out of memory while parsing the query");
        return DDSTREAM_E_NOMEM;
    }
    return DDSTREAM_E_CONFIG;
}

void dds_compiled_queries_free(dds_compiled_query *q, size_t count) {
    if (q == NULL) return;
    for (size_t k = 0; k < count; k++) {
        free(q[k].source);
        for (size_t j = 0; j < q[k].subquery_count; j++) free(q[k].subqueries[j].text);
    }
    free(q);
}

/* A problem with the call rather than the text: no excerpt to show. */
static void option_error(dds_query_error *err, const char *what) {
    err->offset = 0;
    snprintf(err->message, sizeof err->message, "%s", what);
}

ddstream_status dds_query_compile_all(const char *text, const dds_query_options *opt,
                                      dds_compiled_query **out, size_t *count,
                                      dds_query_error *err) {
    dds_query_error scratch;
    if (err == NULL) err = &scratch;
    memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (count) *count = 0;
    if (out == NULL || count == NULL || opt == NULL) {
        option_error(err, "internal: missing argument to the query compiler");
        return DDSTREAM_E_INVALID_ARGUMENT;
    }
    if (text == NULL) {
        option_error(err,
                     "the query is missing: write a metric query such as "
                     "avg:system.cpu.user{*}");
        return DDSTREAM_E_CONFIG;
    }
    if (opt->granularity <= 0 || opt->granularity > MAX_INTERVAL) {
        option_error(err, "the granularity must be a positive number of seconds");
        return DDSTREAM_E_CONFIG;
    }
    uint32_t all =
        (1u << DDS_STAT_AVG) | (1u << DDS_STAT_MIN) | (1u << DDS_STAT_MAX) | (1u << DDS_STAT_SUM);
    if (opt->statistics & ~all) {
        option_error(err, "statistics: only avg, min, max and sum can be asked for");
        return DDSTREAM_E_CONFIG;
    }
    uint32_t mask = opt->statistics ? opt->statistics : all;

    parser p = {text, strlen(text), 0, {NULL}, 0, 0, 0, err, NULL, 0, NULL};
    size_t n = 0;
    parsed_query *list = parse_all(&p, &n);
    if (list == NULL) {
        ddstream_status st = finish_error(&p, err);
        arena_free(&p.a);
        return st;
    }
    dds_compiled_query *res = calloc(n, sizeof *res);
    if (res == NULL) {
        arena_free(&p.a);
        option_error(err, "out of memory while compiling the query");
        return DDSTREAM_E_NOMEM;
    }
    ddstream_status st = DDSTREAM_OK;
    for (size_t k = 0; k < n && st == DDSTREAM_OK; k++) {
        analysis an = {0};
        analyse(&p, list[k].root, opt, &an, 0);
        if (p.failed) {
            st = finish_error(&p, err);
            break;
        }
        dds_compiled_query *c = &res[k];
        c->grouped = an.grouped;
        c->value_only = an.percentile || an.dist_count || an.select || an.rollup;
        c->value_reason = an.percentile   ? REASON_PERCENTILE
                          : an.dist_count ? REASON_DIST_COUNT
                          : an.select     ? REASON_SELECT
                          : an.rollup     ? REASON_ROLLUP
                                          : NULL;
        size_t len = list[k].end - list[k].start;
        c->source = malloc(len + 1);
        if (c->source == NULL) {
            st = DDSTREAM_E_NOMEM;
            break;
        }
        memcpy(c->source, text + list[k].start, len);
        c->source[len] = 0;
        for (int s = c->value_only ? DDS_STAT_VALUE : DDS_STAT_AVG;
             s <= (c->value_only ? DDS_STAT_VALUE : DDS_STAT_SUM); s++) {
            if (s != DDS_STAT_VALUE && !(mask & (1u << s))) continue;
            char *t = print_to_string(list[k].root, s, opt->granularity);
            if (t == NULL) {
                st = DDSTREAM_E_NOMEM;
                break;
            }
            c->subqueries[c->subquery_count].text = t;
            c->subqueries[c->subquery_count].stat = s;
            c->subquery_count++;
        }
    }
    arena_free(&p.a);
    if (st != DDSTREAM_OK) {
        if (st == DDSTREAM_E_NOMEM)
            snprintf(err->message, sizeof err->message, "out of memory while compiling the query");
        dds_compiled_queries_free(res, n);
        return st;
    }
    *out = res;
    *count = n;
    return DDSTREAM_OK;
}

ddstream_status dds_query_canonical(const char *text, char **out, dds_query_error *err) {
    dds_query_error scratch;
    if (err == NULL) err = &scratch;
    memset(err, 0, sizeof *err);
    if (out == NULL) return DDSTREAM_E_INVALID_ARGUMENT;
    *out = NULL;
    if (text == NULL) {
        option_error(err, "the query is missing");
        return DDSTREAM_E_CONFIG;
    }
    parser p = {text, strlen(text), 0, {NULL}, 0, 0, 0, err, NULL, 0, NULL};
    size_t n = 0;
    parsed_query *list = parse_all(&p, &n);
    if (list == NULL) {
        ddstream_status st = finish_error(&p, err);
        arena_free(&p.a);
        return st;
    }
    printer pr = {{0}, PRINT_CANONICAL, 0};
    for (size_t k = 0; k < n; k++) {
        if (k) dds_strbuf_putc(&pr.out, ',');
        print_node(&pr, list[k].root, 0);
    }
    arena_free(&p.a);
    *out = dds_strbuf_take(&pr.out);
    if (*out == NULL) {
        option_error(err, "out of memory while printing the query");
        return DDSTREAM_E_NOMEM;
    }
    return DDSTREAM_OK;
}

/* ---------------------------------------------------------------------------------------------
 * v2: named queries and the formulas over them (Datadog's /api/v2/query/timeseries and /scalar).
 * A formula is the same expression language, with query names where the metric terms would be.
 */

/* A query name's characters: what Datadog's examples use (a, b, query1), nothing that could
 * read as part of an expression. */
static size_t lex_ref(const char *s, size_t n, size_t i) {
    size_t j = i;
    if (j >= n || !(is_alpha(s[j]) || s[j] == '_')) return 0;
    while (j < n && is_ident(s[j])) j++;
    return j - i;
}

/* The known names, "a, b, c" (cut short past ~120 bytes), for a message. */
static void list_refs(const parser *p, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = 0;
    for (size_t k = 0; k < p->ref_count; k++) {
        int w = snprintf(buf + used, cap - used, "%s%s", k ? ", " : "", p->refs[k]);
        if (w < 0 || (size_t)w >= cap - used || used + (size_t)w > 120) {
            snprintf(buf + used, cap - used, ", ...");
            return;
        }
        used += (size_t)w;
    }
}

/* Formula mode, at a name: a function call, or a reference to one of the named queries. */
static qnode *parse_ref_or_call(parser *p) {
    size_t len = lex_ref(p->s, p->n, p->i);
    size_t after = p->i + len;
    size_t j = after;
    while (j < p->n && is_ws(p->s[j])) j++;
    if (j < p->n && p->s[j] == '(') return parse_call(p, len);
    if (after < p->n && (p->s[after] == ':' || p->s[after] == '{' || p->s[after] == '.')) {
        fail(p, after,
             "a formula refers to its queries by name: write the metric query (with any "
             ".rollup() or other modifier) in queries and its name here");
        return NULL;
    }
    if (j < p->n && p->s[j] == '{') {
        fail(p, j, "a formula refers to its queries by name: write the metric query in queries");
        return NULL;
    }
    for (size_t k = 0; k < p->ref_count; k++) {
        if (strlen(p->refs[k]) == len && memcmp(p->refs[k], p->s + p->i, len) == 0) {
            qnode *r = new_node(p, N_REF, p->i);
            if (r == NULL) return NULL;
            r->text = p->s + p->i;
            r->len = len;
            if (p->ref_used) p->ref_used[k] = 1;
            p->i = after;
            return r;
        }
    }
    char known[160];
    list_refs(p, known, sizeof known);
    fail(p, p->i, "unknown query name '%.*s': the queries are named %s", len > 40 ? 40 : (int)len,
         p->s + p->i, known);
    return NULL;
}

ddstream_status dds_query_name_check(const char *name, dds_query_error *err) {
    dds_query_error scratch;
    if (err == NULL) err = &scratch;
    memset(err, 0, sizeof *err);
    if (name == NULL || name[0] == 0) {
        option_error(err, "the query name is empty: use a name such as a, b or query1");
        return DDSTREAM_E_CONFIG;
    }
    size_t n = strlen(name);
    size_t len = lex_ref(name, n, 0);
    if (len != n || n > DDS_QUERY_NAME_MAX) {
        size_t off = len < n ? len : DDS_QUERY_NAME_MAX;
        char what[160];
        snprintf(what, sizeof what,
                 "a query name is a letter or '_' then letters, digits or '_', at most %d "
                 "characters",
                 DDS_QUERY_NAME_MAX);
        write_error(err, name, n, off, what);
        return DDSTREAM_E_CONFIG;
    }
    if (find_function(name, n) != NULL) {
        char what[160];
        snprintf(what, sizeof what, "'%s' is a function's name: choose another query name", name);
        write_error(err, name, n, 0, what);
        return DDSTREAM_E_CONFIG;
    }
    return DDSTREAM_OK;
}

ddstream_status dds_formula_compile(const char *text, const char *const *names, size_t name_count,
                                    unsigned char *used, char **canonical, dds_query_error *err) {
    dds_query_error scratch;
    if (err == NULL) err = &scratch;
    memset(err, 0, sizeof *err);
    if (canonical) *canonical = NULL;
    if (names == NULL || name_count == 0) {
        option_error(err, "a formula needs named queries");
        return DDSTREAM_E_CONFIG;
    }
    if (text == NULL) {
        option_error(err, "the formula is missing");
        return DDSTREAM_E_CONFIG;
    }
    parser p = {text, strlen(text), 0, {NULL}, 0, 0, 0, err, names, name_count, used};
    size_t n = 0;
    parsed_query *list = parse_all(&p, &n);
    if (list != NULL && n > 1) {
        /* parse_all accepts comma-separated queries; a formula is one expression. */
        size_t at = list[1].start;
        while (at > 0 && p.s[at - 1] != ',') at--;
        fail(&p, at - (at > 0), "one formula per item: this ',' starts another one");
        list = NULL;
    }
    if (list == NULL) {
        ddstream_status st = finish_error(&p, err);
        arena_free(&p.a);
        return st;
    }
    ddstream_status st = DDSTREAM_OK;
    if (canonical) {
        printer pr = {{0}, PRINT_CANONICAL, 0};
        print_node(&pr, list[0].root, 0);
        *canonical = dds_strbuf_take(&pr.out);
        if (*canonical == NULL) {
            option_error(err, "out of memory while printing the formula");
            st = DDSTREAM_E_NOMEM;
        }
    }
    arena_free(&p.a);
    return st;
}

/* The postfix program of q into ops (room for every node), or the name of the first function
 * (or "a string") that makes it more than arithmetic. Returns 0 when q has no program. */
static int emit_program(const qnode *q, const char *const *names, size_t name_count,
                        dds_formula_op *ops, size_t *n, char *function, size_t cap) {
    switch (q->kind) {
    case N_NUM: {
        char buf[64];
        size_t len = q->len < sizeof buf - 1 ? q->len : sizeof buf - 1;
        memcpy(buf, q->text, len);
        buf[len] = 0;
        ops[(*n)++] = (dds_formula_op){DDS_FOP_NUM, -1, strtod(buf, NULL)};
        return 1;
    }
    case N_REF:
        for (size_t k = 0; k < name_count; k++) {
            if (strlen(names[k]) == q->len && memcmp(names[k], q->text, q->len) == 0) {
                ops[(*n)++] = (dds_formula_op){DDS_FOP_REF, (int32_t)k, 0};
                return 1;
            }
        }
        return 0; /* the parser resolved every reference: cannot happen */
    case N_NEG:
        if (!emit_program(q->l, names, name_count, ops, n, function, cap)) return 0;
        ops[(*n)++] = (dds_formula_op){DDS_FOP_NEG, -1, 0};
        return 1;
    case N_BIN: {
        if (!emit_program(q->l, names, name_count, ops, n, function, cap) ||
            !emit_program(q->r, names, name_count, ops, n, function, cap))
            return 0;
        int32_t code = q->op == '+'   ? DDS_FOP_ADD
                       : q->op == '-' ? DDS_FOP_SUB
                       : q->op == '*' ? DDS_FOP_MUL
                                      : DDS_FOP_DIV;
        ops[(*n)++] = (dds_formula_op){code, -1, 0};
        return 1;
    }
    case N_FUNC: snprintf(function, cap, "%s", q->fname); return 0;
    default: snprintf(function, cap, "a string"); return 0;
    }
}

static size_t node_count(const qnode *q) {
    switch (q->kind) {
    case N_NEG: return 1 + node_count(q->l);
    case N_BIN: return 1 + node_count(q->l) + node_count(q->r);
    default: return 1;
    }
}

ddstream_status dds_formula_program(const char *text, const char *const *names, size_t name_count,
                                    dds_formula_op **ops, size_t *count, char *function, size_t cap,
                                    dds_query_error *err) {
    dds_query_error scratch;
    if (err == NULL) err = &scratch;
    *ops = NULL;
    *count = 0;
    if (function && cap) function[0] = 0;
    ddstream_status st = dds_formula_compile(text, names, name_count, NULL, NULL, err);
    if (st != DDSTREAM_OK) return st;
    parser p = {text, strlen(text), 0, {NULL}, 0, 0, 0, err, names, name_count, NULL};
    size_t n = 0;
    parsed_query *list = parse_all(&p, &n);
    if (list == NULL) {
        st = finish_error(&p, err);
        arena_free(&p.a);
        return st;
    }
    const qnode *root = list[0].root;
    dds_formula_op *prog = malloc(node_count(root) * sizeof *prog);
    char fn[DDS_QUERY_NAME_MAX + 16] = "";
    size_t used = 0;
    if (prog == NULL) {
        option_error(err, "out of memory while compiling the formula");
        st = DDSTREAM_E_NOMEM;
    } else if (emit_program(root, names, name_count, prog, &used, fn, sizeof fn)) {
        *ops = prog;
        *count = used;
        prog = NULL;
    }
    if (function && cap) snprintf(function, cap, "%s", fn);
    free(prog);
    arena_free(&p.a);
    return st;
}

ddstream_status dds_query_check_v2(const char *text, dds_query_error *err) {
    dds_query_error scratch;
    if (err == NULL) err = &scratch;
    memset(err, 0, sizeof *err);
    if (text == NULL) {
        option_error(err, "the query is missing");
        return DDSTREAM_E_CONFIG;
    }
    parser p = {text, strlen(text), 0, {NULL}, 0, 0, 0, err, NULL, 0, NULL};
    size_t n = 0;
    parsed_query *list = parse_all(&p, &n);
    if (list != NULL) {
        const qnode *root = list[0].root;
        if (n > 1) {
            size_t at = list[1].start;
            while (at > 0 && p.s[at - 1] != ',') at--;
            fail(&p, at - (at > 0), "one query per name: this ',' starts another one");
        } else if (root->kind == N_FUNC) {
            /* Datadog refuses these with "Functions are not supported in metrics data source
             * field. Use the formulas payload." */
            fail(&p, root->off,
                 "functions go into a formula over the named query (as v2 requires), not into "
                 "the query: name the metric query and write %s(name) as a formula",
                 root->fname);
        } else if (root->kind != N_METRIC) {
            fail(&p, root->off,
                 "arithmetic goes into a formula over named queries (as v2 requires): give each "
                 "metric query a name and write the arithmetic as a formula");
        }
    }
    ddstream_status st = p.failed ? finish_error(&p, err) : DDSTREAM_OK;
    arena_free(&p.a);
    return st;
}
