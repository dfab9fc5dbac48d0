/* strbuf.h — the library's one growable string: bytes, C strings, characters, printf and JSON
 * strings appended to a heap buffer that doubles as it grows and stays NUL-terminated.
 * Out of memory is sticky: every later append does nothing, so a writer appends freely and
 * checks `nomem` once at the end (or lets dds_strbuf_take say so). Not thread-safe per buffer;
 * no global state. */
#ifndef DDSTREAM_STRBUF_H
#define DDSTREAM_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

#include "compiler.h"

typedef struct dds_strbuf {
    char *p;    /* NULL until the first append; then NUL-terminated at p[len] */
    size_t len; /* bytes written, not counting the terminating NUL */
    size_t cap; /* bytes allocated at p */
    int nomem;  /* an append ran out of memory (or would overflow size_t); all later ones skipped */
} dds_strbuf;

/* An empty buffer: `dds_strbuf b = DDS_STRBUF_INIT;` (all zero, so `= {0}` is the same). */
#define DDS_STRBUF_INIT                                                                            \
  { NULL, 0, 0, 0 }

/* n bytes of s, NULs included. */
void dds_strbuf_putn(dds_strbuf *b, const char *s, size_t n);
/* The C string s. */
void dds_strbuf_puts(dds_strbuf *b, const char *s);
/* One character. */
void dds_strbuf_putc(dds_strbuf *b, char c);
/* printf-style, of any length. A format error (vsnprintf < 0) appends nothing. */
void dds_strbuf_printf(dds_strbuf *b, const char *fmt, ...) DDS_PRINTF(2, 3);
void dds_strbuf_vprintf(dds_strbuf *b, const char *fmt, va_list ap) DDS_PRINTF(2, 0);
/* s as a JSON string, quotes included: '"' and '\\' backslashed, control characters below 0x20
 * as \u00xx; every other byte (UTF-8 included) as it is. */
void dds_strbuf_json_string(dds_strbuf *b, const char *s);

/* The text, NUL-terminated, now the caller's to free ("" allocated when nothing was written);
 * NULL when an append ran out of memory (the buffer is freed then). b is left empty either way. */
char *dds_strbuf_take(dds_strbuf *b);
/* Frees the text; b is left empty and usable. */
void dds_strbuf_free(dds_strbuf *b);

#endif
