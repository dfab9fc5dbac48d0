/* config.h — ddstream_config checked and copied into settings the library owns. */
#ifndef DDSTREAM_CONFIG_H
#define DDSTREAM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "ddstream.h"
#include "query_lang.h"
#include "request_pack.h"

/* Datadog's cap on points per series in one answer (shared/DATADOG.md). */
#define DDS_MAX_POINTS 1500

/* Default of config.max_chunks: about 26 days of requests at Datadog's published default rate
 * limit for metric queries (1600 requests/hour/org). A plan longer than that is almost always a
 * mistake (1 s chunks over years), and refusing it up front beats a run that cannot finish. */
#define DDS_DEFAULT_MAX_CHUNKS INT64_C(1000000)

/* Default of config.max_batch_rows: 10 million rows of ~44 bytes (timestamp, 4 rollups, series
 * index) is ~440 MB, under twice the default max_body_bytes (256 MiB). A full 1500-bucket chunk
 * of 6,666 series fits; a small answer naming 20,000 empty series (30 million rows, 1.3 GB) not. */
#define DDS_DEFAULT_MAX_BATCH_ROWS INT64_C(10000000)

/* A validated, owned copy of a ddstream_config with every default resolved. */
typedef struct dds_settings {
    char *api_key;
    char *app_key;
    char *site;
    char *base_url; /* no trailing '/' */
    char *query;
    char *ca_bundle; /* NULL: system store */
    int64_t range_start, range_end, granularity, chunk_seconds;
    int32_t enable_prefetch, prefetch_chunks, max_in_flight, log_level, log_to_queue;
    ddstream_log_fn log_fn;
    void *log_user;
    int32_t max_retries, allow_insecure_http;
    int64_t max_retry_wait_ms, connect_timeout_ms, request_timeout_ms, max_body_bytes;
    int64_t retry_backoff_ms, low_speed_limit, low_speed_time_ms;
    int64_t start_chunk; /* checked against the plan by ddstream_open */
    char *resume_token;  /* NULL when not set; parsed and checked by ddstream_open */
    ddstream_request_gate_fn request_gate; /* NULL: none (borrowed, like log_fn) */
    void *request_gate_data;
    void (*request_gate_release)(void *request_gate_data);
    int grouped; /* batches have series: a query has a top-level "by {...}" clause, or the
                    stream has several queries */
    dds_compiled_query *queries; /* the stream's queries, compiled (query_lang.h) */
    size_t query_count;
    int with_query; /* batches carry the query column: config.queries set, or several queries */
    int with_value; /* batches carry the value column: some query is value-only */
    uint32_t statistics;                /* config.statistics, 0 resolved to all four */
    int32_t max_subqueries_per_request; /* 0 resolved to DDS_DEFAULT_MAX_SUBQUERIES */
    int64_t max_request_uri_bytes;      /* 0 resolved to DDS_DEFAULT_MAX_URI_BYTES */
    dds_pack pack;                      /* the requests of every chunk (request_pack.h) */
    char *identity;     /* what a resume token binds: the query (for one `query` with the default
                       options, exactly as before), else the query list and the options */
    int64_t max_chunks; /* config.max_chunks, 0 resolved to DDS_DEFAULT_MAX_CHUNKS */
    int64_t max_batch_rows; /* config.max_batch_rows, 0 resolved to DDS_DEFAULT_MAX_BATCH_ROWS */
} dds_settings;

/*
 * The caller's config at this library's layout. A caller built against an older ddstream passes
 * a smaller struct (struct_size = its sizeof(ddstream_config)): accepted when it ends where one of
 * the published layouts ended (ddstream 0.1.0's, through request_gate_release, or one with a later
 * appended field), and the missing tail reads as ddstream_config_init's defaults. A size that is
 * larger than this library's, smaller than 0.1.0's, or inside a field is DDSTREAM_E_INVALID_ARGUMENT,
 * as is a NULL cfg. *out is a plain copy: its strings still belong to the caller.
 */
DDSTREAM_NODISCARD ddstream_status dds_config_read(const ddstream_config *cfg, ddstream_config *out,
                                                   ddstream_error *err);

/*
 * Check cfg and resolve defaults (environment DD_API_KEY, DD_APP_KEY, DD_SITE, DDSTREAM_BASE_URL).
 * No network I/O. On success *out owns copies (free with dds_settings_free); on failure *out is
 * zeroed and err names the field and the rule (DDSTREAM_E_CONFIG or E_INVALID_ARGUMENT).
 */
DDSTREAM_NODISCARD ddstream_status dds_settings_load(const ddstream_config *cfg, dds_settings *out,
                                                     ddstream_error *err);
void dds_settings_free(dds_settings *s);

#endif
