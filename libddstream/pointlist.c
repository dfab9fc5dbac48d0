/* pointlist.c — read root.series[*].pointlist straight into arrays (see pointlist.h for why).
 *
 * The scanner walks the whole document once, checking JSON syntax as it goes, and only then are
 * its results used: a document it cannot fully read yields nothing, so the general parser's error
 * messages are never affected. Numbers use Clinger's fast path (a mantissa of at most 2^53 and a
 * power of ten of at most 22 are both exact doubles, so one IEEE division or multiplication is
 * correctly rounded, as strtod is); anything else falls back to strtod, as cJSON does. */
#include "pointlist.h"

#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "strparse.h"
#include "timestamp_limit.h"

/* The same limits as the general parser (parse.c): both paths must accept the same points
 * (timestamp_limit.h). */
#define MAX_DEPTH         64
#define NUMBER_TEXT_LIMIT 64

typedef struct scanner {
    const char *s;
    size_t n;
    size_t i;
} scanner;

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }

static void skip_ws(scanner *c) { c->i = dds_skip_json_ws(c->s, c->n, c->i); }

static int at(const scanner *c, char ch) { return c->i < c->n && c->s[c->i] == ch; }

/* At '"': skip the string. *escaped set if it holds a backslash escape. -1 if malformed. */
static int skip_string(scanner *c, int *escaped) {
    *escaped = 0;
    c->i++;
    while (c->i < c->n) {
        unsigned char ch = (unsigned char)c->s[c->i];
        if (ch == '"') {
            c->i++;
            return 0;
        }
        if (ch < 0x20) return -1;
        if (ch == '\\') {
            /* Only escapes cJSON is sure to accept: otherwise the document is "unusual" and
             * the general parser reads it untouched (and reports it, if it is wrong). */
            *escaped = 1;
            if (c->n - c->i < 2) return -1;
            char e = c->s[c->i + 1];
            if (e == 'u') {
                unsigned code = 0;
                if (c->n - c->i < 6) return -1;
                for (size_t k = 2; k < 6; k++) {
                    char h = c->s[c->i + k];
                    int d = h >= '0' && h <= '9'   ? h - '0'
                            : h >= 'a' && h <= 'f' ? h - 'a' + 10
                            : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                   : -1;
                    if (d < 0) return -1;
                    code = code * 16 + (unsigned)d;
                }
                if (code >= 0xD800 && code <= 0xDFFF) return -1; /* surrogates: leave to cJSON */
                c->i += 6;
                continue;
            }
            if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' &&
                e != 't')
                return -1;
            c->i += 2;
            continue;
        }
        c->i++;
    }
    return -1;
}

static int skip_literal(scanner *c, const char *lit) {
    size_t k = strlen(lit);
    if (c->n - c->i < k || memcmp(c->s + c->i, lit, k) != 0) return -1;
    c->i += k;
    return 0;
}

/*
 * Parse a JSON number (strict grammar) at c->i into *out. Returns 0, or -1 if the text is not a
 * JSON number or is too long for the fallback buffer. Any number: exponents, more than 19
 * digits, Clinger's fast path or strtod.
 */
static int parse_number_general(scanner *c, double *out) {
    const char *s = c->s;
    size_t n = c->n, p = c->i, start = c->i;
    int neg = 0, slow = 0, digits = 0;
    uint64_t mant = 0;
    long exp10 = 0;
    if (p < n && s[p] == '-') {
        neg = 1;
        p++;
    }
    if (p >= n || !is_digit(s[p])) return -1;
    if (s[p] == '0') {
        p++;
    } else {
        for (; p < n && is_digit(s[p]); p++) {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)(s[p] - '0');
                digits++;
            } else {
                slow = 1;
            }
        }
    }
    if (p < n && s[p] == '.') {
        p++;
        if (p >= n || !is_digit(s[p])) return -1;
        for (; p < n && is_digit(s[p]); p++) {
            if (mant == 0 && s[p] == '0') {
                exp10--; /* leading zeros of 0.000123 are not significant digits */
            } else if (digits < 19) {
                mant = mant * 10 + (uint64_t)(s[p] - '0');
                digits++;
                exp10--;
            } else {
                slow = 1;
            }
        }
    }
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        long sign = 1, e = 0;
        if (p < n && (s[p] == '+' || s[p] == '-')) sign = s[p++] == '-' ? -1 : 1;
        if (p >= n || !is_digit(s[p])) return -1;
        for (; p < n && is_digit(s[p]); p++) {
            if (e < 100000) e = e * 10 + (s[p] - '0');
            else slow = 1;
        }
        exp10 += sign * e;
    }
    c->i = p;
    if (!slow && mant == 0) {
        *out = neg ? -0.0 : 0.0;
        return 0;
    }
    if (!slow && mant <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        double v = (double)mant;
        v = exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
        *out = neg ? -v : v;
        return 0;
    }
    size_t len = p - start;
    if (len >= NUMBER_TEXT_LIMIT) return -1;
    char buf[NUMBER_TEXT_LIMIT];
    memcpy(buf, s + start, len);
    buf[len] = 0;
    /* strtod reads the locale's decimal point; JSON's is always '.' (cJSON does the same). */
    const struct lconv *lc = localeconv();
    char point = (lc && lc->decimal_point && lc->decimal_point[0]) ? lc->decimal_point[0] : '.';
    if (point != '.') {
        char *dot = strchr(buf, '.');
        if (dot) *dot = point;
    }
    char *end = NULL;
    *out = strtod(buf, &end);
    return end == buf + len ? 0 : -1;
}

static const uint64_t pow10_u64[20] = {UINT64_C(1),
                                       UINT64_C(10),
                                       UINT64_C(100),
                                       UINT64_C(1000),
                                       UINT64_C(10000),
                                       UINT64_C(100000),
                                       UINT64_C(1000000),
                                       UINT64_C(10000000),
                                       UINT64_C(100000000),
                                       UINT64_C(1000000000),
                                       UINT64_C(10000000000),
                                       UINT64_C(100000000000),
                                       UINT64_C(1000000000000),
                                       UINT64_C(10000000000000),
                                       UINT64_C(100000000000000),
                                       UINT64_C(1000000000000000),
                                       UINT64_C(10000000000000000),
                                       UINT64_C(100000000000000000),
                                       UINT64_C(1000000000000000000),
                                       UINT64_C(10000000000000000000)};

/* Runs of ASCII digits eight bytes at a time (little-endian loads; the SWAR idioms of simdjson
 * and fast_float): how many of the eight bytes lead with digits, and their value. */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#  define SWAR_DIGITS 1

/* Leading digit bytes of v (first character in the low byte), 0..8. A byte's test is exact
 * up to the first non-digit: only a non-digit can carry into the byte after it. */
static unsigned leading_digits(uint64_t v) {
    uint64_t x = v ^ UINT64_C(0x3030303030303030); /* digits: 0x00..0x09 */
    uint64_t bad = ((x + UINT64_C(0x7676767676767676)) | x) & UINT64_C(0x8080808080808080);
    return bad ? (unsigned)__builtin_ctzll(bad) / 8 : 8;
}

/* The value of the k (1..8) leading digits of v. */
static uint64_t digits_value(uint64_t v, unsigned k) {
    /* Move them to the top and fill below with '0's: eight digits, the number unchanged. */
    if (k < 8) v = (v << (8 * (8 - k))) | (UINT64_C(0x3030303030303030) >> (8 * k));
    v -= UINT64_C(0x3030303030303030);
    v = v * 10 + (v >> 8); /* pairs */
    return ((v & UINT64_C(0x000000FF000000FF)) * UINT64_C(0x000F424000000064) +
            ((v >> 16) & UINT64_C(0x000000FF000000FF)) * UINT64_C(0x0000271000000001)) >>
           32;
}
#endif

/* Digits from p on, accumulated into *mant (wrapping past 19 digits: the caller counts them). */
static inline size_t eat_digits(const char *s, size_t n, size_t p, uint64_t *mant) {
    uint64_t m = *mant;
#ifdef SWAR_DIGITS
    while (n - p >= 8) {
        uint64_t v;
        memcpy(&v, s + p, 8);
        unsigned k = leading_digits(v);
        if (k == 0) break;
        m = m * pow10_u64[k] + digits_value(v, k);
        p += k;
        if (k < 8) {
            *mant = m;
            return p;
        }
    }
#endif
    while (p < n && is_digit(s[p])) m = m * 10 + (uint64_t)(s[p++] - '0');
    *mant = m;
    return p;
}

/*
 * parse_number_general for what a pointlist holds: [-]int[.frac] of at most 19 digits, whose
 * value Clinger's fast path gives exactly (mantissa <= 2^53, at most 22 decimals). Digits eight
 * at a time. Anything else (an exponent, more digits, a larger mantissa) goes to the general
 * parser from the start, so both give the same double for the same text.
 */
static int parse_number(scanner *c, double *out) {
    const char *s = c->s;
    size_t n = c->n, p = c->i;
    int neg = p < n && s[p] == '-';
    p += (size_t)neg;
    size_t int_start = p;
    uint64_t mant = 0;
    if (p < n && s[p] == '0') p++; /* a leading zero stands alone */
    else p = eat_digits(s, n, p, &mant);
    size_t digits = p - int_start, frac = 0;
    if (digits == 0) return -1;
    if (p < n && s[p] == '.') {
        size_t frac_start = p + 1;
        uint64_t fraction = 0;
        p = eat_digits(s, n, frac_start, &fraction);
        frac = p - frac_start;
        if (frac == 0) return -1;
        digits += frac;
        if (fraction == 0) frac = 0; /* 1699920000000.0: a whole number, no division */
        else if (digits <= 19) mant = mant * pow10_u64[frac] + fraction;
    }
    if ((p < n && (s[p] == 'e' || s[p] == 'E')) || digits > 19 || mant > (UINT64_C(1) << 53) ||
        frac > 22)
        return parse_number_general(c, out);
    c->i = p;
    double v = (double)mant;
    if (frac > 0) v /= pow10_exact[frac];
    *out = neg ? -v : v;
    return 0;
}

/* At an opening bracket: step in. Returns 1 if the container is empty (closing bracket eaten). */
static int enter(scanner *c, char close) {
    c->i++;
    skip_ws(c);
    if (at(c, close)) {
        c->i++;
        return 1;
    }
    return 0;
}

/* After an element: 1 if a ',' follows (eaten, another element comes), 0 if the closing bracket
 * follows (eaten), -1 if anything else does. */
static int next_element(scanner *c, char close) {
    skip_ws(c);
    if (at(c, ',')) {
        c->i++;
        skip_ws(c);
        return 1;
    }
    if (at(c, close)) {
        c->i++;
        return 0;
    }
    return -1;
}

/* At a member's key: read it and the ':' after it. The key's text, quotes included, is
 * [*key_start, *key_end). */
static int read_key(scanner *c, size_t *key_start, size_t *key_end, int *escaped) {
    *key_start = c->i;
    if (!at(c, '"') || skip_string(c, escaped) != 0) return -1;
    *key_end = c->i;
    skip_ws(c);
    if (!at(c, ':')) return -1;
    c->i++;
    skip_ws(c);
    return 0;
}

static int skip_value(scanner *c, int depth);

static int skip_container(scanner *c, int depth, char close, int is_object) {
    if (depth >= MAX_DEPTH) return -1;
    if (enter(c, close)) return 0;
    for (;;) {
        size_t key_start, key_end;
        int escaped;
        if (is_object && read_key(c, &key_start, &key_end, &escaped) != 0) return -1;
        if (skip_value(c, depth + 1) != 0) return -1;
        int more = next_element(c, close);
        if (more <= 0) return more;
    }
}

static int skip_value(scanner *c, int depth) {
    if (c->i >= c->n) return -1;
    int escaped;
    double ignored;
    switch (c->s[c->i]) {
    case '{': return skip_container(c, depth, '}', 1);
    case '[': return skip_container(c, depth, ']', 0);
    case '"': return skip_string(c, &escaped);
    case 't': return skip_literal(c, "true");
    case 'f': return skip_literal(c, "false");
    case 'n': return skip_literal(c, "null");
    default: return parse_number(c, &ignored);
    }
}

static int push_point(dds_fast_pointlist *pl, size_t *cap, int64_t ts, double v) {
    if (pl->length == *cap) {
        size_t grown = *cap ? *cap * 2 : 256;
        int64_t *t = realloc(pl->ts_ms, grown * sizeof *t);
        if (!t) return -1;
        pl->ts_ms = t;
        double *d = realloc(pl->values, grown * sizeof *d);
        if (!d) return -1;
        pl->values = d;
        *cap = grown;
    }
    pl->ts_ms[pl->length] = ts;
    pl->values[pl->length] = v;
    pl->length++;
    return 0;
}

typedef enum { PL_OK, PL_NOT_FAST, PL_NOMEM } pl_result;

/* At '[': read [[ts, value|null], ...] applying the general parser's checks. On PL_NOT_FAST the
 * position is unspecified and the caller rewinds. */
static pl_result read_pointlist(scanner *c, dds_fast_pointlist *pl) {
    size_t cap = 0;
    pl->begin = c->i;
    c->i++;
    skip_ws(c);
    if (at(c, ']')) {
        c->i++;
        pl->end = c->i;
        return PL_OK;
    }
    for (;;) {
        double ts, v;
        if (!at(c, '[')) return PL_NOT_FAST;
        c->i++;
        skip_ws(c);
        if (parse_number(c, &ts) != 0) return PL_NOT_FAST;
        skip_ws(c);
        if (!at(c, ',')) return PL_NOT_FAST;
        c->i++;
        skip_ws(c);
        if (at(c, 'n')) {
            if (skip_literal(c, "null") != 0) return PL_NOT_FAST;
            v = NAN;
        } else {
            if (parse_number(c, &v) != 0 || !isfinite(v)) return PL_NOT_FAST;
        }
        skip_ws(c);
        if (!at(c, ']')) return PL_NOT_FAST;
        c->i++;
        if (!isfinite(ts) || ts < -DDS_TIME_LIMIT_MS || ts > DDS_TIME_LIMIT_MS ||
            (double)(int64_t)ts != ts)
            return PL_NOT_FAST;
        if (push_point(pl, &cap, (int64_t)ts, v) != 0) return PL_NOMEM;
        skip_ws(c);
        if (at(c, ',')) {
            c->i++;
            skip_ws(c);
            continue;
        }
        if (at(c, ']')) {
            c->i++;
            pl->end = c->i;
            return PL_OK;
        }
        return PL_NOT_FAST;
    }
}

static void free_item(dds_fast_pointlist *pl) {
    free(pl->ts_ms);
    free(pl->values);
    pl->ts_ms = NULL;
    pl->values = NULL;
}

/* Whether the key read at [key_start, key_end) (quotes included) is name. */
static int key_is(const scanner *c, size_t key_start, size_t key_end, const char *name) {
    size_t k = strlen(name);
    return key_end - key_start == k + 2 && memcmp(c->s + key_start + 1, name, k) == 0;
}

static int append(dds_fast_pointlists *out, const dds_fast_pointlist *pl) {
    if (out->count == out->capacity) {
        size_t cap = out->capacity ? out->capacity * 2 : 16;
        dds_fast_pointlist *grown = realloc(out->items, cap * sizeof *grown);
        if (!grown) return -1;
        out->items = grown;
        out->capacity = cap;
    }
    out->items[out->count++] = *pl;
    return 0;
}

typedef enum { SCAN_OK, SCAN_UNUSUAL, SCAN_NOMEM } scan_result;

/* At '{' of series[index]. Takes its pointlist if the object has exactly one member named
 * "pointlist" and no escaped keys — the conditions under which cJSON sees the same member. */
static scan_result scan_series_object(scanner *c, size_t index, dds_fast_pointlists *out) {
    dds_fast_pointlist item = {index, 0, 0, 0, NULL, NULL};
    int have = 0, pointlists = 0, escaped_keys = 0, more = 0;
    if (enter(c, '}')) return SCAN_OK;
    do {
        size_t key_start, key_end;
        int escaped;
        if (read_key(c, &key_start, &key_end, &escaped) != 0) goto unusual;
        escaped_keys |= escaped;
        int is_pointlist = !escaped && key_is(c, key_start, key_end, "pointlist");
        if (is_pointlist && ++pointlists == 1 && at(c, '[')) {
            size_t start = c->i;
            pl_result r = read_pointlist(c, &item);
            if (r == PL_NOMEM) {
                free_item(&item);
                return SCAN_NOMEM;
            }
            if (r == PL_OK) {
                have = 1;
            } else {
                free_item(&item);
                item.length = 0;
                c->i = start;
                if (skip_value(c, 3) != 0) goto unusual;
            }
        } else if (skip_value(c, 3) != 0) {
            goto unusual;
        }
        more = next_element(c, '}');
        if (more < 0) goto unusual;
    } while (more);
    if (have && pointlists == 1 && !escaped_keys) {
        if (append(out, &item) != 0) {
            free_item(&item);
            return SCAN_NOMEM;
        }
    } else {
        free_item(&item);
    }
    return SCAN_OK;
unusual:
    free_item(&item);
    return SCAN_UNUSUAL;
}

static scan_result scan_series_array(scanner *c, dds_fast_pointlists *out) {
    if (enter(c, ']')) return SCAN_OK;
    for (size_t index = 0;; index++) {
        if (at(c, '{')) {
            scan_result r = scan_series_object(c, index, out);
            if (r != SCAN_OK) return r;
        } else if (skip_value(c, 2) != 0) {
            return SCAN_UNUSUAL;
        }
        int more = next_element(c, ']');
        if (more < 0) return SCAN_UNUSUAL;
        if (more == 0) return SCAN_OK;
    }
}

static scan_result scan_root(scanner *c, dds_fast_pointlists *out) {
    skip_ws(c);
    if (!at(c, '{')) return SCAN_UNUSUAL;
    int series_keys = 0, more = !enter(c, '}');
    while (more) {
        size_t key_start, key_end;
        int escaped;
        if (read_key(c, &key_start, &key_end, &escaped) != 0 || escaped) return SCAN_UNUSUAL;
        if (key_is(c, key_start, key_end, "series") && ++series_keys == 1 && at(c, '[')) {
            scan_result r = scan_series_array(c, out);
            if (r != SCAN_OK) return r;
        } else if (skip_value(c, 1) != 0) {
            return SCAN_UNUSUAL;
        }
        more = next_element(c, '}');
        if (more < 0) return SCAN_UNUSUAL;
    }
    skip_ws(c);
    if (c->i != c->n || series_keys > 1) return SCAN_UNUSUAL;
    return SCAN_OK;
}

int dds_fast_pointlists_scan(const char *body, size_t len, dds_fast_pointlists *out) {
    memset(out, 0, sizeof *out);
    if (!body) return 0;
    scanner c = {body, len, 0};
    /* A UTF-8 byte-order mark is legal before the document for the general parser too. */
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) c.i = 3;
    scan_result r = scan_root(&c, out);
    if (r == SCAN_OK) return 0;
    dds_fast_pointlists_free(out);
    return r == SCAN_NOMEM ? -1 : 0;
}

char *dds_fast_pointlists_envelope(const char *body, size_t len, const dds_fast_pointlists *pl,
                                   size_t *env_len) {
    size_t taken = 0;
    for (size_t k = 0; k < pl->count; k++) taken += pl->items[k].end - pl->items[k].begin - 2;
    size_t n = len - taken; /* items are disjoint spans of body, each at least "[]" long */
    char *env = malloc(n + 1);
    if (!env) return NULL;
    size_t from = 0, to = 0;
    for (size_t k = 0; k < pl->count; k++) {
        const dds_fast_pointlist *it = &pl->items[k];
        memcpy(env + to, body + from, it->begin - from);
        to += it->begin - from;
        env[to++] = '[';
        env[to++] = ']';
        from = it->end;
    }
    memcpy(env + to, body + from, len - from);
    env[n] = 0;
    *env_len = n;
    return env;
}

dds_fast_pointlist *dds_fast_pointlists_take(dds_fast_pointlists *pl, size_t series_index,
                                             size_t *cursor) {
    while (*cursor < pl->count && pl->items[*cursor].series_index < series_index) (*cursor)++;
    if (*cursor < pl->count && pl->items[*cursor].series_index == series_index)
        return &pl->items[(*cursor)++];
    return NULL;
}

void dds_fast_pointlists_free(dds_fast_pointlists *pl) {
    for (size_t k = 0; k < pl->count; k++) free_item(&pl->items[k]);
    free(pl->items);
    memset(pl, 0, sizeof *pl);
}

int dds_json_scan_number(const char *s, size_t n, size_t *i, double *out) {
    scanner c = {s, n, *i};
    if (parse_number(&c, out) != 0) return -1;
    *i = c.i;
    return 0;
}
