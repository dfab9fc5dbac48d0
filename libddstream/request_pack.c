/*
 * request_pack.c — which sub-queries go into which request. Requests are the scarce resource
 * (about 1600 an hour), so each chunk sends as few as the two budgets allow: a count of
 * sub-queries (Datadog has been seen to answer `Query timed out` to larger batches) and the
 * length of the URI (proxies and Datadog refuse long ones). Greedy in stream order: the order is
 * kept so that a request's query_index maps back by an offset, and greedy is optimal for
 * contiguous packing under a count cap and an additive length cap.
 */
#include "request_pack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

size_t dds_escaped_len(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += unreserved((unsigned char)*s) ? 1 : 3;
    return n;
}

static size_t digits(int64_t v) {
    size_t n = v < 0 ? 2 : 1;
    for (uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v; u >= 10; u /= 10) n++;
    return n;
}

size_t dds_request_uri_bytes(const dds_subq_ref *subs, size_t first, size_t count,
                             int64_t max_epoch) {
    size_t n = strlen("/api/v1/query?from=") + digits(max_epoch) + strlen("&to=") +
               digits(max_epoch) + strlen("&query=");
    for (size_t i = 0; i < count; i++) n += dds_escaped_len(subs[first + i].text) + (i ? 3 : 0);
    return n; /* the ',' between sub-queries is sent as %2C */
}

void dds_pack_free(dds_pack *p) {
    if (!p) return;
    free(p->subs);
    free(p->requests);
    memset(p, 0, sizeof *p);
}

ddstream_status dds_pack_requests(const dds_compiled_query *qs, size_t nq, int32_t max_subqueries,
                                  int64_t max_uri_bytes, int64_t max_epoch, dds_pack *out,
                                  size_t *bad_query, size_t *bad_bytes) {
    memset(out, 0, sizeof *out);
    size_t total = 0;
    for (size_t q = 0; q < nq; q++) total += qs[q].subquery_count;
    if (total == 0 || max_subqueries < 1 || max_uri_bytes < 1) return DDSTREAM_E_CONFIG;
    out->subs = calloc(total, sizeof *out->subs);
    out->requests = calloc(total, sizeof *out->requests); /* at most one request a sub-query */
    if (!out->subs || !out->requests) {
        dds_pack_free(out);
        return DDSTREAM_E_NOMEM;
    }
    for (size_t q = 0; q < nq; q++)
        for (size_t i = 0; i < qs[q].subquery_count; i++)
            out->subs[out->sub_count++] =
                (dds_subq_ref){(int32_t)q, qs[q].subqueries[i].stat, qs[q].subqueries[i].text};
    size_t base = dds_request_uri_bytes(out->subs, 0, 0, max_epoch);
    dds_request_span *cur = NULL;
    for (size_t k = 0; k < total; k++) {
        size_t own = dds_escaped_len(out->subs[k].text);
        if (base + own > (uint64_t)max_uri_bytes) {
            if (bad_query) *bad_query = (size_t)out->subs[k].query;
            if (bad_bytes) *bad_bytes = base + own;
            dds_pack_free(out);
            return DDSTREAM_E_CONFIG;
        }
        if (cur && cur->count < (size_t)max_subqueries &&
            cur->uri_bytes + 3 + own <= (uint64_t)max_uri_bytes) {
            cur->count++;
            cur->uri_bytes += 3 + own;
            continue;
        }
        cur = &out->requests[out->request_count++];
        *cur = (dds_request_span){k, 1, base + own};
    }
    return DDSTREAM_OK;
}

char *dds_pack_join(const dds_pack *p, size_t first, size_t count) {
    size_t len = 1;
    for (size_t i = 0; i < count; i++) len += strlen(p->subs[first + i].text) + 1;
    char *s = malloc(len);
    if (!s) return NULL;
    size_t used = 0;
    for (size_t i = 0; i < count; i++) {
        if (i) s[used++] = ',';
        size_t n = strlen(p->subs[first + i].text);
        memcpy(s + used, p->subs[first + i].text, n);
        used += n;
    }
    s[used] = 0;
    return s;
}
