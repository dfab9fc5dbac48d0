/*
 * test_request_pack.c — the packing of a stream's sub-queries into requests (request_pack.c):
 * greedy under both budgets, order kept, the URI counted as sent (escaped), a sub-query too long
 * alone refused. The expected counts are worked out from the budgets, not read back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "request_pack.h"

/* n compiled queries "avg:metric.<i>{*}" with s sub-queries each (texts owned by the caller). */
static dds_compiled_query *make_queries(size_t n, size_t s) {
    dds_compiled_query *qs = calloc(n, sizeof *qs);
    for (size_t i = 0; i < n; i++) {
        qs[i].subquery_count = s;
        for (size_t k = 0; k < s; k++) {
            char text[64];
            snprintf(text, sizeof text, "avg:metric.%03zu{*}.rollup(avg,60)", i);
            qs[i].subqueries[k].text = strdup(text);
            qs[i].subqueries[k].stat = (int32_t)k;
        }
    }
    return qs;
}

static void free_queries(dds_compiled_query *qs, size_t n) {
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < qs[i].subquery_count; k++) free(qs[i].subqueries[k].text);
    free(qs);
}

static void test_escaped_len(void) {
    CHECK_INT(dds_escaped_len("abcXYZ019-._~"), 13);
    CHECK_INT(dds_escaped_len("avg:m{*}"), 3 + 3 + 1 + 3 + 3 + 3); /* : { * } escaped */
    CHECK_INT(dds_escaped_len(" ,()"), 12);
    CHECK_INT(dds_escaped_len("\xc3\xa9"), 6); /* UTF-8 bytes escaped one by one */
    CHECK_INT(dds_escaped_len(""), 0);
}

/* The URI bound: the path and both epochs as wide as the plan's last `to`. */
static void test_uri_bytes(void) {
    dds_subq_ref subs[2] = {{0, 0, "a.b"}, {0, 1, "c d"}};
    size_t base = strlen("/api/v1/query?from=1700000000&to=1700000000&query=");
    CHECK_INT(dds_request_uri_bytes(subs, 0, 0, 1700000000), base);
    CHECK_INT(dds_request_uri_bytes(subs, 0, 1, 1700000000), base + 3);
    CHECK_INT(dds_request_uri_bytes(subs, 0, 2, 1700000000), base + 3 + 3 + 5); /* %2C, c%20d */
    CHECK_INT(dds_request_uri_bytes(subs, 1, 1, 99), base - 16 + 5);
}

/* 10 queries of 4 sub-queries under the default count budget (35): 2 requests, 35 + 5, in
 * order, each sub-query's (query, stat) kept. */
static void test_count_budget(void) {
    dds_compiled_query *qs = make_queries(10, 4);
    dds_pack p;
    CHECK_INT(dds_pack_requests(qs, 10, 35, 1000000, 1700000000, &p, NULL, NULL), DDSTREAM_OK);
    CHECK_INT(p.sub_count, 40);
    CHECK_INT(p.request_count, 2);
    CHECK_INT(p.requests[0].first, 0);
    CHECK_INT(p.requests[0].count, 35);
    CHECK_INT(p.requests[1].first, 35);
    CHECK_INT(p.requests[1].count, 5);
    for (size_t k = 0; k < p.sub_count; k++) {
        CHECK_INT(p.subs[k].query, (int32_t)(k / 4));
        CHECK_INT(p.subs[k].stat, (int32_t)(k % 4));
        CHECK(p.subs[k].text == qs[k / 4].subqueries[k % 4].text);
    }
    for (size_t r = 0; r < p.request_count; r++)
        CHECK_INT(p.requests[r].uri_bytes, dds_request_uri_bytes(p.subs, p.requests[r].first,
                                                                 p.requests[r].count, 1700000000));
    char *joined = dds_pack_join(&p, 35, 2);
    CHECK_STR(joined, "avg:metric.008{*}.rollup(avg,60),avg:metric.009{*}.rollup(avg,60)");
    free(joined);
    dds_pack_free(&p);
    /* A count budget of 1: one request per sub-query. */
    CHECK_INT(dds_pack_requests(qs, 10, 1, 1000000, 1700000000, &p, NULL, NULL), DDSTREAM_OK);
    CHECK_INT(p.request_count, 40);
    dds_pack_free(&p);
    free_queries(qs, 10);
}

/* The URI budget: as many whole sub-queries as fit, greedily, never past the budget. */
static void test_uri_budget(void) {
    dds_compiled_query *qs = make_queries(10, 4);
    dds_pack p;
    size_t base = dds_request_uri_bytes(NULL, 0, 0, 1700000000);
    size_t one = dds_escaped_len(qs[0].subqueries[0].text);
    /* room for exactly 3 sub-queries (and their two %2C) */
    int64_t budget = (int64_t)(base + 3 * one + 2 * 3);
    CHECK_INT(dds_pack_requests(qs, 10, 35, budget, 1700000000, &p, NULL, NULL), DDSTREAM_OK);
    CHECK_INT(p.request_count, 14); /* ceil(40 / 3) */
    size_t next = 0;
    for (size_t r = 0; r < p.request_count; r++) {
        CHECK_INT(p.requests[r].first, next);
        CHECK(p.requests[r].uri_bytes <= (size_t)budget);
        next += p.requests[r].count;
    }
    CHECK_INT(next, 40);
    dds_pack_free(&p);
    /* One byte less: two a request. */
    CHECK_INT(dds_pack_requests(qs, 10, 35, budget - 1, 1700000000, &p, NULL, NULL), DDSTREAM_OK);
    CHECK_INT(p.request_count, 20);
    dds_pack_free(&p);
    /* A budget below one sub-query: refused, naming the query. */
    size_t bad_query = 99, bad_bytes = 0;
    CHECK_INT(dds_pack_requests(qs, 10, 35, (int64_t)(base + one - 1), 1700000000, &p, &bad_query,
                                &bad_bytes),
              DDSTREAM_E_CONFIG);
    CHECK_INT(bad_query, 0);
    CHECK_INT(bad_bytes, base + one);
    CHECK(p.subs == NULL && p.requests == NULL && p.request_count == 0);
    free_queries(qs, 10);
}

/* Only one query too long: the error names that one, and shorter ones before it are fine. */
static void test_one_query_too_long(void) {
    dds_compiled_query *qs = make_queries(3, 1);
    free(qs[2].subqueries[0].text);
    char *longer = malloc(3000);
    memset(longer, ' ', 2999); /* each space is %20: 8997 bytes escaped */
    longer[2999] = 0;
    qs[2].subqueries[0].text = longer;
    dds_pack p;
    size_t bad_query = 99, bad_bytes = 0;
    CHECK_INT(dds_pack_requests(qs, 3, 35, 7000, 1700000000, &p, &bad_query, &bad_bytes),
              DDSTREAM_E_CONFIG);
    CHECK_INT(bad_query, 2);
    CHECK(bad_bytes > 8997);
    free_queries(qs, 3);
}

int main(void) {
    test_escaped_len();
    test_uri_bytes();
    test_count_budget();
    test_uri_budget();
    test_one_query_too_long();
    return check_report("test_request_pack");
}
