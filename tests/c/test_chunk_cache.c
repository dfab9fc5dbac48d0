/*
 * test_chunk_cache.c — the chunk cache without a server: SHA-256 against the standard's examples,
 * the entry format against every truncation and every flipped bit, keys and scopes, lookups and
 * stores in a real folder (corrupt entries are logged misses that a store replaces), eviction of
 * the least recently used, many threads and several processes writing the same entries at once,
 * and a folder that cannot be used.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache_entry.h"
#include "cache_prune.h"
#include "check.h"
#include "chunk_cache.h"
#include "log.h"
#include "sha256.h"

static void hex_of(const char *text, size_t len, char out[65]) {
    uint8_t d[DDS_SHA256_BYTES];
    dds_sha256_digest(text, len, d);
    dds_hex(d, sizeof d, out);
}

static void test_sha256(void) {
    char hex[65];
    /* FIPS 180-4's examples (NIST CSRC "SHA256.pdf", "SHA256_2.pdf") and the empty message. */
    hex_of("", 0, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(two, strlen(two), hex);
    CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* A million 'a', fed in uneven pieces: block boundaries fall inside updates. */
    char piece[997];
    memset(piece, 'a', sizeof piece);
    dds_sha256 c;
    dds_sha256_init(&c);
    size_t left = 1000000;
    for (size_t n = 1; left > 0; n = n % sizeof piece + 7) {
        size_t take = n < left ? n : left;
        if (take > sizeof piece) take = sizeof piece;
        dds_sha256_update(&c, piece, take);
        left -= take;
    }
    uint8_t d[DDS_SHA256_BYTES];
    dds_sha256_final(&c, d);
    dds_hex(d, sizeof d, hex);
    CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* Lengths around the padding boundary (55, 56, 63, 64 bytes) as one update and byte by byte. */
    for (size_t n = 50; n < 70; n++) {
        char buf[70];
        for (size_t i = 0; i < n; i++) buf[i] = (char)('A' + i % 26);
        uint8_t one[32], bytes[32];
        dds_sha256_digest(buf, n, one);
        dds_sha256_init(&c);
        for (size_t i = 0; i < n; i++) dds_sha256_update(&c, buf + i, 1);
        dds_sha256_final(&c, bytes);
        CHECK_MSG(memcmp(one, bytes, 32) == 0, "length %zu: pieces differ from one update", n);
    }
}

static uint8_t key_a[32], key_b[32];

static char *json_text(size_t n) {
    char *t = malloc(n + 1);
    for (size_t i = 0; i < n; i++) t[i] = "[1700000000.0, 0.25],"[i % 21];
    t[n] = 0;
    return t;
}

static void test_entry_format(void) {
    memset(key_a, 0xa1, sizeof key_a);
    memset(key_b, 0xb2, sizeof key_b);
    size_t n = 5000;
    char *text = json_text(n);
    uint8_t *file = NULL;
    size_t file_len = 0;
    CHECK_INT(dds_cache_entry_encode(key_a, text, n, 1234, &file, &file_len), DDS_ENTRY_OK);
    CHECK(file_len < n / 2); /* deflated */
    CHECK(memcmp(file, "DDSCACHE", 8) == 0);
    char *body = NULL;
    size_t len = 0;
    char msg[200];
    CHECK_INT(dds_cache_entry_decode(key_a, file, file_len, n, &body, &len, msg, sizeof msg),
              DDS_ENTRY_OK);
    CHECK_INT(len, n);
    CHECK(body && memcmp(body, text, n) == 0 && body[n] == 0);
    free(body);

    /* Another key's entry, a body over the limit. */
    CHECK_INT(dds_cache_entry_decode(key_b, file, file_len, n, &body, &len, msg, sizeof msg),
              DDS_ENTRY_CORRUPT);
    CHECK_CONTAINS(msg, "another request");
    CHECK_INT(dds_cache_entry_decode(key_a, file, file_len, n - 1, &body, &len, msg, sizeof msg),
              DDS_ENTRY_TOO_LARGE);
    CHECK(body == NULL);

    /* Every truncation, zero length included, is refused. */
    int refused = 0;
    for (size_t cut = 0; cut < file_len; cut++) {
        dds_entry_result r =
            dds_cache_entry_decode(key_a, file, cut, n, &body, &len, msg, sizeof msg);
        refused += r == DDS_ENTRY_CORRUPT && body == NULL;
    }
    CHECK_INT(refused, file_len);
    CHECK_INT(dds_cache_entry_decode(key_a, file, 0, n, &body, &len, msg, sizeof msg),
              DDS_ENTRY_CORRUPT);
    CHECK_CONTAINS(msg, "empty");

    /* Every single flipped bit anywhere in the file is refused (the header's CRC, the body's
     * CRC, deflate's own checks), or gives the very same body: the unused padding bits after
     * deflate's last block (at most 7) carry nothing. */
    refused = 0;
    size_t tried = 0, same = 0;
    for (size_t i = 0; i < file_len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            file[i] ^= (uint8_t)(1u << bit);
            dds_entry_result r =
                dds_cache_entry_decode(key_a, file, file_len, n, &body, &len, msg, sizeof msg);
            file[i] ^= (uint8_t)(1u << bit);
            tried++;
            if (r == DDS_ENTRY_OK) {
                same += len == n && memcmp(body, text, n) == 0;
                free(body);
            } else {
                refused++;
            }
        }
    }
    CHECK_INT(refused + same, tried);
    CHECK(same <= 7);

    /* Another format version is told apart from corruption. */
    file[8] = 2;
    CHECK_INT(dds_cache_entry_decode(key_a, file, file_len, n, &body, &len, msg, sizeof msg),
              DDS_ENTRY_VERSION);
    CHECK_CONTAINS(msg, "format version 2");
    free(file);

    /* Incompressible and empty bodies are stored as they are. */
    char noise[300];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof noise; i++) {
        x = x * 1103515245u + 12345u;
        noise[i] = (char)(x >> 16);
    }
    CHECK_INT(dds_cache_entry_encode(key_a, noise, sizeof noise, 1, &file, &file_len),
              DDS_ENTRY_OK);
    CHECK_INT(file_len, DDS_CACHE_HEADER_BYTES + sizeof noise);
    CHECK_INT(dds_cache_entry_decode(key_a, file, file_len, 1000, &body, &len, msg, sizeof msg),
              DDS_ENTRY_OK);
    CHECK(len == sizeof noise && memcmp(body, noise, len) == 0);
    free(body);
    free(file);
    CHECK_INT(dds_cache_entry_encode(key_a, "", 0, 1, &file, &file_len), DDS_ENTRY_OK);
    CHECK_INT(dds_cache_entry_decode(key_a, file, file_len, 10, &body, &len, msg, sizeof msg),
              DDS_ENTRY_OK);
    CHECK_INT(len, 0);
    free(body);
    free(file);
    free(text);
}

/* ---- a real folder ---- */

typedef struct captured {
    pthread_mutex_t mu;
    int warns;
    char last[512];
} captured;

static void capture(void *user, int32_t level, const char *message) {
    captured *c = user;
    pthread_mutex_lock(&c->mu);
    if (level == DDSTREAM_LOG_WARN) {
        c->warns++;
        snprintf(c->last, sizeof c->last, "%s", message);
    }
    pthread_mutex_unlock(&c->mu);
}

static char root[256];
static const char *API_KEY = "0123456789abcdef0123456789abcdef";
static const char *OTHER_KEY = "fedcba9876543210fedcba9876543210";

static char *path_in(const char *a, const char *b) {
    char *p = malloc(strlen(a) + strlen(b) + 2);
    sprintf(p, "%s/%s", a, b);
    return p;
}

static int rm_rf(const char *path) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    return system(cmd);
}

static int64_t file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

static char *entry_file(const char *dir, const char *api_key, const uint8_t key[32]) {
    uint8_t scope[32];
    dds_sha256 h;
    dds_sha256_init(&h);
    dds_sha256_update(&h, "ddstream chunk cache scope v1", 30); /* label and its NUL */
    dds_sha256_update(&h, api_key, strlen(api_key));
    dds_sha256_final(&h, scope);
    char scope_hex[33], name[65], rel[100];
    dds_hex(scope, 16, scope_hex);
    dds_hex(key, 32, name);
    snprintf(rel, sizeof rel, "%s/%s", scope_hex, name);
    return path_in(dir, rel);
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    if (n) CHECK_INT(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void test_keys_and_scopes(dds_log *log) {
    char *dir = path_in(root, "keys");
    ddstream_error err;
    dds_chunk_cache *a =
        dds_chunk_cache_new(dir, "http://127.0.0.1:1", API_KEY, 1 << 20, 300, log, &err);
    dds_chunk_cache *b =
        dds_chunk_cache_new(dir, "http://127.0.0.1:1", OTHER_KEY, 1 << 20, 300, log, &err);
    dds_chunk_cache *c =
        dds_chunk_cache_new(dir, "http://127.0.0.1:2", API_KEY, 1 << 20, 300, log, &err);
    CHECK(a && b && c);
    uint8_t k1[32], k2[32], k3[32], k4[32], k5[32], k6[32];
    dds_chunk_cache_key(a, "GET", "/api/v1/query?from=0&to=59&query=x", NULL, 0, k1);
    dds_chunk_cache_key(b, "GET", "/api/v1/query?from=0&to=59&query=x", NULL, 0, k2);
    dds_chunk_cache_key(c, "GET", "/api/v1/query?from=0&to=59&query=x", NULL, 0, k3);
    dds_chunk_cache_key(a, "GET", "/api/v1/query?from=0&to=60&query=x", NULL, 0, k4);
    dds_chunk_cache_key(a, "POST", "/api/v1/query?from=0&to=59&query=x", NULL, 0, k5);
    dds_chunk_cache_key(a, "POST", "/api/v1/query?from=0&to=59&query=x", "{}", 2, k6);
    const uint8_t *all[] = {k1, k2, k3, k4, k5, k6};
    for (int i = 0; i < 6; i++)
        for (int j = i + 1; j < 6; j++)
            CHECK_MSG(memcmp(all[i], all[j], 32) != 0, "keys %d, %d", i, j);
    uint8_t again[32];
    dds_chunk_cache_key(a, "GET", "/api/v1/query?from=0&to=59&query=x", NULL, 0, again);
    CHECK(memcmp(again, k1, 32) == 0);

    /* Stored under one API key, missed under another, though the request is the same. */
    dds_chunk_cache_store(a, k1, "{\"series\":[]}", 13);
    char *body = NULL;
    size_t len = 0;
    CHECK_INT(dds_chunk_cache_lookup(a, k1, 1000, &body, &len), 1);
    CHECK(len == 13 && strcmp(body, "{\"series\":[]}") == 0);
    free(body);
    CHECK_INT(dds_chunk_cache_lookup(b, k1, 1000, &body, &len), 0);
    CHECK_INT(dds_chunk_cache_lookup(b, k2, 1000, &body, &len), 0);
    /* Nothing on disk names the key. */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "grep -rq '%s' '%s'", API_KEY, dir);
    CHECK(system(cmd) != 0);
    snprintf(cmd, sizeof cmd, "ls -R '%s' | grep -q '%s'", dir, API_KEY);
    CHECK(system(cmd) != 0);

    /* Settled: the end at least settle_s before now. */
    CHECK(dds_chunk_cache_settled(a, 1000, 1300));
    CHECK(!dds_chunk_cache_settled(a, 1001, 1300));

    /* The folder is private, and tagged for backup tools. */
    struct stat sb;
    CHECK(stat(dir, &sb) == 0 && (sb.st_mode & 077) == 0);
    char *tag = path_in(dir, "CACHEDIR.TAG");
    CHECK(file_size(tag) > 0);
    free(tag);
    dds_chunk_cache_free(a);
    dds_chunk_cache_free(b);
    dds_chunk_cache_free(c);
    free(dir);
}

static void test_bad_entries(dds_log *log, captured *cap) {
    char *dir = path_in(root, "bad");
    ddstream_error err;
    dds_chunk_cache *c =
        dds_chunk_cache_new(dir, "http://127.0.0.1:1", API_KEY, 1 << 20, 300, log, &err);
    CHECK(c != NULL);
    uint8_t key[32];
    dds_chunk_cache_key(c, "GET", "/q?bad", NULL, 0, key);
    char *path = entry_file(dir, API_KEY, key);
    char *text = json_text(4000);
    uint8_t *good = NULL;
    size_t good_len = 0;
    CHECK_INT(dds_cache_entry_encode(key, text, 4000, 1, &good, &good_len), DDS_ENTRY_OK);

    /* Zero-length, truncated, corrupt, another version: each a miss logged at WARN (naming no
     * key), then replaced by a store and a hit again. */
    uint8_t *bad = malloc(good_len);
    const char *cases[] = {"empty", "truncated", "corrupt", "version"};
    for (int i = 0; i < 4; i++) {
        memcpy(bad, good, good_len);
        size_t n = good_len;
        if (i == 0) n = 0;
        if (i == 1) n = good_len - 10;
        if (i == 2) bad[good_len - 5] ^= 0x40;
        if (i == 3) bad[8] = 7;
        write_bytes(path, bad, n);
        int warns = cap->warns;
        char *body = NULL;
        size_t len = 0;
        CHECK_MSG(dds_chunk_cache_lookup(c, key, 1 << 20, &body, &len) == 0, "%s: a hit", cases[i]);
        CHECK_MSG(cap->warns == warns + 1, "%s: %d warnings", cases[i], cap->warns - warns);
        CHECK_CONTAINS(cap->last, "not a valid entry");
        CHECK(strstr(cap->last, API_KEY) == NULL);
        dds_chunk_cache_store(c, key, text, 4000);
        CHECK_MSG(dds_chunk_cache_lookup(c, key, 1 << 20, &body, &len) == 1, "%s: not replaced",
                  cases[i]);
        CHECK(len == 4000 && memcmp(body, text, 4000) == 0);
        free(body);
        CHECK_INT(cap->warns, warns + 1);
    }
    free(bad);
    free(good);
    free(text);
    free(path);
    dds_chunk_cache_free(c);
    free(dir);
}

static void set_mtime(const char *path, time_t t) {
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
}

static void test_eviction(dds_log *log) {
    char *dir = path_in(root, "lru");
    ddstream_error err;
    /* Ten entries of ~1000 bytes (incompressible, so their size is known). */
    dds_chunk_cache *c =
        dds_chunk_cache_new(dir, "http://127.0.0.1:1", API_KEY, 1 << 30, 300, log, &err);
    CHECK(c != NULL);
    uint8_t keys[10][32];
    char *paths[10];
    char noise[1000];
    uint32_t x = 99;
    time_t now = time(NULL);
    for (int i = 0; i < 10; i++) {
        for (size_t j = 0; j < sizeof noise; j++) {
            x = x * 1103515245u + 12345u;
            noise[j] = (char)(x >> 16);
        }
        char pq[32];
        snprintf(pq, sizeof pq, "/q?%d", i);
        dds_chunk_cache_key(c, "GET", pq, NULL, 0, keys[i]);
        dds_chunk_cache_store(c, keys[i], noise, sizeof noise);
        paths[i] = entry_file(dir, API_KEY, keys[i]);
        CHECK_INT(file_size(paths[i]), DDS_CACHE_HEADER_BYTES + sizeof noise);
        set_mtime(paths[i], now - 1000 + i); /* entry 0 the least recently used */
    }
    /* A hit on entries 0 and 1 makes them the most recently used. */
    for (int i = 0; i < 2; i++) {
        char *body = NULL;
        size_t len = 0;
        CHECK_INT(dds_chunk_cache_lookup(c, keys[i], 1 << 20, &body, &len), 1);
        free(body);
    }
    /* Files that are not entries are never deleted. */
    char *other = path_in(dir, "notes.txt");
    write_bytes(other, "keep me", 7);

    int64_t entries = 0, bytes = 0;
    CHECK_INT(dds_cache_prune_dir(dir, -1, &entries, &bytes), 0);
    CHECK_INT(entries, 10);
    CHECK_INT(bytes, 10 * 1088);
    /* Down to 5 entries' worth: 2..6 (the oldest by use) go, 0, 1 and 7..9 stay. */
    CHECK_INT(dds_cache_prune_dir(dir, 5 * 1088, &entries, &bytes), 0);
    CHECK_INT(entries, 5);
    CHECK(bytes <= 5 * 1088);
    for (int i = 0; i < 10; i++) {
        int kept = i < 2 || i >= 7;
        CHECK_MSG((file_size(paths[i]) > 0) == kept, "entry %d %s", i, kept ? "lost" : "kept");
    }
    CHECK_INT(file_size(other), 7);
    /* A stale temporary file (a writer that died) goes; a fresh one (a writer at work) stays. */
    char scope_dir[400];
    snprintf(scope_dir, sizeof scope_dir, "%s", paths[0]);
    *strrchr(scope_dir, '/') = 0;
    char *old_tmp = path_in(scope_dir, ".tmp-AAAAAA");
    char *new_tmp = path_in(scope_dir, ".tmp-BBBBBB");
    write_bytes(old_tmp, "x", 1);
    write_bytes(new_tmp, "x", 1);
    set_mtime(old_tmp, now - DDS_CACHE_STALE_TMP_S - 10);
    CHECK_INT(dds_cache_prune_dir(dir, 0, &entries, &bytes), 0);
    CHECK_INT(entries, 0);
    CHECK_INT(bytes, 0);
    CHECK_INT(file_size(old_tmp), -1);
    CHECK_INT(file_size(new_tmp), 1);
    CHECK_INT(file_size(other), 7);
    free(old_tmp);
    free(new_tmp);
    free(other);
    dds_chunk_cache_free(c);

    /* Stores keep the bound themselves: a cache of 8 entries' worth never holds more than 8
     * after a write, and keeps the newest. */
    c = dds_chunk_cache_new(dir, "http://127.0.0.1:1", API_KEY, 8 * 1088, 300, log, &err);
    for (int i = 0; i < 30; i++) {
        for (size_t j = 0; j < sizeof noise; j++) {
            x = x * 1103515245u + 12345u;
            noise[j] = (char)(x >> 16);
        }
        uint8_t k[32];
        char pq[32];
        snprintf(pq, sizeof pq, "/bound?%d", i);
        dds_chunk_cache_key(c, "GET", pq, NULL, 0, k);
        dds_chunk_cache_store(c, k, noise, sizeof noise);
        CHECK_INT(dds_cache_prune_dir(dir, -1, &entries, &bytes), 0);
        CHECK_MSG(bytes <= 8 * 1088, "after write %d: %lld bytes", i, (long long)bytes);
        char *body = NULL;
        size_t len = 0;
        CHECK_INT(dds_chunk_cache_lookup(c, k, 1 << 20, &body, &len), 1);
        free(body);
    }
    dds_chunk_cache_free(c);

    /* The public entry point: counts, clears, and refuses what is not a folder name. */
    CHECK_INT(ddstream_cache_prune(dir, -1, &entries, &bytes, &err), DDSTREAM_OK);
    CHECK(entries > 0);
    CHECK_INT(ddstream_cache_prune(dir, 0, &entries, &bytes, &err), DDSTREAM_OK);
    CHECK_INT(entries, 0);
    CHECK_INT(ddstream_cache_prune("", 0, NULL, NULL, &err), DDSTREAM_E_INVALID_ARGUMENT);
    char *missing = path_in(root, "never-made");
    CHECK_INT(ddstream_cache_prune(missing, -1, &entries, &bytes, &err), DDSTREAM_OK);
    CHECK_INT(entries, 0);
    free(missing);
    for (int i = 0; i < 10; i++) free(paths[i]);
    free(dir);
}

/* ---- many writers at once ---- */

#define SHARED_KEYS 8
#define ROUNDS      60

typedef struct worker {
    dds_chunk_cache *c;
    int id;
    int wrong; /* hits whose body was not the one stored under that key */
    int hits;
} worker;

static size_t body_for(int k, char *buf, size_t cap) {
    size_t n = 2000 + (size_t)k * 517;
    if (n > cap) n = cap;
    for (size_t i = 0; i < n; i++) buf[i] = (char)('a' + (i * 7 + (size_t)k) % 26);
    return n;
}

static void *hammer(void *arg) {
    worker *w = arg;
    char expect[8000];
    for (int r = 0; r < ROUNDS; r++) {
        int k = (r + w->id) % SHARED_KEYS;
        char pq[32];
        snprintf(pq, sizeof pq, "/shared?%d", k);
        uint8_t key[32];
        dds_chunk_cache_key(w->c, "GET", pq, NULL, 0, key);
        size_t n = body_for(k, expect, sizeof expect);
        char *body = NULL;
        size_t len = 0;
        if (dds_chunk_cache_lookup(w->c, key, 1 << 20, &body, &len)) {
            w->hits++;
            if (len != n || memcmp(body, expect, n) != 0) w->wrong++;
            free(body);
        }
        dds_chunk_cache_store(w->c, key, expect, n);
    }
    return NULL;
}

static int run_threads(const char *dir, dds_log *log, int nthreads, int *hits) {
    ddstream_error err;
    dds_chunk_cache *c =
        dds_chunk_cache_new(dir, "http://127.0.0.1:1", API_KEY, 1 << 30, 300, log, &err);
    if (!c) return -1;
    worker w[16];
    pthread_t t[16];
    for (int i = 0; i < nthreads; i++) {
        w[i] = (worker){c, i, 0, 0};
        pthread_create(&t[i], NULL, hammer, &w[i]);
    }
    int wrong = 0;
    *hits = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(t[i], NULL);
        wrong += w[i].wrong;
        *hits += w[i].hits;
    }
    dds_chunk_cache_free(c);
    return wrong;
}

static void test_concurrency(dds_log *log, captured *cap) {
    char *dir = path_in(root, "shared");
    int warns = cap->warns;
    /* Threads of one process... */
    int hits = 0;
    CHECK_INT(run_threads(dir, log, 8, &hits), 0);
    CHECK(hits > 0);
    /* ... and four processes of eight threads each, into the same folder. */
    pid_t kids[4];
    for (int p = 0; p < 4; p++) {
        kids[p] = fork();
        if (kids[p] == 0) {
            captured mine = {PTHREAD_MUTEX_INITIALIZER, 0, ""};
            dds_log quiet;
            dds_log_init(&quiet, DDSTREAM_LOG_WARN, capture, &mine, 0, API_KEY, NULL);
            int h = 0;
            int wrong = run_threads(dir, &quiet, 8, &h);
            _exit(wrong == 0 && mine.warns == 0 && h > 0 ? 0 : 1);
        }
    }
    for (int p = 0; p < 4; p++) {
        int status = 0;
        CHECK(waitpid(kids[p], &status, 0) == kids[p]);
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "process %d saw wrong data", p);
    }
    CHECK_INT(cap->warns, warns); /* no torn entry was ever read */
    /* Every entry left is whole and valid, and no temporary file is left behind. */
    ddstream_error err;
    dds_chunk_cache *c =
        dds_chunk_cache_new(dir, "http://127.0.0.1:1", API_KEY, 1 << 30, 300, log, &err);
    char expect[8000];
    for (int k = 0; k < SHARED_KEYS; k++) {
        char pq[32];
        snprintf(pq, sizeof pq, "/shared?%d", k);
        uint8_t key[32];
        dds_chunk_cache_key(c, "GET", pq, NULL, 0, key);
        size_t n = body_for(k, expect, sizeof expect);
        char *body = NULL;
        size_t len = 0;
        CHECK_INT(dds_chunk_cache_lookup(c, key, 1 << 20, &body, &len), 1);
        CHECK(len == n && body && memcmp(body, expect, n) == 0);
        free(body);
    }
    int64_t entries = 0;
    CHECK_INT(dds_cache_prune_dir(dir, -1, &entries, NULL), 0);
    CHECK_INT(entries, SHARED_KEYS);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "find '%s' -name '.tmp-*' | grep -q .", dir);
    CHECK(system(cmd) != 0);
    dds_chunk_cache_free(c);
    free(dir);
}

/* A relative cache_dir means the folder it named at open, even after the process moves. */
static void test_relative_folder(dds_log *log) {
    char cwd[512];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(root) == 0);
    ddstream_error err;
    dds_chunk_cache *c =
        dds_chunk_cache_new("relative", "http://127.0.0.1:1", API_KEY, 1 << 20, 300, log, &err);
    CHECK(c != NULL);
    CHECK(chdir("/") == 0);
    uint8_t key[32];
    dds_chunk_cache_key(c, "GET", "/rel", NULL, 0, key);
    dds_chunk_cache_store(c, key, "{}", 2);
    char *dir = path_in(root, "relative");
    char *path = entry_file(dir, API_KEY, key);
    CHECK_INT(file_size(path), DDS_CACHE_HEADER_BYTES + 2);
    free(path);
    free(dir);
    /* The whole folder removed while the cache is open: the next store makes it again. */
    CHECK(chdir(cwd) == 0);
    dir = path_in(root, "relative");
    CHECK_INT(rm_rf(dir), 0);
    dds_chunk_cache_store(c, key, "{}", 2);
    path = entry_file(dir, API_KEY, key);
    CHECK_INT(file_size(path), DDS_CACHE_HEADER_BYTES + 2);
    free(path);
    free(dir);
    dds_chunk_cache_free(c);
}

static void test_unusable_folder(dds_log *log) {
    /* A folder under a plain file cannot be made, even by root. */
    char *file = path_in(root, "plain-file");
    write_bytes(file, "x", 1);
    char *dir = path_in(file, "cache");
    ddstream_error err;
    memset(&err, 0, sizeof err);
    dds_chunk_cache *c =
        dds_chunk_cache_new(dir, "http://127.0.0.1:1", API_KEY, 1 << 20, 300, log, &err);
    CHECK(c == NULL);
    CHECK_INT(err.status, DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "cache_dir");
    CHECK_CONTAINS(err.message, "Not a directory");
    CHECK(strstr(err.message, API_KEY) == NULL);
    /* The same from ddstream_open. */
    ddstream_config cfg;
    ddstream_config_init(&cfg);
    cfg.api_key = API_KEY;
    cfg.app_key = OTHER_KEY;
    cfg.base_url = "http://127.0.0.1:9";
    cfg.query = "avg:system.cpu.user{*}";
    cfg.range_start = 0;
    cfg.range_end = 3600;
    cfg.cache_dir = dir;
    ddstream_stream *st = NULL;
    CHECK_INT(ddstream_config_validate(&cfg, &err), DDSTREAM_OK); /* no file system access */
    CHECK_INT(ddstream_open(&cfg, &st, &err), DDSTREAM_E_CONFIG);
    CHECK(st == NULL);
    CHECK_CONTAINS(err.message, "cache_dir");
    cfg.cache_dir = "";
    CHECK_INT(ddstream_config_validate(&cfg, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "cache_dir is an empty path");
    cfg.cache_dir = NULL;
    cfg.cache_max_bytes = -1;
    CHECK_INT(ddstream_config_validate(&cfg, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "cache_max_bytes");
    cfg.cache_max_bytes = 0;
    cfg.settle_seconds = -5;
    CHECK_INT(ddstream_config_validate(&cfg, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "settle_seconds must be");
    free(dir);
    free(file);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/ddstream-test-chunk-cache-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    captured cap = {PTHREAD_MUTEX_INITIALIZER, 0, ""};
    dds_log log;
    dds_log_init(&log, DDSTREAM_LOG_WARN, capture, &cap, 0, API_KEY, NULL);

    test_sha256();
    test_entry_format();
    test_keys_and_scopes(&log);
    test_bad_entries(&log, &cap);
    test_eviction(&log);
    test_concurrency(&log, &cap);
    test_relative_folder(&log);
    test_unusable_folder(&log);

    dds_log_destroy(&log);
    rm_rf(root);
    return check_report("test_chunk_cache");
}
