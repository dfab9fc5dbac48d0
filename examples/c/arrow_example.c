/*
 * arrow_example.c — read a ddstream as an Arrow C stream (struct ArrowArrayStream) with plain C:
 * no Arrow library, only the structs that ddstream.h repeats from the Arrow specification.
 *
 *   cc arrow_example.c $(pkg-config --cflags --libs ddstream) -o arrow_example
 *   DD_API_KEY=... DD_APP_KEY=... ./arrow_example 'avg:system.cpu.user{*} by {host}' 86400 60 0
 *
 * Arguments: query, seconds back from now (default one day), granularity (default 60), and how
 * many batches to read before stopping (default 0: all). Stopping early releases the stream,
 * which stops its fetching. Keys come from DD_API_KEY / DD_APP_KEY, DDSTREAM_BASE_URL points at a
 * proxy or a fake server. Prints the schema, one line per record batch and a summary.
 *
 * The layout it relies on (docs/arrow.md): a record batch is a struct array whose children are
 * timestamp (int64 seconds, buffers[1]), avg/min/max/sum (double, buffers[1], with a validity
 * bitmap in buffers[0] or NULL when nothing is null) and, for grouped queries, series (int32
 * dictionary indices in buffers[1]; the dictionary is utf8: offsets in buffers[1], bytes in
 * buffers[2]).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ddstream.h"

/* Arrow validity: bit i set means row i has a value. A NULL bitmap means every row has one. */
static int is_valid(const struct ArrowArray *column, int64_t i) {
    const uint8_t *bits = column->buffers[0];
    int64_t j = i + column->offset;
    return bits == NULL || (bits[j / 8] >> (j % 8)) & 1;
}

static void print_schema(const struct ArrowSchema *schema) {
    printf("schema:");
    for (int64_t i = 0; i < schema->n_children; i++) {
        const struct ArrowSchema *f = schema->children[i];
        printf(" %s(%s%s%s)", f->name, f->format, f->dictionary ? " dict " : "",
               f->dictionary ? f->dictionary->format : "");
    }
    printf("\n");
}

int main(int argc, char **argv) {
    if (ddstream_version_int() != DDSTREAM_VERSION_INT) {
        fprintf(stderr, "libddstream %s does not match this header\n", ddstream_version());
        return 1;
    }
    const char *query = argc > 1 ? argv[1] : "avg:system.cpu.user{*}";
    long long back = argc > 2 ? atoll(argv[2]) : 86400;
    long long granularity = argc > 3 ? atoll(argv[3]) : 60;
    long long max_batches = argc > 4 ? atoll(argv[4]) : 0;

    ddstream_config cfg;
    ddstream_config_init(&cfg);
    cfg.query = query;
    cfg.range_end = (int64_t)time(NULL);
    cfg.range_start = cfg.range_end - back;
    cfg.granularity = granularity;

    ddstream_error err;
    ddstream_stream *stream = NULL;
    struct ArrowArrayStream arrow;
    if (ddstream_open(&cfg, &stream, &err) != DDSTREAM_OK) {
        fprintf(stderr, "error: %s: %s\n", ddstream_status_str(err.status), err.message);
        return 1;
    }
    if (ddstream_stream_arrow(stream, &arrow, &err) != DDSTREAM_OK) {
        fprintf(stderr, "error: %s: %s\n", ddstream_status_str(err.status), err.message);
        ddstream_close(stream); /* still ours: the Arrow stream was not made */
        return 1;
    }
    /* From here on the Arrow stream owns `stream`: releasing it closes it. */

    struct ArrowSchema schema;
    if (arrow.get_schema(&arrow, &schema) != 0) {
        fprintf(stderr, "error: %s\n", arrow.get_last_error(&arrow));
        arrow.release(&arrow);
        return 1;
    }
    print_schema(&schema);
    int grouped = schema.n_children == 6;
    schema.release(&schema);

    long long batches = 0, rows = 0, nulls = 0, valid = 0;
    double total = 0.0;
    int rc;
    struct ArrowArray batch;
    while ((rc = arrow.get_next(&arrow, &batch)) == 0 && batch.release != NULL) {
        const struct ArrowArray *ts = batch.children[0], *avg = batch.children[1];
        const int64_t *seconds = ts->buffers[1];
        const double *values = avg->buffers[1];
        for (int64_t i = 0; i < batch.length; i++) {
            if (is_valid(avg, i)) {
                total += values[i + avg->offset];
                valid++;
            }
        }
        nulls += avg->null_count;
        printf("batch %lld: rows=%" PRId64 " from=%" PRId64 " avg_nulls=%" PRId64, batches + 1,
               batch.length, batch.length ? seconds[ts->offset] : 0, avg->null_count);
        if (grouped) {
            const struct ArrowArray *dict = batch.children[5]->dictionary;
            const int32_t *offsets = dict->buffers[1];
            const char *bytes = dict->buffers[2];
            printf(" series=%" PRId64, dict->length);
            if (dict->length > 0)
                printf(" first=%.*s", (int)(offsets[1] - offsets[0]), bytes + offsets[0]);
        }
        printf("\n");
        rows += batch.length;
        batches++;
        batch.release(&batch); /* the batch's memory goes with its last array */
        if (max_batches > 0 && batches >= max_batches) break;
    }
    int failed = rc != 0;
    if (failed) fprintf(stderr, "error: %s\n", arrow.get_last_error(&arrow));
    else
        printf("done: %lld batches, %lld rows, %lld without a value, mean avg %.6g%s\n", batches,
               rows, nulls, valid ? total / (double)valid : 0.0,
               max_batches > 0 && batches >= max_batches ? " (stopped early)" : "");
    arrow.release(&arrow); /* closes the stream: fetching stops here */
    return failed;
}
