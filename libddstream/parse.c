/*
 * parse.c — Datadog response bodies to plain C data: the envelope and series of /api/v1/query
 * (pointlist.c reads large pointlists directly) and the answer of /api/v1/validate.
 *
 * With error_body.c and json_tree.c, the only files that include cJSON.h: the rest of the library
 * never sees a JSON tree, so the JSON parser can be replaced without touching anything else. Every body is parsed once into a tree and
 * the tree is walked once; nothing here looks an element up by position or counts an array twice
 * per element, so the work stays linear in the body size.
 *
 * cJSON keeps a process-wide "last error" that every parse writes. Nothing here reads it (the
 * error position comes back through return_parse_end), so its value never matters to us.
 */
#include "parse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cJSON.h"
#include "error.h"
#include "error_body.h"
#include "error_page.h"
#include "json_check.h"
#include "json_tree.h"
#include "pointlist.h"
#include "strparse.h"
#include "text_sanitize.h"
#include "timestamp_limit.h"

/* A request carries four sub-queries; anything near this bound is garbage, not a real index. */
#define QUERY_INDEX_LIMIT 1000000
/* Bytes of the body quoted after a JSON syntax error. */
#define EXCERPT_LIMIT 24

/* ---------------------------------------------------------------------------------------------
 * JSON entry point shared by every body we parse.
 */

/*
 * Parse body as one JSON value with nothing but whitespace after it. On failure explain where and
 * how, and quote non-JSON bodies (HTML pages from proxies, plain text) via dds_parse_error_body.
 */
static ddstream_status parse_json(const char *body, size_t len, cJSON **out, char *msg,
                                  size_t cap) {
    *out = NULL;
    size_t start = dds_json_skip_bom_ws(body, len);
    if (start == len) {
        dds_set_msg(msg, cap, "expected a JSON object, got an empty body");
        return DDSTREAM_E_PROTOCOL;
    }
    if (body[start] != '{' && body[start] != '[') {
        char said[DDS_TEXT_LIMIT + 1];
        dds_parse_error_body(body, len, said, sizeof said);
        dds_set_msg(msg, cap, "expected a JSON object, got %s: %s",
                    dds_looks_like_html(body + start, len - start) ? "HTML" : "text", said);
        return DDSTREAM_E_PROTOCOL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (root == NULL) {
        /* json_check tells a body that stops early from one with a wrong byte (and where):
         * cJSON's position cannot, as it gives up on the last byte in both cases. */
        dds_json_check check;
        dds_json_shape shape = dds_json_check_body(body, len, &check);
        size_t pos = (end != NULL && end >= body && end <= body + len) ? (size_t)(end - body) : 0;
        if (shape == DDS_JSON_MALFORMED) pos = check.where;
        if (shape == DDS_JSON_TRUNCATED || (shape != DDS_JSON_MALFORMED && pos + 1 >= len)) {
            dds_set_msg(msg, cap, "invalid JSON: the body ends early (truncated? %zu bytes)", len);
        } else {
            char near[EXCERPT_LIMIT * 4 + 1];
            dds_text t;
            dds_text_init(&t, near, sizeof near);
            size_t n = len - pos < EXCERPT_LIMIT ? len - pos : EXCERPT_LIMIT;
            dds_text_put(&t, body + pos, n);
            dds_text_finish(&t);
            dds_set_msg(msg, cap, "invalid JSON at byte %zu of %zu, near \"%s\"", pos, len, near);
        }
        return DDSTREAM_E_PROTOCOL;
    }
    size_t rest = dds_skip_json_ws(body, len, (size_t)(end - body));
    if (rest != len) {
        cJSON_Delete(root);
        dds_set_msg(msg, cap, "invalid JSON: unexpected data after the value at byte %zu of %zu",
                    rest, len);
        return DDSTREAM_E_PROTOCOL;
    }
    /* cJSON's strings are C strings: U+0000 would end one early, and "host:a\u0000x" would read
     * as "host:a", the same tag as "host:a\u0000y" (two series merged). Refused, wherever it is. */
    dds_json_check check;
    const char *nul_at = dds_json_nul_string_path(body, len, &check);
    if (nul_at != NULL) {
        cJSON_Delete(root);
        dds_set_msg(msg, cap,
                    "%s: a string holds U+0000 (NUL), which ddstream cannot keep apart from "
                    "the text before it",
                    nul_at);
        return DDSTREAM_E_PROTOCOL;
    }
    *out = root;
    return DDSTREAM_OK;
}

/* ---------------------------------------------------------------------------------------------
 * GET /api/v1/query.
 */

void dds_response_free(dds_response *r) {
    if (r == NULL) return;
    for (size_t i = 0; i < r->count; i++) {
        free(r->series[i].tags);
        if (r->series[i].in_block) continue;
        free(r->series[i].ts_ms);
        free(r->series[i].values);
    }
    free(r->series);
    for (size_t k = 0; k < r->block_count; k++) free(r->blocks[k]);
    free(r->blocks);
    memset(r, 0, sizeof *r);
}

/* Give block (of memory that some of r's series' points live in) to r. */
static ddstream_status adopt_block(dds_response *r, void *block) {
    void **grown = realloc(r->blocks, (r->block_count + 1) * sizeof *grown);
    if (grown == NULL) return DDSTREAM_E_NOMEM;
    r->blocks = grown;
    r->blocks[r->block_count++] = block;
    return DDSTREAM_OK;
}

ddstream_status dds_response_append(dds_response *into, dds_response *from) {
    if (into == NULL || from == NULL || into == from) return DDSTREAM_E_INTERNAL;
    if (from->count == 0) {
        dds_response_free(from);
        return DDSTREAM_OK;
    }
    if (from->count > SIZE_MAX / sizeof(dds_series) - into->count) return DDSTREAM_E_NOMEM;
    if (from->block_count > 0) {
        /* Room for from's blocks first: once the series have moved, nothing may fail. */
        void **grown =
            realloc(into->blocks, (into->block_count + from->block_count) * sizeof *grown);
        if (grown == NULL) return DDSTREAM_E_NOMEM;
        into->blocks = grown;
    }
    size_t need = into->count + from->count;
    if (need > into->capacity) {
        size_t cap = into->capacity * 2;
        if (cap < need || cap > SIZE_MAX / sizeof(dds_series)) cap = need;
        dds_series *grown = realloc(into->series, cap * sizeof *grown);
        if (grown == NULL) return DDSTREAM_E_NOMEM;
        into->series = grown;
        into->capacity = cap;
    }
    memcpy(into->series + into->count, from->series, from->count * sizeof *from->series);
    into->count = need;
    for (size_t k = 0; k < from->block_count; k++)
        into->blocks[into->block_count++] = from->blocks[k];
    free(from->blocks);
    free(from->series); /* the series' contents now belong to into */
    memset(from, 0, sizeof *from);
    return DDSTREAM_OK;
}

/* A number usable as an integer: finite, whole, within [lo, hi]. */
static int whole_in(double v, double lo, double hi) {
    return isfinite(v) && v >= lo && v <= hi && (double)(int64_t)v == v;
}

static ddstream_status parse_tags(const cJSON *tag_set, size_t si, char **out, char *msg,
                                  size_t cap) {
    if (tag_set == NULL) {
        dds_set_msg(msg, cap, "series[%zu].tag_set: missing", si);
        return DDSTREAM_E_PROTOCOL;
    }
    if (!cJSON_IsArray(tag_set)) {
        dds_set_msg(msg, cap, "series[%zu].tag_set: expected an array of strings, got %s", si,
                    dds_json_type_name(tag_set));
        return DDSTREAM_E_PROTOCOL;
    }
    size_t total = 1, j = 0;
    for (const cJSON *t = tag_set->child; t != NULL; t = t->next, j++) {
        if (!cJSON_IsString(t)) {
            dds_set_msg(msg, cap, "series[%zu].tag_set[%zu]: expected a string, got %s", si, j,
                        dds_json_type_name(t));
            return DDSTREAM_E_PROTOCOL;
        }
        size_t k = strlen(t->valuestring);
        if (!dds_utf8_valid(t->valuestring, k)) {
            /* Tags reach Python and Arrow as strings: both insist on UTF-8. */
            dds_set_msg(msg, cap, "series[%zu].tag_set[%zu]: not valid UTF-8", si, j);
            return DDSTREAM_E_PROTOCOL;
        }
        total += k + 1; /* cannot overflow: bounded by the body size */
    }
    char *joined = malloc(total);
    if (joined == NULL) {
        dds_set_msg(msg, cap, "out of memory for series[%zu].tag_set", si);
        return DDSTREAM_E_NOMEM;
    }
    size_t len = 0;
    for (const cJSON *t = tag_set->child; t != NULL; t = t->next) {
        size_t k = strlen(t->valuestring);
        if (len > 0) joined[len++] = ',';
        memcpy(joined + len, t->valuestring, k);
        len += k;
    }
    joined[len] = '\0';
    *out = joined;
    return DDSTREAM_OK;
}

static ddstream_status parse_points(const cJSON *pointlist, size_t si, dds_series *s, char *msg,
                                    size_t cap) {
    if (pointlist == NULL) {
        dds_set_msg(msg, cap, "series[%zu].pointlist: missing", si);
        return DDSTREAM_E_PROTOCOL;
    }
    if (!cJSON_IsArray(pointlist)) {
        dds_set_msg(msg, cap, "series[%zu].pointlist: expected an array, got %s", si,
                    dds_json_type_name(pointlist));
        return DDSTREAM_E_PROTOCOL;
    }
    size_t n = 0;
    for (const cJSON *p = pointlist->child; p != NULL; p = p->next) n++;
    if (n == 0) return DDSTREAM_OK;
    s->ts_ms = malloc(n * sizeof *s->ts_ms); /* n * 8 < the body size: cannot overflow */
    s->values = malloc(n * sizeof *s->values);
    if (s->ts_ms == NULL || s->values == NULL) {
        dds_set_msg(msg, cap, "out of memory for series[%zu].pointlist (%zu points)", si, n);
        return DDSTREAM_E_NOMEM;
    }
    size_t j = 0;
    for (const cJSON *p = pointlist->child; p != NULL; p = p->next, j++) {
        if (!cJSON_IsArray(p)) {
            dds_set_msg(msg, cap,
                        "series[%zu].pointlist[%zu]: expected an array [timestamp, value], got %s",
                        si, j, dds_json_type_name(p));
            return DDSTREAM_E_PROTOCOL;
        }
        const cJSON *ts = p->child;
        const cJSON *val = ts != NULL ? ts->next : NULL;
        if (ts == NULL || val == NULL || val->next != NULL) {
            size_t k = 0;
            for (const cJSON *e = p->child; e != NULL; e = e->next) k++;
            dds_set_msg(
                msg, cap,
                "series[%zu].pointlist[%zu]: expected 2 elements [timestamp, value], got %zu", si,
                j, k);
            return DDSTREAM_E_PROTOCOL;
        }
        if (!cJSON_IsNumber(ts)) {
            dds_set_msg(msg, cap, "series[%zu].pointlist[%zu][0]: expected a number, got %s", si, j,
                        dds_json_type_name(ts));
            return DDSTREAM_E_PROTOCOL;
        }
        double t = ts->valuedouble;
        if (!isfinite(t) || t < -DDS_TIME_LIMIT_MS || t > DDS_TIME_LIMIT_MS) {
            dds_set_msg(
                msg, cap,
                "series[%zu].pointlist[%zu][0]: timestamp %g ms is out of range (at most 1e15 "
                "from 1970)",
                si, j, t);
            return DDSTREAM_E_PROTOCOL;
        }
        if ((double)(int64_t)t != t) {
            dds_set_msg(msg, cap,
                        "series[%zu].pointlist[%zu][0]: timestamp %.3f is not a whole number of ms",
                        si, j, t);
            return DDSTREAM_E_PROTOCOL;
        }
        double v;
        if (cJSON_IsNull(val)) {
            v = NAN;
        } else if (cJSON_IsNumber(val)) {
            v = val->valuedouble;
            if (!isfinite(v)) {
                dds_set_msg(msg, cap,
                            "series[%zu].pointlist[%zu][1]: number out of range for a double", si,
                            j);
                return DDSTREAM_E_PROTOCOL;
            }
        } else {
            dds_set_msg(msg, cap,
                        "series[%zu].pointlist[%zu][1]: expected a number or null, got %s", si, j,
                        dds_json_type_name(val));
            return DDSTREAM_E_PROTOCOL;
        }
        s->ts_ms[j] = (int64_t)t;
        s->values[j] = v;
    }
    s->length = n;
    return DDSTREAM_OK;
}

static ddstream_status parse_series(const cJSON *obj, size_t si, dds_series *s,
                                    dds_fast_pointlist *fast, char *msg, size_t cap) {
    if (!cJSON_IsObject(obj)) {
        dds_set_msg(msg, cap, "series[%zu]: expected an object, got %s", si,
                    dds_json_type_name(obj));
        return DDSTREAM_E_PROTOCOL;
    }
    /* One pass over the members: a series object can be looked at once, whatever its key order. */
    const cJSON *query_index = NULL, *tag_set = NULL, *interval = NULL, *pointlist = NULL;
    for (const cJSON *c = obj->child; c != NULL; c = c->next) {
        if (c->string == NULL) continue;
        if (query_index == NULL && strcmp(c->string, "query_index") == 0) query_index = c;
        else if (tag_set == NULL && strcmp(c->string, "tag_set") == 0) tag_set = c;
        else if (interval == NULL && strcmp(c->string, "interval") == 0) interval = c;
        else if (pointlist == NULL && strcmp(c->string, "pointlist") == 0) pointlist = c;
    }

    if (query_index == NULL) {
        dds_set_msg(msg, cap, "series[%zu].query_index: missing", si);
        return DDSTREAM_E_PROTOCOL;
    }
    if (!cJSON_IsNumber(query_index)) {
        dds_set_msg(msg, cap, "series[%zu].query_index: expected a number, got %s", si,
                    dds_json_type_name(query_index));
        return DDSTREAM_E_PROTOCOL;
    }
    if (!whole_in(query_index->valuedouble, 0, QUERY_INDEX_LIMIT - 1)) {
        dds_set_msg(msg, cap, "series[%zu].query_index: expected an integer in 0..%d, got %g", si,
                    QUERY_INDEX_LIMIT - 1, query_index->valuedouble);
        return DDSTREAM_E_PROTOCOL;
    }
    s->query_index = (int32_t)query_index->valuedouble;

    if (interval == NULL || cJSON_IsNull(interval)) {
        s->interval = 0;
    } else if (!cJSON_IsNumber(interval)) {
        dds_set_msg(msg, cap, "series[%zu].interval: expected a number or null, got %s", si,
                    dds_json_type_name(interval));
        return DDSTREAM_E_PROTOCOL;
    } else if (!whole_in(interval->valuedouble, 0, DDS_TIME_LIMIT_S)) {
        dds_set_msg(msg, cap,
                    "series[%zu].interval: expected a whole number of seconds >= 0, got %g", si,
                    interval->valuedouble);
        return DDSTREAM_E_PROTOCOL;
    } else {
        s->interval = (int64_t)interval->valuedouble;
    }

    ddstream_status st = parse_tags(tag_set, si, &s->tags, msg, cap);
    if (st != DDSTREAM_OK) return st;
    if (fast != NULL) {
        /* Already read and checked by the fast path (pointlist.c); the envelope shows "[]". */
        s->length = fast->length;
        s->ts_ms = fast->ts_ms;
        s->values = fast->values;
        s->in_block = fast->in_slab; /* the slab becomes the response's block: see below */
        fast->ts_ms = NULL;
        fast->values = NULL;
        return DDSTREAM_OK;
    }
    return parse_points(pointlist, si, s, msg, cap);
}

/* Copy of a message string from the body, sanitised and bounded. */
static void body_text(const char *s, char *out, size_t cap) {
    dds_text t;
    dds_text_init(&t, out, cap);
    dds_text_puts(&t, s);
    dds_text_finish(&t);
}

/*
 * With fast: body is the envelope (pointlist.h) of original[0..original_len), whose fast items
 * hold the pointlists that the envelope shows as []. Should the envelope not parse (a document
 * the scanner accepted but cJSON does not), the original is parsed without the fast path, so
 * that the message and its byte positions are the general parser's.
 */
static ddstream_status parse_query(const char *body, size_t len, dds_fast_pointlists *fast,
                                   const char *original, size_t original_len, dds_response *out,
                                   char *msg, size_t msg_cap) {
    if (out == NULL || (body == NULL && len > 0)) {
        dds_set_msg(msg, msg_cap,
                    "internal: dds_parse_query_response called without a body or output");
        return DDSTREAM_E_INTERNAL;
    }
    memset(out, 0, sizeof *out);
    cJSON *root = NULL;
    ddstream_status st = parse_json(body, len, &root, msg, msg_cap);
    if (st != DDSTREAM_OK && fast != NULL)
        return parse_query(original, original_len, NULL, NULL, 0, out, msg, msg_cap);
    if (st != DDSTREAM_OK) return st;

    const cJSON *status = NULL, *error = NULL, *series = NULL;
    if (!cJSON_IsObject(root)) {
        dds_set_msg(msg, msg_cap, "expected a JSON object at the top level, got %s",
                    dds_json_type_name(root));
        st = DDSTREAM_E_PROTOCOL;
        goto done;
    }
    for (const cJSON *c = root->child; c != NULL; c = c->next) {
        if (c->string == NULL) continue;
        if (status == NULL && strcmp(c->string, "status") == 0) status = c;
        else if (error == NULL && strcmp(c->string, "error") == 0) error = c;
        else if (series == NULL && strcmp(c->string, "series") == 0) series = c;
    }

    if (status != NULL) {
        if (!cJSON_IsString(status)) {
            dds_set_msg(msg, msg_cap, "status: expected a string, got %s",
                        dds_json_type_name(status));
            st = DDSTREAM_E_PROTOCOL;
            goto done;
        }
        if (strcmp(status->valuestring, "error") == 0) {
            char said[DDS_TEXT_LIMIT + 1];
            said[0] = '\0';
            if (cJSON_IsString(error)) body_text(error->valuestring, said, sizeof said);
            if (said[0] == '\0') {
                dds_text t;
                dds_text_init(&t, said, sizeof said);
                dds_error_body_put_json(&t, root);
                dds_text_finish(&t);
            }
            if (said[0] != '\0') dds_set_msg(msg, msg_cap, "%s", said);
            else
                dds_set_msg(msg, msg_cap,
                            "Datadog answered \"status\": \"error\" without a message");
            st = DDSTREAM_E_QUERY;
            goto done;
        }
        if (strcmp(status->valuestring, "ok") != 0) {
            char said[64];
            body_text(status->valuestring, said, sizeof said);
            dds_set_msg(msg, msg_cap, "status: expected \"ok\" or \"error\", got \"%s\"", said);
            st = DDSTREAM_E_PROTOCOL;
            goto done;
        }
    }

    if (series == NULL) {
        char said[DDS_TEXT_LIMIT + 1];
        dds_text t;
        dds_text_init(&t, said, sizeof said);
        dds_error_body_put_json(&t, root);
        dds_text_finish(&t);
        if (said[0] != '\0') dds_set_msg(msg, msg_cap, "series: missing (the body says: %s)", said);
        else dds_set_msg(msg, msg_cap, "series: missing");
        st = DDSTREAM_E_PROTOCOL;
        goto done;
    }
    if (!cJSON_IsArray(series)) {
        dds_set_msg(msg, msg_cap, "series: expected an array, got %s", dds_json_type_name(series));
        st = DDSTREAM_E_PROTOCOL;
        goto done;
    }

    size_t n = 0;
    for (const cJSON *c = series->child; c != NULL; c = c->next) n++;
    if (n > 0) {
        out->series = calloc(n, sizeof *out->series);
        if (out->series == NULL) {
            dds_set_msg(msg, msg_cap, "out of memory for %zu series", n);
            st = DDSTREAM_E_NOMEM;
            goto done;
        }
        out->capacity = n;
    }
    size_t i = 0, cursor = 0;
    for (const cJSON *c = series->child; c != NULL; c = c->next, i++) {
        /* Counted before parsing: a half-filled series is freed with the others on failure. */
        out->count = i + 1;
        dds_fast_pointlist *pl = fast ? dds_fast_pointlists_take(fast, i, &cursor) : NULL;
        st = parse_series(c, i, &out->series[i], pl, msg, msg_cap);
        if (st != DDSTREAM_OK) goto done;
    }
    st = DDSTREAM_OK;

done:
    cJSON_Delete(root);
    if (st != DDSTREAM_OK) dds_response_free(out);
    return st;
}

ddstream_status dds_parse_query_response(const char *body, size_t len, dds_response *out, char *msg,
                                         size_t msg_cap) {
    return parse_query(body, len, NULL, NULL, 0, out, msg, msg_cap);
}

ddstream_status dds_parse_query_response_fast(const char *body, size_t len, dds_response *out,
                                              char *msg, size_t msg_cap) {
    dds_fast_pointlists fast;
    if (out != NULL) memset(out, 0, sizeof *out);
    if (dds_fast_pointlists_scan(body, len, &fast) != 0) {
        dds_set_msg(msg, msg_cap, "out of memory reading a %zu-byte answer", len);
        return DDSTREAM_E_NOMEM;
    }
    if (fast.count == 0) {
        dds_fast_pointlists_free(&fast);
        return parse_query(body, len, NULL, NULL, 0, out, msg, msg_cap);
    }
    /* cJSON gets a copy without the pointlists' text: a few kilobytes to copy, where blanking
     * the pointlists in place left cJSON megabytes of spaces to skip one by one. */
    size_t env_len = 0;
    char *env = dds_fast_pointlists_envelope(body, len, &fast, &env_len);
    if (env == NULL) {
        dds_fast_pointlists_free(&fast);
        dds_set_msg(msg, msg_cap, "out of memory reading a %zu-byte answer", len);
        return DDSTREAM_E_NOMEM;
    }
    ddstream_status st = parse_query(env, env_len, &fast, body, len, out, msg, msg_cap);
    free(env);
    /* Until here the slab was the scanner's (a failed parse frees it below); the series that
     * point into it now belong to out, and so does it. */
    void *slab = st == DDSTREAM_OK ? dds_fast_pointlists_take_slab(&fast) : NULL;
    if (slab != NULL && adopt_block(out, slab) != DDSTREAM_OK) {
        dds_response_free(out);
        free(slab);
        dds_set_msg(msg, msg_cap, "out of memory reading a %zu-byte answer", len);
        st = DDSTREAM_E_NOMEM;
    }
    dds_fast_pointlists_free(&fast);
    return st;
}

/* ---------------------------------------------------------------------------------------------
 * GET /api/v1/validate.
 */

ddstream_status dds_parse_validate_response(const char *body, size_t len, int *valid, char *msg,
                                            size_t msg_cap) {
    if (valid == NULL || (body == NULL && len > 0)) {
        dds_set_msg(msg, msg_cap, "internal: validate response parsed without body or output");
        return DDSTREAM_E_INTERNAL;
    }
    cJSON *root = NULL;
    ddstream_status st = parse_json(body, len, &root, msg, msg_cap);
    if (st != DDSTREAM_OK) return st;
    const cJSON *v = cJSON_IsObject(root) ? dds_json_member(root, "valid") : NULL;
    if (!cJSON_IsObject(root)) {
        dds_set_msg(msg, msg_cap, "expected a JSON object at the top level, got %s",
                    dds_json_type_name(root));
        st = DDSTREAM_E_PROTOCOL;
    } else if (v == NULL) {
        dds_set_msg(msg, msg_cap, "valid: missing");
        st = DDSTREAM_E_PROTOCOL;
    } else if (!cJSON_IsBool(v)) {
        dds_set_msg(msg, msg_cap, "valid: expected true or false, got %s", dds_json_type_name(v));
        st = DDSTREAM_E_PROTOCOL;
    } else {
        *valid = cJSON_IsTrue(v) ? 1 : 0;
    }
    cJSON_Delete(root);
    return st;
}
