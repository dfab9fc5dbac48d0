/*
 * explain.c — ddstream_explain: what a config's queries become (their sub-queries, grouping and
 * statistics) and the requests each chunk sends, as JSON, without any network I/O. For users
 * checking a rewrite or a request budget before spending a rate limit on it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "plan.h"

typedef struct jbuf {
    char *p;
    size_t len, cap;
    int nomem;
} jbuf;

static void put(jbuf *b, const char *s, size_t n) {
    if (b->nomem) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->nomem = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void puts_(jbuf *b, const char *s) { put(b, s, strlen(s)); }

static void putf(jbuf *b, const char *fmt, ...) DDS_PRINTF(2, 3);
static void putf(jbuf *b, const char *fmt, ...) {
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string: quotes, backslashes and control characters escaped; UTF-8 passed through. */
static void put_string(jbuf *b, const char *s) {
    put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(b, e, 2);
        } else if (c < 0x20) {
            putf(b, "\\u%04x", c);
        } else {
            put(b, s, 1);
        }
    }
    put(b, "\"", 1);
}

static const char *stat_name(int32_t stat) {
    static const char *const names[] = {"avg", "min", "max", "sum", "value"};
    return stat >= 0 && stat <= DDS_STAT_VALUE ? names[stat] : "?";
}

static void write_explain(jbuf *b, const dds_settings *s, size_t chunks) {
    puts_(b, "{\"queries\":[");
    for (size_t q = 0; q < s->query_count; q++) {
        const dds_compiled_query *cq = &s->queries[q];
        puts_(b, q ? ",{\"query\":" : "{\"query\":");
        put_string(b, cq->source);
        puts_(b, cq->grouped ? ",\"grouped\":true,\"statistics\":["
                             : ",\"grouped\":false,"
                               "\"statistics\":[");
        for (size_t i = 0; i < cq->subquery_count; i++) {
            if (i) puts_(b, ",");
            put_string(b, stat_name(cq->subqueries[i].stat));
        }
        puts_(b, "],\"reason\":");
        if (cq->value_reason) put_string(b, cq->value_reason);
        else puts_(b, "null");
        puts_(b, ",\"subqueries\":[");
        for (size_t i = 0; i < cq->subquery_count; i++) {
            if (i) puts_(b, ",");
            put_string(b, cq->subqueries[i].text);
        }
        puts_(b, "]}");
    }
    putf(b, "],\"requests_per_chunk\":%zu,\"requests\":[", s->pack.request_count);
    for (size_t r = 0; r < s->pack.request_count; r++) {
        const dds_request_span *req = &s->pack.requests[r];
        puts_(b, r ? ",{\"subqueries\":[" : "{\"subqueries\":[");
        for (size_t i = 0; i < req->count; i++) {
            const dds_subq_ref *ref = &s->pack.subs[req->first + i];
            putf(b, "%s[%d,", i ? "," : "", (int)ref->query);
            put_string(b, stat_name(ref->stat));
            puts_(b, "]");
        }
        putf(b, "],\"uri_bytes\":%zu}", req->uri_bytes);
    }
    putf(b, "],\"chunks\":%zu}", chunks);
}

DDSTREAM_API ddstream_status ddstream_explain(const ddstream_config *cfg, char *buf, size_t cap,
                                              size_t *needed, ddstream_error *err) {
    if (!needed) return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "needed is NULL");
    if (cap > 0 && !buf)
        return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "buf is NULL but cap is %zu", cap);
    /* Nothing is sent: the keys are not needed (as for ddstream_plan). */
    ddstream_config keyless;
    ddstream_status st = dds_config_read(cfg, &keyless, err);
    if (st != DDSTREAM_OK) return st;
    if (!keyless.api_key || !*keyless.api_key) keyless.api_key = "explain-only";
    if (!keyless.app_key || !*keyless.app_key) keyless.app_key = "explain-only";
    dds_settings s;
    if ((st = dds_settings_load(&keyless, &s, err)) != DDSTREAM_OK) return st;
    dds_plan p;
    st = dds_plan_make(s.range_start, s.range_end, s.granularity, s.chunk_seconds, &p, err);
    if (st != DDSTREAM_OK) {
        dds_settings_free(&s);
        return st;
    }
    jbuf b = {0};
    write_explain(&b, &s, p.count);
    dds_settings_free(&s);
    if (b.nomem) {
        free(b.p);
        return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory writing the explanation");
    }
    *needed = b.len + 1;
    if (cap < b.len + 1) {
        free(b.p);
        return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT,
                             "the explanation needs %zu bytes, the buffer has %zu: call again with "
                             "a larger one",
                             *needed, cap);
    }
    memcpy(buf, b.p, b.len + 1);
    free(b.p);
    return DDSTREAM_OK;
}
