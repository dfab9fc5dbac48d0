/* error.h — filling a caller's ddstream_error, with keys scrubbed from every message. */
#ifndef DDSTREAM_ERROR_H
#define DDSTREAM_ERROR_H

#include <stddef.h>

#include "compiler.h"
#include "ddstream.h"

/* Set *err (NULL allowed) and return status. chunk bounds are -1 and http_status 0. */
ddstream_status dds_error_set(ddstream_error *err, ddstream_status status, const char *fmt, ...)
    DDS_PRINTF(3, 4);

/* Append to err->message (err NULL allowed), truncating at its end. */
void dds_error_append(ddstream_error *err, const char *fmt, ...) DDS_PRINTF(2, 3);

/* Write a message into a caller's buffer msg of cap bytes (msg NULL or cap 0: nothing), the way
 * the modules that report through (msg, cap) rather than a ddstream_error do. */
void dds_set_msg(char *msg, size_t cap, const char *fmt, ...) DDS_PRINTF(3, 4);

/* Runs of a secret this long or longer are scrubbed wherever they appear in a message. */
#define DDS_REDACT_FRAGMENT_MIN 8

/*
 * Scrub secret from the NUL-terminated msg, in place: every occurrence of the whole secret,
 * whatever its length, and every run of DDS_REDACT_FRAGMENT_MIN or more characters that also
 * occurs in secret (a key that a message cut: an excerpt of 24 bytes around a JSON syntax error,
 * a page title truncated at 300). Each becomes "***", or as many '*' as it had characters when
 * that is fewer (a 1- or 2-character secret): msg never grows. The one redactor of the library:
 * log lines, error messages and text from the server all go through it.
 */
void dds_redact(char *msg, const char *secret);

/* Scrub both keys (either may be NULL) from msg with dds_redact: what every message that could
 * quote a key goes through before a caller or a log sees it. */
void dds_redact_keys(char *msg, const char *api_key, const char *app_key);

/* Zero n bytes that held a secret, in a way the compiler cannot drop as a dead store. */
void dds_wipe(void *p, size_t n);

/* Zero then free a string that held a secret. */
void dds_free_secret(char *secret);

#endif
