/* chunk_cache.c — the persistent chunk cache of a stream (see chunk_cache.h and, for users,
 * include/ddstream.h). One per stream, shared by its fetcher threads: everything in it is fixed
 * at creation but two atomic counters, and the files are shared with any other stream or process
 * using the same folder. No lock anywhere: writes are a rename of a finished file, reads check
 * what they read, and pruning tolerates everyone else. */
#include "chunk_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache_entry.h"
#include "cache_prune.h"
#include "error.h"
#include "follow.h"

/* Scope: the first 16 bytes of SHA-256(this label, NUL, the API key), as 32 hex digits. */
#define SCOPE_LABEL "ddstream chunk cache scope v1"
#define KEY_LABEL   "ddstream chunk cache key v1"
#define SCOPE_BYTES 16

struct dds_chunk_cache {
    char *dir;
    char *scope_dir;
    char *base_url;
    uint8_t scope[DDS_SHA256_BYTES]; /* the whole digest goes into every key */
    int64_t max_bytes, settle_s;
    const dds_settings *clock; /* the stream's settings, for its "now" (now_fn); NULL: time() */
    size_t max_body;
    dds_log *log;
    atomic_int_fast64_t approx_bytes; /* the folder's size as last scanned plus writes since; -1:
                                         not scanned yet */
    atomic_int_fast64_t writes_since_scan;
    atomic_int pruning; /* one thread of this cache prunes at a time (others skip) */
};

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* mkdir -p with mode 0700 for what it creates: the cache holds an organisation's data. */
static int make_dirs(const char *path) {
    char *p = strdup(path);
    if (!p) return -1;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != 0) continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            int e = errno;
            free(p);
            errno = e;
            return -1;
        }
        *s = c;
        if (c == 0) break;
    }
    free(p);
    struct stat sb;
    if (stat(path, &sb) != 0) return -1;
    if (!S_ISDIR(sb.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* CACHEDIR.TAG (bford.ch/cachedir): backup tools that honour it skip the folder. Best effort. */
static void write_cachedir_tag(const char *dir) {
    char *path = join(dir, "CACHEDIR.TAG");
    if (!path) return;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        static const char tag[] =
            "Signature: 8a477f597d28d172789f06886806bc55\n"
            "# This file is a cache tag created by ddstream (chunk cache).\n";
        ssize_t w = write(fd, tag, sizeof tag - 1);
        (void)w;
        close(fd);
    }
    free(path);
}

dds_chunk_cache *dds_chunk_cache_new(const char *dir, const char *base_url, const char *api_key,
                                     int64_t max_bytes, int64_t settle_s, dds_log *log,
                                     ddstream_error *err) {
    dds_chunk_cache *c = calloc(1, sizeof *c);
    if (!c) {
        dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory opening the chunk cache");
        return NULL;
    }
    dds_sha256 h;
    dds_sha256_init(&h);
    dds_sha256_update(&h, SCOPE_LABEL, sizeof SCOPE_LABEL); /* with its NUL: a separator */
    dds_sha256_update(&h, api_key, strlen(api_key));
    dds_sha256_final(&h, c->scope);
    char scope_hex[2 * SCOPE_BYTES + 1];
    dds_hex(c->scope, SCOPE_BYTES, scope_hex);
    c->dir = strdup(dir);
    c->base_url = strdup(base_url);
    c->scope_dir = join(dir, scope_hex);
    if (!c->dir || !c->base_url || !c->scope_dir) {
        dds_chunk_cache_free(c);
        dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory opening the chunk cache");
        return NULL;
    }
    c->max_bytes = max_bytes;
    c->settle_s = settle_s;
    c->max_body = SIZE_MAX;
    c->log = log;
    atomic_init(&c->approx_bytes, -1);
    atomic_init(&c->writes_since_scan, 0);
    atomic_init(&c->pruning, 0);
    int fresh = access(dir, F_OK) != 0;
    if (make_dirs(c->scope_dir) != 0 || access(c->scope_dir, W_OK | X_OK) != 0) {
        dds_error_set(err, DDSTREAM_E_CONFIG,
                      "cache_dir '%.200s' cannot be used: %s (set another cache_dir, or none "
                      "to run without the cache)",
                      dir, strerror(errno));
        dds_chunk_cache_free(c);
        return NULL;
    }
    if (fresh) write_cachedir_tag(dir);
    /* Kept absolute: the fetchers write long after open, and the process may chdir meanwhile. */
    char cwd[4096];
    char *abs_dir = dir[0] == '/' ? NULL : getcwd(cwd, sizeof cwd) ? join(cwd, dir) : NULL;
    char *abs_scope = abs_dir ? join(abs_dir, scope_hex) : NULL;
    if (abs_scope) {
        free(c->dir);
        free(c->scope_dir);
        c->dir = abs_dir;
        c->scope_dir = abs_scope;
    } else {
        free(abs_dir);
    }
    return c;
}

ddstream_status dds_chunk_cache_open(const dds_settings *s, dds_log *log, dds_chunk_cache **out,
                                     ddstream_error *err) {
    *out = NULL;
    if (!s->cache_dir) return DDSTREAM_OK;
    dds_chunk_cache *c = dds_chunk_cache_new(s->cache_dir, s->base_url, s->api_key,
                                             s->cache_max_bytes, s->settle_s, log, err);
    if (!c) return err ? err->status : DDSTREAM_E_CONFIG;
    c->clock = s;
    c->max_body = (uint64_t)s->max_body_bytes > SIZE_MAX ? SIZE_MAX : (size_t)s->max_body_bytes;
    *out = c;
    return DDSTREAM_OK;
}

void dds_chunk_cache_free(dds_chunk_cache *c) {
    if (!c) return;
    free(c->dir);
    free(c->scope_dir);
    free(c->base_url);
    free(c);
}

/* Each field length-prefixed, so no two requests hash the same bytes. */
static void hash_field(dds_sha256 *h, const void *data, size_t len) {
    uint8_t n[8];
    for (int i = 0; i < 8; i++) n[i] = (uint8_t)((uint64_t)len >> (8 * i));
    dds_sha256_update(h, n, sizeof n);
    if (len > 0) dds_sha256_update(h, data, len);
}

void dds_chunk_cache_key(const dds_chunk_cache *c, const char *method, const char *path_query,
                         const void *body, size_t body_len, uint8_t key[DDS_SHA256_BYTES]) {
    dds_sha256 h;
    dds_sha256_init(&h);
    hash_field(&h, KEY_LABEL, sizeof KEY_LABEL - 1);
    hash_field(&h, c->scope, sizeof c->scope);
    hash_field(&h, c->base_url, strlen(c->base_url));
    hash_field(&h, method, strlen(method));
    hash_field(&h, path_query, strlen(path_query));
    hash_field(&h, body, body ? body_len : 0);
    dds_sha256_final(&h, key);
}

int dds_chunk_cache_settled(const dds_chunk_cache *c, int64_t end_s, int64_t now_s) {
    return end_s <= now_s - c->settle_s;
}

static char *entry_path(const dds_chunk_cache *c, const uint8_t key[DDS_SHA256_BYTES]) {
    char name[2 * DDS_SHA256_BYTES + 1];
    dds_hex(key, DDS_SHA256_BYTES, name);
    return join(c->scope_dir, name);
}

/* The whole file, or NULL (errno ENOENT for none; EFBIG for one too large to be an entry). */
static uint8_t *read_file(int fd, size_t limit, size_t *len) {
    struct stat sb;
    if (fstat(fd, &sb) != 0) return NULL;
    if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > limit) {
        errno = EFBIG;
        return NULL;
    }
    size_t n = (size_t)sb.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return NULL;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break; /* shorter than fstat said: checked as it is */
        got += (size_t)r;
    }
    *len = got;
    return buf;
}

int dds_chunk_cache_lookup(dds_chunk_cache *c, const uint8_t key[DDS_SHA256_BYTES], size_t max_len,
                           char **body, size_t *len) {
    *body = NULL;
    *len = 0;
    char *path = entry_path(c, key);
    if (!path) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno != ENOENT)
            dds_logf(c->log, DDSTREAM_LOG_WARN, "chunk cache: cannot open %s: %s (a miss)", path,
                     strerror(errno));
        free(path);
        return 0;
    }
    /* An entry is its header plus a deflated body no larger than the body itself. */
    size_t limit = max_len > SIZE_MAX - DDS_CACHE_HEADER_BYTES - 1
                       ? SIZE_MAX
                       : max_len + DDS_CACHE_HEADER_BYTES;
    size_t file_len = 0;
    uint8_t *file = read_file(fd, limit, &file_len);
    int hit = 0;
    char msg[200];
    if (!file) {
        if (errno == EFBIG)
            dds_logf(c->log, DDSTREAM_LOG_DEBUG,
                     "chunk cache: %s is larger than max_body_bytes allows (a miss)", path);
        else
            dds_logf(c->log, DDSTREAM_LOG_WARN, "chunk cache: cannot read %s: %s (a miss)", path,
                     strerror(errno));
    } else {
        dds_entry_result r =
            dds_cache_entry_decode(key, file, file_len, max_len, body, len, msg, sizeof msg);
        if (r == DDS_ENTRY_OK) {
            hit = 1;
            futimens(fd, NULL); /* its last use: eviction drops the least recently used first */
        } else if (r == DDS_ENTRY_TOO_LARGE || r == DDS_ENTRY_NOMEM) {
            dds_logf(c->log, DDSTREAM_LOG_DEBUG, "chunk cache: %s: %s (a miss)", path, msg);
        } else {
            dds_logf(c->log, DDSTREAM_LOG_WARN,
                     "chunk cache: %s is not a valid entry (%s): a miss, fetched again and "
                     "replaced",
                     path, msg);
        }
        free(file);
    }
    close(fd);
    free(path);
    return hit;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Scan (and prune) when this cache's estimate passes the bound, at its first write (nothing is
 * known of the folder before), and every DDS_CACHE_RESCAN_WRITES writes for what other
 * processes add. Pruning goes down to 90 % of the bound, so the next scan is not due at once. */
static void maybe_prune(dds_chunk_cache *c, int64_t added) {
    int64_t before = atomic_fetch_add(&c->approx_bytes, added);
    int64_t writes = atomic_fetch_add(&c->writes_since_scan, 1) + 1;
    if (before >= 0 && before + added <= c->max_bytes && writes < DDS_CACHE_RESCAN_WRITES) return;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&c->pruning, &expected, 1)) return;
    int64_t left = 0;
    int64_t target = c->max_bytes - c->max_bytes / 10;
    if (dds_cache_prune_dir(c->dir, -1, NULL, &left) == 0 && left > c->max_bytes)
        dds_cache_prune_dir(c->dir, target, NULL, &left);
    atomic_store(&c->approx_bytes, left);
    atomic_store(&c->writes_since_scan, 0);
    atomic_store(&c->pruning, 0);
}

/* Put an encoded entry (taken over: freed here) in place under key. */
static void store_file(dds_chunk_cache *c, const uint8_t key[DDS_SHA256_BYTES], uint8_t *file,
                       size_t file_len) {
    char *path = entry_path(c, key);
    char *tmp = join(c->scope_dir, ".tmp-XXXXXX");
    if (!path || !tmp) {
        dds_logf(c->log, DDSTREAM_LOG_WARN, "chunk cache: out of memory storing an answer");
        goto done;
    }
    int fd = mkstemp(tmp); /* unique in the folder, mode 0600 */
    if (fd < 0) {
        /* The folder may have been removed while the stream ran (rm -rf): make it again. */
        if (errno == ENOENT && make_dirs(c->scope_dir) == 0) {
            memcpy(tmp + strlen(tmp) - 6, "XXXXXX", 6); /* a failed mkstemp may leave it changed */
            fd = mkstemp(tmp);
        }
        if (fd < 0) {
            dds_logf(c->log, DDSTREAM_LOG_WARN, "chunk cache: cannot create a file in %s: %s",
                     c->scope_dir, strerror(errno));
            goto done;
        }
    }
    int ok = write_all(fd, file, file_len) == 0;
    int saved = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    /* rename replaces any entry there at once: a reader has the old file or the new, whole. */
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        saved = errno;
    }
    if (!ok) {
        unlink(tmp);
        dds_logf(c->log, DDSTREAM_LOG_WARN, "chunk cache: cannot write %s: %s", path,
                 strerror(saved));
        goto done;
    }
    maybe_prune(c, (int64_t)file_len);
done:
    free(file);
    free(path);
    free(tmp);
}

/* The entry for an answer, or NULL (logged) when there is no memory for it. */
static uint8_t *encode(dds_chunk_cache *c, const uint8_t key[DDS_SHA256_BYTES], const char *body,
                       size_t len, size_t *file_len) {
    uint8_t *file = NULL;
    if (dds_cache_entry_encode(key, body, len, (int64_t)time(NULL), &file, file_len) ==
        DDS_ENTRY_OK)
        return file;
    dds_logf(c->log, DDSTREAM_LOG_WARN, "chunk cache: out of memory storing an answer");
    return NULL;
}

void dds_chunk_cache_store(dds_chunk_cache *c, const uint8_t key[DDS_SHA256_BYTES],
                           const char *body, size_t len) {
    size_t file_len = 0;
    uint8_t *file = encode(c, key, body, len, &file_len);
    if (file) store_file(c, key, file, file_len);
}

typedef struct store_reader {
    dds_chunk_cache *c;
    const uint8_t *key;
    dds_body_reader read;
    void *arg;
} store_reader;

/* Read the answer, and keep it when the reader accepted it. The entry is encoded before read
 * runs, as read may change the body in place (fetch.h allows it). */
static ddstream_status read_and_store(void *arg, char *data, size_t len, ddstream_error *err) {
    store_reader *t = arg;
    size_t file_len = 0;
    uint8_t *file = encode(t->c, t->key, data, len, &file_len);
    ddstream_status st = t->read(t->arg, data, len, err);
    if (st == DDSTREAM_OK && file) store_file(t->c, t->key, file, file_len);
    else free(file);
    return st;
}

/* The request as sent: a GET when body is NULL, else a POST of body (with both keys). */
static ddstream_status send_read(dds_http *h, const char *path, const char *body, size_t body_len,
                                 int send_app_key, dds_body_reader read, void *arg,
                                 ddstream_error *err) {
    if (body) return dds_http_post_read(h, path, body, body_len, read, arg, err);
    return dds_http_get_read(h, path, send_app_key, read, arg, err);
}

ddstream_status dds_cache_read(dds_chunk_cache *c, dds_http *h, const char *path, const char *body,
                               size_t body_len, int send_app_key, int64_t data_end_s,
                               dds_body_reader read, void *arg, ddstream_error *err) {
    int from_cache = 0;
    return dds_cache_read_counted(c, h, path, body, body_len, send_app_key, data_end_s, read, arg,
                                  &from_cache, err);
}

ddstream_status dds_cache_read_counted(dds_chunk_cache *c, dds_http *h, const char *path,
                                       const char *body, size_t body_len, int send_app_key,
                                       int64_t data_end_s, dds_body_reader read, void *arg,
                                       int *from_cache, ddstream_error *err) {
    *from_cache = 0;
    if (!c) return send_read(h, path, body, body_len, send_app_key, read, arg, err);
    /* Settled by the stream's clock: a replayed or simulated one (now_fn) decides here too. */
    int64_t now_s = c->clock ? dds_follow_now_ms(c->clock) / 1000 : (int64_t)time(NULL);
    if (!dds_chunk_cache_settled(c, data_end_s, now_s))
        return send_read(h, path, body, body_len, send_app_key, read, arg, err);
    uint8_t key[DDS_SHA256_BYTES];
    dds_chunk_cache_key(c, body ? "POST" : "GET", path, body, body_len, key);
    char *stored = NULL;
    size_t len = 0;
    if (dds_chunk_cache_lookup(c, key, c->max_body, &stored, &len)) {
        ddstream_status st = read(arg, stored, len, err);
        free(stored);
        if (st == DDSTREAM_OK) {
            *from_cache = 1;
            return st;
        }
        /* A whole entry this reader refuses (written by a version that read answers otherwise):
         * fetched again, and the answer replaces it. */
        dds_logf(c->log, DDSTREAM_LOG_WARN,
                 "chunk cache: a stored answer was refused (%s): fetching it again",
                 ddstream_status_str(st));
    }
    store_reader t = {c, key, read, arg};
    return send_read(h, path, body, body_len, send_app_key, read_and_store, &t, err);
}
