/* validate.c — check credentials (and the query) against the server with the fewest requests:
 * /api/v1/validate for the API key, then one single-bucket query for the application key, which
 * no endpoint checks on its own (shared/DATADOG.md). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancel.h"
#include "config.h"
#include "ddstream.h"
#include "error.h"
#include "fetch.h"
#include "log.h"
#include "parse.h"
#include "query.h"

static ddstream_status check_api_key(dds_http *http, ddstream_error *err) {
    dds_body body;
    ddstream_status st = dds_http_get(http, "/api/v1/validate", 0, &body, err);
    if (st != DDSTREAM_OK) return st;
    int valid = 0;
    char msg[300];
    st = dds_parse_validate_response(body.data, body.len, &valid, msg, sizeof msg);
    dds_body_free(&body);
    if (st != DDSTREAM_OK) {
        dds_http_scrub(http, msg); /* the message may quote the body, and the body a key */
        return dds_error_set(err, st, "/api/v1/validate: %s", msg);
    }
    if (!valid) return dds_error_set(err, DDSTREAM_E_AUTH, "Datadog says the API key is not valid");
    return DDSTREAM_OK;
}

static ddstream_status check_app_key_and_query(dds_http *http, const dds_settings *s,
                                               ddstream_error *err) {
    char *q = dds_rollup_query(s->query, s->granularity);
    char *escaped = q ? dds_http_escape(http, q) : NULL;
    free(q);
    if (!escaped) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
    /* One bucket at the start of the range: the cheapest query that exercises both keys. */
    int64_t g = s->granularity;
    int64_t from = ((s->range_start + g - 1) / g) * g;
    size_t cap = strlen(escaped) + 96;
    char *path = malloc(cap);
    if (!path) {
        free(escaped);
        return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
    }
    snprintf(path, cap, "/api/v1/query?from=%" PRId64 "&to=%" PRId64 "&query=%s", from, from + g - 1,
             escaped);
    free(escaped);
    dds_body body;
    ddstream_status st = dds_http_get(http, path, 1, &body, err);
    free(path);
    if (st != DDSTREAM_OK) return st;
    dds_response r = {0};
    char msg[300];
    st = dds_parse_query_response(body.data, body.len, &r, msg, sizeof msg);
    dds_body_free(&body);
    dds_response_free(&r);
    if (st != DDSTREAM_OK) {
        dds_http_scrub(http, msg);
        return dds_error_set(err, st, "%s", msg);
    }
    return DDSTREAM_OK;
}

DDSTREAM_API ddstream_status ddstream_validate(const ddstream_config *cfg, ddstream_error *err) {
    dds_settings s;
    ddstream_status st = dds_settings_load(cfg, &s, err);
    if (st != DDSTREAM_OK) return st;
    dds_log log;
    dds_log_init(&log, s.log_level, s.log_fn, s.log_user, 0, s.api_key, s.app_key);
    if (s.log_to_queue && !s.log_fn) log.level = DDSTREAM_LOG_NONE; /* no stream to poll from */
    dds_cancel never;
    if (dds_cancel_init(&never) != 0) {
        dds_log_destroy(&log);
        dds_settings_free(&s);
        return dds_error_set(err, DDSTREAM_E_INTERNAL, "could not create a lock");
    }
    dds_http *http = dds_http_new(&s, &log, &never, err);
    if (!http) {
        st = err ? err->status : DDSTREAM_E_NOMEM;
    } else {
        st = check_api_key(http, err);
        if (st == DDSTREAM_OK) st = check_app_key_and_query(http, &s, err);
        dds_http_free(http);
    }
    if (st != DDSTREAM_OK && err) {
        dds_redact(err->message, s.api_key);
        dds_redact(err->message, s.app_key);
    }
    dds_cancel_destroy(&never);
    dds_log_destroy(&log);
    dds_settings_free(&s);
    return st;
}
