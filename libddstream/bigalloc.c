/* bigalloc.c — large buffers, and handing back the unused tail of a reused one (see bigalloc.h). */
#define _DEFAULT_SOURCE /* madvise and MADV_DONTNEED, beyond POSIX */
#include "bigalloc.h"

#include <stdint.h>
#include <stdlib.h>
#if defined(__linux__)
#  include <sys/mman.h>
#endif

void *dds_big_alloc(size_t n) {
    if (n > SIZE_MAX - 63) return NULL;
    return aligned_alloc(64, (n + 63) / 64 * 64);
}

void dds_big_trim(void *p, size_t used, size_t cap) {
#if defined(__linux__) && defined(MADV_DONTNEED)
    const size_t page = 4096;
    uintptr_t from = ((uintptr_t)p + used + page - 1) / page * page;
    uintptr_t to = ((uintptr_t)p + cap) / page * page;
    if (to > from) madvise((void *)from, to - from, MADV_DONTNEED);
#else
    (void)p;
    (void)used;
    (void)cap;
#endif
}
