/* bigalloc.h — memory for buffers of megabytes: the answer body, the points, the batch.
 *
 * Writing a fresh buffer costs a page fault per 4 KiB page: for one day of 200 hosts (a 30 MB
 * body, 18 MB of points, a 13 MB batch) some 15,000 faults, a third of the CPU time. Where the
 * kernel offers transparent huge pages on request (Linux's "madvise" mode, a common default),
 * a buffer of several megabytes asks for them, and takes one fault per 2 MiB instead. Elsewhere
 * this is plain malloc. Memory from dds_big_alloc is released with free(). */
#ifndef DDSTREAM_BIGALLOC_H
#define DDSTREAM_BIGALLOC_H

#include <stddef.h>

/* Buffers from this size on are backed by huge pages when the system allows it. */
#define DDS_BIG_ALLOC_MIN ((size_t)4 << 20)

/* n bytes (n > 0), aligned to at least 64 bytes, uninitialised; NULL when out of memory. */
void *dds_big_alloc(size_t n);

#endif
