/* config.c — defaults, environment, and validation with messages that name the field and the rule. */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base_url.h"
#include "ca_store.h"
#include "error.h"
#include "follow.h"
#include "plan.h"
#include "strparse.h"
#include "text_sanitize.h"

/* The sites of shared/DATADOG.md; the API lives at https://api.<site>. */
static const char *const known_sites[] = {
    "datadoghq.com",     "us3.datadoghq.com", "us5.datadoghq.com",
    "datadoghq.eu",      "ap1.datadoghq.com", "ap2.datadoghq.com",
    "uk1.datadoghq.com", "ddog-gov.com",      "us2.ddog-gov.com",
};

/* Year 9999: beyond it epoch seconds stop being a plausible Datadog timestamp. */
#define DDS_MAX_EPOCH INT64_C(253402300799)

DDSTREAM_API void ddstream_config_init(ddstream_config *cfg) {
    if (!cfg) return;
    memset(cfg, 0, sizeof *cfg);
    cfg->struct_size = sizeof *cfg;
    cfg->granularity = 60;
    cfg->chunk_seconds = 0;
    cfg->enable_prefetch = 1;
    cfg->prefetch_chunks = 2;
    cfg->max_in_flight = 4;
    cfg->log_level = DDSTREAM_LOG_NONE;
    cfg->max_retries = 5;
    cfg->max_retry_wait_ms = 300000;
    cfg->connect_timeout_ms = 10000;
    cfg->request_timeout_ms = 120000;
    cfg->max_body_bytes = INT64_C(256) * 1024 * 1024;
    cfg->retry_backoff_ms = 500;
    cfg->low_speed_limit = 1;
    cfg->low_speed_time_ms = 30000;
    cfg->start_chunk = 0;
    cfg->resume_token = NULL;
}

/*
 * Where each layout of ddstream_config ends: 0.1.0's (the first published), then one more per
 * field appended since. Appending a field: insert offsetof(ddstream_config, new_field) before
 * sizeof, so that the layout before it stays accepted.
 */
static const size_t config_layout_ends[] = {
    offsetof(ddstream_config, max_chunks),     /* 0.1.0: up to request_gate_release */
    offsetof(ddstream_config, max_batch_rows), /* + max_chunks */
    offsetof(ddstream_config, queries),        /* + max_batch_rows */
    sizeof(ddstream_config),                   /* + queries .. max_request_uri_bytes, cache_*,
                                follow .. now_data, formulas .. api */
};

ddstream_status dds_config_read(const ddstream_config *cfg, ddstream_config *out,
                                ddstream_error *err) {
    if (!cfg) return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "config is NULL");
    size_t size = cfg->struct_size;
    int known = 0;
    for (size_t i = 0; i < sizeof config_layout_ends / sizeof config_layout_ends[0]; i++)
        if (size == config_layout_ends[i]) known = 1;
    if (!known)
        return dds_error_set(
            err, DDSTREAM_E_INVALID_ARGUMENT,
            "config.struct_size is %zu, which is not the size of any ddstream_config "
            "layout this library knows (%zu for ddstream 0.1.0 up to %zu for this "
            "version): initialise the config with ddstream_config_init()",
            size, config_layout_ends[0], sizeof(ddstream_config));
    ddstream_config_init(out);
    memcpy(out, cfg, size); /* the fields the caller knows; the rest keep their defaults */
    out->struct_size = sizeof *out;
    return DDSTREAM_OK;
}

static const char *nonempty_env(const char *name) {
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

static int site_known(const char *site) {
    for (size_t i = 0; i < sizeof known_sites / sizeof known_sites[0]; i++)
        if (strcmp(site, known_sites[i]) == 0) return 1;
    return 0;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

void dds_settings_free(dds_settings *s) {
    if (!s) return;
    dds_free_secret(s->api_key);
    dds_free_secret(s->app_key);
    free(s->site);
    free(s->base_url);
    free(s->query);
    free(s->ca_bundle);
    free(s->resume_token);
    free(s->cache_dir);
    dds_compiled_queries_free(s->queries, s->query_count);
    dds_pack_free(&s->pack);
    free(s->identity);
    dds_v2_settings_free(&s->v2);
    memset(s, 0, sizeof *s);
}

/* Bounds of the request budgets: beyond them a value is a mistake, not a tuning. */
#define MAX_SUBQUERIES_LIMIT 1000
#define MAX_URI_LIMIT        1000000

#define CONFIG_ERR(...) (dds_error_set(err, DDSTREAM_E_CONFIG, __VA_ARGS__))

static ddstream_status check_numbers(const ddstream_config *c, ddstream_error *err) {
    if (c->range_start < 0 || c->range_start > DDS_MAX_EPOCH)
        return CONFIG_ERR("range_start must be epoch seconds between 0 and %lld, got %lld",
                          (long long)DDS_MAX_EPOCH, (long long)c->range_start);
    /* follow: range_end 0 means "from range_start on", and any later end only bounds ddstream_plan */
    int open_end = c->follow && c->range_end == 0;
    if (c->settle_seconds < 0 || c->settle_seconds > INT64_C(31536000))
        return CONFIG_ERR(
            "settle_seconds must be between 0 (the default, 300) and 31536000, got %lld",
            (long long)c->settle_seconds);
    if (!open_end && (c->range_end < 0 || c->range_end > DDS_MAX_EPOCH))
        return CONFIG_ERR("range_end must be epoch seconds between 0 and %lld, got %lld",
                          (long long)DDS_MAX_EPOCH, (long long)c->range_end);
    if (!open_end && c->range_start >= c->range_end)
        return CONFIG_ERR("range_start (%lld) must be before range_end (%lld)",
                          (long long)c->range_start, (long long)c->range_end);
    if (c->granularity <= 0 || c->granularity > 31536000)
        return CONFIG_ERR("granularity must be between 1 and 31536000 seconds, got %lld",
                          (long long)c->granularity);
    if (c->chunk_seconds < 0)
        return CONFIG_ERR("chunk_seconds must be 0 (automatic) or positive, got %lld",
                          (long long)c->chunk_seconds);
    if (c->prefetch_chunks < 1 || c->prefetch_chunks > 64)
        return CONFIG_ERR("prefetch_chunks must be between 1 and 64, got %d",
                          (int)c->prefetch_chunks);
    if (c->max_in_flight < 1 || c->max_in_flight > 32)
        return CONFIG_ERR("max_in_flight must be between 1 and 32, got %d", (int)c->max_in_flight);
    if (c->log_level < DDSTREAM_LOG_NONE || c->log_level > DDSTREAM_LOG_DEBUG)
        return CONFIG_ERR("log_level must be between 0 (none) and 4 (debug), got %d",
                          (int)c->log_level);
    if (c->max_retries < 0 || c->max_retries > 100)
        return CONFIG_ERR("max_retries must be between 0 and 100, got %d", (int)c->max_retries);
    if (c->max_retry_wait_ms < 0)
        return CONFIG_ERR("max_retry_wait_ms must not be negative, got %lld",
                          (long long)c->max_retry_wait_ms);
    if (c->connect_timeout_ms <= 0)
        return CONFIG_ERR("connect_timeout_ms must be positive, got %lld",
                          (long long)c->connect_timeout_ms);
    if (c->request_timeout_ms <= 0)
        return CONFIG_ERR("request_timeout_ms must be positive, got %lld",
                          (long long)c->request_timeout_ms);
    if (c->max_body_bytes <= 0)
        return CONFIG_ERR("max_body_bytes must be positive, got %lld",
                          (long long)c->max_body_bytes);
    if (c->retry_backoff_ms < 1 || c->retry_backoff_ms > 3600000)
        return CONFIG_ERR("retry_backoff_ms must be between 1 and 3600000, got %lld",
                          (long long)c->retry_backoff_ms);
    if (c->low_speed_limit < 0)
        return CONFIG_ERR("low_speed_limit must be 0 (off) or positive bytes/s, got %lld",
                          (long long)c->low_speed_limit);
    if (c->low_speed_time_ms < 0 || c->low_speed_time_ms > INT64_C(86400000))
        return CONFIG_ERR("low_speed_time_ms must be between 0 and 86400000, got %lld",
                          (long long)c->low_speed_time_ms);
    if (c->start_chunk < 0)
        return CONFIG_ERR("start_chunk must not be negative, got %lld", (long long)c->start_chunk);
    if (c->max_chunks < 0)
        return CONFIG_ERR("max_chunks must be 0 (the default, %lld) or positive, got %lld",
                          (long long)DDS_DEFAULT_MAX_CHUNKS, (long long)c->max_chunks);
    if (c->max_batch_rows < 0)
        return CONFIG_ERR("max_batch_rows must be 0 (the default, %lld) or positive, got %lld",
                          (long long)DDS_DEFAULT_MAX_BATCH_ROWS, (long long)c->max_batch_rows);
    if (c->cache_dir && !*c->cache_dir)
        return CONFIG_ERR("cache_dir is an empty path (NULL turns the cache off)");
    if (c->cache_max_bytes < 0)
        return CONFIG_ERR("cache_max_bytes must be 0 (the default, 1 GiB) or positive, got %lld",
                          (long long)c->cache_max_bytes);
    if (c->statistics & ~(uint32_t)0xF)
        return CONFIG_ERR(
            "statistics must be a mask of DDSTREAM_STAT_AVG, _MIN, _MAX and _SUM "
            "(1, 2, 4, 8; 0 for all four), got %lu",
            (unsigned long)c->statistics);
    if (c->max_subqueries_per_request < 0 || c->max_subqueries_per_request > MAX_SUBQUERIES_LIMIT)
        return CONFIG_ERR(
            "max_subqueries_per_request must be 0 (the default, %d) or between 1 "
            "and %d, got %d",
            DDS_DEFAULT_MAX_SUBQUERIES, MAX_SUBQUERIES_LIMIT, (int)c->max_subqueries_per_request);
    if (c->max_request_uri_bytes < 0 || c->max_request_uri_bytes > MAX_URI_LIMIT)
        return CONFIG_ERR(
            "max_request_uri_bytes must be 0 (the default, %d) or between 1 and %d, "
            "got %lld",
            DDS_DEFAULT_MAX_URI_BYTES, MAX_URI_LIMIT, (long long)c->max_request_uri_bytes);
    return DDSTREAM_OK;
}

/* A plan is computed, never stored, so its size costs nothing here; but every chunk is a request
 * against a rate limit of about 1600 an hour, and a plan of billions of chunks (1 s chunks over
 * years) is a mistake to refuse before anything starts, saying what to change. */
static ddstream_status check_plan_size(const ddstream_config *c, ddstream_error *err) {
    if (c->follow) return DDSTREAM_OK; /* open-ended: its history is bounded at open (stream.c) */
    dds_plan p;
    ddstream_status st =
        dds_plan_make(c->range_start, c->range_end, c->granularity, c->chunk_seconds, &p, err);
    if (st != DDSTREAM_OK) return st;
    int64_t limit = c->max_chunks ? c->max_chunks : DDS_DEFAULT_MAX_CHUNKS;
    if ((uint64_t)p.count <= (uint64_t)limit) return DDSTREAM_OK;
    return CONFIG_ERR(
        "the plan has %llu chunks (one request each), more than max_chunks (%lld): "
        "use a larger chunk_seconds (now %lld s per chunk) or granularity (now %lld s), "
        "a shorter range, or raise max_chunks",
        (unsigned long long)p.count, (long long)limit, (long long)p.step,
        (long long)c->granularity);
}

static ddstream_status check_key(const char *key, const char *field, const char *env,
                                 ddstream_error *err) {
    if (!key || dds_str_is_blank(key))
        return CONFIG_ERR("%s is missing: set it in the config or in the environment variable %s",
                          field, env);
    /* A key goes into an HTTP header: a newline would let it inject other headers. */
    if (dds_str_has_control_chars(key)) return CONFIG_ERR("%s contains control characters", field);
    if (strlen(key) > 512) return CONFIG_ERR("%s is longer than 512 characters", field);
    return DDSTREAM_OK;
}

/* Most queries one stream takes: far beyond a dashboard's worth, small enough that a typo in a
 * generated list is caught before thousands of requests a chunk. */
#define MAX_QUERIES 10000

static char *join_sources(const dds_settings *out, const char *sep) {
    size_t len = 1;
    for (size_t i = 0; i < out->query_count; i++)
        len += strlen(out->queries[i].source) + strlen(sep);
    char *s = malloc(len);
    if (!s) return NULL;
    s[0] = 0;
    for (size_t i = 0; i < out->query_count; i++) {
        if (i) strcat(s, sep);
        strcat(s, out->queries[i].source);
    }
    return s;
}

/* What a resume token binds. One `query` with the default options: the query itself, so that
 * tokens made before several queries existed still resume. Otherwise every query, the statistics
 * and the distribution metrics (they change the batches); not the budgets (they do not). */
static char *make_identity(const ddstream_config *c, const dds_settings *out) {
    if (!out->with_query && out->statistics == 0xFu && c->distribution_metric_count == 0)
        return strdup(out->query);
    char *queries = join_sources(out, "\x1f");
    if (!queries) return NULL;
    size_t len = strlen(queries) + 64;
    for (size_t i = 0; i < c->distribution_metric_count; i++)
        len += strlen(c->distribution_metrics[i]) + 1;
    char *id = malloc(len);
    if (id) {
        int n = snprintf(id, len,
                         "queries\x1e"
                         "%s\x1e"
                         "statistics=%lu\x1e"
                         "distributions=",
                         queries, (unsigned long)out->statistics);
        for (size_t i = 0; n > 0 && i < c->distribution_metric_count; i++) {
            if (i) strcat(id, "\x1f");
            strcat(id, c->distribution_metrics[i]);
        }
    }
    free(queries);
    return id;
}

/* The parser's message quotes the text around the error: a key pasted into a query would be
 * quoted too, so the keys are scrubbed from it like from every other message. */
static ddstream_status compile_error(ddstream_error *err, ddstream_status st, const char *label,
                                     const dds_query_error *qe, const ddstream_config *c) {
    if (st == DDSTREAM_E_NOMEM) return dds_error_set(err, st, "out of memory compiling %s", label);
    st = CONFIG_ERR("%s: %s", label, qe->message);
    if (err) dds_redact_keys(err->message, c->api_key, c->app_key);
    return st;
}

/* query or queries (exactly one), compiled into out->queries with the options; the requests of a
 * chunk packed. On failure the caller frees out. */
static ddstream_status compile_queries(const ddstream_config *c, dds_settings *out,
                                       ddstream_error *err) {
    if (c->query && c->queries)
        return CONFIG_ERR(
            "query and queries are both set: give one query as query, or several "
            "as queries");
    if (!c->queries && c->query_count)
        return CONFIG_ERR("queries is NULL but query_count is %zu", c->query_count);
    if (c->distribution_metric_count && !c->distribution_metrics)
        return CONFIG_ERR("distribution_metrics is NULL but distribution_metric_count is %zu",
                          c->distribution_metric_count);
    for (size_t i = 0; i < c->distribution_metric_count; i++) {
        const char *m = c->distribution_metrics[i];
        if (!m || dds_str_is_blank(m) || dds_str_has_control_chars(m) || strlen(m) > 200)
            return CONFIG_ERR(
                "distribution_metrics[%zu] is not a metric name (empty, over 200 "
                "characters or with control characters)",
                i);
    }
    dds_query_options opt = {c->granularity, c->statistics, c->distribution_metrics,
                             c->distribution_metric_count};
    dds_query_error qe;
    memset(&qe, 0, sizeof qe);
    ddstream_status st;
    if (c->queries) {
        if (c->query_count == 0 || c->query_count > MAX_QUERIES)
            return CONFIG_ERR("query_count must be between 1 and %d when queries is set, got %zu",
                              MAX_QUERIES, c->query_count);
        out->queries = calloc(c->query_count, sizeof *out->queries);
        if (!out->queries) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
        for (size_t i = 0; i < c->query_count; i++) {
            char label[48];
            snprintf(label, sizeof label, "queries[%zu]", i);
            const char *text = c->queries[i];
            if (!text || dds_str_is_blank(text))
                return CONFIG_ERR(
                    "%s is empty: set a metric query such as "
                    "'avg:system.cpu.user{*}'",
                    label);
            dds_compiled_query *one = NULL;
            size_t n = 0;
            st = dds_query_compile_all(text, &opt, &one, &n, &qe);
            if (st != DDSTREAM_OK) return compile_error(err, st, label, &qe, c);
            if (n != 1) {
                dds_compiled_queries_free(one, n);
                return CONFIG_ERR(
                    "%s holds %zu queries (a top-level ',' separates queries): give "
                    "each query its own item",
                    label, n);
            }
            out->queries[i] = one[0];
            out->query_count = i + 1;
            free(one); /* its contents now belong to out->queries[i] */
        }
        out->with_query = 1;
    } else {
        if (!c->query || dds_str_is_blank(c->query))
            return CONFIG_ERR(
                "query is empty: set a metric query such as "
                "'avg:system.cpu.user{*}' (or several as queries)");
        st = dds_query_compile_all(c->query, &opt, &out->queries, &out->query_count, &qe);
        if (st != DDSTREAM_OK) return compile_error(err, st, "query", &qe, c);
        out->with_query = out->query_count > 1;
    }
    out->grouped = out->query_count > 1;
    for (size_t i = 0; i < out->query_count; i++) {
        if (out->queries[i].grouped) out->grouped = 1;
        if (out->queries[i].value_only) out->with_value = 1;
    }
    out->statistics = c->statistics ? c->statistics : 0xFu;
    out->max_subqueries_per_request =
        c->max_subqueries_per_request ? c->max_subqueries_per_request : DDS_DEFAULT_MAX_SUBQUERIES;
    out->max_request_uri_bytes =
        c->max_request_uri_bytes ? c->max_request_uri_bytes : DDS_DEFAULT_MAX_URI_BYTES;
    size_t bad_query = 0, bad_bytes = 0;
    st = dds_pack_requests(out->queries, out->query_count, out->max_subqueries_per_request,
                           out->max_request_uri_bytes, c->range_end - 1, &out->pack, &bad_query,
                           &bad_bytes);
    if (st == DDSTREAM_E_CONFIG) {
        char label[48];
        if (c->queries) snprintf(label, sizeof label, "queries[%zu]", bad_query);
        else if (out->query_count > 1)
            snprintf(label, sizeof label, "query (its query %zu)", bad_query);
        else snprintf(label, sizeof label, "query");
        return CONFIG_ERR(
            "%s: one of its sub-queries alone makes a request URI of %zu bytes, "
            "more than max_request_uri_bytes (%lld): shorten the query or raise "
            "max_request_uri_bytes",
            label, bad_bytes, (long long)out->max_request_uri_bytes);
    }
    if (st != DDSTREAM_OK) return dds_error_set(err, st, "out of memory packing the requests");
    out->query = c->query ? strdup(c->query) : join_sources(out, ", ");
    if (!out->query) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
    out->identity = make_identity(c, out);
    if (!out->identity) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
    return DDSTREAM_OK;
}

/* The v2 options (v2_request.h): formulas, query names, api. With v2, batches have the query
 * (formula) and value columns, and a resume token binds the names and formulas too. */
static ddstream_status load_v2(const ddstream_config *c, dds_settings *out, ddstream_error *err) {
    const char *const *texts = c->queries ? c->queries : &c->query;
    size_t nq = c->queries ? c->query_count : 1;
    if (c->query_names && !c->queries)
        return CONFIG_ERR("query_names name the queries of queries: set queries, not query");
    int32_t grouped[MAX_QUERIES];
    for (size_t k = 0; k < nq && k < out->query_count && k < MAX_QUERIES; k++)
        grouped[k] = out->queries[k].grouped;
    char msg[sizeof err->message];
    int wants_v2 = c->api == DDSTREAM_API_V2 || c->formula_count > 0 || c->formulas != NULL;
    if (wants_v2 && nq != out->query_count)
        return CONFIG_ERR(
            "query holds %zu queries: with formulas or api v2 give them as queries, "
            "each with its name in query_names",
            out->query_count);
    ddstream_status st =
        dds_v2_settings_load(c->api, texts, grouped, nq, c->query_names, c->formulas,
                             c->formula_count, c->statistics, &out->v2, msg, sizeof msg);
    if (st == DDSTREAM_E_NOMEM) return dds_error_set(err, st, "%s", msg);
    if (st != DDSTREAM_OK) return CONFIG_ERR("%s", msg);
    if (!out->v2.enabled) return DDSTREAM_OK;
    out->with_query = 1;
    out->with_value = 1;
    out->grouped = out->v2.set_count > 1;
    size_t len = 16;
    for (size_t k = 0; k < out->v2.set_count; k++) {
        out->grouped |= out->v2.grouped[k];
        len += strlen(out->v2.labels[k]) + 1;
    }
    for (size_t k = 0; k < out->v2.query_count; k++)
        len += strlen(out->v2.queries[k].name) + strlen(out->v2.queries[k].query) + 2;
    char *id = malloc(len);
    if (!id) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
    strcpy(id, "v2\x1e");
    for (size_t k = 0; k < out->v2.query_count; k++) {
        strcat(id, out->v2.queries[k].name);
        strcat(id, "=");
        strcat(id, out->v2.queries[k].query);
        strcat(id, "\x1f");
    }
    strcat(id, "\x1e");
    for (size_t k = 0; k < out->v2.formula_count; k++) {
        strcat(id, out->v2.formulas[k]);
        strcat(id, "\x1f");
    }
    free(out->identity);
    out->identity = id;
    return DDSTREAM_OK;
}

ddstream_status dds_settings_load(const ddstream_config *cfg_in, dds_settings *out,
                                  ddstream_error *err) {
    if (!out) return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "settings output is NULL");
    memset(out, 0, sizeof *out);
    if (!cfg_in) return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "config is NULL");
    ddstream_config full;
    ddstream_status st = dds_config_read(cfg_in, &full, err);
    if (st != DDSTREAM_OK) return st;
    const ddstream_config *c = &full;
    if ((st = check_numbers(c, err)) != DDSTREAM_OK) return st;
    if ((st = check_plan_size(c, err)) != DDSTREAM_OK) return st;
    if ((st = compile_queries(c, out, err)) != DDSTREAM_OK) goto fail;
    if ((st = load_v2(c, out, err)) != DDSTREAM_OK) goto fail;

    const char *api_key = c->api_key ? c->api_key : nonempty_env("DD_API_KEY");
    const char *app_key = c->app_key ? c->app_key : nonempty_env("DD_APP_KEY");
    if ((st = check_key(api_key, "api_key", "DD_API_KEY", err)) != DDSTREAM_OK) goto fail;
    if ((st = check_key(app_key, "app_key", "DD_APP_KEY", err)) != DDSTREAM_OK) goto fail;

    const char *site = c->site ? c->site : nonempty_env("DD_SITE");
    if (!site) site = "datadoghq.com";
    if (!site_known(site)) {
        st = CONFIG_ERR(
            "site '%.100s' is not a Datadog site; expected one of datadoghq.com, "
            "us3.datadoghq.com, us5.datadoghq.com, datadoghq.eu, ap1.datadoghq.com, "
            "ap2.datadoghq.com, uk1.datadoghq.com, ddog-gov.com, us2.ddog-gov.com "
            "(or set base_url)",
            site);
        goto fail;
    }

    if (c->ca_bundle && !*c->ca_bundle) {
        st = CONFIG_ERR("ca_bundle is an empty path");
        goto fail;
    }
    if (c->resume_token &&
        (strlen(c->resume_token) > 63 || dds_str_has_control_chars(c->resume_token))) {
        st = CONFIG_ERR("resume_token is not a token made by ddstream_resume_token()");
        goto fail;
    }

    const char *base = c->base_url ? c->base_url : nonempty_env("DDSTREAM_BASE_URL");
    char default_base[128];
    if (!base) {
        snprintf(default_base, sizeof default_base, "https://api.%s", site);
        base = default_base;
    }
    char *checked_base = NULL;
    if ((st = dds_base_url_check(base, c->allow_insecure_http != 0, &checked_base, err)) !=
        DDSTREAM_OK)
        goto fail;

    out->api_key = strdup(api_key);
    out->app_key = strdup(app_key);
    out->site = strdup(site);
    out->base_url = checked_base; /* libcurl's rendering of the checked URL, no trailing '/' */
    /* Unset: $SSL_CERT_FILE, libcurl's own store, or the distribution's (ca_store.h). */
    out->ca_bundle = c->ca_bundle ? strdup(c->ca_bundle) : dds_ca_store_default();
    out->resume_token = dup_or_null(c->resume_token);
    out->cache_dir = dup_or_null(c->cache_dir);
    if (!out->api_key || !out->app_key || !out->site || !out->base_url || !out->query ||
        (c->ca_bundle && !out->ca_bundle) || (c->resume_token && !out->resume_token) ||
        (c->cache_dir && !out->cache_dir)) {
        dds_settings_free(out);
        return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory copying the config");
    }
    out->range_start = c->range_start;
    out->range_end = c->range_end;
    out->granularity = c->granularity;
    out->chunk_seconds = c->chunk_seconds;
    out->enable_prefetch = c->enable_prefetch != 0;
    out->prefetch_chunks = c->prefetch_chunks;
    out->max_in_flight = c->max_in_flight;
    out->log_level = c->log_level;
    out->log_to_queue = c->log_to_queue != 0;
    out->log_fn = c->log_fn;
    out->log_user = c->log_user;
    out->max_retries = c->max_retries;
    out->allow_insecure_http = c->allow_insecure_http != 0;
    out->max_retry_wait_ms = c->max_retry_wait_ms;
    out->connect_timeout_ms = c->connect_timeout_ms;
    out->request_timeout_ms = c->request_timeout_ms;
    out->max_body_bytes = c->max_body_bytes;
    out->retry_backoff_ms = c->retry_backoff_ms;
    out->low_speed_limit = c->low_speed_limit;
    out->low_speed_time_ms = c->low_speed_time_ms;
    out->start_chunk = c->start_chunk;
    out->request_gate = c->request_gate;
    out->request_gate_data = c->request_gate_data;
    out->request_gate_release = c->request_gate_release;
    out->max_chunks = c->max_chunks ? c->max_chunks : DDS_DEFAULT_MAX_CHUNKS;
    out->max_batch_rows = c->max_batch_rows ? c->max_batch_rows : DDS_DEFAULT_MAX_BATCH_ROWS;
    out->cache_max_bytes = c->cache_max_bytes ? c->cache_max_bytes : DDS_DEFAULT_CACHE_MAX_BYTES;
    out->follow = c->follow != 0;
    out->settle_s = c->settle_seconds ? c->settle_seconds : DDS_DEFAULT_SETTLE_S;
    out->now_fn = c->now_fn;
    out->now_data = c->now_data;
    return DDSTREAM_OK;
fail:
    dds_settings_free(out);
    return st;
}

DDSTREAM_API ddstream_status ddstream_config_validate(const ddstream_config *cfg,
                                                      ddstream_error *err) {
    dds_settings s;
    ddstream_status st = dds_settings_load(cfg, &s, err);
    if (st == DDSTREAM_OK) dds_settings_free(&s);
    return st;
}
