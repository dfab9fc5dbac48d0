/* bigalloc.h — memory for buffers of megabytes: the answer body, the batch.
 *
 * Writing a fresh buffer costs the kernel a page fault and the clearing of every 4 KiB page:
 * for one day of 200 hosts (a 30 MB body, 18 MB of points, a 13 MB batch) that was a third of
 * the CPU time. So buffers of megabytes are reused where their contents are dead (the body's
 * buffer holds the chunk's batch, see dds_batch_new_in), and the pages a reuse does not need
 * are handed back (dds_big_trim). Buffers of DDS_BIG_ALLOC_MIN and more are also aligned to
 * 2 MiB and advised onto transparent huge pages (madvise MADV_HUGEPAGE): one fault per 2 MiB
 * instead of 512, which with the answer's points in one such buffer (pointlist.h) took the
 * kernel's share of a large answer from about a third to about a seventh (docs/benchmarks.md).
 * Memory from dds_big_alloc is released with free(). */
#ifndef DDSTREAM_BIGALLOC_H
#define DDSTREAM_BIGALLOC_H

#include <stddef.h>

/* Buffers from this size on are the ones worth reusing rather than keeping or freeing. */
#define DDS_BIG_ALLOC_MIN ((size_t)4 << 20)

/* n bytes (n > 0), aligned to at least 64 bytes, uninitialised; NULL when out of memory. */
void *dds_big_alloc(size_t n);

/* p (cap bytes, from dds_big_alloc) is reused for something needing only its first used bytes:
 * hand the pages past them back to the system (they are never touched again; p stays one
 * block for free()). Advice only: where it is not available nothing happens. */
void dds_big_trim(void *p, size_t used, size_t cap);

#endif
