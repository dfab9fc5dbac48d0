/* error.h — filling a caller's ddstream_error, with keys scrubbed from every message. */
#ifndef DDSTREAM_ERROR_H
#define DDSTREAM_ERROR_H

#include "ddstream.h"

#if defined(__GNUC__)
#  define DDS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define DDS_PRINTF(a, b)
#endif

/* Set *err (NULL allowed) and return status. chunk bounds are -1 and http_status 0. */
ddstream_status dds_error_set(ddstream_error *err, ddstream_status status, const char *fmt, ...)
    DDS_PRINTF(3, 4);

/* Replace every occurrence of secret (if non-empty) in the NUL-terminated msg with "***". */
void dds_redact(char *msg, const char *secret);

/* Zero then free a string that held a secret. */
void dds_free_secret(char *secret);

#endif
