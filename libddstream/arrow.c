/*
 * arrow.c — the Arrow C stream: ddstream batches as Arrow record batches, without copying columns.
 *
 * A ddstream_batch is one 64-byte-aligned block (batch.c) whose columns are already what Arrow
 * wants for data buffers: int64 seconds for timestamp[s], float64 for the values, int32 for the
 * dictionary indices of series. So each child array points straight into the batch, and the batch
 * is freed when the last array that points into it is released (a reference count, because a
 * consumer may move children out of the struct and release them separately, on any thread). What
 * is built per batch: a validity bitmap for each value column holding a NaN (Arrow's null, where
 * Datadog had no value), the series dictionary (the tag strings) and, for a stream of several
 * queries, the query dictionary (the query texts).
 *
 * The stream side: an arrow_source owns the ddstream_stream and the schema; every ArrowArrayStream
 * handed out (ddstream_stream_arrow, ddstream_stream_arrow_share) is a handle holding a reference
 * to the source. get_next on any handle takes the source's mutex and calls ddstream_next; the last
 * handle to be released closes the stream (stopping its worker and abandoning requests in flight).
 *
 * The arrays are built with nanoarrow (vendor/nanoarrow, namespaced and hidden): its builders check
 * the layout (buffer sizes against lengths) before anything leaves the library, and its release
 * callbacks free children and dictionaries correctly whichever order a consumer releases them in.
 * This is the only file that includes nanoarrow.h.
 */
#include "arrow.h"
#include "stream_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "nanoarrow.h"

/* Every column a schema may have, in schema order: the first five always, then series (grouped),
 * query (several queries) and value (a value-only query), each only when the stream has it. */
enum {
    COL_TIMESTAMP,
    COL_AVG,
    COL_MIN,
    COL_MAX,
    COL_SUM,
    COL_SERIES,
    COL_QUERY,
    COL_VALUE,
    N_COLS
};
static const char *const column_names[N_COLS] = {"timestamp", "avg",    "min",   "max",
                                                 "sum",       "series", "query", "value"};

/* Which columns a schema has: the child index of each, or -1. */
typedef struct columns {
    int at[N_COLS];
    int n;
} columns;

static columns columns_of(int grouped, int with_query, int with_value) {
    columns c;
    int present[N_COLS] = {1, 1, 1, 1, 1, grouped != 0, with_query != 0, with_value != 0};
    c.n = 0;
    for (int k = 0; k < N_COLS; k++) c.at[k] = present[k] ? c.n++ : -1;
    return c;
}

/* The columns of a schema made by dds_arrow_schema_shaped, read back from its children's names. */
static columns columns_of_schema(const struct ArrowSchema *schema) {
    columns c;
    c.n = (int)schema->n_children;
    for (int k = 0; k < N_COLS; k++) c.at[k] = -1;
    for (int i = 0; i < c.n; i++)
        for (int k = 0; k < N_COLS; k++)
            if (schema->children[i]->name &&
                strcmp(schema->children[i]->name, column_names[k]) == 0)
                c.at[k] = i;
    return c;
}

/* ------------------------------------------------------------------------------------------ */
/* Schema                                                                                      */

int dds_arrow_schema(struct ArrowSchema *out, int grouped, const char *const *keys,
                     const char *const *values, size_t n_pairs) {
    return dds_arrow_schema_shaped(out, grouped, 0, 0, keys, values, n_pairs);
}

int dds_arrow_schema_shaped(struct ArrowSchema *out, int grouped, int with_query, int with_value,
                            const char *const *keys, const char *const *values, size_t n_pairs) {
    if (!out || (n_pairs && (!keys || !values))) return EINVAL;
    struct ArrowSchema s;
    ArrowSchemaInit(&s);
    columns cols = columns_of(grouped, with_query, with_value);
    int ncols = cols.n;
    struct ArrowBuffer meta;
    int rc = ArrowMetadataBuilderInit(&meta, NULL);
    if (rc != NANOARROW_OK) {
        ArrowSchemaRelease(&s);
        return rc;
    }
    for (size_t i = 0; i < n_pairs && rc == NANOARROW_OK; i++) {
        if (!keys[i] || !values[i]) rc = EINVAL;
        else
            rc =
                ArrowMetadataBuilderAppend(&meta, ArrowCharView(keys[i]), ArrowCharView(values[i]));
    }
    if (rc == NANOARROW_OK) rc = ArrowSchemaSetTypeStruct(&s, ncols);
    if (rc == NANOARROW_OK && n_pairs) rc = ArrowSchemaSetMetadata(&s, (const char *)meta.data);
    ArrowBufferReset(&meta);
    /* A record batch's struct is never null; its fields are nullable as Arrow's default is. */
    if (rc == NANOARROW_OK) s.flags = 0;
    for (int c = 0; c < N_COLS && rc == NANOARROW_OK; c++) {
        if (cols.at[c] < 0) continue;
        struct ArrowSchema *child = s.children[cols.at[c]];
        if (c == COL_TIMESTAMP) {
            rc = ArrowSchemaSetTypeDateTime(child, NANOARROW_TYPE_TIMESTAMP,
                                            NANOARROW_TIME_UNIT_SECOND, "UTC");
            /* Every bucket has a row: the timestamp is never null. */
            if (rc == NANOARROW_OK) child->flags = 0;
        } else if (c == COL_SERIES || c == COL_QUERY) {
            rc = ArrowSchemaSetType(child, NANOARROW_TYPE_INT32);
            if (rc == NANOARROW_OK) rc = ArrowSchemaAllocateDictionary(child);
            if (rc == NANOARROW_OK)
                rc = ArrowSchemaInitFromType(child->dictionary, NANOARROW_TYPE_STRING);
            if (rc == NANOARROW_OK) child->flags = 0;
        } else {
            rc = ArrowSchemaSetType(child, NANOARROW_TYPE_DOUBLE);
        }
        if (rc == NANOARROW_OK) rc = ArrowSchemaSetName(child, column_names[c]);
    }
    if (rc != NANOARROW_OK) {
        ArrowSchemaRelease(&s);
        return rc;
    }
    *out = s; /* moved: the release callback and private data travel with the struct */
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Batches                                                                                     */

/* The batch, shared by every buffer that points into it. */
typedef struct batch_ref {
    atomic_size_t refs;
    ddstream_batch *batch; /* freed with the last reference; NULL: not ours to free */
} batch_ref;

static void batch_ref_drop(batch_ref *r) {
    /* acq_rel: every reader of the batch (on any thread) is done before the free below. */
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
        ddstream_batch_free(r->batch);
        free(r);
    }
}

/* nanoarrow's deallocator for a buffer that points into the batch. */
static void batch_view_free(struct ArrowBufferAllocator *allocator, uint8_t *ptr, int64_t size) {
    (void)ptr;
    (void)size;
    batch_ref_drop(allocator->private_data);
}

/* Make buffer i of array a view of bytes bytes at data, holding a reference to the batch. */
static int set_view(struct ArrowArray *a, int64_t i, batch_ref *r, const void *data, size_t bytes) {
    struct ArrowBuffer view;
    ArrowBufferInit(&view);
    /* The view is never written through: nanoarrow's buffer type is simply not const. */
    view.data = (uint8_t *)(uintptr_t)data;
    view.size_bytes = (int64_t)bytes;
    view.capacity_bytes = 0; /* not growable: reallocation is refused by the deallocator */
    view.allocator = ArrowBufferDeallocator(batch_view_free, r);
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    int rc = ArrowArraySetBuffer(a, i, &view);
    if (rc != NANOARROW_OK) ArrowBufferReset(&view); /* gives the reference back */
    return rc;
}

/* The validity of a value column: a bitmap (bit set = value present) only if a NaN occurs. */
static int set_validity(struct ArrowArray *a, const double *v, size_t n) {
    size_t nulls = 0;
    for (size_t i = 0; i < n; i++) nulls += isnan(v[i]) != 0;
    a->null_count = (int64_t)nulls;
    if (nulls == 0) return NANOARROW_OK; /* no bitmap: every value is valid */
    struct ArrowBitmap bitmap;
    ArrowBitmapInit(&bitmap);
    int rc = ArrowBitmapReserve(&bitmap, (int64_t)n);
    if (rc != NANOARROW_OK) return rc;
    uint8_t *bits = bitmap.buffer.data;
    size_t nbytes = (n + 7) / 8;
    memset(bits, 0, nbytes);
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i])) bits[i >> 3] |= (uint8_t)(1u << (i & 7));
    bitmap.buffer.size_bytes = (int64_t)nbytes;
    bitmap.size_bits = (int64_t)n;
    ArrowArraySetValidityBitmap(a, &bitmap);
    a->null_count = (int64_t)nulls; /* SetValidityBitmap marks it unknown */
    return NANOARROW_OK;
}

/* A dictionary column: the int32 indices are a view of the batch, the words are copied. */
static int fill_dictionary(struct ArrowArray *a, batch_ref *r, const int32_t *index, size_t n,
                           const char *const *words, size_t nwords) {
    int rc = set_view(a, 1, r, index, n * sizeof(int32_t));
    a->null_count = 0;
    struct ArrowArray *dict = a->dictionary;
    if (rc == NANOARROW_OK) rc = ArrowArrayStartAppending(dict);
    for (size_t i = 0; i < nwords && rc == NANOARROW_OK; i++)
        rc = ArrowArrayAppendString(dict, ArrowCharView(words[i]));
    /* Every index must point into the dictionary: checked here, so no consumer ever has to. */
    for (size_t i = 0; i < n && rc == NANOARROW_OK; i++)
        if (index[i] < 0 || (size_t)index[i] >= nwords) rc = EINVAL;
    return rc;
}

int dds_arrow_export_batch(ddstream_batch *b, const struct ArrowSchema *schema,
                           struct ArrowArray *out, char *msg, size_t cap) {
    return dds_arrow_export_batch_queries(b, schema, NULL, out, msg, cap);
}

int dds_arrow_export_batch_queries(ddstream_batch *b, const struct ArrowSchema *schema,
                                   const char *const *queries, struct ArrowArray *out, char *msg,
                                   size_t cap) {
    if (!b || !schema || !out) {
        dds_set_msg(msg, cap, "batch, schema or out is NULL");
        return EINVAL;
    }
    columns cols = columns_of_schema(schema);
    int grouped = cols.at[COL_SERIES] >= 0;
    if ((b->grouped != 0) != grouped || (grouped && (!b->series || !b->series_tags)) ||
        b->length > (size_t)INT64_MAX / 8) {
        dds_set_msg(msg, cap, "%s",
                    grouped ? "the schema has a series column but the batch is not grouped"
                            : "the batch is grouped but the schema has no series column");
        return EINVAL;
    }
    if ((cols.at[COL_QUERY] >= 0) != (b->query != NULL) || (b->query != NULL && queries == NULL) ||
        (cols.at[COL_VALUE] >= 0) != (b->value != NULL)) {
        dds_set_msg(msg, cap, "the batch's query and value columns do not match the schema's");
        return EINVAL;
    }
    batch_ref *r = malloc(sizeof *r);
    if (!r) {
        dds_set_msg(msg, cap, "out of memory exporting a batch to Arrow");
        return ENOMEM;
    }
    atomic_init(&r->refs, 1); /* ours, while building */
    r->batch = b;

    struct ArrowArray a;
    struct ArrowError aerr;
    aerr.message[0] = 0;
    int rc = ArrowArrayInitFromSchema(&a, schema, &aerr);
    if (rc != NANOARROW_OK) {
        r->batch = NULL;
        batch_ref_drop(r);
        dds_set_msg(msg, cap, "%s",
                    aerr.message[0] ? aerr.message : "cannot make an Arrow array for the schema");
        return rc;
    }
    const double *values[N_COLS] = {NULL, b->avg, b->min, b->max, b->sum, NULL, NULL, b->value};
    size_t n = b->length;
    a.length = (int64_t)n;
    a.null_count = 0;
    rc = set_view(a.children[COL_TIMESTAMP], 1, r, b->timestamps, n * sizeof(int64_t));
    a.children[COL_TIMESTAMP]->null_count = 0;
    for (int c = COL_AVG; c < N_COLS && rc == NANOARROW_OK; c++) {
        if (!values[c] || cols.at[c] < 0) continue;
        struct ArrowArray *child = a.children[cols.at[c]];
        rc = set_view(child, 1, r, values[c], n * sizeof(double));
        if (rc == NANOARROW_OK) rc = set_validity(child, values[c], n);
    }
    if (rc == NANOARROW_OK && grouped)
        rc = fill_dictionary(a.children[cols.at[COL_SERIES]], r, b->series, n, b->series_tags,
                             b->series_count);
    if (rc == NANOARROW_OK && b->query)
        rc = fill_dictionary(a.children[cols.at[COL_QUERY]], r, b->query, n, queries,
                             b->query_count);
    for (int64_t c = 0; c < a.n_children; c++) a.children[c]->length = (int64_t)n;
    if (rc == NANOARROW_OK) rc = ArrowArrayFinishBuildingDefault(&a, &aerr);
    if (rc != NANOARROW_OK) {
        ArrowArrayRelease(&a); /* drops the views' references; ours keeps r alive */
        r->batch = NULL;       /* the caller keeps the batch */
        batch_ref_drop(r);
        dds_set_msg(msg, cap, "%s",
                    rc == ENOMEM      ? "out of memory exporting a batch to Arrow"
                    : aerr.message[0] ? aerr.message
                                      : "the batch does not make a valid Arrow record batch");
        return rc;
    }
    batch_ref_drop(r); /* the arrays now hold the only references */
    *out = a;
    return 0;
}

int dds_arrow_errno(ddstream_status status) {
    switch (status) {
    case DDSTREAM_OK:
    case DDSTREAM_END: return 0;
    case DDSTREAM_E_AUTH: return EACCES;
    case DDSTREAM_E_RATE_LIMITED: return EBUSY;
    case DDSTREAM_E_QUERY:
    case DDSTREAM_E_CONFIG:
    case DDSTREAM_E_INVALID_ARGUMENT: return EINVAL;
    case DDSTREAM_E_TIMEOUT:
    case DDSTREAM_TIMEOUT: return ETIMEDOUT;
    case DDSTREAM_E_CANCELLED: return ECANCELED;
    case DDSTREAM_E_PROTOCOL: return EPROTO;
    case DDSTREAM_E_NOMEM: return ENOMEM;
    default: return EIO; /* server, network, internal */
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The stream                                                                                  */

typedef struct arrow_source {
    atomic_size_t refs;        /* handles alive */
    pthread_mutex_t mu;        /* serialises ddstream_next across handles */
    ddstream_stream *stream;   /* owned: closed with the last handle */
    struct ArrowSchema schema; /* immutable once made; handed out as deep copies */
    int grouped;
    const char **queries; /* the query column's words: the stream's queries (its settings') */
} arrow_source;

typedef struct arrow_handle {
    arrow_source *src;
    char last_error[sizeof(((ddstream_error *)0)->message)];
} arrow_handle;

static void source_drop(arrow_source *src) {
    if (atomic_fetch_sub_explicit(&src->refs, 1, memory_order_acq_rel) != 1) return;
    ddstream_close(src->stream);
    ArrowSchemaRelease(&src->schema);
    pthread_mutex_destroy(&src->mu);
    free(src->queries);
    free(src);
}

static int handle_get_schema(struct ArrowArrayStream *self, struct ArrowSchema *out) {
    arrow_handle *h = self->private_data;
    int rc = ArrowSchemaDeepCopy(&h->src->schema, out);
    if (rc != NANOARROW_OK)
        snprintf(h->last_error, sizeof h->last_error, "out of memory copying the schema");
    return rc;
}

/*
 * The next batch of the source as an Arrow array: DDSTREAM_OK (*out set), DDSTREAM_END
 * (out->release = NULL), DDSTREAM_TIMEOUT, or an error in *err and the handle's last_error.
 */
static ddstream_status handle_next(arrow_handle *h, int64_t timeout_ms, struct ArrowArray *out,
                                   ddstream_error *err) {
    arrow_source *src = h->src;
    ddstream_batch *b = NULL;
    if (dds_stream_forked(src->stream, err)) { /* before the lock, which may be held for ever */
        memcpy(h->last_error, err->message, sizeof h->last_error);
        return err->status;
    }
    pthread_mutex_lock(&src->mu);
    ddstream_status rc = ddstream_next(src->stream, timeout_ms, &b, err);
    if (rc == DDSTREAM_OK) {
        char msg[sizeof err->message];
        int e = dds_arrow_export_batch_queries(b, &src->schema, src->queries, out, msg, sizeof msg);
        if (e != 0) {
            /* The chunk was taken from the stream: put the stream back on it, so that a later
             * call delivers it (no chunk is ever skipped). */
            size_t idx = b->chunk_index;
            ddstream_batch_free(b);
            ddstream_status back = ddstream_seek(src->stream, idx, NULL);
            rc = dds_error_set(
                err, e == ENOMEM ? DDSTREAM_E_NOMEM : DDSTREAM_E_INTERNAL,
                "exporting chunk %zu to Arrow: %s%s", idx + 1, msg,
                back == DDSTREAM_OK ? "" : " (and the stream could not go back to it)");
        }
    } else if (rc == DDSTREAM_END) {
        out->release = NULL;
    }
    pthread_mutex_unlock(&src->mu);
    if (rc != DDSTREAM_OK && rc != DDSTREAM_END && rc != DDSTREAM_TIMEOUT)
        memcpy(h->last_error, err->message, sizeof h->last_error);
    return rc;
}

static int handle_get_next(struct ArrowArrayStream *self, struct ArrowArray *out) {
    ddstream_error err;
    memset(&err, 0, sizeof err);
    ddstream_status rc = handle_next(self->private_data, -1, out, &err);
    return dds_arrow_errno(rc);
}

static const char *handle_get_last_error(struct ArrowArrayStream *self) {
    arrow_handle *h = self->private_data;
    return h->last_error[0] ? h->last_error : NULL;
}

static void handle_release(struct ArrowArrayStream *self) {
    if (!self || !self->release) return;
    arrow_handle *h = self->private_data;
    if (dds_stream_forked(h->src->stream, NULL)) {
        /* A fork()ed child's copy: left as it is, like its stream (private_data still leads to
         * it), since its source's mutex may be held for ever by a thread of the parent. */
        self->release = NULL;
        return;
    }
    source_drop(h->src);
    free(h);
    self->release = NULL;
    self->private_data = NULL;
}

static ddstream_status new_handle(arrow_source *src, struct ArrowArrayStream *out,
                                  ddstream_error *err) {
    arrow_handle *h = calloc(1, sizeof *h);
    if (!h) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory making an Arrow stream");
    atomic_fetch_add_explicit(&src->refs, 1, memory_order_relaxed);
    h->src = src;
    out->get_schema = handle_get_schema;
    out->get_next = handle_get_next;
    out->get_last_error = handle_get_last_error;
    out->release = handle_release;
    out->private_data = h;
    return DDSTREAM_OK;
}

/* The schema's metadata: the query and the plan, so that batch k is known to be chunk
 * first_chunk + k, with bounds [plan_start + i * chunk_seconds, min(that + chunk_seconds, plan_end)). */
static int make_schema(arrow_source *src, const char *query) {
    size_t count = ddstream_chunk_count(src->stream);
    /* progress = delivered / count exactly as doubles go: rounding recovers the index. */
    size_t first = count ? (size_t)llround(ddstream_progress(src->stream) * (double)count) : 0;
    ddstream_chunk c0 = {0, 0}, clast = {0, 0};
    if (count && (ddstream_chunk_at(src->stream, 0, &c0) != DDSTREAM_OK ||
                  ddstream_chunk_at(src->stream, count - 1, &clast) != DDSTREAM_OK))
        return EINVAL; /* cannot happen: both indexes are inside the plan */
    char v_count[24], v_first[24], v_start[24], v_end[24], v_step[24];
    snprintf(v_count, sizeof v_count, "%zu", count);
    snprintf(v_first, sizeof v_first, "%zu", first);
    snprintf(v_start, sizeof v_start, "%" PRId64, c0.start);
    snprintf(v_end, sizeof v_end, "%" PRId64, clast.end);
    snprintf(v_step, sizeof v_step, "%" PRId64, c0.end - c0.start);
    const char *keys[] = {"ddstream.version",     "ddstream.query",        "ddstream.grouped",
                          "ddstream.chunk_count", "ddstream.first_chunk",  "ddstream.plan_start",
                          "ddstream.plan_end",    "ddstream.chunk_seconds"};
    const char *values[] = {ddstream_version(),
                            query,
                            src->grouped ? "true" : "false",
                            v_count,
                            v_first,
                            v_start,
                            v_end,
                            v_step};
    const dds_settings *s = dds_stream_settings(src->stream);
    return dds_arrow_schema_shaped(&src->schema, src->grouped, s->with_query, s->with_value, keys,
                                   values, sizeof keys / sizeof *keys);
}

DDSTREAM_API ddstream_status ddstream_stream_arrow(ddstream_stream *stream,
                                                   struct ArrowArrayStream *out,
                                                   ddstream_error *err) {
    if (!stream || !out)
        return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "stream or out is NULL");
    if (dds_stream_forked(stream, err)) return err ? err->status : DDSTREAM_E_FORKED;
    const char *query = dds_stream_settings(stream)->query;
    arrow_source *src = calloc(1, sizeof *src);
    if (!src) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory making an Arrow stream");
    if (pthread_mutex_init(&src->mu, NULL) != 0) {
        free(src);
        return dds_error_set(err, DDSTREAM_E_INTERNAL, "could not create the Arrow stream's lock");
    }
    src->stream = stream;
    const dds_settings *s = dds_stream_settings(stream);
    src->grouped = s->grouped;
    src->queries = malloc((s->query_count ? s->query_count : 1) * sizeof *src->queries);
    for (size_t i = 0; src->queries && i < s->query_count; i++)
        src->queries[i] = s->queries[i].source;
    int rc = src->queries ? make_schema(src, query) : ENOMEM;
    if (rc != 0) {
        pthread_mutex_destroy(&src->mu);
        free(src->queries);
        free(src);
        return dds_error_set(err, rc == ENOMEM ? DDSTREAM_E_NOMEM : DDSTREAM_E_INTERNAL,
                             "could not make the Arrow schema (errno %d)", rc);
    }
    atomic_init(&src->refs, 0);
    ddstream_status st = new_handle(src, out, err);
    if (st != DDSTREAM_OK) {
        ArrowSchemaRelease(&src->schema);
        pthread_mutex_destroy(&src->mu);
        free(src->queries);
        free(src); /* not source_drop: the stream stays the caller's */
    }
    return st;
}

static arrow_handle *our_handle(struct ArrowArrayStream *s) {
    return s && s->release == handle_release ? s->private_data : NULL;
}

DDSTREAM_API ddstream_status ddstream_stream_arrow_share(struct ArrowArrayStream *stream,
                                                         struct ArrowArrayStream *out,
                                                         ddstream_error *err) {
    arrow_handle *h = our_handle(stream);
    if (!h || !out)
        return dds_error_set(
            err, DDSTREAM_E_INVALID_ARGUMENT,
            "not a live Arrow stream made by ddstream_stream_arrow, or out is NULL");
    return new_handle(h->src, out, err);
}

DDSTREAM_API ddstream_status ddstream_stream_arrow_next(struct ArrowArrayStream *stream,
                                                        int64_t timeout_ms, struct ArrowArray *out,
                                                        ddstream_error *err) {
    arrow_handle *h = our_handle(stream);
    if (!h || !out)
        return dds_error_set(
            err, DDSTREAM_E_INVALID_ARGUMENT,
            "not a live Arrow stream made by ddstream_stream_arrow, or out is NULL");
    ddstream_error local;
    memset(&local, 0, sizeof local);
    return handle_next(h, timeout_ms, out, err ? err : &local);
}
