/* pointlist.c — read root.series[*].pointlist straight into arrays (see pointlist.h for why).
 *
 * The scanner walks the whole document once, checking JSON syntax as it goes, and only then are
 * its results used: a document it cannot fully read yields nothing, so the general parser's error
 * messages are never affected. Numbers are read by number_parse.c, which gives strtod's double
 * (what cJSON gives the general parser) without calling it for any number Datadog writes. */
#include "pointlist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bigalloc.h"
#include "number_parse.h"
#include "strparse.h"
#include "timestamp_limit.h"

/* The same limits as the general parser (parse.c): both paths must accept the same points
 * (timestamp_limit.h). */
#define MAX_DEPTH 64

typedef struct scanner {
    const char *s;
    size_t n;
    size_t i;
    size_t points_hint; /* the last pointlist's length: the next one's likely length */
    dds_fast_pointlists *out;
    int slab_tried; /* the slab was sized (or found not worth it) after an early pointlist */
} scanner;

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

/* A JSON number (strict grammar) at c->i into *out (number_parse.c: exact, strtod's result);
 * -1 if the text there is not one or is too long for the exact fallback. */
static int parse_number(scanner *c, double *out) {
    return dds_number_parse(c->s, c->n, &c->i, out, NULL);
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

/* Room for at least one more point in pl's arrays (pl->length of them used, *cap allocated).
 * The first size is the hint: an answer's series usually have the same number of points, so
 * from the second pointlist on the arrays are allocated once, at their final size. The hint is
 * held to what the rest of the body can hold ("[0,0]," is six bytes), and shrink_points gives
 * back what a shorter pointlist left unused. */
static int grow_points(dds_fast_pointlist *pl, size_t *cap, size_t hint, size_t rest) {
    if (hint > rest / 6 + 1) hint = rest / 6 + 1;
    size_t grown = *cap ? *cap * 2 : (hint > 256 ? hint : 256);
    int64_t *t = realloc(pl->ts_ms, grown * sizeof *t);
    if (!t) return -1;
    pl->ts_ms = t;
    double *d = realloc(pl->values, grown * sizeof *d);
    if (!d) return -1;
    pl->values = d;
    *cap = grown;
    return 0;
}

/* A pointlist that used less than half its arrays: give the rest back (a smaller realloc keeps
 * the data; if it fails, the larger arrays stay, which is harmless). */
static void shrink_points(dds_fast_pointlist *pl, size_t cap) {
    if (pl->length == 0 || pl->length >= cap / 2) return;
    int64_t *t = realloc(pl->ts_ms, pl->length * sizeof *t);
    if (t) pl->ts_ms = t;
    double *d = realloc(pl->values, pl->length * sizeof *d);
    if (d) pl->values = d;
}

/* Answers whose points need less than this keep the heap: a slab would not save a fault. */
#define SLAB_MIN ((size_t)1 << 20)
/* The pointlist whose bytes per point size the slab: long enough for a fair average. */
#define SLAB_SAMPLE_POINTS 64

/* After a pointlist of len points in span bytes of text, with rest bytes of body after it: one
 * slab for the points still to come, sized once. Their count is estimated from that pointlist's
 * bytes per point, plus an eighth for shorter numbers further on, and never more than the rest
 * could hold ("[0,0]," is six bytes); pages of it never written cost nothing. The heap serves
 * whatever does not fit, and everything when the slab cannot be had. */
static void make_slab(dds_fast_pointlists *out, size_t len, size_t span, size_t rest) {
    size_t points = rest / (span / len); /* span / len >= 6 */
    points += points / 8;
    if (points > rest / 6 + 1) points = rest / 6 + 1;
    if (points > SIZE_MAX / 16 || points * 16 < SLAB_MIN) return;
    out->slab = dds_big_alloc(points * 16);
    out->slab_cap = out->slab ? points * 16 : 0;
    out->slab_used = 0;
}

/* A pointlist being written into the slab outgrew the room it was given: move it to arrays of
 * its own, twice the size, and go on there (the slab's room is left for the next one). */
static int leave_slab(dds_fast_pointlist *pl, size_t *cap) {
    size_t grown = *cap * 2;
    int64_t *t = malloc(grown * sizeof *t);
    double *d = malloc(grown * sizeof *d);
    if (!t || !d) {
        free(t);
        free(d);
        return -1;
    }
    memcpy(t, pl->ts_ms, pl->length * sizeof *t);
    memcpy(d, pl->values, pl->length * sizeof *d);
    pl->ts_ms = t;
    pl->values = d;
    pl->in_slab = 0;
    *cap = grown;
    return 0;
}

/* A pointlist read: its points in the slab are kept (values moved down to follow the timestamps
 * when it came out shorter than its room), or its own arrays trimmed; and after the first long
 * enough one, the slab is sized. */
static void settle_points(scanner *c, dds_fast_pointlist *pl, size_t cap) {
    dds_fast_pointlists *out = c->out;
    if (pl->in_slab) {
        int64_t *ts = pl->ts_ms;
        if (pl->length < cap)
            pl->values = memmove(ts + pl->length, pl->values, pl->length * sizeof *pl->values);
        out->slab_used += pl->length * 16;
    } else {
        shrink_points(pl, cap);
    }
    if (!c->slab_tried && pl->length >= SLAB_SAMPLE_POINTS) {
        c->slab_tried = 1;
        make_slab(out, pl->length, pl->end - pl->begin, c->n - pl->end);
    }
}

typedef enum { PL_OK, PL_NOT_FAST, PL_NOMEM } pl_result;

/* At '[': read [[ts, value|null], ...] applying the general parser's checks. On PL_NOT_FAST the
 * position is unspecified and the caller rewinds. The loop keeps the text, its length and the
 * position in locals (registers), not in the scanner: every step of a point depends on the one
 * before, and a position in memory would add a store and a load to each of them. */
static pl_result read_pointlist(scanner *c, dds_fast_pointlist *pl) {
    const char *s = c->s;
    size_t n = c->n, i = c->i, cap = 0, len = 0;
    int64_t *ts_out = NULL;
    double *v_out = NULL;
    pl->begin = i;
    i = dds_skip_json_ws(s, n, i + 1);
    if (i < n && s[i] == ']') {
        pl->end = c->i = i + 1;
        return PL_OK;
    }
    /* Room in the slab for as many points as the last pointlist had: written in place. */
    dds_fast_pointlists *out = c->out;
    size_t hint = c->points_hint;
    if (out->slab && hint > 0 && hint <= (out->slab_cap - out->slab_used) / 16) {
        ts_out = pl->ts_ms = (int64_t *)(void *)((char *)out->slab + out->slab_used);
        v_out = pl->values = (double *)(ts_out + hint);
        pl->in_slab = 1;
        cap = hint;
    }
    for (;;) {
        double ts, v;
        if (i >= n || s[i] != '[') return PL_NOT_FAST;
        i = dds_skip_json_ws(s, n, i + 1);
        if ((i = dds_number_scan(s, n, i, &ts)) == 0) return PL_NOT_FAST;
        i = dds_skip_json_ws(s, n, i);
        if (i >= n || s[i] != ',') return PL_NOT_FAST;
        i = dds_skip_json_ws(s, n, i + 1);
        if (i < n && s[i] == 'n') {
            if (n - i < 4 || memcmp(s + i, "null", 4) != 0) return PL_NOT_FAST;
            i += 4;
            v = NAN;
        } else {
            if ((i = dds_number_scan(s, n, i, &v)) == 0 || !isfinite(v)) return PL_NOT_FAST;
        }
        i = dds_skip_json_ws(s, n, i);
        if (i >= n || s[i] != ']') return PL_NOT_FAST;
        i++;
        if (!isfinite(ts) || ts < -DDS_TIME_LIMIT_MS || ts > DDS_TIME_LIMIT_MS ||
            (double)(int64_t)ts != ts)
            return PL_NOT_FAST;
        if (len == cap) {
            pl->length = len;
            if (pl->in_slab ? leave_slab(pl, &cap) != 0
                            : grow_points(pl, &cap, c->points_hint, n - i) != 0)
                return PL_NOMEM;
            ts_out = pl->ts_ms;
            v_out = pl->values;
        }
        ts_out[len] = (int64_t)ts;
        v_out[len] = v;
        len++;
        i = dds_skip_json_ws(s, n, i);
        if (i < n && s[i] == ',') {
            i = dds_skip_json_ws(s, n, i + 1);
            continue;
        }
        pl->length = len;
        if (i < n && s[i] == ']') {
            pl->end = c->i = i + 1;
            c->points_hint = len;
            settle_points(c, pl, cap);
            return PL_OK;
        }
        return PL_NOT_FAST;
    }
}

static void free_item(dds_fast_pointlist *pl) {
    if (!pl->in_slab) {
        free(pl->ts_ms);
        free(pl->values);
    }
    pl->ts_ms = NULL;
    pl->values = NULL;
    pl->in_slab = 0;
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
    dds_fast_pointlist item = {index, 0, 0, 0, NULL, NULL, 0};
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
    scanner c = {body, len, 0, 0, out, 0};
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

void *dds_fast_pointlists_take_slab(dds_fast_pointlists *pl) {
    void *slab = pl->slab;
    pl->slab = NULL;
    pl->slab_cap = pl->slab_used = 0;
    return slab;
}

void dds_fast_pointlists_free(dds_fast_pointlists *pl) {
    for (size_t k = 0; k < pl->count; k++) free_item(&pl->items[k]);
    free(pl->items);
    free(pl->slab);
    memset(pl, 0, sizeof *pl);
}
