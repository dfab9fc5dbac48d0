/*
 * error_page.c — the text a person would read on an HTML error page (a proxy's 502, a load
 * balancer's 403): its <title>, else its visible text with tags, comments, scripts and styles
 * dropped and character references decoded. Fed to the text sanitiser, so bounded and clean.
 */
#include "error_page.h"

#include <string.h>

static int starts_with_ci(const char *s, size_t n, const char *prefix) {
    size_t k = strlen(prefix);
    if (n < k) return 0;
    for (size_t i = 0; i < k; i++) {
        char a = s[i], b = prefix[i];
        if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
        if (a != b) return 0;
    }
    return 1;
}

/* First case-insensitive occurrence of needle (lower case) in s[0..n), or n. */
static size_t find_ci(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    if (k == 0 || n < k) return n;
    for (size_t i = 0; i + k <= n; i++)
        if (starts_with_ci(s + i, n - i, needle)) return i;
    return n;
}

int dds_looks_like_html(const char *s, size_t n) {
    size_t head = n < 1024 ? n : 1024;
    return (n > 0 && s[0] == '<') || find_ci(s, head, "<html") < head;
}

/* Decode one HTML character reference at s (s[0] == '&'); returns bytes consumed, 0 if none. */
static size_t put_entity(dds_text *t, const char *s, size_t n) {
    static const struct {
        const char *name;
        const char *text;
    } named[] = {{"&amp;", "&"},  {"&lt;", "<"},   {"&gt;", ">"}, {"&quot;", "\""},
                 {"&apos;", "'"}, {"&nbsp;", " "}, {"&#39;", "'"}};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        if (starts_with_ci(s, n, named[i].name)) {
            dds_text_puts(t, named[i].text);
            return strlen(named[i].name);
        }
    }
    if (n < 4 || s[1] != '#') return 0;
    size_t i = 2;
    int hex = 0;
    if (s[i] == 'x' || s[i] == 'X') {
        hex = 1;
        i++;
    }
    unsigned long cp = 0;
    size_t digits = 0;
    for (; i < n && digits < 8; i++, digits++) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (hex && c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (hex && c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else break;
        cp = cp * (hex ? 16u : 10u) + (unsigned long)d;
    }
    if (digits == 0 || i >= n || s[i] != ';') return 0;
    char u[4];
    size_t k;
    if (cp < 0x80) {
        u[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else if (cp <= 0x10FFFF) {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    } else {
        u[0] = '?';
        k = 1;
    }
    dds_text_put(t, u, k); /* invalid code points (surrogates, NUL) come out as '?' or a space */
    return i + 1;
}

/* Visible text of HTML: tags, comments, scripts and styles dropped, entities decoded. */
static void put_html_text(dds_text *t, const char *s, size_t n) {
    size_t i = 0;
    while (i < n && !t->full) {
        if (s[i] == '<') {
            size_t skip_to;
            if (starts_with_ci(s + i, n - i, "<!--")) {
                size_t e = find_ci(s + i + 4, n - i - 4, "-->");
                skip_to = i + 4 + e + 3;
            } else if (starts_with_ci(s + i, n - i, "<script") ||
                       starts_with_ci(s + i, n - i, "<style")) {
                /* Their content is code, not text a person was meant to read. */
                const char *close =
                    starts_with_ci(s + i, n - i, "<script") ? "</script" : "</style";
                size_t e = find_ci(s + i, n - i, close);
                size_t gt = i + e < n ? find_ci(s + i + e, n - i - e, ">") : 0;
                skip_to = i + e + gt + 1;
            } else {
                size_t gt = find_ci(s + i, n - i, ">");
                skip_to = i + gt + 1;
            }
            i = skip_to < n ? skip_to : n;
            dds_text_space(t); /* tags separate words */
            continue;
        }
        if (s[i] == '&') {
            size_t used = put_entity(t, s + i, n - i);
            if (used > 0) {
                i += used;
                continue;
            }
        }
        size_t j = i + 1;
        while (j < n && s[j] != '<' && s[j] != '&') j++;
        dds_text_put(t, s + i, j - i);
        i = j;
    }
}

/* The page's <title>, else its visible text. */
void dds_error_page_put_text(dds_text *t, const char *s, size_t n) {
    size_t open = find_ci(s, n, "<title");
    if (open < n) {
        size_t gt = find_ci(s + open, n - open, ">");
        if (open + gt < n) {
            size_t from = open + gt + 1;
            size_t close = find_ci(s + from, n - from, "</title");
            put_html_text(t, s + from, close);
            if (t->len > 0) return;
        }
    }
    put_html_text(t, s, n);
}
