/* error.c — error reports and redaction. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ddstream_status dds_error_set(ddstream_error *err, ddstream_status status, const char *fmt, ...) {
    if (err) {
        err->status = status;
        err->http_status = 0;
        err->chunk_start = -1;
        err->chunk_end = -1;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

void dds_redact(char *msg, const char *secret) {
    if (!msg || !secret) return;
    size_t n = strlen(secret);
    /* Very short "keys" would redact ordinary words; real keys are 32+ characters. */
    if (n < 4) return;
    char *hit;
    while ((hit = strstr(msg, secret)) != NULL) {
        memcpy(hit, "***", 3);
        memmove(hit + 3, hit + n, strlen(hit + n) + 1);
    }
}

void dds_free_secret(char *secret) {
    if (!secret) return;
    /* volatile so the compiler cannot drop the wipe of memory about to be freed */
    volatile char *p = secret;
    while (*p) *p++ = 0;
    free(secret);
}
