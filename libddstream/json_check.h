/* json_check.h — one strict pass over a JSON document: complete, cut short, or malformed, and
 * whether a string in it holds U+0000. No tree, no allocation beyond a stack of open brackets. */
#ifndef DDSTREAM_JSON_CHECK_H
#define DDSTREAM_JSON_CHECK_H

#include <stddef.h>

typedef enum {
    DDS_JSON_COMPLETE,  /* one object or array, then only whitespace */
    DDS_JSON_TRUNCATED, /* a correct beginning of a document that stops early: cut short */
    DDS_JSON_MALFORMED, /* a byte no JSON document could have there (at .where) */
    DDS_JSON_NOT_JSON,  /* empty, or does not start with '{' or '[' (after a BOM and whitespace) */
} dds_json_shape;

typedef struct dds_json_check {
    dds_json_shape shape;
    size_t where; /* MALFORMED: offset of the offending byte; TRUNCATED: the body's length */
    size_t open;  /* TRUNCATED: brackets still open */
    int nul;      /* a string (key or value) holds U+0000, as "\u0000" or as a raw 0 byte */
    /* Where the first such string is, as a JSON path ("series[2].tag_set[0]", "error", or
     * "series[0].<key>" for a key); sanitised, bounded, always NUL-terminated. */
    char nul_path[160];
} dds_json_check;

/*
 * Check body[0..len). Strict JSON (RFC 8259) except that raw control characters other than
 * NUL are allowed inside strings, as cJSON allows them: a document cJSON reads is never called
 * malformed for them. Returns out->shape. Thread-safe (no shared state). On an allocation
 * failure for a very deep document, the shape is DDS_JSON_MALFORMED at the depth reached.
 */
dds_json_shape dds_json_check_body(const char *body, size_t len, dds_json_check *out);

/* Cheap pre-test: nonzero if body may hold U+0000 in a string (a 0 byte, or "\u0000"
 * anywhere); only then is the full check needed to find out (and where). */
int dds_json_may_hold_nul(const char *body, size_t len);

/* Where a JSON document starts in s[0..n): after a UTF-8 BOM and whitespace (n if nothing is left). */
size_t dds_json_skip_bom_ws(const char *s, size_t n);

/* The JSON path of the first string of body that holds U+0000 (in check->nul_path), or NULL if
 * none does. Cheap for the common body without one (dds_json_may_hold_nul first). */
const char *dds_json_nul_string_path(const char *body, size_t len, dds_json_check *check);

#endif
