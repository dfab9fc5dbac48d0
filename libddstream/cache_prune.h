/* cache_prune.h — the chunk cache's directory as a whole: its size, and least-recently-used
 * eviction down to a bound. Safe against other processes pruning or writing at the same time. */
#ifndef DDSTREAM_CACHE_PRUNE_H
#define DDSTREAM_CACHE_PRUNE_H

#include <stdint.h>

#include "ddstream.h"

/* Temporary files older than this are left-overs of a writer that died: prune removes them. */
#define DDS_CACHE_STALE_TMP_S 3600

/*
 * Scan dir (a cache_dir: scope folders of 32 hex digits holding entries named by 64 hex digits)
 * and, when limit >= 0, delete the least recently used entries (oldest modification time first:
 * a hit touches its entry) until the entries left total at most limit bytes. Only names of that
 * shape are ever deleted (and stale temporary files), so a cache_dir pointed at a folder of other
 * files loses none of them. A file another process deleted or replaced meanwhile is skipped.
 * *entries and *bytes (either may be NULL) receive what is left. 0, or -1 with errno when dir
 * cannot be read (ENOENT: no cache yet, reported as empty with 0).
 */
int dds_cache_prune_dir(const char *dir, int64_t limit, int64_t *entries, int64_t *bytes);

/* Nonzero when name is n lower-case hex digits and nothing else. */
int dds_cache_hex_name(const char *name, size_t n);

#endif
