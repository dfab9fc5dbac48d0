/*
 * test_scalar_v2.c — scalar answers (dds_parse_v2_scalar: the published schema's columns, with and
 * without a group column, nulls, errors named by path, every cut and many mutations refused
 * cleanly) and the splitting of a scalar over chunks (scalar_v2.c): which aggregators split,
 * and their partials combined against a direct computation over random data.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "parse_v2.h"
#include "scalar_v2.h"

/* The shape FakeDatadog answers and Datadog's schema describes. */
static const char GROUPED[] =
    "{\"data\":{\"type\":\"scalar_response\",\"attributes\":{\"columns\":["
    "{\"name\":\"group\",\"type\":\"group\",\"values\":[[\"host:a\",\"env:prod\"],[\"host:b\"]]},"
    "{\"name\":\"a / b\",\"type\":\"number\",\"values\":[1.5,null],\"meta\":{\"unit\":null}},"
    "{\"name\":\"b\",\"type\":\"number\",\"values\":[-2e3,7]}]}}}";

static ddstream_status parse(const char *body, dds_v2_scalar *s, char *msg) {
    return dds_parse_v2_scalar(body, strlen(body), s, msg, 400);
}

static void test_parse(void) {
    dds_v2_scalar s;
    char msg[400];
    CHECK_MSG(parse(GROUPED, &s, msg) == DDSTREAM_OK, "%s", msg);
    CHECK_INT(s.group_count, 2);
    CHECK_STR(s.groups[0], "host:a,env:prod");
    CHECK_STR(s.groups[1], "host:b");
    CHECK_INT(s.column_count, 2);
    CHECK_STR(s.names[0], "a / b");
    CHECK_STR(s.names[1], "b");
    CHECK_DBL(s.values[0], 1.5);
    CHECK_DBL(s.values[1], NAN);
    CHECK_DBL(s.values[2], -2000);
    CHECK_DBL(s.values[3], 7);
    dds_v2_scalar_free(&s);

    /* No group column: one ungrouped group; no values: no group. */
    CHECK(parse("{\"data\":{\"attributes\":{\"columns\":[{\"type\":\"number\",\"name\":\"a\","
                "\"values\":[3]}]}}}",
                &s, msg) == DDSTREAM_OK);
    CHECK_INT(s.group_count, 1);
    CHECK_STR(s.groups[0], "");
    CHECK_DBL(s.values[0], 3);
    dds_v2_scalar_free(&s);
    CHECK(parse("{\"data\":{\"attributes\":{\"columns\":[{\"type\":\"number\",\"name\":\"a\","
                "\"values\":[]}]}}}",
                &s, msg) == DDSTREAM_OK);
    CHECK_INT(s.group_count, 0);
    CHECK(s.values == NULL);
    dds_v2_scalar_free(&s);
    /* A column of an unknown type is skipped. */
    CHECK(parse("{\"data\":{\"attributes\":{\"columns\":[{\"type\":\"other\",\"values\":[\"x\"]},"
                "{\"type\":\"number\",\"name\":\"a\",\"values\":[1]}]}}}",
                &s, msg) == DDSTREAM_OK);
    CHECK_INT(s.column_count, 1);
    dds_v2_scalar_free(&s);

    static const struct {
        const char *body, *says;
        ddstream_status st;
    } bad[] = {
        {"{\"data\":{\"attributes\":{\"columns\":[{\"type\":\"number\",\"values\":[1,2]},"
         "{\"type\":\"group\",\"values\":[[\"h:a\"]]}]}}}",
         "has 2 values for 1 groups", DDSTREAM_E_PROTOCOL},
        {"{\"data\":{\"attributes\":{\"columns\":[{\"values\":[1]}]}}}", "has no type",
         DDSTREAM_E_PROTOCOL},
        {"{\"data\":{\"attributes\":{\"columns\":[{\"type\":\"number\",\"values\":[\"1\"]}]}}}",
         "columns[0] (number) holds values of another kind", DDSTREAM_E_PROTOCOL},
        {"{\"data\":{\"attributes\":{\"columns\":[{\"type\":\"number\",\"values\":[1,\"1\"]}]}}}",
         "columns[0].values[1] is a string", DDSTREAM_E_PROTOCOL},
        {"{\"data\":{\"attributes\":{\"columns\":[{\"type\":\"group\",\"values\":[[1]]}]}}}",
         "is a number, expected a string", DDSTREAM_E_PROTOCOL},
        {"{\"data\":{\"attributes\":{\"columns\":[{\"type\":\"group\",\"values\":[]},"
         "{\"type\":\"group\",\"values\":[]}]}}}",
         "a second group column", DDSTREAM_E_PROTOCOL},
        {"{\"data\":{\"attributes\":{\"columns\":{}}}}", "columns is an object",
         DDSTREAM_E_PROTOCOL},
        {"{\"data\":{}}", "no data.attributes", DDSTREAM_E_PROTOCOL},
        {"{\"errors\":[\"Rate limit\"]}", "Rate limit", DDSTREAM_E_QUERY},
        {"{\"data\":{\"attributes\":{\"columns\":[", "ends early", DDSTREAM_E_PROTOCOL},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ddstream_status st = parse(bad[k].body, &s, msg);
        CHECK_MSG(st == bad[k].st, "case %zu: %d (%s)", k, (int)st, msg);
        CHECK_MSG(strstr(msg, bad[k].says) != NULL, "case %zu: \"%s\"", k, msg);
        CHECK(s.groups == NULL && s.names == NULL && s.values == NULL);
    }

    /* Every cut refused, every mutation answered cleanly (the sanitizers watch). */
    size_t n = strlen(GROUPED);
    char *copy = malloc(n + 1);
    for (size_t cut = 0; cut < n; cut++) {
        memcpy(copy, GROUPED, cut);
        CHECK(dds_parse_v2_scalar(copy, cut, &s, msg, sizeof msg) == DDSTREAM_E_PROTOCOL);
    }
    static const char subst[] = "\"[]{},:0-.nul\\ x";
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < sizeof subst - 1; k++) {
            memcpy(copy, GROUPED, n);
            copy[i] = subst[k];
            ddstream_status st = dds_parse_v2_scalar(copy, n, &s, msg, sizeof msg);
            CHECK(st == DDSTREAM_OK || st == DDSTREAM_E_PROTOCOL || st == DDSTREAM_E_QUERY);
            if (st == DDSTREAM_OK) dds_v2_scalar_free(&s);
        }
    }
    free(copy);
}

static void test_split(void) {
    const char *parts[2];
    CHECK_INT(dds_scalar_parts("sum", parts), 1);
    CHECK_STR(parts[0], "sum");
    CHECK_INT(dds_scalar_parts("count", parts), 1);
    CHECK_INT(dds_scalar_parts("last", parts), 1);
    CHECK_INT(dds_scalar_parts("avg", parts), 2);
    CHECK_STR(parts[0], "sum");
    CHECK_STR(parts[1], "count");
    CHECK_INT(dds_scalar_parts("percentile", parts), 0);
    CHECK_INT(dds_scalar_parts("l2norm", parts), 0);
    CHECK_INT(dds_scalar_parts("area", parts), 0);
    CHECK_INT(dds_scalar_parts(NULL, parts), 0);

    /* Random data in random chunks: the combination equals the direct computation. Values are
     * multiples of 0.25, so sums are exact in any order. */
    uint64_t x = 0x2545F4914F6CDD1DULL;
    for (int round = 0; round < 500; round++) {
        enum { N = 64 };
        double data[N];
        size_t n = 1 + (size_t)(round % N);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data[i] = x % 7 == 0 ? NAN : (double)(int64_t)(x % 4001 - 2000) / 4;
        }
        size_t chunks = 1 + (size_t)(round % 9);
        if (chunks > n) chunks = n;
        double sum[N], mn[N], mx[N], cnt[N], last[N], avg_parts[2 * N];
        for (size_t c = 0; c < chunks; c++) {
            size_t lo = c * n / chunks, hi = (c + 1) * n / chunks;
            double s = NAN, a = NAN, b = NAN, l = NAN, k = 0;
            for (size_t i = lo; i < hi; i++) {
                if (isnan(data[i])) continue;
                s = isnan(s) ? data[i] : s + data[i];
                a = isnan(a) || data[i] < a ? data[i] : a;
                b = isnan(b) || data[i] > b ? data[i] : b;
                l = data[i];
                k++;
            }
            sum[c] = s;
            mn[c] = a;
            mx[c] = b;
            last[c] = l;
            cnt[c] = k > 0 ? k : NAN; /* a chunk without data has no group in its answer */
            avg_parts[c] = s;
            avg_parts[chunks + c] = cnt[c];
        }
        double ds = NAN, dmin = NAN, dmax = NAN, dl = NAN, dk = 0;
        for (size_t i = 0; i < n; i++) {
            if (isnan(data[i])) continue;
            ds = isnan(ds) ? data[i] : ds + data[i];
            dmin = isnan(dmin) || data[i] < dmin ? data[i] : dmin;
            dmax = isnan(dmax) || data[i] > dmax ? data[i] : dmax;
            dl = data[i];
            dk++;
        }
        CHECK_DBL(dds_scalar_combine("sum", sum, chunks), ds);
        CHECK_DBL(dds_scalar_combine("min", mn, chunks), dmin);
        CHECK_DBL(dds_scalar_combine("max", mx, chunks), dmax);
        CHECK_DBL(dds_scalar_combine("count", cnt, chunks), dk);
        CHECK_DBL(dds_scalar_combine("last", last, chunks), dl);
        CHECK_DBL(dds_scalar_combine("avg", avg_parts, chunks), dk > 0 ? ds / dk : NAN);
    }
}

/* A formula's program over combined values, with Datadog's matching: equal tag sets join, an
 * ungrouped operand applies to every group, a group one grouped operand lacks has no value. */
static void test_formulas(void) {
    const char *names[] = {"a", "b", "c"};
    const int32_t grouped[] = {1, 0, 1};
    /* Sorted by (index, tags): a by host (h1, h2, h3), b ungrouped, c by host (h1, h3). */
    dds_scalar_value v[] = {
        {0, "host:h1", 10}, {0, "host:h2", 20}, {0, "host:h3", 30},
        {1, "", 4},         {2, "host:h1", 2},  {2, "host:h3", 0},
    };
    size_t n = sizeof v / sizeof v[0];
    size_t first, end;
    dds_scalar_span(v, n, 0, &first, &end);
    CHECK(first == 0 && end == 3);
    dds_scalar_span(v, n, 2, &first, &end);
    CHECK(first == 4 && end == 6);
    dds_scalar_span(v, n, 3, &first, &end);
    CHECK(first == 6 && end == 6);
    CHECK_DBL(dds_scalar_lookup(v, n, 0, 1, "host:h2"), 20);
    CHECK(isnan(dds_scalar_lookup(v, n, 0, 1, "host:h4")));
    CHECK_DBL(dds_scalar_lookup(v, n, 1, 0, "host:h2"), 4); /* broadcast */
    CHECK(isnan(dds_scalar_lookup(v, n, 3, 0, "")));

    dds_formula_op *ops = NULL;
    size_t nops = 0;
    char fn[32];
    double stack[16];
    CHECK(dds_formula_program("a / b * 100", names, 3, &ops, &nops, fn, sizeof fn, NULL) ==
          DDSTREAM_OK);
    CHECK(dds_scalar_groups_match(ops, nops, grouped, v, n, "host:h2"));
    CHECK_DBL(dds_scalar_eval(ops, nops, grouped, v, n, "host:h2", stack), 20.0 / 4 * 100);
    CHECK_DBL(dds_scalar_eval(ops, nops, grouped, v, n, "host:h3", stack), 30.0 / 4 * 100);
    free(ops);
    CHECK(dds_formula_program("a / c", names, 3, &ops, &nops, fn, sizeof fn, NULL) == DDSTREAM_OK);
    CHECK(dds_scalar_groups_match(ops, nops, grouped, v, n, "host:h1"));
    CHECK(!dds_scalar_groups_match(ops, nops, grouped, v, n, "host:h2")); /* c lacks h2 */
    CHECK_DBL(dds_scalar_eval(ops, nops, grouped, v, n, "host:h1", stack), 5);
    CHECK(isnan(dds_scalar_eval(ops, nops, grouped, v, n, "host:h3", stack))); /* x / 0 */
    free(ops);
    CHECK(dds_formula_program("-(b - 1) * (2 + b)", names, 3, &ops, &nops, fn, sizeof fn, NULL) ==
          DDSTREAM_OK);
    CHECK(dds_scalar_groups_match(ops, nops, grouped, v, n, ""));
    CHECK_DBL(dds_scalar_eval(ops, nops, grouped, v, n, "", stack), -(4.0 - 1) * (2 + 4.0));
    free(ops);
    CHECK(dds_formula_program("b * 1e308 * 10", names, 3, &ops, &nops, fn, sizeof fn, NULL) ==
          DDSTREAM_OK);
    CHECK(isnan(dds_scalar_eval(ops, nops, grouped, v, n, "", stack))); /* not finite */
    free(ops);
}

int main(int argc, char **argv) {
    (void)argc;
    test_parse();
    test_split();
    test_formulas();
    return check_report(argv[0]);
}
