/*
 * query_lang.h — the Datadog metric query language: a recursive-descent parser into a small AST,
 * and the rewriter that turns each query into the sub-queries ddstream sends (one per statistic,
 * or one value-only sub-query). docs/queries.md has the grammar, the rewriting table and the
 * sources it follows.
 */
#ifndef DDSTREAM_QUERY_LANG_H
#define DDSTREAM_QUERY_LANG_H

#include <stddef.h>
#include <stdint.h>

#include "ddstream.h"

/* Statistics a sub-query's series fill. */
enum { DDS_STAT_AVG = 0, DDS_STAT_MIN = 1, DDS_STAT_MAX = 2, DDS_STAT_SUM = 3, DDS_STAT_VALUE = 4 };

/* Longest query text accepted (bytes): far beyond any real one. */
#define DDS_QUERY_MAX_LEN 4000

typedef struct dds_query_options {
    int64_t granularity;                     /* seconds, > 0 */
    uint32_t statistics;                     /* mask of (1u << DDS_STAT_AVG..SUM); 0 = all four */
    const char *const *distribution_metrics; /* metric names the user says are distributions */
    size_t distribution_metric_count;
} dds_query_options;

typedef struct dds_subquery {
    char *text;   /* the sub-query exactly as sent (not URL-escaped), malloc'd */
    int32_t stat; /* DDS_STAT_* its series fill */
} dds_subquery;

typedef struct dds_compiled_query {
    char *source;       /* the user's expression, trimmed, malloc'd */
    int32_t grouped;    /* some metric term has "by {...}": one series per group */
    int32_t value_only; /* 1: one value per bucket only -> one sub-query with DDS_STAT_VALUE */
    const char *value_reason;   /* static text when value_only, else NULL */
    size_t subquery_count;      /* 1..4 */
    dds_subquery subqueries[4]; /* four-statistics queries: in AVG, MIN, MAX, SUM order, only the
                                   statistics in the mask */
} dds_compiled_query;

typedef struct dds_query_error {
    size_t offset;     /* 0-based byte offset in the text given, of the offending character */
    char message[400]; /* "at character N: what is wrong", then an excerpt and a caret line */
} dds_query_error;

/*
 * Parse text, which may hold several comma-separated top-level queries (commas inside {} or ()
 * do not split), and compile each one. On success *out is a malloc'd array of *count (>= 1)
 * queries. On a syntax or rule error returns DDSTREAM_E_CONFIG and fills *err; *out NULL,
 * *count 0. DDSTREAM_E_NOMEM on allocation failure. Thread-safe, pure (no I/O, no globals).
 */
ddstream_status dds_query_compile_all(const char *text, const dds_query_options *opt,
                                      dds_compiled_query **out, size_t *count,
                                      dds_query_error *err);
void dds_compiled_queries_free(dds_compiled_query *q, size_t count);

/*
 * The canonical text of the parsed queries, comma-separated: every part of the AST printed in
 * one spelling (lower-case names, single spaces around operators, parentheses only where
 * precedence needs them, scopes and tag lists without spaces). Two texts have the same AST
 * exactly when their canonical texts are equal; the canonical text parses to the same AST when
 * it is within DDS_QUERY_MAX_LEN (the spaces around operators can lengthen a compact text; the
 * tests and the fuzz target check both). *out is malloc'd. Errors as dds_query_compile_all.
 */
ddstream_status dds_query_canonical(const char *text, char **out, dds_query_error *err);

/* Longest name of a v2 named query. */
#define DDS_QUERY_NAME_MAX 64

/*
 * A v2 named query's name: a letter or '_', then letters, digits or '_' (at most
 * DDS_QUERY_NAME_MAX), and not a function's name. DDSTREAM_E_CONFIG with *err pointing at the
 * offending character otherwise.
 */
ddstream_status dds_query_name_check(const char *name, dds_query_error *err);

/*
 * A v2 named query (/api/v2/query/timeseries and /scalar): one metric term with its modifiers.
 * Functions and arithmetic belong in formulas there (Datadog answers 400 "Functions are not
 * supported in metrics data source field"), so they are DDSTREAM_E_CONFIG pointing at them.
 */
ddstream_status dds_query_check_v2(const char *text, dds_query_error *err);

/*
 * One v2 formula: the query language with the names of queries (names[0..name_count)) where
 * metric terms would be (`a / b * 100`, `per_second(a)`, `anomalies(a, 'basic', 2)`). Unknown
 * names, metric terms, modifiers and syntax errors are DDSTREAM_E_CONFIG pointing at the
 * character. used (name_count flags, may be NULL) gets 1 for every name the formula refers to
 * (others untouched, so one array can collect all formulas). *canonical (may be NULL): the
 * formula in canonical spelling, malloc'd. Thread-safe, pure.
 */
ddstream_status dds_formula_compile(const char *text, const char *const *names, size_t name_count,
                                    unsigned char *used, char **canonical, dds_query_error *err);

/* One step of a formula's arithmetic in postfix order (dds_formula_program). */
enum { DDS_FOP_NUM, DDS_FOP_REF, DDS_FOP_NEG, DDS_FOP_ADD, DDS_FOP_SUB, DDS_FOP_MUL, DDS_FOP_DIV };
typedef struct dds_formula_op {
    int32_t code; /* DDS_FOP_* */
    int32_t ref;  /* DDS_FOP_REF: the index of the query in names */
    double num;   /* DDS_FOP_NUM: the literal's value */
} dds_formula_op;

/*
 * A formula as a postfix program over its references, for evaluating it on values computed
 * elsewhere (a scalar combined from chunks): numbers, references, unary minus and + - * /.
 * Compiled as dds_formula_compile (same errors). A formula that uses a function (or a string)
 * has no program: DDSTREAM_OK with *ops NULL, *count 0 and the function's name in
 * function[0..cap) ("" otherwise). Else *ops is malloc'd (free()). Thread-safe, pure.
 */
ddstream_status dds_formula_program(const char *text, const char *const *names, size_t name_count,
                                    dds_formula_op **ops, size_t *count, char *function, size_t cap,
                                    dds_query_error *err);

#endif
