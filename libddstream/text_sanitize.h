/* text_sanitize.h — untrusted text made fit for a message. Everything a body contributes to a
 * message goes through here, so messages are always valid UTF-8, free of control characters,
 * whitespace-collapsed and bounded. */
#ifndef DDSTREAM_TEXT_SANITIZE_H
#define DDSTREAM_TEXT_SANITIZE_H

#include <stddef.h>

/* Longest text taken from a body into a message: enough to explain, too short to flood a log. */
#define DDS_TEXT_LIMIT 300

/* A message being written into a caller's buffer. */
typedef struct dds_text {
    char *out;
    size_t limit; /* bytes of text allowed, excluding the NUL */
    size_t len;
    int pending_space; /* whitespace seen since the last visible character */
    int full;          /* something was dropped for lack of room */
} dds_text;

/* Start writing into out[0..cap); cap >= 1: there is always room for the NUL. At most
 * DDS_TEXT_LIMIT bytes of text are kept. */
void dds_text_init(dds_text *t, char *out, size_t cap);

/* Whitespace: becomes one space before the next visible character (none at the start). */
void dds_text_space(dds_text *t);

/* Append n bytes of untrusted text: invalid UTF-8 becomes '?', control characters and runs of
 * whitespace one space. Returns 0 once the text is full, so callers can stop early. */
int dds_text_put(dds_text *t, const char *s, size_t n);
int dds_text_puts(dds_text *t, const char *s);

/* NUL-terminate; mark a cut with "..." (backing off whole UTF-8 characters to make room). */
void dds_text_finish(dds_text *t);

/* Length of the valid UTF-8 sequence at s (n >= 1 bytes available), or 0 if it is not valid. */
size_t dds_utf8_seq(const unsigned char *s, size_t n);

/* Nonzero if s[0..n) is valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
int dds_utf8_valid(const char *s, size_t n);

/* Nonzero if s (NUL-terminated) is empty or only whitespace. */
int dds_str_is_blank(const char *s);

/* Nonzero if s (NUL-terminated) holds a C0 control character or DEL: text that must not reach an
 * HTTP header or a log line as it is. */
int dds_str_has_control_chars(const char *s);

#endif
