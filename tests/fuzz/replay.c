/*
 * replay.c — run saved inputs through the fuzz target without libFuzzer.
 *
 * Usage: fuzz_replay PATH...   (each PATH a file, or a directory whose files are all replayed)
 *
 * Linked with fuzz_response.c by the ordinary compiler (tests/c/meson.build), so every input the
 * fuzzer ever broke the code with (tests/fuzz/regressions) and every response fixture
 * (tests/fixtures) goes through the same contract checks in the normal suite, plain and under the
 * sanitizers, with no clang needed. Each input sits in a buffer of exactly its size so AddressSanitizer
 * catches a read past the end. A contract broken aborts; replaying nothing at all is a failure too,
 * so a wrong path cannot pass silently.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fuzz_replay: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 4096, n = 0, got;
    uint8_t *buf = malloc(cap);
    while (buf != NULL && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            uint8_t *grown = realloc(buf, cap * 2);
            if (grown == NULL) free(buf);
            buf = grown;
            cap *= 2;
        }
    }
    int failed = ferror(f);
    fclose(f);
    if (buf == NULL || failed) {
        fprintf(stderr, "fuzz_replay: cannot read %s\n", path);
        free(buf);
        return -1;
    }
    uint8_t *exact = malloc(n > 0 ? n : 1);
    if (exact == NULL) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, n);
    free(buf);
    /* Named first, so the log says which input it was if the next line is a crash report. */
    printf("replay %s (%zu bytes)\n", path, n);
    fflush(stdout);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir but README.md and hidden files, in name order (a stable log). */
static int replay_dir(const char *dir, size_t *count) {
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "fuzz_replay: cannot open directory %s\n", dir);
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "README.md") == 0) continue;
        if (n == cap) {
            size_t grown_cap = cap ? cap * 2 : 64;
            char **grown = realloc(names, grown_cap * sizeof *names);
            if (grown == NULL) {
                rc = -1;
                break;
            }
            names = grown;
            cap = grown_cap;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        names[n] = malloc(len);
        if (names[n] == NULL) {
            rc = -1;
            break;
        }
        snprintf(names[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n > 1) qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (rc == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(names[i]) != 0) rc = -1;
            else (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv) {
    size_t count = 0;
    int rc = 0;
    for (int i = 1; i < argc && rc == 0; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz_replay: no such file or directory: %s\n", argv[i]);
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            rc = replay_dir(argv[i], &count);
        } else if (replay_file(argv[i]) == 0) {
            count++;
        } else {
            rc = -1;
        }
    }
    if (rc != 0) return EXIT_FAILURE;
    if (count == 0) {
        fprintf(stderr, "fuzz_replay: nothing to replay\n");
        return EXIT_FAILURE;
    }
    printf("fuzz_replay: %zu inputs replayed, every contract held\n", count);
    return EXIT_SUCCESS;
}
