/*
 * test_query_lang.c — the query language (query_lang.c): a table of queries from Datadog's
 * documentation and real-world shapes, each with the sub-queries expected, or the error expected
 * (where it points and what it says); then properties over every row: the canonical text is a
 * fixed point and reparses to the same AST, every sub-query compiles to itself, error messages
 * carry a caret under the offending character; then bounds (depth, length, options).
 *
 * Expected sub-queries are written as templates: "$s" stands for each statistic asked for (avg,
 * min, max, sum in that order, filtered by the row's mask); a leading '=' marks a value-only
 * query (one sub-query, DDS_STAT_VALUE); " || " separates the queries of a comma-separated text.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "query_lang.h"

#define ALL   0u
#define S_AVG (1u << DDS_STAT_AVG)
#define S_MIN (1u << DDS_STAT_MIN)
#define S_MAX (1u << DDS_STAT_MAX)
#define S_SUM (1u << DDS_STAT_SUM)

typedef struct qcase {
    const char *text;
    int64_t g;        /* 0: 60 */
    uint32_t stats;   /* mask; 0: all four */
    int dist;         /* 1: dist.latency and trace.http.request.duration are distributions */
    const char *want; /* template (see the top), or NULL: an error */
    unsigned grouped; /* bit k: query k is grouped */
    const char *at;   /* error: the offending character is where this text last occurs ("" = end) */
    const char *says; /* error: a fragment of the message */
} qcase;

static const qcase cases[] = {
    /* --- the shapes of the issue and the docs' anatomy of a query --- */
    {"avg:system.cpu.user{*}", 0, ALL, 0, "avg:system.cpu.user{*}.rollup($s,60)", 0, 0, 0},
    {"avg:system.cpu.user{*} by {host}", 0, ALL, 0,
     "avg:system.cpu.user{*} by {host}.rollup($s,60)", 1, 0, 0},
    {"avg:system.cpu.user{*}by{host}", 0, ALL, 0, "avg:system.cpu.user{*} by {host}.rollup($s,60)",
     1, 0, 0},
    {"system.cpu.idle{role:db,environment:test}by{host,region}", 0, ALL, 0,
     "system.cpu.idle{role:db,environment:test} by {host,region}.rollup($s,60)", 1, 0, 0},
    {"max:kafka.log.partition.size{role:some-kafka-cluster,topic:test_topic} by {topic,partition}",
     0, ALL, 0,
     "max:kafka.log.partition.size{role:some-kafka-cluster,topic:test_topic} by "
     "{topic,partition}.rollup($s,60)",
     1, 0, 0},
    {"avg:a{*} / avg:b{*} * 100", 0, ALL, 0,
     "avg:a{*}.rollup($s,60) / avg:b{*}.rollup($s,60) * 100", 0, 0, 0},
    {"per_second(avg:m{*})", 0, ALL, 0, "per_second(avg:m{*}.rollup($s,60))", 0, 0, 0},
    {"abs(avg:m{*} - 5)", 0, ALL, 0, "abs(avg:m{*}.rollup($s,60) - 5)", 0, 0, 0},
    {"timeshift(avg:system.load.1{*}, -1209600)", 0, ALL, 0,
     "timeshift(avg:system.load.1{*}.rollup($s,60), -1209600)", 0, 0, 0},
    {"top(avg:system.cpu.user{*} by {host}, 10, 'mean', 'desc')", 0, ALL, 0,
     "=top(avg:system.cpu.user{*} by {host}.rollup(avg,60), 10, 'mean', 'desc')", 1, 0, 0},
    {"sum:requests.error{*}.as_count() / sum:requests.total{*}.as_count()", 0, ALL, 0,
     "sum:requests.error{*}.as_count().rollup($s,60) / sum:requests.total{*}.as_count().rollup($s,"
     "60)",
     0, 0, 0},
    {"sum:requests.error{*}.as_rate()", 0, ALL, 0, "sum:requests.error{*}.as_rate().rollup($s,60)",
     0, 0, 0},
    {"avg:m{*}.fill(zero)", 0, ALL, 0, "avg:m{*}.fill(zero).rollup($s,60)", 0, 0, 0},
    {"avg:m{*}.fill(linear, 300)", 0, ALL, 0, "avg:m{*}.fill(linear,300).rollup($s,60)", 0, 0, 0},
    {"avg:m{*}.fill(null)", 0, ALL, 0, "avg:m{*}.fill(null).rollup($s,60)", 0, 0, 0},
    {"avg:m{*}.fill(last,600)", 0, ALL, 0, "avg:m{*}.fill(last,600).rollup($s,60)", 0, 0, 0},
    {"avg:m{*}.weighted()", 0, ALL, 0, "avg:m{*}.weighted().rollup($s,60)", 0, 0, 0},

    /* --- tag filters: wildcards, negation, boolean form (metrics advanced filtering docs) --- */
    {"avg:system.disk.in_use{!device:/dev/loop*} by {device}", 0, ALL, 0,
     "avg:system.disk.in_use{!device:/dev/loop*} by {device}.rollup($s,60)", 1, 0, 0},
    {"sum:kubernetes.pods.running{service:*-canary} by {service}", 0, ALL, 0,
     "sum:kubernetes.pods.running{service:*-canary} by {service}.rollup($s,60)", 1, 0, 0},
    {"avg:system.disk.utilized{region:*east*}", 0, ALL, 0,
     "avg:system.disk.utilized{region:*east*}.rollup($s,60)", 0, 0, 0},
    {"avg:system.cpu.user{env:staging AND (availability-zone:us-east-1a OR "
     "availability-zone:us-east-1c)} by {availability-zone}",
     0, ALL, 0,
     "avg:system.cpu.user{env:staging AND (availability-zone:us-east-1a OR "
     "availability-zone:us-east-1c)} by {availability-zone}.rollup($s,60)",
     1, 0, 0},
    {"avg:system.cpu.user{env:shop.ist AND availability-zone IN (us-east-1a, us-east-1b, "
     "us-east4-b)} by {availability-zone}",
     0, ALL, 0,
     "avg:system.cpu.user{env:shop.ist AND availability-zone IN "
     "(us-east-1a,us-east-1b,us-east4-b)} "
     "by {availability-zone}.rollup($s,60)",
     1, 0, 0},
    {"avg:system.cpu.user{env:prod AND location NOT IN (atlanta,seattle,las-vegas)}", 0, ALL, 0,
     "avg:system.cpu.user{env:prod AND location NOT IN (atlanta,seattle,las-vegas)}.rollup($s,60)",
     0, 0, 0},
    {"avg:m{env:prod and not host:a or host:b}", 0, ALL, 0,
     "avg:m{env:prod AND NOT host:a OR host:b}.rollup($s,60)", 0, 0, 0},
    {"avg:m{ host:a , !env:dev }", 0, ALL, 0, "avg:m{host:a,!env:dev}.rollup($s,60)", 0, 0, 0},
    {"avg:m{(host:a OR host:b) AND env:prod}", 0, ALL, 0,
     "avg:m{(host:a OR host:b) AND env:prod}.rollup($s,60)", 0, 0, 0},
    {"avg:m{$env,host:$host.value}", 0, ALL, 0, "avg:m{$env,host:$host.value}.rollup($s,60)", 0, 0,
     0},
    {"avg:m{host:caf\xc3\xa9}", 0, ALL, 0, "avg:m{host:caf\xc3\xa9}.rollup($s,60)", 0, 0, 0},
    {"avg:m{*} by { host , env }", 0, ALL, 0, "avg:m{*} by {host,env}.rollup($s,60)", 1, 0, 0},

    /* --- arithmetic: precedence, parentheses, unary minus, numbers --- */
    {"avg:a{*} + avg:b{*} * avg:c{*}", 0, ALL, 0,
     "avg:a{*}.rollup($s,60) + avg:b{*}.rollup($s,60) * avg:c{*}.rollup($s,60)", 0, 0, 0},
    {"(avg:a{*} + avg:b{*}) * 2", 0, ALL, 0,
     "(avg:a{*}.rollup($s,60) + avg:b{*}.rollup($s,60)) * 2", 0, 0, 0},
    {"avg:a{*} - (avg:b{*} - avg:c{*})", 0, ALL, 0,
     "avg:a{*}.rollup($s,60) - (avg:b{*}.rollup($s,60) - avg:c{*}.rollup($s,60))", 0, 0, 0},
    {"(avg:a{*} - avg:b{*}) - avg:c{*}", 0, ALL, 0,
     "avg:a{*}.rollup($s,60) - avg:b{*}.rollup($s,60) - avg:c{*}.rollup($s,60)", 0, 0, 0},
    {"avg:a{*} / (avg:b{*} * avg:c{*})", 0, ALL, 0,
     "avg:a{*}.rollup($s,60) / (avg:b{*}.rollup($s,60) * avg:c{*}.rollup($s,60))", 0, 0, 0},
    {"-avg:a{*}", 0, ALL, 0, "-avg:a{*}.rollup($s,60)", 0, 0, 0},
    {"-(avg:a{*} + 1)", 0, ALL, 0, "-(avg:a{*}.rollup($s,60) + 1)", 0, 0, 0},
    {"avg:a{*} * -1", 0, ALL, 0, "avg:a{*}.rollup($s,60) * -1", 0, 0, 0},
    {"avg:a{*} - -avg:b{*}", 0, ALL, 0, "avg:a{*}.rollup($s,60) - -avg:b{*}.rollup($s,60)", 0, 0,
     0},
    {"((avg:a{*}))", 0, ALL, 0, "avg:a{*}.rollup($s,60)", 0, 0, 0},
    {"100 * avg:errors{*} / avg:total{*}", 0, ALL, 0,
     "100 * avg:errors{*}.rollup($s,60) / avg:total{*}.rollup($s,60)", 0, 0, 0},
    {"avg:a{*} / 1e3 + 0.5", 0, ALL, 0, "avg:a{*}.rollup($s,60) / 1e3 + 0.5", 0, 0, 0},
    {"avg:m{*}\n  /\tavg:n{*}", 0, ALL, 0, "avg:m{*}.rollup($s,60) / avg:n{*}.rollup($s,60)", 0, 0,
     0},
    {"avg:m{*}*2", 0, ALL, 0, "avg:m{*}.rollup($s,60) * 2", 0, 0, 0},

    /* --- functions (docs' function pages), nested, case of keywords --- */
    {"abs (avg:m{*})", 0, ALL, 0, "abs(avg:m{*}.rollup($s,60))", 0, 0, 0},
    {"Per_Second(AVG:m{*} BY {host})", 0, ALL, 0, "per_second(avg:m{*} by {host}.rollup($s,60))", 1,
     0, 0},
    {"abs(per_second(avg:m{*} by {host}))", 0, ALL, 0,
     "abs(per_second(avg:m{*} by {host}.rollup($s,60)))", 1, 0, 0},
    {"cumsum(diff(sum:m{*}.as_count()))", 0, ALL, 0,
     "cumsum(diff(sum:m{*}.as_count().rollup($s,60)))", 0, 0, 0},
    {"calendar_shift(avg:m{*}, \"-1d\", \"UTC\")", 0, ALL, 0,
     "calendar_shift(avg:m{*}.rollup($s,60), \"-1d\", \"UTC\")", 0, 0, 0},
    {"week_before(avg:m{*})", 0, ALL, 0, "week_before(avg:m{*}.rollup($s,60))", 0, 0, 0},
    {"log10(avg:m{*}) + log2(avg:n{*})", 0, ALL, 0,
     "log10(avg:m{*}.rollup($s,60)) + log2(avg:n{*}.rollup($s,60))", 0, 0, 0},
    {"pow(avg:m{*}, 2)", 0, ALL, 0, "pow(avg:m{*}.rollup($s,60), 2)", 0, 0, 0},
    {"clamp_min(avg:m{*}, -5.5)", 0, ALL, 0, "clamp_min(avg:m{*}.rollup($s,60), -5.5)", 0, 0, 0},
    {"cutoff_max(avg:m{*}, 100)", 0, ALL, 0, "cutoff_max(avg:m{*}.rollup($s,60), 100)", 0, 0, 0},
    {"moving_rollup(avg:m{*}, 300, 'max')", 0, ALL, 0,
     "moving_rollup(avg:m{*}.rollup($s,60), 300, 'max')", 0, 0, 0},
    {"ewma_10(avg:m{*})", 0, ALL, 0, "ewma_10(avg:m{*}.rollup($s,60))", 0, 0, 0},
    {"median_5(avg:m{*})", 0, ALL, 0, "median_5(avg:m{*}.rollup($s,60))", 0, 0, 0},
    {"rollingavg_5(system.load.1{*})", 0, ALL, 0, "rollingavg_5(system.load.1{*}.rollup($s,60))", 0,
     0, 0},
    {"default_zero(avg:m{*})", 0, ALL, 0, "default_zero(avg:m{*}.rollup($s,60))", 0, 0, 0},
    {"exclude_null(avg:system.load.1{*} by {host})", 0, ALL, 0,
     "exclude_null(avg:system.load.1{*} by {host}.rollup($s,60))", 1, 0, 0},
    {"count_nonzero(avg:system.cpu.user{*} by {host})", 0, ALL, 0,
     "count_nonzero(avg:system.cpu.user{*} by {host}.rollup($s,60))", 0, 0, 0},
    {"robust_trend(avg:m{*})", 0, ALL, 0, "robust_trend(avg:m{*}.rollup($s,60))", 0, 0, 0},
    {"per_second(sum:m{*}.as_count()) + 5 * avg:n{*}.fill(last,60)", 0, ALL, 0,
     "per_second(sum:m{*}.as_count().rollup($s,60)) + 5 * avg:n{*}.fill(last,60).rollup($s,60)", 0,
     0, 0},

    /* --- series-selecting functions: value-only --- */
    {"top10_max(avg:m{*} by {host})", 0, ALL, 0, "=top10_max(avg:m{*} by {host}.rollup(avg,60))", 1,
     0, 0},
    {"bottom5_mean(avg:m{*} by {host})", 0, ALL, 0,
     "=bottom5_mean(avg:m{*} by {host}.rollup(avg,60))", 1, 0, 0},
    {"top(per_second(avg:m{*} by {host}), 5, 'max', 'asc')", 0, ALL, 0,
     "=top(per_second(avg:m{*} by {host}.rollup(avg,60)), 5, 'max', 'asc')", 1, 0, 0},
    {"top(sum:hits{*} by {host}.as_count(), 25, 'sum', 'desc')", 0, ALL, 0,
     "=top(sum:hits{*} by {host}.as_count().rollup(sum,60), 25, 'sum', 'desc')", 1, 0, 0},
    {"outliers(avg:m{*} by {host}, 'DBSCAN', 3)", 0, ALL, 0,
     "=outliers(avg:m{*} by {host}.rollup(avg,60), 'DBSCAN', 3)", 1, 0, 0},
    {"outliers(avg:m{*} by {host}, 'MAD', 3, 20)", 0, ALL, 0,
     "=outliers(avg:m{*} by {host}.rollup(avg,60), 'MAD', 3, 20)", 1, 0, 0},
    {"anomalies(avg:m{*}, 'basic', 2)", 0, ALL, 0,
     "=anomalies(avg:m{*}.rollup(avg,60), 'basic', 2)", 0, 0, 0},
    {"forecast(avg:m{*}, 'linear', 1)", 0, ALL, 0,
     "=forecast(avg:m{*}.rollup(avg,60), 'linear', 1)", 0, 0, 0},

    /* --- a user's own rollup: respected, value-only, interval filled or checked --- */
    {"avg:m{*}.rollup(max)", 0, ALL, 0, "=avg:m{*}.rollup(max,60)", 0, 0, 0},
    {"avg:m{*}.rollup(max, 60)", 0, ALL, 0, "=avg:m{*}.rollup(max,60)", 0, 0, 0},
    {"avg:m{*}.rollup(avg,86400)", 86400, ALL, 0, "=avg:m{*}.rollup(avg,86400)", 0, 0, 0},
    {"avg:m{*}.rollup(count)", 0, ALL, 0, "=avg:m{*}.rollup(count,60)", 0, 0, 0},
    {"avg:m{*}.ROLLUP(SUM)", 0, ALL, 0, "=avg:m{*}.rollup(sum,60)", 0, 0, 0},
    {"avg:a{*} + avg:b{*}.rollup(max,60)", 0, ALL, 0,
     "=avg:a{*}.rollup(avg,60) + avg:b{*}.rollup(max,60)", 0, 0, 0},
    {"sum:hits{*}.as_count() + sum:misses{*}.rollup(sum)", 0, ALL, 0,
     "=sum:hits{*}.as_count().rollup(sum,60) + sum:misses{*}.rollup(sum,60)", 0, 0, 0},
    {"sum:m{*}.rollup(sum).fill(zero)", 0, ALL, 0, "=sum:m{*}.rollup(sum,60).fill(zero)", 0, 0, 0},
    {"avg:m{*}.rollup(sum,300)", 0, ALL, 0, NULL, 0, "300",
     "rollup interval 300 differs from the granularity 60"},
    {"avg:m{*} by {host}.rollup(avg, 120)", 60, ALL, 0, NULL, 0, "120", "differs"},

    /* --- distributions and percentiles --- */
    {"p99:trace.http.request.duration{*}", 0, ALL, 0,
     "=p99:trace.http.request.duration{*}.rollup(avg,60)", 0, 0, 0},
    {"p99.9:trace.http.request.duration{service:web} by {resource_name}", 0, ALL, 0,
     "=p99.9:trace.http.request.duration{service:web} by {resource_name}.rollup(avg,60)", 1, 0, 0},
    {"P95:dist.latency{*}", 0, ALL, 0, "=p95:dist.latency{*}.rollup(avg,60)", 0, 0, 0},
    {"p50:dist{*}.rollup(60)", 0, ALL, 0, "=p50:dist{*}.rollup(60)", 0, 0, 0},
    {"p99:dist{*}.rollup(avg, 60)", 0, ALL, 0, "=p99:dist{*}.rollup(avg,60)", 0, 0, 0},
    {"p75.25:dist{*}", 0, ALL, 0, "=p75.25:dist{*}.rollup(avg,60)", 0, 0, 0},
    {"avg:dist.latency{*}", 0, ALL, 1, "$s:dist.latency{*}.rollup($s,60)", 0, 0, 0},
    {"max:dist.latency{*} by {host}", 0, ALL, 1, "$s:dist.latency{*} by {host}.rollup($s,60)", 1, 0,
     0},
    {"dist.latency{env:prod}", 0, ALL, 1, "$s:dist.latency{env:prod}.rollup($s,60)", 0, 0, 0},
    {"count:dist.latency{*}", 0, ALL, 1, "=count:dist.latency{*}.rollup(avg,60)", 0, 0, 0},
    {"count:system.cpu.user{*}", 0, ALL, 1, "count:system.cpu.user{*}.rollup($s,60)", 0, 0, 0},
    {"avg:dist.latency{*} / avg:system.load.1{*}", 0, ALL, 1,
     "$s:dist.latency{*}.rollup($s,60) / avg:system.load.1{*}.rollup($s,60)", 0, 0, 0},
    {"avg:dist.latency{*}", 0, ALL, 0, "avg:dist.latency{*}.rollup($s,60)", 0, 0, 0},

    /* --- the statistics mask and the granularity --- */
    {"avg:m{*}", 0, S_MIN | S_MAX, 0, "avg:m{*}.rollup($s,60)", 0, 0, 0},
    {"avg:m{*} by {host}", 3600, S_SUM, 0, "avg:m{*} by {host}.rollup($s,3600)", 1, 0, 0},
    {"p99:dist.latency{*}", 0, S_SUM, 1, "=p99:dist.latency{*}.rollup(avg,60)", 0, 0, 0},
    {"avg:dist.latency{*}", 300, S_AVG | S_SUM, 1, "$s:dist.latency{*}.rollup($s,300)", 0, 0, 0},

    /* --- several queries in one text --- */
    {"avg:a{*}, max:b{*} by {host}", 0, ALL, 0,
     "avg:a{*}.rollup($s,60) || max:b{*} by {host}.rollup($s,60)", 2, 0, 0},
    {"avg:a{*} / avg:b{*}, p95:dist{*} , top(avg:c{*} by {h}, 5, 'last', 'desc')", 0, ALL, 0,
     "avg:a{*}.rollup($s,60) / avg:b{*}.rollup($s,60) || =p95:dist{*}.rollup(avg,60) || "
     "=top(avg:c{*} by {h}.rollup(avg,60), 5, 'last', 'desc')",
     4, 0, 0},
    {"abs(avg:a{x:1,y:2}), avg:b{*}", 0, ALL, 0,
     "abs(avg:a{x:1,y:2}.rollup($s,60)) || avg:b{*}.rollup($s,60)", 0, 0, 0},

    /* --- errors: brackets, names, arguments, rules --- */
    {"avg:m{host:a", 0, ALL, 0, NULL, 0, "",
     "expected '}' to close the scope opened at character 6"},
    {"avg:m{*", 0, ALL, 0, NULL, 0, "", "expected '}'"},
    {"avg:m{}", 0, ALL, 0, NULL, 0, "}", "empty scope"},
    {"avg:m", 0, ALL, 0, NULL, 0, "", "expected '{' after the metric name"},
    {"avg:m by {host}", 0, ALL, 0, NULL, 0, "by", "expected '{' after the metric name"},
    {"foo:m{*}", 0, ALL, 0, NULL, 0, "foo", "unknown aggregator 'foo:'"},
    {"p0:m{*}", 0, ALL, 0, NULL, 0, "p0", "unknown aggregator"},
    {"p100:m{*}", 0, ALL, 0, NULL, 0, "p100", "unknown aggregator"},
    {"p99.999:m{*}", 0, ALL, 0, NULL, 0, "p99", "unknown aggregator"},
    {"avg:.m{*}", 0, ALL, 0, NULL, 0, ".m", "expected a metric name after 'avg:'"},
    {"avg:m.{*}", 0, ALL, 0, NULL, 0, ".", "cannot end with '.'"},
    {"avg:m{*}.rollup(median)", 0, ALL, 0, NULL, 0, "median", "unknown rollup method 'median'"},
    {"avg:m{*}.rollup(avg,0)", 0, ALL, 0, NULL, 0, "0", "between 1 and"},
    {"avg:m{*}.rollup(avg, 60", 0, ALL, 0, NULL, 0, "", "expected ')' to close .rollup("},
    {"avg:m{*}.rollup()", 0, ALL, 0, NULL, 0, ")", "expected a rollup method"},
    {"avg:m{*}.fill(zero, 601)", 0, ALL, 0, NULL, 0, "601",
     "the fill limit must be between 0 and 600"},
    {"avg:m{*}.fill(previous)", 0, ALL, 0, NULL, 0, "previous", "unknown fill method 'previous'"},
    {"avg:m{*}.as_count().as_rate()", 0, ALL, 0, NULL, 0, ".as_rate", "not both"},
    {"avg:m{*}.rollup(avg).rollup(max)", 0, ALL, 0, NULL, 0, ".rollup(max)",
     "a second .rollup() on the same metric term"},
    {"avg:m{*}.as_count(1)", 0, ALL, 0, NULL, 0, "1", ".as_count() takes no arguments"},
    {"avg:m{*}.foo()", 0, ALL, 0, NULL, 0, "foo", "unknown modifier '.foo()'"},
    {"avg:m{*}.", 0, ALL, 0, NULL, 0, "", "expected a modifier name"},
    {"avg:m{*} avg:n{*}", 0, ALL, 0, NULL, 0, "avg:n", "after the query"},
    {"avg:m{*})", 0, ALL, 0, NULL, 0, ")", "')' without a matching '('"},
    {"avg:m{*}}", 0, ALL, 0, NULL, 0, "}", "'}' without a matching '{'"},
    {"(avg:m{*}", 0, ALL, 0, NULL, 0, "", "expected ')' to close the '(' at character 1"},
    {"avg:m{*} +", 0, ALL, 0, NULL, 0, "", "expected a metric query"},
    {"avg:m{*} by {}", 0, ALL, 0, NULL, 0, "}", "empty 'by {}'"},
    {"avg:m{*} by host", 0, ALL, 0, NULL, 0, "host", "expected '{' after 'by'"},
    {"avg:m{*} by {host", 0, ALL, 0, NULL, 0, "", "to close the 'by {' opened at character 13"},
    {"unknownfn(avg:m{*})", 0, ALL, 0, NULL, 0, "unknownfn", "unknown function 'unknownfn()'"},
    {"top11_max(avg:m{*})", 0, ALL, 0, NULL, 0, "top11_max", "unknown function"},
    {"abs(5)", 0, ALL, 0, NULL, 0, "5", "abs(): the first argument must be a metric query"},
    {"abs()", 0, ALL, 0, NULL, 0, ")", "abs() takes 1 argument"},
    {"per_second(avg:a{*}, avg:b{*})", 0, ALL, 0, NULL, 0, "avg:b",
     "per_second() takes 1 argument"},
    {"top(avg:m{*} by {host}, 7, 'mean', 'desc')", 0, ALL, 0, NULL, 0, "7",
     "must be 5, 10, 25, 50 or 100"},
    {"top(avg:m{*}, 10, mean, desc)", 0, ALL, 0, NULL, 0, "mean, desc)",
     "top(): the third argument must be a quoted string, such as 'mean'"},
    {"anomalies(avg:m{*}, basic, 2)", 0, ALL, 0, NULL, 0, "basic", "a quoted string"},
    {"top(avg:m{*}, 10, 'mean')", 0, ALL, 0, NULL, 0, ")", "top() takes 4 arguments, not 3"},
    {"top(avg:m{*}, 10, 'mean', 'up')", 0, ALL, 0, NULL, 0, "'up'", "'asc' or 'desc'"},
    {"top(avg:m{*}, 10, 'median', 'asc')", 0, ALL, 0, NULL, 0, "'median'", "rank by"},
    {"moving_rollup(avg:m{*}, 300, 'median')", 0, ALL, 0, NULL, 0, "'median'", "the aggregator is"},
    {"moving_rollup(avg:m{*}, -300)", 0, ALL, 0, NULL, 0, "-300", "whole number of seconds"},
    {"timeshift(avg:m{*}, 'x')", 0, ALL, 0, NULL, 0, "'x'", "must be a number"},
    {"clamp_min(avg:m{*}, avg:n{*})", 0, ALL, 0, NULL, 0, "avg:n", "must be a number"},
    {"abs(avg:m{*}", 0, ALL, 0, NULL, 0, "", "expected ')' to close abs( opened at character 4"},
    {"abs", 0, ALL, 0, NULL, 0, "", "expected '(' after the function name 'abs'"},
    {"cpu", 0, ALL, 0, NULL, 0, "cpu", "unknown word 'cpu'"},
    {"5 + 3", 0, ALL, 0, NULL, 0, "5 + 3", "no metric term"},
    {"avg:m{*} * 'x'", 0, ALL, 0, NULL, 0, "'x'", "only allowed as a function argument"},
    {"(avg:a{*} + avg:b{*}).rollup(sum)", 0, ALL, 0, NULL, 0, ".rollup",
     "follows a metric term, not ')'"},
    {"avg:m{*}, ", 0, ALL, 0, NULL, 0, "", "expected a query after ','"},
    {", avg:m{*}", 0, ALL, 0, NULL, 0, ", avg:m{*}", "expected a query after ','"},
    {"avg:a{*},,avg:b{*}", 0, ALL, 0, NULL, 0, ",avg:b", "expected a query after ','"},
    {"", 0, ALL, 0, NULL, 0, "", "the query is empty"},
    {"   ", 0, ALL, 0, NULL, 0, "", "the query is empty"},
    {"avg:m{*}\x01", 0, ALL, 0, NULL, 0, "\x01", "control character 0x01"},
    {"avg:m{host:\xff}", 0, ALL, 0, NULL, 0, "\xff", "not valid UTF-8"},
    {"avg:m{a:b c:d}", 0, ALL, 0, NULL, 0, "c:d", "between tags"},
    {"avg:m{*,host:a}", 0, ALL, 0, NULL, 0, "*", "'*' stands alone"},
    {"avg:m{host:a,}", 0, ALL, 0, NULL, 0, "}", "expected a tag"},
    {"avg:mymetric{env:prod AND !region:us-east}", 0, ALL, 0, NULL, 0, "!region",
     "cannot be mixed with AND, OR, NOT and IN"},
    {"avg:m{host:a, env:b AND x:y}", 0, ALL, 0, NULL, 0, "AND", "cannot be mixed"},
    {"avg:m{host IN (a,b}", 0, ALL, 0, NULL, 0, "}", "',' or ')' in the IN list"},
    {"avg:m{host:a IN (a)}", 0, ALL, 0, NULL, 0, "host:a", "IN takes a tag key"},
    {"avg:m{(host:a OR host:b}", 0, ALL, 0, NULL, 0, "}", "expected ')' to close the '('"},
    {"avg:m{host:\"a\"}", 0, ALL, 0, NULL, 0, "\"a", "unexpected '\"' in the scope"},
    {"10abc + avg:m{*}", 0, ALL, 0, NULL, 0, "abc", "after the number"},
    {"outliers(avg:m{*} by {host}, 'M\nD', 3, 20)", 0, ALL, 0, NULL, 0, "\n",
     "a string cannot hold a line break"},
};

/* ---------------------------------------------------------------------------------------------
 * Helpers.
 */

static const char *const stat_name[] = {"avg", "min", "max", "sum"};
static const char *const dists[] = {"dist.latency", "trace.http.request.duration"};

static dds_query_options options_for(const qcase *c) {
    dds_query_options o;
    memset(&o, 0, sizeof o);
    o.granularity = c->g ? c->g : 60;
    o.statistics = c->stats;
    if (c->dist) {
        o.distribution_metrics = dists;
        o.distribution_metric_count = 2;
    }
    return o;
}

/* tmpl with every "$s" replaced by name, into out. */
static void substitute(const char *tmpl, size_t n, const char *name, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < cap; i++) {
        if (tmpl[i] == '$' && i + 1 < n && tmpl[i + 1] == 's') {
            memcpy(out + o, name, 3);
            o += 3;
            i++;
        } else {
            out[o++] = tmpl[i];
        }
    }
    out[o] = 0;
}

/* Last occurrence of needle in hay ("" means the end). */
static size_t last_offset(const char *hay, const char *needle) {
    size_t hn = strlen(hay), nn = strlen(needle);
    if (nn == 0) return hn;
    for (size_t i = hn - nn + 1; i-- > 0;)
        if (memcmp(hay + i, needle, nn) == 0) return i;
    return (size_t)-1;
}

static size_t utf8_chars(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

/* The message's shape: "at character N: ...", an excerpt line, a caret line under text[off]. */
static void check_error_shape(const char *text, const dds_query_error *e, const char *label) {
    char head[64];
    snprintf(head, sizeof head, "at character %zu: ", utf8_chars(text, e->offset) + 1);
    CHECK_MSG(strncmp(e->message, head, strlen(head)) == 0,
              "%s: message \"%s\" should start \"%s\"", label, e->message, head);
    const char *nl1 = strchr(e->message, '\n');
    const char *nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;
    CHECK_MSG(nl1 && nl2 && strchr(nl2 + 1, '\n') == NULL, "%s: three lines expected: \"%s\"",
              label, e->message);
    if (!nl1 || !nl2) return;
    for (const char *q = e->message; *q; q++)
        CHECK_MSG((unsigned char)*q >= 0x20 || *q == '\n', "%s: control character in the message",
                  label);
    const char *excerpt = nl1 + 3, *caret = nl2 + 3;
    CHECK_MSG(strncmp(nl1, "\n  ", 3) == 0 && strncmp(nl2, "\n  ", 3) == 0,
              "%s: excerpt lines are indented by two spaces", label);
    size_t col = strspn(caret, " ");
    CHECK_MSG(strcmp(caret + col, "^") == 0, "%s: caret line \"%s\"", label, caret);
    /* For an ASCII character, the caret stands under that very character in the excerpt. */
    unsigned char at = (unsigned char)text[e->offset];
    if (e->offset < strlen(text) && at > 0x20 && at < 0x7f) {
        const char *x = excerpt;
        size_t k = 0;
        while (x < nl2 && k < col) {
            x++;
            while (x < nl2 && ((unsigned char)*x & 0xC0) == 0x80) x++;
            k++;
        }
        CHECK_MSG(x < nl2 && (unsigned char)*x == at, "%s: the caret is not under '%c' in \"%s\"",
                  label, at, e->message);
    }
}

/* Each sub-query, compiled again with the same options, is value-only and prints itself: the
 * rewriting is idempotent, and what ddstream sends is in the language it parses. */
static void check_idempotent(const dds_subquery *sq, const dds_query_options *o,
                             const char *label) {
    dds_compiled_query *again = NULL;
    size_t n = 0;
    dds_query_error e;
    ddstream_status st = dds_query_compile_all(sq->text, o, &again, &n, &e);
    CHECK_MSG(st == DDSTREAM_OK, "%s: sub-query \"%s\" does not compile: %s", label, sq->text,
              e.message);
    if (st != DDSTREAM_OK) return;
    CHECK_MSG(n == 1 && again[0].value_only && again[0].subquery_count == 1 &&
                  strcmp(again[0].subqueries[0].text, sq->text) == 0,
              "%s: sub-query \"%s\" compiles to \"%s\"", label, sq->text,
              again[0].subqueries[0].text);
    dds_compiled_queries_free(again, n);
}

/* canonical(text) is a fixed point and compiles to the same sub-queries as text. */
static void check_round_trip(const char *text, const dds_compiled_query *q, size_t n,
                             const dds_query_options *o, const char *label) {
    char *canon = NULL, *canon2 = NULL;
    dds_query_error e;
    CHECK_MSG(dds_query_canonical(text, &canon, &e) == DDSTREAM_OK, "%s: canonical: %s", label,
              e.message);
    if (canon == NULL) return;
    CHECK_MSG(dds_query_canonical(canon, &canon2, &e) == DDSTREAM_OK && canon2 &&
                  strcmp(canon, canon2) == 0,
              "%s: canonical \"%s\" reprints as \"%s\"", label, canon, canon2 ? canon2 : e.message);
    dds_compiled_query *again = NULL;
    size_t m = 0;
    CHECK_MSG(dds_query_compile_all(canon, o, &again, &m, &e) == DDSTREAM_OK && m == n, "%s: %s",
              label, e.message);
    for (size_t k = 0; again && k < n; k++) {
        CHECK_INT(again[k].subquery_count, q[k].subquery_count);
        CHECK_INT(again[k].grouped, q[k].grouped);
        for (size_t j = 0; j < q[k].subquery_count && j < again[k].subquery_count; j++)
            CHECK_MSG(strcmp(again[k].subqueries[j].text, q[k].subqueries[j].text) == 0,
                      "%s: canonical text \"%s\" gives \"%s\", the original \"%s\"", label, canon,
                      again[k].subqueries[j].text, q[k].subqueries[j].text);
    }
    dds_compiled_queries_free(again, m);
    free(canon);
    free(canon2);
}

static void run_case(const qcase *c, size_t index) {
    char label[96];
    snprintf(label, sizeof label, "row %zu (%.60s)", index, c->text);
    dds_query_options o = options_for(c);
    dds_compiled_query *q = NULL;
    size_t n = 99;
    dds_query_error e;
    ddstream_status st = dds_query_compile_all(c->text, &o, &q, &n, &e);
    if (c->want == NULL) {
        CHECK_MSG(st == DDSTREAM_E_CONFIG && q == NULL && n == 0, "%s: expected an error, got %d",
                  label, (int)st);
        if (st != DDSTREAM_E_CONFIG) {
            dds_compiled_queries_free(q, n);
            return;
        }
        size_t at = last_offset(c->text, c->at);
        CHECK_MSG(e.offset == at, "%s: error at %zu, expected %zu: %s", label, e.offset, at,
                  e.message);
        CHECK_MSG(strstr(e.message, c->says) != NULL, "%s: message \"%s\" lacks \"%s\"", label,
                  e.message, c->says);
        check_error_shape(c->text, &e, label);
        return;
    }
    CHECK_MSG(st == DDSTREAM_OK, "%s: %s", label, e.message);
    if (st != DDSTREAM_OK) return;
    /* The expected queries, split at " || ". */
    const char *t = c->want;
    size_t k = 0;
    uint32_t mask = c->stats ? c->stats : 15u;
    for (;; k++) {
        const char *sep = strstr(t, " || ");
        size_t len = sep ? (size_t)(sep - t) : strlen(t);
        if (k >= n) {
            CHECK_MSG(0, "%s: %zu queries, expected more", label, n);
            break;
        }
        const dds_compiled_query *cq = &q[k];
        CHECK_MSG(cq->grouped == (int)((c->grouped >> k) & 1u), "%s: query %zu grouped %d", label,
                  k, cq->grouped);
        char expect[1024];
        if (t[0] == '=') {
            CHECK_MSG(cq->value_only == 1 && cq->value_reason != NULL && cq->subquery_count == 1,
                      "%s: query %zu should be value-only", label, k);
            substitute(t + 1, len - 1, "???", expect, sizeof expect);
            if (cq->subquery_count >= 1) {
                CHECK_STR(cq->subqueries[0].text, expect);
                CHECK_INT(cq->subqueries[0].stat, DDS_STAT_VALUE);
            }
        } else {
            CHECK_MSG(cq->value_only == 0 && cq->value_reason == NULL,
                      "%s: query %zu should have four statistics", label, k);
            size_t j = 0;
            for (int s = 0; s < 4; s++) {
                if (!(mask & (1u << s))) continue;
                substitute(t, len, stat_name[s], expect, sizeof expect);
                CHECK_MSG(j < cq->subquery_count, "%s: too few sub-queries", label);
                if (j < cq->subquery_count) {
                    CHECK_MSG(strcmp(cq->subqueries[j].text, expect) == 0,
                              "%s: sub-query %zu is \"%s\", expected \"%s\"", label, j,
                              cq->subqueries[j].text, expect);
                    CHECK_INT(cq->subqueries[j].stat, s);
                }
                j++;
            }
            CHECK_INT(cq->subquery_count, j);
        }
        for (size_t j = 0; j < cq->subquery_count; j++) {
            for (const char *x = cq->subqueries[j].text; *x; x++)
                CHECK_MSG((unsigned char)*x >= 0x20, "%s: control character in a sub-query", label);
            check_idempotent(&cq->subqueries[j], &o, label);
        }
        if (!sep) break;
        t = sep + 4;
    }
    CHECK_MSG(n == k + 1, "%s: %zu queries, expected %zu", label, n, k + 1);
    if (n == 1) {
        /* The source is the text, trimmed. */
        const char *b = c->text;
        while (*b == ' ' || *b == '\n' || *b == '\t') b++;
        size_t len = strlen(b);
        while (len && (b[len - 1] == ' ' || b[len - 1] == '\n')) len--;
        CHECK_MSG(strlen(q[0].source) == len && strncmp(q[0].source, b, len) == 0,
                  "%s: source \"%s\"", label, q[0].source);
    }
    check_round_trip(c->text, q, n, &o, label);
    dds_compiled_queries_free(q, n);
}

/* ---------------------------------------------------------------------------------------------
 * Bounds: nesting, length, options, sources of several queries.
 */

static void test_bounds(void) {
    dds_query_options o = {60, 0, NULL, 0};
    dds_compiled_query *q = NULL;
    size_t n = 0;
    dds_query_error e;

    /* 1000 nested parentheses: an error at the first one too deep, not a stack overflow. */
    size_t depth = 1000;
    char *deep = malloc(2 * depth + 16);
    memset(deep, '(', depth);
    strcpy(deep + depth, "avg:m{*}");
    memset(deep + depth + 8, ')', depth);
    deep[2 * depth + 8] = 0;
    CHECK_INT(dds_query_compile_all(deep, &o, &q, &n, &e), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(e.message, "nested more than 64 deep");
    CHECK(e.offset > 0 && e.offset < 64);
    /* Within the bound it parses, and the parentheses go. */
    memset(deep, '(', 20);
    strcpy(deep + 20, "avg:m{*}");
    memset(deep + 28, ')', 20);
    deep[48] = 0;
    CHECK_INT(dds_query_compile_all(deep, &o, &q, &n, &e), DDSTREAM_OK);
    if (q) CHECK_STR(q[0].subqueries[0].text, "avg:m{*}.rollup(avg,60)");
    dds_compiled_queries_free(q, n);
    /* Unary minus and functions count too. */
    memset(deep, '-', 1000);
    strcpy(deep + 1000, "avg:m{*}");
    CHECK_INT(dds_query_compile_all(deep, &o, &q, &n, &e), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(e.message, "nested more than");
    size_t at = 0;
    for (int i = 0; i < 100; i++) {
        memcpy(deep + at, "abs(", 4);
        at += 4;
    }
    strcpy(deep + at, "avg:m{*}");
    CHECK_INT(dds_query_compile_all(deep, &o, &q, &n, &e), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(e.message, "nested more than");
    /* Scope parentheses have their own bound. */
    strcpy(deep, "avg:m{");
    memset(deep + 6, '(', 500);
    strcpy(deep + 506, "a:b");
    CHECK_INT(dds_query_compile_all(deep, &o, &q, &n, &e), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(e.message, "parentheses in the scope nested more than");
    free(deep);

    /* Over 4000 characters: an error pointing at the 4001st. */
    char *longq = malloc(4100);
    strcpy(longq, "avg:m{host:");
    memset(longq + 11, 'a', 4080);
    strcpy(longq + 4091, "}");
    CHECK_INT(dds_query_compile_all(longq, &o, &q, &n, &e), DDSTREAM_E_CONFIG);
    CHECK_INT(e.offset, 4000);
    CHECK_CONTAINS(e.message, "longer than 4000 characters");
    CHECK_CONTAINS(e.message, "at character 4001: ");
    /* 4000 exactly is accepted. */
    strcpy(longq + 3999, "}");
    CHECK_INT(dds_query_compile_all(longq, &o, &q, &n, &e), DDSTREAM_OK);
    dds_compiled_queries_free(q, n);
    /* A long line: the excerpt is cut around the offending character, with the caret under it. */
    memset(longq + 11, 'a', 200);
    strcpy(longq + 211, "} junk");
    CHECK_INT(dds_query_compile_all(longq, &o, &q, &n, &e), DDSTREAM_E_CONFIG);
    CHECK_INT(e.offset, 213);
    check_error_shape(longq, &e, "long line");
    CHECK(strlen(e.message) < 200);
    free(longq);

    /* Options. */
    dds_query_options bad = {0, 0, NULL, 0};
    CHECK_INT(dds_query_compile_all("avg:m{*}", &bad, &q, &n, &e), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(e.message, "granularity");
    bad.granularity = 60;
    bad.statistics = 1u << DDS_STAT_VALUE;
    CHECK_INT(dds_query_compile_all("avg:m{*}", &bad, &q, &n, &e), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(e.message, "statistics");
    CHECK_INT(dds_query_compile_all(NULL, &o, &q, &n, &e), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(e.message, "missing");
    CHECK(q == NULL && n == 0);

    /* Several queries: each source is its own expression, trimmed. */
    CHECK_INT(dds_query_compile_all("  avg:a{x:1,y:2} ,\n top(avg:b{*} by {h}, 5, 'max', 'desc')  ",
                                    &o, &q, &n, &e),
              DDSTREAM_OK);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_STR(q[0].source, "avg:a{x:1,y:2}");
        CHECK_STR(q[1].source, "top(avg:b{*} by {h}, 5, 'max', 'desc')");
        CHECK_INT(q[0].subquery_count, 4);
        CHECK_INT(q[1].subquery_count, 1);
        CHECK_INT(q[1].grouped, 1);
        CHECK_CONTAINS(q[1].value_reason, "series-selecting");
    }
    dds_compiled_queries_free(q, n);

    /* Value reasons, one per cause. */
    struct {
        const char *text;
        const char *reason;
    } reasons[] = {{"p99:x{*}", "percentile"},
                   {"count:dist.latency{*}", "count: on a distribution"},
                   {"outliers(avg:x{*} by {h}, 'dbscan', 3)", "series-selecting"},
                   {"avg:x{*}.rollup(max)", "own .rollup()"}};
    dds_query_options od = {60, 0, dists, 2};
    for (size_t i = 0; i < 4; i++) {
        CHECK_INT(dds_query_compile_all(reasons[i].text, &od, &q, &n, &e), DDSTREAM_OK);
        if (q) CHECK_CONTAINS(q[0].value_reason, reasons[i].reason);
        dds_compiled_queries_free(q, n);
    }

    /* Canonical spelling of a whole list. */
    char *canon = NULL;
    CHECK_INT(dds_query_canonical(" AVG:a{ x:1 }BY{ h } , ABS( (avg:b{*}) )*2", &canon, &e),
              DDSTREAM_OK);
    if (canon) CHECK_STR(canon, "avg:a{x:1} by {h},abs(avg:b{*}) * 2");
    free(canon);
}

int main(void) {
    size_t rows = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < rows; i++) run_case(&cases[i], i);
    test_bounds();
    printf("test_query_lang: %zu table rows\n", rows);
    return check_report("test_query_lang");
}
