/*
 * text_sanitize.c — untrusted text (from a server's answer) made fit for a message: valid UTF-8,
 * no control characters, whitespace collapsed, bounded, "..." where cut.
 */
#include "text_sanitize.h"

#include <ctype.h>
#include <string.h>

/* cap >= 1: there is always room for the NUL. */
void dds_text_init(dds_text *t, char *out, size_t cap) {
    t->out = out;
    t->limit = cap - 1 < DDS_TEXT_LIMIT ? cap - 1 : DDS_TEXT_LIMIT;
    t->len = 0;
    t->pending_space = 0;
    t->full = 0;
    out[0] = '\0';
}

void dds_text_space(dds_text *t) {
    if (t->len > 0) t->pending_space = 1;
}

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 if it is not valid. */
size_t dds_utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t k;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) k = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        if (c == 0xE0) lo = 0xA0; /* overlong */
        if (c == 0xED) hi = 0x9F; /* UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        if (c == 0xF0) lo = 0x90; /* overlong */
        if (c == 0xF4) hi = 0x8F; /* beyond U+10FFFF */
    } else return 0;
    if (n < k) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < k; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return k;
}

int dds_utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = dds_utf8_seq(p + i, n - i);
        if (k == 0) return 0;
        i += k;
    }
    return 1;
}

/* Append n bytes of untrusted text. Returns 0 once the text is full, so callers can stop early. */
int dds_text_put(dds_text *t, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (t->full) return 0;
        unsigned char c = p[i];
        if (c <= 0x20 || c == 0x7F) {
            dds_text_space(t);
            i++;
            continue;
        }
        size_t k = dds_utf8_seq(p + i, n - i);
        const char *bytes = (const char *)p + i;
        if (k == 0) {
            bytes = "?";
            k = 1;
            i += 1;
        } else {
            i += k;
        }
        size_t need = k + (size_t)t->pending_space;
        if (t->len + need > t->limit) {
            t->full = 1;
            return 0;
        }
        if (t->pending_space) t->out[t->len++] = ' ';
        t->pending_space = 0;
        memcpy(t->out + t->len, bytes, k);
        t->len += k;
    }
    return 1;
}

int dds_text_puts(dds_text *t, const char *s) { return dds_text_put(t, s, strlen(s)); }

/* NUL-terminate; mark a cut with "..." (backing off whole UTF-8 characters to make room). */
void dds_text_finish(dds_text *t) {
    if (t->full && t->limit >= 3) {
        while (t->len > 0 && t->len + 3 > t->limit) {
            t->len--;
            while (t->len > 0 && ((unsigned char)t->out[t->len] & 0xC0) == 0x80) t->len--;
        }
        while (t->len > 0 && t->out[t->len - 1] == ' ') t->len--;
        memcpy(t->out + t->len, "...", 3);
        t->len += 3;
    }
    t->out[t->len] = '\0';
}

int dds_str_is_blank(const char *s) {
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) return 0;
    return 1;
}

int dds_str_has_control_chars(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}
