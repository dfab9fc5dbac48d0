/* test_batch.c — the batch block: layout, alignment, tags, and freeing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "bigalloc.h"
#include "check.h"

static int aligned(const void *p) { return p != NULL && (uintptr_t)p % DDS_BATCH_ALIGN == 0; }

static void test_empty_ungrouped(void) {
    ddstream_batch *b = dds_batch_new(0, 0, 0, 0);
    CHECK(b != NULL);
    if (b == NULL) return;
    CHECK_INT(b->struct_size, sizeof(ddstream_batch));
    CHECK_INT(b->length, 0);
    CHECK(aligned(b->timestamps) && aligned(b->avg) && aligned(b->min) && aligned(b->max) &&
          aligned(b->sum));
    CHECK(b->series == NULL);
    CHECK(b->series_tags == NULL);
    CHECK_INT(b->series_count, 0);
    CHECK_INT(b->grouped, 0);
    CHECK_INT(b->interval, 0);
    CHECK_INT(b->chunk_start_ms, 0);
    /* Zero rows still get an aligned, zeroed unit each: readable by Arrow without a branch. */
    for (size_t i = 0; i < DDS_BATCH_ALIGN / sizeof(double); i++)
        CHECK_INT(((const int64_t *)b->timestamps)[i], 0);
    dds_batch_columns c = dds_batch_columns_of(b);
    CHECK(c.series == NULL && c.series_tags == NULL);
    CHECK_INT(dds_batch_set_tag(b, 0, "x"), -1);
    ddstream_batch_free(b);
}

static void test_empty_grouped(void) {
    ddstream_batch *b = dds_batch_new(0, 0, 0, 1);
    CHECK(b != NULL);
    if (b == NULL) return;
    CHECK(aligned(b->series));
    CHECK(b->series_tags != NULL);
    CHECK_INT(b->series_count, 0);
    CHECK_INT(b->grouped, 1);
    ddstream_batch_free(b);
}

static void test_grouped_columns(void) {
    const size_t rows = 1001; /* not a multiple of anything: exercises the padding */
    const char *tags[] = {"host:a", "", "env:prod,host:b"};
    size_t tag_bytes = 0;
    for (size_t i = 0; i < 3; i++) tag_bytes += strlen(tags[i]) + 1;
    ddstream_batch *b = dds_batch_new(rows, 3, tag_bytes, 1);
    CHECK(b != NULL);
    if (b == NULL) return;
    CHECK_INT(b->length, rows);
    CHECK_INT(b->series_count, 3);
    CHECK(aligned(b->timestamps) && aligned(b->avg) && aligned(b->min) && aligned(b->max) &&
          aligned(b->sum) && aligned(b->series));
    /* Columns do not overlap and keep their order in the block. */
    CHECK((const char *)b->avg >= (const char *)(b->timestamps + rows));
    CHECK((const char *)b->min >= (const char *)(b->avg + rows));
    CHECK((const char *)b->max >= (const char *)(b->min + rows));
    CHECK((const char *)b->sum >= (const char *)(b->max + rows));
    CHECK((const char *)b->series >= (const char *)(b->sum + rows));
    /* Padding after the last row is zero up to the next 64-byte boundary. */
    const unsigned char *pad = (const unsigned char *)(b->avg + rows);
    int nonzero = 0;
    for (size_t i = 0; (uintptr_t)(pad + i) % DDS_BATCH_ALIGN != 0; i++) nonzero += pad[i] != 0;
    CHECK_INT(nonzero, 0);

    /* Slots start as "" (never NULL), then hold copies. */
    for (size_t i = 0; i < 3; i++) CHECK_STR(b->series_tags[i], "");
    dds_batch_columns c = dds_batch_columns_of(b);
    for (size_t i = 0; i < rows; i++) { /* every cell writable (the sanitizers watch the edges) */
        c.timestamps[i] = (int64_t)i;
        c.avg[i] = c.min[i] = c.max[i] = c.sum[i] = (double)i;
        c.series[i] = (int32_t)(i % 3);
    }
    char scratch[32];
    for (size_t i = 0; i < 3; i++) {
        strcpy(scratch, tags[i]);
        CHECK_INT(dds_batch_set_tag(b, i, scratch), 0);
        memset(scratch, 'z', strlen(scratch)); /* the batch must hold a copy */
    }
    for (size_t i = 0; i < 3; i++) CHECK_STR(b->series_tags[i], tags[i]);
    CHECK_INT(dds_batch_set_tag(b, 3, "x"), -1);    /* out of range */
    CHECK_INT(dds_batch_set_tag(b, 0, "more"), -1); /* reserved bytes used up */
    CHECK_INT(dds_batch_set_tag(b, 0, NULL), -1);
    CHECK_INT(dds_batch_set_tag(NULL, 0, "x"), -1);
    CHECK_STR(b->series_tags[0], "host:a");
    CHECK_INT(b->timestamps[rows - 1], (int64_t)rows - 1);
    CHECK_INT(b->series[rows - 1], (int32_t)((rows - 1) % 3));
    ddstream_batch_free(b);
}

static void test_sizes(void) {
    /* Sizes that overflow are refused before any allocation. */
    CHECK(dds_batch_new(SIZE_MAX / 4, 0, 0, 0) == NULL);
    CHECK(dds_batch_new(SIZE_MAX / 8 + 1, 0, 0, 0) == NULL);
    CHECK(dds_batch_new(1, SIZE_MAX / 4, 0, 1) == NULL);
    CHECK(dds_batch_new(1, 1, SIZE_MAX, 1) == NULL);
    CHECK(dds_batch_new(1, 1, SIZE_MAX - 64, 1) == NULL);
    /* Ungrouped batches ignore series_count and tag_bytes. */
    ddstream_batch *b = dds_batch_new(3, 5, 100, 0);
    CHECK(b != NULL && b->series_count == 0 && b->series_tags == NULL);
    ddstream_batch_free(b);
    ddstream_batch_free(NULL); /* allowed */
}

/* A batch built in a block handed over (an answer's spent buffer): used when it fits, freed and
 * replaced when it does not; either way nothing leaks (valgrind and ASan run this too). */
static void test_in_block(void) {
    size_t cap = DDS_BIG_ALLOC_MIN;
    char *block = dds_big_alloc(cap);
    CHECK(block != NULL);
    memset(block, 0x5a, cap); /* garbage, as a spent body is */
    ddstream_batch *b = dds_batch_new_in(block, cap, 1000, 2, 16, 1);
    CHECK(b != NULL && (void *)b == (void *)block);
    dds_batch_columns c = dds_batch_columns_of(b);
    for (size_t i = 0; i < 1000; i++) {
        c.timestamps[i] = (int64_t)i;
        c.avg[i] = c.min[i] = c.max[i] = c.sum[i] = (double)i;
        c.series[i] = (int32_t)(i % 2);
    }
    CHECK(dds_batch_set_tag(b, 0, "host:a") == 0 && dds_batch_set_tag(b, 1, "host:b") == 0);
    CHECK_STR(b->series_tags[1], "host:b");
    CHECK_INT(b->length, 1000);
    CHECK_INT(b->sum[999], 999);
    ddstream_batch_free(b);

    /* Too small: replaced. */
    char *small = dds_big_alloc(4096);
    b = dds_batch_new_in(small, 4096, 100000, 0, 0, 0);
    CHECK(b != NULL && (void *)b != (void *)small);
    CHECK_INT(b->length, 100000);
    ddstream_batch_free(b);
}

/* A v2 batch: one value per row, the four statistics one column, smaller than the shaped batch
 * with the same columns by three columns of doubles. */
static void test_value_only(void) {
    const size_t rows = 1001;
    ddstream_batch *b = dds_batch_new_value_only(NULL, NULL, 0, rows, 2, 16, 1);
    ddstream_batch *full = dds_batch_new_shaped(NULL, 0, rows, 2, 16, 1, 1, 1);
    CHECK(b != NULL && full != NULL);
    if (b == NULL || full == NULL) {
        ddstream_batch_free(b);
        ddstream_batch_free(full);
        return;
    }
    CHECK(b->avg == b->min && b->avg == b->max && b->avg == b->sum);
    CHECK(aligned(b->avg) && aligned(b->value) && aligned(b->query) && aligned(b->series) &&
          aligned(b->series_query));
    /* The shared column and the value column do not overlap, nor do value and query. */
    CHECK((const char *)b->value >= (const char *)(b->avg + rows) ||
          (const char *)b->avg >= (const char *)(b->value + rows));
    CHECK((const char *)b->query >= (const char *)(b->value + rows));
    size_t saved = (size_t)((const char *)full->query - (const char *)full->timestamps) -
                   (size_t)((const char *)b->query - (const char *)b->timestamps);
    CHECK_INT(saved, 3 * ((rows * sizeof(double) + 63) / 64 * 64));
    dds_batch_columns c = dds_batch_columns_of(b);
    for (size_t i = 0; i < rows; i++) {
        c.avg[i] = (double)i;
        c.value[i] = -(double)i;
        c.query[i] = 1;
        c.series[i] = (int32_t)(i % 2);
    }
    CHECK_INT(b->sum[rows - 1], rows - 1);
    CHECK_INT(b->value[rows - 1], -(double)(rows - 1));
    CHECK(dds_batch_set_tag(b, 1, "host:b") == 0);
    CHECK_STR(b->series_tags[1], "host:b");
    ddstream_batch_free(b);
    ddstream_batch_free(full);
}

int main(int argc, char **argv) {
    (void)argc;
    test_empty_ungrouped();
    test_empty_grouped();
    test_grouped_columns();
    test_sizes();
    test_in_block();
    test_value_only();
    return check_report(argv[0]);
}
