/* arrow.h — ddstream batches as Arrow record batches. Internal: the public API (the Arrow C stream)
 * is declared in ddstream.h; these two pieces are here so that the C tests can check them alone. */
#ifndef DDSTREAM_ARROW_H
#define DDSTREAM_ARROW_H

#include <stddef.h>

#include "ddstream.h"

/*
 * The record-batch schema (a struct): timestamp (tss:UTC), avg, min, max, sum (g, nullable) and,
 * when grouped, series (dictionary<int32, utf8>). metadata: n_pairs key/value pairs of
 * NUL-terminated strings (keys[i] -> values[i]), copied; n_pairs may be 0. On success *out is a
 * schema the caller releases. Returns 0 or an errno (ENOMEM, EINVAL).
 */
int dds_arrow_schema(struct ArrowSchema *out, int grouped, const char *const *keys,
                     const char *const *values, size_t n_pairs);

/* dds_arrow_schema for any stream: after sum, series (grouped), query (with_query: dictionary
 * <int32, utf8> of the query texts) and value (with_value: float64, nullable), each only when
 * asked for, in that order. */
int dds_arrow_schema_shaped(struct ArrowSchema *out, int grouped, int with_query, int with_value,
                            const char *const *keys, const char *const *values, size_t n_pairs);

/*
 * Move batch into *out as one record batch of `schema` (made by dds_arrow_schema with the same
 * grouping as the batch). The columns of the batch become the arrays' data buffers without a
 * copy; what is built is one validity bitmap per value column that has a NaN, and the dictionary
 * of the series column. The batch is freed when the last of the arrays (the struct or any child,
 * which a consumer may move out and release on its own, on any thread) is released.
 * On success returns 0 and *out owns the batch. On failure returns an errno (ENOMEM, EINVAL), the
 * batch is NOT freed (the caller still owns it), *out is untouched and msg (cap bytes, may be NULL)
 * says why.
 */
int dds_arrow_export_batch(ddstream_batch *batch, const struct ArrowSchema *schema,
                           struct ArrowArray *out, char *msg, size_t cap);

/* dds_arrow_export_batch for a batch with a query column: its dictionary is queries[0 ..
 * batch->query_count) (copied). queries may be NULL when the batch has no query column. */
int dds_arrow_export_batch_queries(ddstream_batch *batch, const struct ArrowSchema *schema,
                                   const char *const *queries, struct ArrowArray *out, char *msg,
                                   size_t cap);

/* The errno an Arrow consumer gets for a ddstream_status (see ddstream_stream_arrow). */
int dds_arrow_errno(ddstream_status status);

#endif
