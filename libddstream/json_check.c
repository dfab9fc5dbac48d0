/* json_check.c — see json_check.h.
 *
 * Why a second reader besides cJSON: a parse failure alone cannot say whether a body was cut short
 * on the way (worth a retry) or is wrong from start to end (a protocol error, for ever); counting
 * brackets could not either ("{\"series\":[}" balances to one open bracket). Only a document that
 * is a correct beginning of JSON and simply stops is cut short. And cJSON's strings are C strings:
 * a "\u0000" inside one silently ends it there, so two different tags would read the same; this
 * finds such strings, and where they are, before anything reads them. */
#include "json_check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strparse.h"

typedef struct frame {
    char kind;               /* '{' or '[' */
    size_t index;            /* '[': the element being read */
    size_t key_off, key_len; /* '{': the raw bytes of the current key (between its quotes) */
} frame;

typedef struct scanner {
    const unsigned char *p;
    size_t n, i;
    frame *stack;
    size_t depth, cap;
    dds_json_check *out;
} scanner;

enum { SCAN_OK, SCAN_TRUNCATED, SCAN_MALFORMED };

static void append_path(char *path, size_t cap, size_t *len, const char *s, size_t n) {
    for (size_t k = 0; k < n && *len + 1 < cap; k++) {
        unsigned char c = (unsigned char)s[k];
        path[(*len)++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    path[*len] = 0;
}

/* The JSON path of the value being read (and of key_off/key_len when in_key). */
static void record_nul(scanner *sc, int in_key, size_t key_off, size_t key_len) {
    dds_json_check *o = sc->out;
    if (o->nul) return;
    o->nul = 1;
    size_t len = 0;
    o->nul_path[0] = 0;
    for (size_t d = 0; d < sc->depth; d++) {
        const frame *f = &sc->stack[d];
        char num[32];
        if (f->kind == '[') {
            snprintf(num, sizeof num, "[%zu]", f->index);
            append_path(o->nul_path, sizeof o->nul_path, &len, num, strlen(num));
        } else if (d + 1 < sc->depth || !in_key) {
            if (len > 0) append_path(o->nul_path, sizeof o->nul_path, &len, ".", 1);
            size_t shown = f->key_len > 40 ? 40 : f->key_len;
            append_path(o->nul_path, sizeof o->nul_path, &len, (const char *)sc->p + f->key_off,
                        shown);
        }
    }
    if (in_key) {
        const char *what = len > 0 ? ".<a key>" : "<a key>";
        append_path(o->nul_path, sizeof o->nul_path, &len, what, strlen(what));
        (void)key_off;
        (void)key_len;
    }
    if (len == 0) append_path(o->nul_path, sizeof o->nul_path, &len, "<top>", 5);
}

static int hexdigit(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The string starting at sc->i (a '"'). */
static int scan_string(scanner *sc, int is_key) {
    const unsigned char *p = sc->p;
    size_t n = sc->n, j = sc->i + 1;
    size_t start = j;
    int nul = 0;
    for (;;) {
        /* The common bytes, one test each. */
        while (j < n && p[j] != '"' && p[j] != '\\' && p[j] != 0) j++;
        if (j >= n) return SCAN_TRUNCATED;
        if (p[j] == '"') break;
        if (p[j] == 0) {
            nul = 1;
            j++;
            continue;
        }
        /* a backslash */
        if (j + 1 >= n) return SCAN_TRUNCATED;
        unsigned char e = p[j + 1];
        if (e == 'u') {
            int zero = 1;
            for (size_t k = 0; k < 4; k++) {
                if (j + 2 + k >= n) return SCAN_TRUNCATED;
                if (!hexdigit(p[j + 2 + k])) {
                    sc->i = j + 2 + k;
                    return SCAN_MALFORMED;
                }
                if (p[j + 2 + k] != '0') zero = 0;
            }
            nul |= zero;
            j += 6;
        } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                   e == 'r' || e == 't') {
            j += 2;
        } else {
            sc->i = j + 1;
            return SCAN_MALFORMED;
        }
    }
    if (is_key && sc->depth > 0) {
        frame *f = &sc->stack[sc->depth - 1];
        f->key_off = start;
        f->key_len = j - start;
    }
    if (nul) record_nul(sc, is_key, start, j - start);
    sc->i = j + 1;
    return SCAN_OK;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? starting at sc->i. */
static int scan_number(scanner *sc) {
    const unsigned char *p = sc->p;
    size_t n = sc->n, j = sc->i;
#define NEED(cond)                                                                                 \
  do {                                                                                             \
    if (j >= n) return SCAN_TRUNCATED;                                                             \
    if (!(cond)) {                                                                                 \
      sc->i = j;                                                                                   \
      return SCAN_MALFORMED;                                                                       \
    }                                                                                              \
  } while (0)
    if (p[j] == '-') j++;
    NEED(is_digit(p[j]));
    if (p[j] == '0') j++;
    else
        while (j < n && is_digit(p[j])) j++;
    if (j < n && p[j] == '.') {
        j++;
        NEED(is_digit(p[j]));
        while (j < n && is_digit(p[j])) j++;
    }
    if (j < n && (p[j] == 'e' || p[j] == 'E')) {
        j++;
        if (j < n && (p[j] == '+' || p[j] == '-')) j++;
        NEED(is_digit(p[j]));
        while (j < n && is_digit(p[j])) j++;
    }
#undef NEED
    /* A number that reaches the end may go on: only inside a container, where the end is early
     * anyway. */
    if (j >= n) return SCAN_TRUNCATED;
    sc->i = j;
    return SCAN_OK;
}

static int scan_literal(scanner *sc, const char *word) {
    size_t k = strlen(word);
    for (size_t m = 0; m < k; m++) {
        if (sc->i + m >= sc->n) return SCAN_TRUNCATED;
        if (sc->p[sc->i + m] != (unsigned char)word[m]) {
            sc->i += m;
            return SCAN_MALFORMED;
        }
    }
    sc->i += k;
    return SCAN_OK;
}

static int push(scanner *sc, char kind) {
    if (sc->depth == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 32;
        frame *grown = realloc(sc->stack, cap * sizeof *grown);
        if (!grown) return -1;
        sc->stack = grown;
        sc->cap = cap;
    }
    frame *f = &sc->stack[sc->depth++];
    f->kind = kind;
    f->index = 0;
    f->key_off = f->key_len = 0;
    return 0;
}

/* What comes next inside the innermost container, or at the top. */
typedef enum {
    WANT_VALUE,
    WANT_VALUE_OR_CLOSE,
    WANT_KEY,
    WANT_KEY_OR_CLOSE,
    WANT_COLON,
    WANT_COMMA_OR_CLOSE
} want;

static int scan(scanner *sc) {
    const unsigned char *p = sc->p;
    size_t n = sc->n;
    want w = WANT_VALUE;
    for (;;) {
        sc->i = dds_skip_json_ws((const char *)p, n, sc->i);
        if (sc->i >= n) return SCAN_TRUNCATED;
        unsigned char c = p[sc->i];
        int r = SCAN_OK;
        switch (w) {
        case WANT_KEY_OR_CLOSE:
        case WANT_VALUE_OR_CLOSE:
            if (c == (w == WANT_KEY_OR_CLOSE ? '}' : ']')) goto close;
            w = w == WANT_KEY_OR_CLOSE ? WANT_KEY : WANT_VALUE;
            continue;
        case WANT_KEY:
            if (c != '"') return SCAN_MALFORMED;
            if ((r = scan_string(sc, 1)) != SCAN_OK) return r;
            w = WANT_COLON;
            continue;
        case WANT_COLON:
            if (c != ':') return SCAN_MALFORMED;
            sc->i++;
            w = WANT_VALUE;
            continue;
        case WANT_COMMA_OR_CLOSE:
            if (c == ',') {
                frame *f = &sc->stack[sc->depth - 1];
                sc->i++;
                if (f->kind == '[') {
                    f->index++;
                    w = WANT_VALUE;
                } else {
                    w = WANT_KEY;
                }
                continue;
            }
            if (c == (sc->stack[sc->depth - 1].kind == '{' ? '}' : ']')) goto close;
            return SCAN_MALFORMED;
        case WANT_VALUE:
            if (c == '{' || c == '[') {
                if (push(sc, (char)c) != 0) return SCAN_MALFORMED;
                sc->i++;
                w = c == '{' ? WANT_KEY_OR_CLOSE : WANT_VALUE_OR_CLOSE;
                continue;
            }
            if (sc->depth == 0) return SCAN_MALFORMED; /* the caller saw '{' or '[' first */
            if (c == '"') r = scan_string(sc, 0);
            else if (c == '-' || is_digit(c)) r = scan_number(sc);
            else if (c == 't') r = scan_literal(sc, "true");
            else if (c == 'f') r = scan_literal(sc, "false");
            else if (c == 'n') r = scan_literal(sc, "null");
            else return SCAN_MALFORMED;
            if (r != SCAN_OK) return r;
            w = WANT_COMMA_OR_CLOSE;
            continue;
        }
    close:
        sc->i++;
        sc->depth--;
        if (sc->depth == 0) return SCAN_OK;
        w = WANT_COMMA_OR_CLOSE;
    }
}

dds_json_shape dds_json_check_body(const char *body, size_t len, dds_json_check *out) {
    memset(out, 0, sizeof *out);
    const unsigned char *p = (const unsigned char *)body;
    size_t i = dds_json_skip_bom_ws(body, len);
    if (i >= len || (p[i] != '{' && p[i] != '[')) return out->shape = DDS_JSON_NOT_JSON;
    scanner sc = {.p = p, .n = len, .i = i, .out = out};
    int r = scan(&sc);
    if (r == SCAN_OK) {
        size_t rest = dds_skip_json_ws((const char *)p, len, sc.i);
        if (rest < len) {
            out->shape = DDS_JSON_MALFORMED;
            out->where = rest;
        } else {
            out->shape = DDS_JSON_COMPLETE;
        }
    } else if (r == SCAN_TRUNCATED) {
        out->shape = DDS_JSON_TRUNCATED;
        out->where = len;
        out->open = sc.depth;
    } else {
        out->shape = DDS_JSON_MALFORMED;
        out->where = sc.i < len ? sc.i : len;
    }
    free(sc.stack);
    return out->shape;
}

int dds_json_may_hold_nul(const char *body, size_t len) {
    if (memchr(body, 0, len)) return 1;
    for (const char *p = body, *end = body + len; p + 6 <= end;) {
        const char *u = memchr(p, '\\', (size_t)(end - p));
        if (!u || u + 6 > end) return 0;
        if (u[1] == 'u' && u[2] == '0' && u[3] == '0' && u[4] == '0' && u[5] == '0') return 1;
        p = u + 1;
    }
    return 0;
}

size_t dds_json_skip_bom_ws(const char *s, size_t n) {
    size_t i = 0;
    if (n >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
        (unsigned char)s[2] == 0xBF)
        i = 3;
    return dds_skip_json_ws(s, n, i);
}

const char *dds_json_nul_string_path(const char *body, size_t len, dds_json_check *check) {
    if (!dds_json_may_hold_nul(body, len)) return NULL;
    dds_json_check_body(body, len, check);
    return check->nul ? check->nul_path : NULL;
}
