/* bigalloc.c — large buffers, backed by huge pages where asked for (see bigalloc.h). */
#define _DEFAULT_SOURCE /* madvise and MADV_HUGEPAGE, beyond POSIX */
#include "bigalloc.h"

#include <stdint.h>
#include <stdlib.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define HUGE_PAGE ((size_t)2 << 20)

void *dds_big_alloc(size_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (n >= DDS_BIG_ALLOC_MIN && n <= SIZE_MAX - HUGE_PAGE) {
        /* Whole huge pages, aligned on one: the kernel can back every one of them. */
        size_t size = (n + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
        void *p = aligned_alloc(HUGE_PAGE, size);
        if (p) madvise(p, size, MADV_HUGEPAGE); /* advice only: a refusal changes nothing */
        return p;
    }
#endif
    return aligned_alloc(64, (n + 63) / 64 * 64);
}
