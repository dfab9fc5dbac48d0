/*
 * strbuf.c — the growable string of strbuf.h (explain's JSON, the query printer, v2 request
 * bodies, v2 group labels). One copy of the growth and out-of-memory rules, so each writer is
 * only what it writes.
 */
#include "strbuf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for n more bytes and the NUL. Returns 0 (and makes nomem stick) when there is none. */
static int reserve(dds_strbuf *b, size_t n) {
    if (b->nomem) return 0;
    if (n >= SIZE_MAX - b->len) {
        b->nomem = 1;
        return 0;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->nomem = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

void dds_strbuf_putn(dds_strbuf *b, const char *s, size_t n) {
    if (!reserve(b, n)) return;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void dds_strbuf_puts(dds_strbuf *b, const char *s) { dds_strbuf_putn(b, s, strlen(s)); }

void dds_strbuf_putc(dds_strbuf *b, char c) { dds_strbuf_putn(b, &c, 1); }

void dds_strbuf_vprintf(dds_strbuf *b, const char *fmt, va_list ap) {
    if (b->nomem) return;
    /* Straight into the free space when it fits (the usual case); otherwise grow to the length
     * the first attempt measured and write again. */
    va_list again;
    va_copy(again, ap);
    size_t room = b->cap - b->len;
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
    if (n < 0) {
        if (b->p) b->p[b->len] = 0; /* whatever a failed attempt left is not ours */
        va_end(again);
        return;
    }
    if ((size_t)n >= room) {
        if (!reserve(b, (size_t)n)) {
            va_end(again);
            return;
        }
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, again);
    }
    va_end(again);
    b->len += (size_t)n;
}

void dds_strbuf_printf(dds_strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    dds_strbuf_vprintf(b, fmt, ap);
    va_end(ap);
}

void dds_strbuf_json_string(dds_strbuf *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    dds_strbuf_putc(b, '"');
    size_t run = 0; /* start of the bytes that need no escape, written in one piece */
    for (size_t i = 0;; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c != 0 && c >= 0x20 && c != '"' && c != '\\') continue;
        dds_strbuf_putn(b, s + run, i - run);
        if (c == 0) break;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            dds_strbuf_putn(b, esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            dds_strbuf_putn(b, esc, 6);
        }
        run = i + 1;
    }
    dds_strbuf_putc(b, '"');
}

char *dds_strbuf_take(dds_strbuf *b) {
    if (b->p == NULL) dds_strbuf_putn(b, "", 0); /* nothing written: "" still owned text */
    char *p = b->p;
    if (b->nomem) {
        free(b->p);
        p = NULL;
    }
    b->p = NULL;
    b->len = b->cap = 0;
    b->nomem = 0;
    return p;
}

void dds_strbuf_free(dds_strbuf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->nomem = 0;
}
