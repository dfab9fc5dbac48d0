/* cache_prune.c — scanning a cache_dir and evicting least recently used entries.
 *
 * No lock: every step tolerates a concurrent writer or pruner. An entry deleted under us is
 * skipped (ENOENT); an entry replaced under us (rename of a fresh copy) may be deleted although
 * it is new, which costs one refetch, never wrong data — readers check every entry they read. */
#include "cache_prune.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

typedef struct entry {
    char *path;
    int64_t bytes;
    struct timespec used; /* modification time: written, or touched by a hit */
} entry;

typedef struct entry_list {
    entry *v;
    size_t n, cap;
    int64_t bytes;
} entry_list;

int dds_cache_hex_name(const char *name, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'))) return 0;
    return name[n] == 0;
}

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* A writer's temporary file (chunk_cache.c: ".tmp-" then mkstemp's suffix). */
static int is_tmp_name(const char *name) { return strncmp(name, ".tmp-", 5) == 0; }

static int add_entry(entry_list *l, char *path, const struct stat *sb) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        entry *grown = realloc(l->v, cap * sizeof *grown);
        if (!grown) return -1;
        l->v = grown;
        l->cap = cap;
    }
    l->v[l->n].path = path;
    l->v[l->n].bytes = (int64_t)sb->st_size;
    l->v[l->n].used = sb->st_mtim;
    l->n++;
    l->bytes += (int64_t)sb->st_size;
    return 0;
}

static int scan_scope(const char *scope_dir, entry_list *l, time_t now) {
    DIR *d = opendir(scope_dir);
    if (!d) return errno == ENOENT ? 0 : -1; /* removed by a concurrent clear */
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        int tmp = is_tmp_name(de->d_name);
        if (!tmp && !dds_cache_hex_name(de->d_name, 64)) continue;
        char *path = join(scope_dir, de->d_name);
        if (!path) {
            rc = -1;
            break;
        }
        struct stat sb;
        if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            free(path);
            continue;
        }
        if (tmp) {
            if (now - sb.st_mtime > DDS_CACHE_STALE_TMP_S) unlink(path);
            free(path);
            continue;
        }
        if (add_entry(l, path, &sb) != 0) {
            free(path);
            rc = -1;
            break;
        }
    }
    closedir(d);
    return rc;
}

static int older_first(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->used.tv_sec != y->used.tv_sec) return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
    if (x->used.tv_nsec != y->used.tv_nsec) return x->used.tv_nsec < y->used.tv_nsec ? -1 : 1;
    return strcmp(x->path, y->path);
}

int dds_cache_prune_dir(const char *dir, int64_t limit, int64_t *entries, int64_t *bytes) {
    if (entries) *entries = 0;
    if (bytes) *bytes = 0;
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -1;
    entry_list l = {0};
    time_t now = time(NULL);
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!dds_cache_hex_name(de->d_name, 32)) continue;
        char *scope = join(dir, de->d_name);
        if (!scope) rc = -1;
        else {
            struct stat sb;
            if (lstat(scope, &sb) == 0 && S_ISDIR(sb.st_mode)) rc = scan_scope(scope, &l, now);
            free(scope);
        }
    }
    int saved = errno;
    closedir(d);
    if (rc == 0 && limit >= 0 && l.bytes > limit) {
        qsort(l.v, l.n, sizeof *l.v, older_first);
        for (size_t i = 0; i < l.n && l.bytes > limit; i++) {
            if (unlink(l.v[i].path) != 0 && errno != ENOENT) continue; /* not ours to delete */
            l.bytes -= l.v[i].bytes;
            l.v[i].bytes = -1; /* gone */
        }
    }
    int64_t left = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (l.v[i].bytes >= 0) left++;
        free(l.v[i].path);
    }
    free(l.v);
    if (rc != 0) {
        errno = saved ? saved : ENOMEM;
        return -1;
    }
    if (entries) *entries = left;
    if (bytes) *bytes = l.bytes;
    return 0;
}

DDSTREAM_API ddstream_status ddstream_cache_prune(const char *cache_dir, int64_t max_bytes,
                                                  int64_t *entries, int64_t *bytes,
                                                  ddstream_error *err) {
    if (entries) *entries = 0;
    if (bytes) *bytes = 0;
    if (!cache_dir || !*cache_dir)
        return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "cache_dir is NULL or empty");
    if (dds_cache_prune_dir(cache_dir, max_bytes, entries, bytes) != 0)
        return dds_error_set(err, errno == ENOMEM ? DDSTREAM_E_NOMEM : DDSTREAM_E_CONFIG,
                             "cache_dir '%.200s' cannot be read: %s", cache_dir, strerror(errno));
    return DDSTREAM_OK;
}
