/* resume_token.c — writing, parsing and checking resume tokens (see resume_token.h). */
#include "resume_token.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#include "strparse.h"

#define TOKEN_PREFIX       "dds1-"
#define FINGERPRINT_DIGITS 16

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static uint64_t fnv1a_i64(uint64_t h, int64_t v) {
    unsigned char b[8];
    /* byte order fixed: a token made on one machine resumes on another */
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)v >> (8 * i));
    return fnv1a(h, b, sizeof b);
}

uint64_t dds_resume_fingerprint(const char *query, int64_t granularity, const dds_plan *plan) {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    h = fnv1a(h, query, strlen(query) + 1);
    h = fnv1a_i64(h, granularity);
    h = fnv1a_i64(h, plan->start);
    h = fnv1a_i64(h, plan->end);
    h = fnv1a_i64(h, plan->step);
    return h;
}

void dds_resume_token_write(const char *query, int64_t granularity, const dds_plan *plan,
                            size_t index, char *buf, size_t cap) {
    snprintf(buf, cap, TOKEN_PREFIX "%016llx-%zu",
             (unsigned long long)dds_resume_fingerprint(query, granularity, plan), index);
}

int dds_resume_token_parse(const char *t, uint64_t *fingerprint, uint64_t *index) {
    size_t n = strlen(TOKEN_PREFIX);
    if (strncmp(t, TOKEN_PREFIX, n) != 0) return -1;
    t += n;
    uint64_t f = 0;
    for (int i = 0; i < FINGERPRINT_DIGITS; i++, t++) {
        int d = (*t >= '0' && *t <= '9') ? *t - '0' : (*t >= 'a' && *t <= 'f') ? *t - 'a' + 10 : -1;
        if (d < 0) return -1;
        f = (f << 4) | (uint64_t)d;
    }
    if (*t++ != '-' || !(*t >= '0' && *t <= '9')) return -1; /* no sign, no space */
    size_t len = strlen(t);
    uint64_t x = 0;
    int over = 0;
    if (dds_parse_uint(t, len, UINT64_MAX, &x, &over) != len || over) return -1;
    *fingerprint = f;
    *index = x;
    return 0;
}

ddstream_status dds_resume_token_read(const char *token, const char *query, int64_t granularity,
                                      const dds_plan *plan, size_t *index, ddstream_error *err) {
    uint64_t fp, at;
    if (dds_resume_token_parse(token, &fp, &at) != 0)
        return dds_error_set(err, DDSTREAM_E_CONFIG,
                             "resume_token is not a token made by ddstream_resume_token()");
    if (fp != dds_resume_fingerprint(query, granularity, plan))
        return dds_error_set(err, DDSTREAM_E_CONFIG,
                             "resume_token was made for another query, range, granularity or "
                             "chunk size (or query list, statistics or distribution metrics): "
                             "resuming with it would skip or repeat data");
    if (at > plan->count)
        return dds_error_set(err, DDSTREAM_E_CONFIG,
                             "resume_token points at chunk %llu, past the plan's %zu chunks",
                             (unsigned long long)at, plan->count);
    *index = (size_t)at;
    return DDSTREAM_OK;
}
