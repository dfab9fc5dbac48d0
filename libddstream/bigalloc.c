/* bigalloc.c — large buffers, and handing back the unused tail of a reused one (see bigalloc.h). */
#define _DEFAULT_SOURCE /* madvise, MADV_DONTNEED and MADV_HUGEPAGE, beyond POSIX */
#include "bigalloc.h"

#include <stdint.h>
#include <stdlib.h>
#if defined(__linux__)
#  include <sys/mman.h>
#endif

/* The size of a transparent huge page on x86-64 and most arm64 kernels. A buffer aligned to it
 * and a multiple of it long can be backed by huge pages from its first byte to its last. */
#define HUGE_PAGE ((size_t)2 << 20)

void *dds_big_alloc(size_t n) {
    if (n > SIZE_MAX - HUGE_PAGE) return NULL;
    if (n < DDS_BIG_ALLOC_MIN) return aligned_alloc(64, (n + 63) / 64 * 64);
    size_t len = (n + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *p = aligned_alloc(HUGE_PAGE, len);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    /* One fault per 2 MiB instead of per 4 KiB. Advice only: a kernel without transparent huge
     * pages, or with them set to "never", refuses it and the buffer works the same. */
    if (p) madvise(p, len, MADV_HUGEPAGE);
#endif
    return p;
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
