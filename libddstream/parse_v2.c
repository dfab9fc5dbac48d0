/*
 * parse_v2.c — a v2 timeseries answer read in one strict pass straight into columns, no tree.
 *
 * v2's answer is columnar already: one `times` array shared by every series and one `values` row
 * per series. So the only per-point work is reading a number into its slot: no [ts, value] pairs,
 * no allocation per point, no matching of timestamps across rollups (which v1 needs). Numbers use
 * the pointlists' reader (pointlist.c), so both endpoints give the same double for the same text.
 * Anything that is not strict JSON, or not the documented shape, is an error naming the JSON
 * path; a syntax error is phrased by json_check.c (cut short or malformed, and where), so the
 * transport can tell an answer cut short (retried) from a wrong one.
 */
#include "parse_v2.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "error_body.h"
#include "error_page.h"
#include "json_check.h"
#include "number_parse.h"
#include "strbuf.h"
#include "strparse.h"
#include "text_sanitize.h"
#include "timestamp_limit.h"

/* Nesting accepted inside members we skip (unit objects are two deep). */
#define MAX_DEPTH 64
/* The same bound on query_index as the v1 parser: anything near it is garbage. */
#define QUERY_INDEX_LIMIT 1000000
/* Bytes of the body quoted after a JSON syntax error. */
#define EXCERPT_LIMIT 24

typedef struct v2p {
    const char *s;
    size_t n, i;
    ddstream_status st; /* the first error; DDSTREAM_OK while none */
    int syntax;         /* that error is a JSON syntax error (phrased at the end) */
    char *msg;
    size_t cap;
    /* string decoding */
    char *tmp;
    size_t tmp_len, tmp_cap;
    int tmp_nul;
    /* results */
    dds_v2_series *series;
    size_t ns, series_cap;
    int64_t *times;
    size_t nt, times_cap;
    double *vals;
    size_t nv, vals_cap;
    size_t *row_len;
    size_t nrows, rows_cap;
    int have_data, have_attributes, have_series, have_times, have_values, have_errors;
    /* scalar answers (dds_parse_v2_scalar) */
    int scalar, have_columns, have_group_column;
    dds_v2_scalar *sc;
    size_t columns_cap;
    /* the column being read */
    char *col_name, *col_type;
    char **col_groups;
    size_t col_group_count, col_group_cap;
    double *col_numbers;
    size_t col_number_count, col_number_cap;
    int col_has_values, col_values_are_groups, col_values_other;
    double **cols;    /* per number column kept: its values, until the group count is known */
    size_t *col_lens; /* and how many */
} v2p;

static int syntax_error(v2p *v) {
    if (v->st == DDSTREAM_OK) {
        v->st = DDSTREAM_E_PROTOCOL;
        v->syntax = 1;
    }
    return -1;
}

static int nomem(v2p *v) {
    if (v->st == DDSTREAM_OK) {
        v->st = DDSTREAM_E_NOMEM;
        dds_set_msg(v->msg, v->cap, "out of memory while reading a %zu-byte answer", v->n);
    }
    return -1;
}

static int DDS_PRINTF(2, 3) shape_error(v2p *v, const char *fmt, ...) {
    if (v->st != DDSTREAM_OK) return -1;
    v->st = DDSTREAM_E_PROTOCOL;
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    dds_set_msg(v->msg, v->cap, "unexpected v2 answer: %s", what);
    return -1;
}

/* Whitespace: answers are written without any, so the common case is decided here, inline,
 * without a call per value. */
static void ws(v2p *v) {
    if (v->i < v->n && (unsigned char)v->s[v->i] > ' ') return;
    v->i = dds_skip_json_ws(v->s, v->n, v->i);
}
static int at(const v2p *v, char c) { return v->i < v->n && v->s[v->i] == c; }

/* What the value at v->i is, for a message. */
static const char *kind_at(const v2p *v) {
    if (v->i >= v->n) return "nothing";
    switch (v->s[v->i]) {
    case '"': return "a string";
    case '{': return "an object";
    case '[': return "an array";
    case 't':
    case 'f': return "a boolean";
    case 'n': return "null";
    default: return "a number";
    }
}

/* Whether a JSON value can start with c: otherwise what is there is a syntax error, not a value
 * of the wrong type. */
static int value_start(const v2p *v) {
    if (v->i >= v->n) return 0;
    char c = v->s[v->i];
    return c == '"' || c == '{' || c == '[' || c == 't' || c == 'f' || c == 'n' || c == '-' ||
           (c >= '0' && c <= '9');
}

static int grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return 0;
    size_t want = *cap ? *cap : 16;
    while (want < need) {
        if (want > ((size_t)-1 / 2) / size) return -1;
        want *= 2;
    }
    void *q = realloc(*p, want * size);
    if (q == NULL) return -1;
    *p = q;
    *cap = want;
    return 0;
}

static int tmp_put(v2p *v, const char *s, size_t k) {
    if (grow((void **)&v->tmp, &v->tmp_cap, v->tmp_len + k + 1, 1) != 0) return nomem(v);
    memcpy(v->tmp + v->tmp_len, s, k);
    v->tmp_len += k;
    v->tmp[v->tmp_len] = 0;
    return 0;
}

static int hex4(const char *s, unsigned *out) {
    unsigned c = 0;
    for (int k = 0; k < 4; k++) {
        char h = s[k];
        int d = h >= '0' && h <= '9'   ? h - '0'
                : h >= 'a' && h <= 'f' ? h - 'a' + 10
                : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        c = c * 16 + (unsigned)d;
    }
    *out = c;
    return 0;
}

/*
 * At '"': read the string, decoded into v->tmp (tmp_len bytes, NUL-terminated; tmp_nul set when
 * it holds U+0000) when keep, else only checked. Strict: raw control characters and lone
 * surrogates are syntax errors.
 */
static int read_string(v2p *v, int keep) {
    v->tmp_len = 0;
    v->tmp_nul = 0;
    if (keep && tmp_put(v, "", 0) != 0) return -1;
    v->i++;
    size_t run = v->i;
    while (v->i < v->n) {
        unsigned char c = (unsigned char)v->s[v->i];
        if (c == '"') {
            if (keep && tmp_put(v, v->s + run, v->i - run) != 0) return -1;
            v->i++;
            return 0;
        }
        if (c < 0x20) return syntax_error(v);
        if (c != '\\') {
            v->i++;
            continue;
        }
        if (keep && tmp_put(v, v->s + run, v->i - run) != 0) return -1;
        if (v->n - v->i < 2) return syntax_error(v);
        char e = v->s[v->i + 1];
        char out[4];
        size_t k = 1;
        switch (e) {
        case '"': out[0] = '"'; break;
        case '\\': out[0] = '\\'; break;
        case '/': out[0] = '/'; break;
        case 'b': out[0] = '\b'; break;
        case 'f': out[0] = '\f'; break;
        case 'n': out[0] = '\n'; break;
        case 'r': out[0] = '\r'; break;
        case 't': out[0] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (v->n - v->i < 6 || hex4(v->s + v->i + 2, &cp) != 0) return syntax_error(v);
            v->i += 4; /* the 2 of the escape are added below */
            if (cp >= 0xDC00 && cp <= 0xDFFF) return syntax_error(v);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (v->n - v->i < 8 || v->s[v->i + 2] != '\\' || v->s[v->i + 3] != 'u' ||
                    hex4(v->s + v->i + 4, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
                    return syntax_error(v);
                v->i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0) v->tmp_nul = 1;
            if (cp < 0x80) {
                out[0] = (char)cp;
            } else if (cp < 0x800) {
                out[0] = (char)(0xC0 | (cp >> 6));
                out[1] = (char)(0x80 | (cp & 0x3F));
                k = 2;
            } else if (cp < 0x10000) {
                out[0] = (char)(0xE0 | (cp >> 12));
                out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[2] = (char)(0x80 | (cp & 0x3F));
                k = 3;
            } else {
                out[0] = (char)(0xF0 | (cp >> 18));
                out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[3] = (char)(0x80 | (cp & 0x3F));
                k = 4;
            }
            break;
        }
        default: return syntax_error(v);
        }
        if (keep && tmp_put(v, out, k) != 0) return -1;
        v->i += 2;
        run = v->i;
    }
    return syntax_error(v);
}

static int literal(v2p *v, const char *lit) {
    size_t k = strlen(lit);
    if (v->n - v->i < k || memcmp(v->s + v->i, lit, k) != 0) {
        /* A prefix of the literal at the very end is a cut-short body; json_check says which. */
        return syntax_error(v);
    }
    v->i += k;
    return 0;
}

/* After an element: 1 when ',' follows (eaten), 0 when close follows (eaten), -1 otherwise. */
static int next(v2p *v, char close) {
    ws(v);
    if (at(v, ',')) {
        v->i++;
        ws(v);
        return 1;
    }
    if (at(v, close)) {
        v->i++;
        return 0;
    }
    return syntax_error(v);
}

/* At an opening bracket: 1 when the container is empty (closed), 0 otherwise. */
static int enter(v2p *v, char close) {
    v->i++;
    ws(v);
    if (at(v, close)) {
        v->i++;
        return 1;
    }
    return 0;
}

static int skip_value(v2p *v, int depth);

static int skip_container(v2p *v, int depth, char close, int object) {
    if (depth >= MAX_DEPTH) return shape_error(v, "nested more than %d deep", MAX_DEPTH);
    if (enter(v, close)) return 0;
    for (;;) {
        if (object) {
            if (!at(v, '"') || read_string(v, 0) != 0) return syntax_error(v);
            ws(v);
            if (!at(v, ':')) return syntax_error(v);
            v->i++;
            ws(v);
        }
        if (skip_value(v, depth + 1) != 0) return -1;
        int more = next(v, close);
        if (more <= 0) return more;
    }
}

static int skip_value(v2p *v, int depth) {
    if (v->i >= v->n) return syntax_error(v);
    double ignored;
    switch (v->s[v->i]) {
    case '{': return skip_container(v, depth, '}', 1);
    case '[': return skip_container(v, depth, ']', 0);
    case '"': return read_string(v, 0);
    case 't': return literal(v, "true");
    case 'f': return literal(v, "false");
    case 'n': return literal(v, "null");
    default: return dds_number_parse(v->s, v->n, &v->i, &ignored, NULL) == 0 ? 0 : syntax_error(v);
    }
}

/* The members of the object at v->i: member(v, key, depth) for each (at its value). */
typedef int (*member_fn)(v2p *v, const char *key, size_t index);

static int each_member(v2p *v, const char *path, member_fn member, size_t index) {
    if (!at(v, '{')) {
        if (!value_start(v)) return syntax_error(v);
        return shape_error(v, "%s is %s, expected an object", path, kind_at(v));
    }
    if (enter(v, '}')) return 0;
    for (;;) {
        if (!at(v, '"') || read_string(v, 1) != 0) return syntax_error(v);
        char key[24];
        /* Our keys are short: a longer one (or one holding U+0000) is none of ours. */
        if (v->tmp_len < sizeof key && !v->tmp_nul) memcpy(key, v->tmp, v->tmp_len + 1);
        else key[0] = 0;
        ws(v);
        if (!at(v, ':')) return syntax_error(v);
        v->i++;
        ws(v);
        if (member(v, key, index) != 0) return -1;
        int more = next(v, '}');
        if (more <= 0) return more;
    }
}

/* A whole number; what[index]suffix names it in messages. */
static int read_int(v2p *v, const char *what, size_t index, const char *suffix, int64_t limit,
                    int64_t *out) {
    size_t start = v->i;
    double d;
    if (v->i >= v->n) return syntax_error(v);
    char c = v->s[v->i];
    if (!(c == '-' || (c >= '0' && c <= '9'))) {
        if (!value_start(v)) return syntax_error(v);
        return shape_error(v, "%s[%zu]%s is %s, expected a number", what, index, suffix,
                           kind_at(v));
    }
    if (dds_number_parse(v->s, v->n, &v->i, &d, NULL) != 0) return syntax_error(v);
    if (!(d == floor(d)) || fabs(d) > (double)limit) {
        char text[40];
        size_t k = v->i - start < sizeof text - 1 ? v->i - start : sizeof text - 1;
        memcpy(text, v->s + start, k);
        text[k] = 0;
        return shape_error(v, "%s[%zu]%s is %s, expected a whole number within +-%lld", what, index,
                           suffix, text, (long long)limit);
    }
    *out = (int64_t)d;
    return 0;
}

static int series_member(v2p *v, const char *key, size_t index) {
    dds_v2_series *s = &v->series[index];
    if (strcmp(key, "query_index") == 0) {
        int64_t q;
        if (read_int(v, "data.attributes.series", index, ".query_index", QUERY_INDEX_LIMIT, &q) !=
            0)
            return -1;
        if (q < 0)
            return shape_error(v, "data.attributes.series[%zu].query_index is negative", index);
        s->query_index = (int32_t)q;
        return 0;
    }
    if (strcmp(key, "group_tags") != 0) return skip_value(v, 3);
    if (at(v, 'n')) return literal(v, "null");
    if (!at(v, '[')) {
        if (!value_start(v)) return syntax_error(v);
        return shape_error(v, "data.attributes.series[%zu].group_tags is %s, expected an array",
                           index, kind_at(v));
    }
    if (enter(v, ']')) return 0;
    /* Joined with ',' as v1's tag_set is, into one allocation. */
    char *joined = NULL;
    size_t jl = 0, jc = 0;
    for (size_t k = 0;; k++) {
        if (!at(v, '"')) {
            free(joined);
            if (!value_start(v)) return syntax_error(v);
            return shape_error(v,
                               "data.attributes.series[%zu].group_tags[%zu] is %s, expected a "
                               "string",
                               index, k, kind_at(v));
        }
        if (read_string(v, 1) != 0) {
            free(joined);
            return -1;
        }
        if (v->tmp_nul) {
            free(joined);
            return shape_error(v, "data.attributes.series[%zu].group_tags[%zu] holds U+0000", index,
                               k);
        }
        if (grow((void **)&joined, &jc, jl + v->tmp_len + 2, 1) != 0) {
            free(joined);
            return nomem(v);
        }
        if (k) joined[jl++] = ',';
        memcpy(joined + jl, v->tmp, v->tmp_len);
        jl += v->tmp_len;
        joined[jl] = 0;
        int more = next(v, ']');
        if (more <= 0) {
            if (more < 0) {
                free(joined);
                return -1;
            }
            break;
        }
    }
    free(s->tags);
    s->tags = joined;
    return 0;
}

static int read_series(v2p *v) {
    if (!at(v, '[')) {
        if (!value_start(v)) return syntax_error(v);
        return shape_error(v, "data.attributes.series is %s, expected an array", kind_at(v));
    }
    if (enter(v, ']')) return 0;
    for (;;) {
        if (grow((void **)&v->series, &v->series_cap, v->ns + 1, sizeof *v->series) != 0)
            return nomem(v);
        dds_v2_series *s = &v->series[v->ns];
        s->query_index = -1;
        s->tags = NULL;
        size_t index = v->ns++;
        char path[64];
        snprintf(path, sizeof path, "data.attributes.series[%zu]", index);
        if (each_member(v, path, series_member, index) != 0) return -1;
        if (v->series[index].query_index < 0)
            return shape_error(v, "data.attributes.series[%zu] has no query_index", index);
        if (v->series[index].tags == NULL) {
            v->series[index].tags = calloc(1, 1);
            if (v->series[index].tags == NULL) return nomem(v);
        }
        int more = next(v, ']');
        if (more <= 0) return more;
    }
}

static int read_times(v2p *v) {
    if (!at(v, '[')) {
        if (!value_start(v)) return syntax_error(v);
        return shape_error(v, "data.attributes.times is %s, expected an array", kind_at(v));
    }
    if (enter(v, ']')) return 0;
    for (;;) {
        if (grow((void **)&v->times, &v->times_cap, v->nt + 1, sizeof *v->times) != 0)
            return nomem(v);
        if (read_int(v, "data.attributes.times", v->nt, "", DDS_TIME_LIMIT_MS, &v->times[v->nt]) !=
            0)
            return -1;
        v->nt++;
        int more = next(v, ']');
        if (more <= 0) return more;
    }
}

/* The hot loop's common case: numbers and nulls separated by bare commas, into the room
 * read_values made, with the position in a register (dds_number_scan). Returns 1 when the row
 * closed, -1 on an error, 0 at a value it leaves to read_row's general loop (no room left, or
 * not a finite number or null: the general loop says what is wrong), v->i at that value. */
static int fast_row(v2p *v) {
    const char *s = v->s;
    size_t n = v->n, i = v->i;
    while (v->nv < v->vals_cap) {
        double d;
        size_t j;
        if (n - i >= 4 && memcmp(s + i, "null", 4) == 0) {
            d = NAN;
            j = i + 4;
        } else if ((j = dds_number_scan(s, n, i, &d)) == 0 || !isfinite(d)) {
            break;
        }
        v->vals[v->nv++] = d;
        if (j < n && s[j] == ',' && j + 1 < n && (unsigned char)s[j + 1] > ' ') {
            i = j + 1;
            continue;
        }
        if (j < n && s[j] == ']') {
            v->i = j + 1;
            return 1;
        }
        v->i = j; /* whitespace, or not JSON: next() decides */
        int more = next(v, ']');
        if (more <= 0) return more;
        i = v->i;
    }
    v->i = i;
    return 0;
}

/* The hot loop: one row of values, null or number, appended to v->vals. */
static int read_row(v2p *v, size_t row) {
    if (!at(v, '[')) {
        if (!value_start(v)) return syntax_error(v);
        return shape_error(v, "data.attributes.values[%zu] is %s, expected an array", row,
                           kind_at(v));
    }
    size_t first = v->nv;
    int closed = enter(v, ']');
    if (!closed && (closed = fast_row(v)) < 0) return -1;
    if (!closed) {
        for (;;) {
            if (v->nv == v->vals_cap &&
                grow((void **)&v->vals, &v->vals_cap, v->nv + 1, sizeof *v->vals) != 0)
                return nomem(v);
            double d;
            if (v->i < v->n && v->s[v->i] == 'n') {
                if (literal(v, "null") != 0) return -1;
                d = NAN;
            } else if (dds_number_parse(v->s, v->n, &v->i, &d, NULL) != 0) {
                if (v->i < v->n && (v->s[v->i] == '"' || v->s[v->i] == '[' || v->s[v->i] == '{' ||
                                    v->s[v->i] == 't' || v->s[v->i] == 'f'))
                    return shape_error(v,
                                       "data.attributes.values[%zu][%zu] is %s, expected a "
                                       "number or null",
                                       row, v->nv - first, kind_at(v));
                return syntax_error(v);
            } else if (!isfinite(d)) {
                return shape_error(v, "data.attributes.values[%zu][%zu] is out of range", row,
                                   v->nv - first);
            }
            v->vals[v->nv++] = d;
            int more = next(v, ']');
            if (more < 0) return -1;
            if (more == 0) break;
        }
    }
    if (grow((void **)&v->row_len, &v->rows_cap, v->nrows + 1, sizeof *v->row_len) != 0)
        return nomem(v);
    v->row_len[v->nrows++] = v->nv - first;
    return 0;
}

static int read_values(v2p *v) {
    if (!at(v, '[')) {
        if (!value_start(v)) return syntax_error(v);
        return shape_error(v, "data.attributes.values is %s, expected an array", kind_at(v));
    }
    /* Series and times read first (as Datadog and the fake write them): room for every value at
     * once, instead of doubling through copies. Never more than the bytes left could hold (a
     * value and its comma are at least two), so a lying answer cannot make it allocate more. */
    size_t expect = v->nt != 0 && v->ns <= ((size_t)-1 / 2) / v->nt ? v->ns * v->nt : 0;
    if (expect > 0 && expect <= (v->n - v->i) / 2 &&
        grow((void **)&v->vals, &v->vals_cap, expect, sizeof *v->vals) != 0)
        return nomem(v);
    if (enter(v, ']')) return 0;
    for (;;) {
        if (read_row(v, v->nrows) != 0) return -1;
        int more = next(v, ']');
        if (more <= 0) return more;
    }
}

static int once(v2p *v, int *seen, const char *path) {
    if (*seen) return shape_error(v, "%s appears twice", path);
    *seen = 1;
    return 0;
}

static int read_columns(v2p *v);

static int attributes_member(v2p *v, const char *key, size_t index) {
    (void)index;
    if (v->scalar) {
        if (strcmp(key, "columns") != 0) return skip_value(v, 2);
        if (once(v, &v->have_columns, "data.attributes.columns") != 0) return -1;
        return read_columns(v);
    }
    if (strcmp(key, "series") == 0) {
        if (once(v, &v->have_series, "data.attributes.series") != 0) return -1;
        return read_series(v);
    }
    if (strcmp(key, "times") == 0) {
        if (once(v, &v->have_times, "data.attributes.times") != 0) return -1;
        return read_times(v);
    }
    if (strcmp(key, "values") == 0) {
        if (once(v, &v->have_values, "data.attributes.values") != 0) return -1;
        return read_values(v);
    }
    return skip_value(v, 2);
}

static int data_member(v2p *v, const char *key, size_t index) {
    (void)index;
    if (strcmp(key, "attributes") != 0) return skip_value(v, 1);
    if (once(v, &v->have_attributes, "data.attributes") != 0) return -1;
    return each_member(v, "data.attributes", attributes_member, 0);
}

static int root_member(v2p *v, const char *key, size_t index) {
    (void)index;
    if (strcmp(key, "data") == 0) {
        if (once(v, &v->have_data, "data") != 0) return -1;
        if (at(v, 'n')) return literal(v, "null");
        return each_member(v, "data", data_member, 0);
    }
    if (strcmp(key, "errors") == 0) {
        /* An empty errors string or array is no error; anything else is read at the end. */
        size_t start = v->i;
        if (skip_value(v, 1) != 0) return -1;
        size_t k = v->i - start;
        if (!(k == 2 &&
              (memcmp(v->s + start, "\"\"", 2) == 0 || memcmp(v->s + start, "[]", 2) == 0)) &&
            !(k == 4 && memcmp(v->s + start, "null", 4) == 0))
            v->have_errors = 1;
        return 0;
    }
    return skip_value(v, 1);
}

/* A syntax error, phrased as parse.c phrases them: cut short, or the byte where it goes wrong. */
static void syntax_message(const char *body, size_t len, char *msg, size_t cap) {
    size_t start = dds_json_skip_bom_ws(body, len);
    if (start == len) {
        dds_set_msg(msg, cap, "expected a JSON object, got an empty body");
        return;
    }
    if (body[start] != '{') {
        char said[DDS_TEXT_LIMIT + 1];
        dds_parse_error_body(body, len, said, sizeof said);
        dds_set_msg(msg, cap, "expected a JSON object, got %s: %s",
                    dds_looks_like_html(body + start, len - start) ? "HTML"
                    : body[start] == '['                           ? "an array"
                                                                   : "text",
                    said);
        return;
    }
    dds_json_check check;
    dds_json_shape shape = dds_json_check_body(body, len, &check);
    if (shape == DDS_JSON_TRUNCATED || shape == DDS_JSON_COMPLETE) {
        /* COMPLETE: json_check is lenient where we are not (a raw control character in a
         * string); the message still says where the body is. */
        if (shape == DDS_JSON_TRUNCATED) {
            dds_set_msg(msg, cap, "invalid JSON: the body ends early (truncated? %zu bytes)", len);
            return;
        }
        check.where = 0;
    }
    char near[EXCERPT_LIMIT * 4 + 1];
    dds_text t;
    dds_text_init(&t, near, sizeof near);
    size_t pos = check.where < len ? check.where : len;
    size_t k = len - pos < EXCERPT_LIMIT ? len - pos : EXCERPT_LIMIT;
    dds_text_put(&t, body + pos, k);
    dds_text_finish(&t);
    dds_set_msg(msg, cap, "invalid JSON at byte %zu of %zu, near \"%s\"", pos, len, near);
}

/* The envelope both answers share: {"data": {"attributes": {...}}, "errors": ...} read in one
 * pass into a fresh *v, attributes_member reading a scalar answer into sc when sc is not NULL,
 * a timeseries answer otherwise; then a 200 with errors (E_QUERY) and an answer without
 * data.attributes (which should have held `expected`). */
static void read_envelope(v2p *v, const char *body, size_t len, char *msg, size_t msg_cap,
                          dds_v2_scalar *sc, const char *expected) {
    if (msg && msg_cap) msg[0] = 0;
    memset(v, 0, sizeof *v);
    v->s = body;
    v->n = len;
    v->msg = msg;
    v->cap = msg_cap;
    v->scalar = sc != NULL;
    v->sc = sc;
    v->i = dds_json_skip_bom_ws(body, len);
    if (v->i < len && body[v->i] == '{') {
        if (each_member(v, "the answer", root_member, 0) == 0) {
            ws(v);
            if (v->i != v->n) syntax_error(v);
        }
    } else {
        syntax_error(v);
    }
    if (v->st == DDSTREAM_OK && v->have_errors) {
        char said[DDS_TEXT_LIMIT + 1];
        dds_parse_error_body(body, len, said, sizeof said);
        dds_set_msg(msg, msg_cap, "Datadog answered 200 with errors: %s", said);
        v->st = DDSTREAM_E_QUERY;
    }
    if (v->st == DDSTREAM_OK && !v->have_attributes)
        shape_error(v, "no data.attributes (expected %s)", expected);
}

void dds_v2_response_free(dds_v2_response *r) {
    if (r == NULL) return;
    for (size_t k = 0; k < r->series_count; k++) free(r->series[k].tags);
    free(r->series);
    free(r->times_ms);
    free(r->values);
    memset(r, 0, sizeof *r);
}

ddstream_status dds_parse_v2_timeseries(const char *body, size_t len, dds_v2_response *out,
                                        char *msg, size_t msg_cap) {
    memset(out, 0, sizeof *out);
    v2p v;
    read_envelope(&v, body, len, msg, msg_cap, NULL, "series, times and values");
    if (v.st == DDSTREAM_OK && v.nrows != v.ns)
        shape_error(&v, "data.attributes.values has %zu rows for %zu series", v.nrows, v.ns);
    for (size_t r = 0; v.st == DDSTREAM_OK && r < v.nrows; r++)
        if (v.row_len[r] != v.nt)
            shape_error(&v, "data.attributes.values[%zu] has %zu values for %zu times", r,
                        v.row_len[r], v.nt);
    if (v.syntax) syntax_message(body, len, msg, msg_cap);
    free(v.tmp);
    free(v.row_len);
    if (v.st != DDSTREAM_OK) {
        for (size_t k = 0; k < v.ns; k++) free(v.series[k].tags);
        free(v.series);
        free(v.times);
        free(v.vals);
        return v.st;
    }
    out->series = v.series;
    out->series_count = v.ns;
    out->times_ms = v.times;
    out->time_count = v.nt;
    if (v.nv == 0) {
        free(v.vals);
        v.vals = NULL;
    }
    out->values = v.vals;
    if (out->series_count == 0) {
        free(out->series);
        out->series = NULL;
    }
    return DDSTREAM_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Scalar answers: a handful of values, so plain code rather than speed.
 */

void dds_v2_scalar_free(dds_v2_scalar *sc) {
    if (sc == NULL) return;
    for (size_t k = 0; sc->groups && k < sc->group_count; k++) free(sc->groups[k]);
    free(sc->groups);
    for (size_t k = 0; sc->names && k < sc->column_count; k++) free(sc->names[k]);
    free(sc->names);
    free(sc->values);
    memset(sc, 0, sizeof *sc);
}

static void column_reset(v2p *v) {
    free(v->col_name);
    free(v->col_type);
    for (size_t k = 0; k < v->col_group_count; k++) free(v->col_groups[k]);
    free(v->col_groups);
    free(v->col_numbers);
    v->col_name = v->col_type = NULL;
    v->col_groups = NULL;
    v->col_numbers = NULL;
    v->col_group_count = v->col_group_cap = v->col_number_count = v->col_number_cap = 0;
    v->col_has_values = v->col_values_are_groups = v->col_values_other = 0;
}

static int kept_string(v2p *v, char **out, const char *path, size_t index) {
    if (!at(v, '"')) {
        if (!value_start(v)) return syntax_error(v);
        return shape_error(v, "%s[%zu] is %s, expected a string", path, index, kind_at(v));
    }
    if (read_string(v, 1) != 0) return -1;
    if (v->tmp_nul) return shape_error(v, "%s[%zu] holds U+0000", path, index);
    *out = strdup(v->tmp);
    return *out ? 0 : nomem(v);
}

/* One group: an array of tag strings, joined with ','. */
static int read_group(v2p *v, size_t column, size_t g) {
    if (!at(v, '[')) {
        if (!value_start(v)) return syntax_error(v);
        return shape_error(v, "data.attributes.columns[%zu].values[%zu] is %s, expected an array",
                           column, g, kind_at(v));
    }
    dds_strbuf joined = DDS_STRBUF_INIT;
    if (!enter(v, ']')) {
        for (size_t k = 0;; k++) {
            char *tag = NULL;
            if (kept_string(v, &tag, "data.attributes.columns.values", g) != 0) {
                dds_strbuf_free(&joined);
                return -1;
            }
            if (k) dds_strbuf_putc(&joined, ',');
            dds_strbuf_puts(&joined, tag);
            free(tag);
            if (joined.nomem) {
                dds_strbuf_free(&joined);
                return nomem(v);
            }
            int more = next(v, ']');
            if (more < 0) {
                dds_strbuf_free(&joined);
                return -1;
            }
            if (more == 0) break;
        }
    }
    char *text = dds_strbuf_take(&joined); /* "" for an empty group */
    if (text == NULL) return nomem(v);
    if (grow((void **)&v->col_groups, &v->col_group_cap, v->col_group_count + 1,
             sizeof *v->col_groups) != 0) {
        free(text);
        return nomem(v);
    }
    v->col_groups[v->col_group_count++] = text;
    return 0;
}

static int column_member(v2p *v, const char *key, size_t index) {
    if (strcmp(key, "name") == 0 || strcmp(key, "type") == 0) {
        char **slot = key[0] == 'n' ? &v->col_name : &v->col_type;
        if (*slot)
            return shape_error(v, "data.attributes.columns[%zu].%s appears twice", index, key);
        if (!at(v, '"')) {
            if (!value_start(v)) return syntax_error(v);
            return shape_error(v, "data.attributes.columns[%zu].%s is %s, expected a string", index,
                               key, kind_at(v));
        }
        if (read_string(v, 1) != 0) return -1;
        *slot = strdup(v->tmp);
        return *slot ? 0 : nomem(v);
    }
    if (strcmp(key, "values") != 0) return skip_value(v, 4);
    if (v->col_has_values)
        return shape_error(v, "data.attributes.columns[%zu].values appears twice", index);
    v->col_has_values = 1;
    if (!at(v, '[')) {
        if (!value_start(v)) return syntax_error(v);
        return shape_error(v, "data.attributes.columns[%zu].values is %s, expected an array", index,
                           kind_at(v));
    }
    size_t open = v->i;
    if (enter(v, ']')) return 0;
    if (v->i < v->n && !at(v, '[') && !at(v, 'n') && !at(v, '-') &&
        !(v->s[v->i] >= '0' && v->s[v->i] <= '9')) {
        /* Neither groups nor numbers: a column of a kind we do not read (its type says later). */
        v->i = open;
        v->col_values_other = 1;
        return skip_value(v, 4);
    }
    for (size_t k = 0;; k++) {
        if (k == 0) v->col_values_are_groups = at(v, '[');
        if (v->col_values_are_groups) {
            if (read_group(v, index, k) != 0) return -1;
        } else {
            double d;
            if (at(v, 'n')) {
                if (literal(v, "null") != 0) return -1;
                d = NAN;
            } else if (dds_number_parse(v->s, v->n, &v->i, &d, NULL) != 0) {
                if (!value_start(v)) return syntax_error(v);
                return shape_error(v,
                                   "data.attributes.columns[%zu].values[%zu] is %s, expected "
                                   "a number or null",
                                   index, k, kind_at(v));
            } else if (!isfinite(d)) {
                return shape_error(v, "data.attributes.columns[%zu].values[%zu] is out of range",
                                   index, k);
            }
            if (grow((void **)&v->col_numbers, &v->col_number_cap, v->col_number_count + 1,
                     sizeof *v->col_numbers) != 0)
                return nomem(v);
            v->col_numbers[v->col_number_count++] = d;
        }
        int more = next(v, ']');
        if (more <= 0) return more;
    }
}

/* A finished column into the result. */
static int keep_column(v2p *v, size_t index) {
    dds_v2_scalar *sc = v->sc;
    if (v->col_type == NULL)
        return shape_error(v, "data.attributes.columns[%zu] has no type", index);
    int known = strcmp(v->col_type, "group") == 0 || strcmp(v->col_type, "number") == 0;
    if (known && v->col_values_other)
        return shape_error(v, "data.attributes.columns[%zu] (%s) holds values of another kind",
                           index, v->col_type);
    if (strcmp(v->col_type, "group") == 0) {
        if (v->have_group_column)
            return shape_error(v, "data.attributes.columns[%zu] is a second group column", index);
        if (v->col_has_values && v->col_number_count > 0)
            return shape_error(v, "data.attributes.columns[%zu] (group) holds numbers", index);
        v->have_group_column = 1;
        sc->groups = v->col_groups;
        sc->group_count = v->col_group_count;
        v->col_groups = NULL;
        v->col_group_count = v->col_group_cap = 0;
        return 0;
    }
    if (strcmp(v->col_type, "number") != 0) return 0; /* a kind we do not know: skipped */
    if (v->col_group_count > 0)
        return shape_error(v, "data.attributes.columns[%zu] (number) holds arrays", index);
    /* Values are kept per column until the end, when the group count is known. */
    size_t c = sc->column_count;
    if (grow((void **)&sc->names, &v->columns_cap, c + 1, sizeof *sc->names) != 0) return nomem(v);
    double **cols = realloc(v->cols, v->columns_cap * sizeof *cols);
    if (cols == NULL) return nomem(v);
    v->cols = cols;
    size_t *lens = realloc(v->col_lens, v->columns_cap * sizeof *lens);
    if (lens == NULL) return nomem(v);
    v->col_lens = lens;
    sc->names[c] = v->col_name ? v->col_name : strdup("");
    v->col_name = NULL;
    if (sc->names[c] == NULL) return nomem(v);
    cols[c] = v->col_numbers;
    lens[c] = v->col_number_count;
    v->col_numbers = NULL;
    v->col_number_count = v->col_number_cap = 0;
    sc->column_count = c + 1;
    return 0;
}

static int read_columns(v2p *v) {
    if (!at(v, '[')) {
        if (!value_start(v)) return syntax_error(v);
        return shape_error(v, "data.attributes.columns is %s, expected an array", kind_at(v));
    }
    if (enter(v, ']')) return 0;
    for (size_t k = 0;; k++) {
        char path[48];
        snprintf(path, sizeof path, "data.attributes.columns[%zu]", k);
        int rc = each_member(v, path, column_member, k);
        if (rc == 0) rc = keep_column(v, k);
        column_reset(v);
        if (rc != 0) return -1;
        int more = next(v, ']');
        if (more <= 0) return more;
    }
}

ddstream_status dds_parse_v2_scalar(const char *body, size_t len, dds_v2_scalar *out, char *msg,
                                    size_t msg_cap) {
    memset(out, 0, sizeof *out);
    v2p v;
    read_envelope(&v, body, len, msg, msg_cap, out, "columns");
    column_reset(&v);
    /* Without a group column: one group, ungrouped, when there are values. */
    double **cols = v.cols;
    size_t *lens = v.col_lens;
    if (v.st == DDSTREAM_OK && !v.have_group_column && out->column_count > 0 && lens[0] > 0) {
        out->groups = calloc(1, sizeof *out->groups);
        if (out->groups) out->groups[0] = calloc(1, 1);
        if (!out->groups || !out->groups[0]) nomem(&v);
        else out->group_count = 1;
    }
    for (size_t c = 0; v.st == DDSTREAM_OK && c < out->column_count; c++)
        if (lens[c] != out->group_count)
            shape_error(&v, "data.attributes.columns: column '%s' has %zu values for %zu groups",
                        out->names[c], lens[c], out->group_count);
    double *flat = NULL;
    if (v.st == DDSTREAM_OK && out->column_count * out->group_count > 0) {
        flat = malloc(out->column_count * out->group_count * sizeof *flat);
        if (flat == NULL) nomem(&v);
        for (size_t c = 0; flat && c < out->column_count; c++)
            memcpy(flat + c * out->group_count, cols[c], out->group_count * sizeof *flat);
    }
    for (size_t c = 0; c < out->column_count; c++) free(cols[c]);
    free(cols);
    free(lens);
    out->values = flat;
    if (v.syntax) syntax_message(body, len, msg, msg_cap);
    free(v.tmp);
    if (v.st != DDSTREAM_OK) {
        free(flat);
        out->values = NULL;
        dds_v2_scalar_free(out);
    }
    return v.st;
}

ddstream_status dds_v2_read_timeseries(void *response, char *data, size_t len,
                                       ddstream_error *err) {
    dds_v2_response_free(response);
    char msg[400];
    ddstream_status st = dds_parse_v2_timeseries(data, len, response, msg, sizeof msg);
    return st == DDSTREAM_OK ? st : dds_error_set(err, st, "%s", msg);
}

ddstream_status dds_v2_read_scalar(void *table, char *data, size_t len, ddstream_error *err) {
    dds_v2_scalar_free(table);
    char msg[400];
    ddstream_status st = dds_parse_v2_scalar(data, len, table, msg, sizeof msg);
    return st == DDSTREAM_OK ? st : dds_error_set(err, st, "%s", msg);
}
