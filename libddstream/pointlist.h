/* pointlist.h — a fast path for the bulk of a query answer: the "pointlist" arrays.
 *
 * A v1 answer is a small envelope around large arrays of [timestamp, value] pairs. Building a
 * cJSON tree for those costs three allocations per point; this scanner reads them straight into
 * int64/double arrays instead, and cJSON then parses a copy of the envelope without them.
 * It is strictly an accelerator: it takes a pointlist only when that pointlist is well-formed and
 * passes every check the general parser applies, and leaves anything unusual (escaped or
 * duplicate keys, odd numbers, wrong types, a malformed document) to the general parser, which
 * then reports it with its precise message. Results are identical either way. */
#ifndef DDSTREAM_POINTLIST_H
#define DDSTREAM_POINTLIST_H

#include <stddef.h>
#include <stdint.h>

typedef struct dds_fast_pointlist {
    size_t series_index; /* position in the root object's "series" array */
    size_t begin, end;   /* byte span of the array's text, [begin, end) */
    size_t length;       /* points */
    int64_t *ts_ms;      /* NULL when length is 0 */
    double *values;      /* NaN for null */
    int in_slab; /* ts_ms and values live in the slab below, not in allocations of their own */
} dds_fast_pointlist;

/* The pointlists of a large answer share one slab, sized once from the body's length (see
 * pointlist.c): a single buffer of megabytes (bigalloc.h) instead of two allocations per series,
 * whose fresh heap pages the kernel faulted in and cleared 4 KiB at a time. */
typedef struct dds_fast_pointlists {
    dds_fast_pointlist *items; /* in increasing series_index order */
    size_t count, capacity;
    void *slab; /* NULL, or a dds_big_alloc block of slab_cap bytes, slab_used of them taken */
    size_t slab_cap, slab_used;
} dds_fast_pointlists;

/*
 * Scan body (not modified) for the pointlists of root.series[*] and parse those that qualify.
 * Returns 0, or -1 when out of memory (out is then empty). A document that is not a well-formed
 * JSON object yields no items.
 */
int dds_fast_pointlists_scan(const char *body, size_t len, dds_fast_pointlists *out);

/* The envelope: a malloc'd, NUL-terminated copy of body[0..len) with each item's array text
 * replaced by "[]" (still valid JSON, and only a few kilobytes where body has megabytes), its
 * length in *env_len. NULL when out of memory. */
char *dds_fast_pointlists_envelope(const char *body, size_t len, const dds_fast_pointlists *pl,
                                   size_t *env_len);

/* The item for series_index, or NULL. Items are consumed in order: cursor starts at 0. */
dds_fast_pointlist *dds_fast_pointlists_take(dds_fast_pointlists *pl, size_t series_index,
                                             size_t *cursor);

/* The slab, which the caller now owns (free() it after the arrays in it), or NULL. */
void *dds_fast_pointlists_take_slab(dds_fast_pointlists *pl);

/* Free every array still owned by the items, the items and the slab. */
void dds_fast_pointlists_free(dds_fast_pointlists *pl);

#endif
