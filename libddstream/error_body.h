/* error_body.h — a human-readable message from an error body (JSON, HTML or text). */
#ifndef DDSTREAM_ERROR_BODY_H
#define DDSTREAM_ERROR_BODY_H

#include <stddef.h>

#include "text_sanitize.h"

struct cJSON; /* declared only: includers of this header need not see cJSON */

/*
 * Extract a human-readable message from an error body: {"errors": ["a","b"]} gives "a; b", items
 * as objects give "title: detail", {"error": "..."}, an HTML page gives its <title> or else its
 * visible text, anything else (including JSON without those keys) its text. Always NUL-terminates
 * out (out_cap > 0); writes "" for an empty body. The result is valid UTF-8 without control
 * characters, whitespace collapsed, at most 300 bytes and out_cap - 1, ending in "..." when cut.
 */
void dds_parse_error_body(const char *body, size_t len, char *out, size_t out_cap);

/* Append to t the message of an already parsed error JSON (the rules above). Returns nonzero if
 * it found one. */
int dds_error_body_put_json(dds_text *t, const struct cJSON *root);

#endif
