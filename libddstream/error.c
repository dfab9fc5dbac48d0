/* error.c — error reports and messages, and the one redactor. */
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

void dds_error_append(ddstream_error *err, const char *fmt, ...) {
    if (!err) return;
    size_t n = strlen(err->message);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message + n, sizeof err->message - n, fmt, ap);
    va_end(ap);
}

void dds_set_msg(char *msg, size_t cap, const char *fmt, ...) {
    if (msg == NULL || cap == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
}

void dds_redact(char *msg, const char *secret) {
    if (!msg || !secret || !*secret) return;
    size_t m = strlen(secret);
    /* A secret shorter than a fragment is scrubbed when whole: that is its shortest piece. */
    size_t min = m < DDS_REDACT_FRAGMENT_MIN ? m : DDS_REDACT_FRAGMENT_MIN;
    /* Messages and keys are short: the quadratic search costs microseconds. */
    for (size_t i = 0; msg[i]; i++) {
        size_t best = 0;
        for (size_t j = 0; j + min <= m && best < m - j; j++) {
            size_t k = 0;
            while (j + k < m && msg[i + k] == secret[j + k]) k++; /* stops at msg's NUL too */
            if (k > best) best = k;
        }
        if (best < min) continue;
        size_t stars = best < 3 ? best : 3;
        memset(msg + i, '*', stars);
        memmove(msg + i + stars, msg + i + best, strlen(msg + i + best) + 1);
        i += stars - 1; /* on past the stars: a secret of '*' cannot match its own mask */
    }
}

void dds_redact_keys(char *msg, const char *api_key, const char *app_key) {
    dds_redact(msg, api_key);
    dds_redact(msg, app_key);
}

void dds_wipe(void *p, size_t n) {
    /* volatile so the compiler cannot drop the wipe of memory about to be freed or reused */
    volatile unsigned char *b = p;
    while (n--) *b++ = 0;
}

void dds_free_secret(char *secret) {
    if (!secret) return;
    dds_wipe(secret, strlen(secret));
    free(secret);
}
