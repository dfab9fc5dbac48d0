/* test_ca_store.c — the CA store chosen when ddstream_config.ca_bundle is NULL (ca_store.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca_store.h"
#include "check.h"

static char dir[] = "/tmp/ddstream-ca-store-XXXXXX";

static void path_in(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", dir, name);
}

static void touch(const char *path) {
    FILE *f = fopen(path, "w");
    CHECK_MSG(f != NULL, "cannot create %s", path);
    if (f) fclose(f);
}

/* CHECK that pick(...) gives want (NULL: libcurl's own store), and free it. */
static void check_pick(const char *env, const char *builtin_file, const char *builtin_dir,
                       const char *const *candidates, const char *want, const char *what) {
    char *got = dds_ca_store_pick(env, builtin_file, builtin_dir, candidates);
    if (!want) CHECK_MSG(got == NULL, "%s: got '%s', expected libcurl's own store", what, got);
    else
        CHECK_MSG(got && strcmp(got, want) == 0, "%s: got '%s', expected '%s'", what,
                  got ? got : "(libcurl's own)", want);
    free(got);
}

int main(int argc, char **argv) {
    (void)argc;
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char present[256], other[256], missing[256], subdir[256];
    path_in(present, sizeof present, "present.pem");
    path_in(other, sizeof other, "other.pem");
    path_in(missing, sizeof missing, "missing.pem");
    path_in(subdir, sizeof subdir, "certs");
    touch(present);
    touch(other);
    CHECK(mkdir(subdir, 0700) == 0);
    const char *const candidates[] = {missing, subdir, present, other, NULL};

    /* $SSL_CERT_FILE wins, even over a built-in store that exists (the user asked for it). */
    check_pick("/from/env.pem", present, NULL, candidates, "/from/env.pem", "SSL_CERT_FILE set");
    /* An empty $SSL_CERT_FILE is unset. */
    check_pick("", present, NULL, candidates, NULL, "empty SSL_CERT_FILE, built-in file present");
    /* libcurl's built-in file, or else its directory, when present: keep libcurl's choice. */
    check_pick(NULL, present, NULL, candidates, NULL, "built-in file present");
    check_pick(NULL, missing, subdir, candidates, NULL, "built-in file missing, directory present");
    check_pick(NULL, NULL, subdir, candidates, NULL, "no built-in file, directory present");
    /* A bundled libcurl's built-in path from another distribution: the first candidate that is a
     * file (a missing path and a directory are passed over). */
    check_pick(NULL, missing, NULL, candidates, present, "built-in file missing");
    check_pick(NULL, NULL, NULL, candidates, present, "no built-in store");
    check_pick(NULL, subdir, missing, candidates, present, "built-in 'file' is a directory");
    /* Nothing anywhere: libcurl's own (which then fails verification, naming ca_bundle). */
    const char *const none[] = {missing, subdir, NULL};
    check_pick(NULL, missing, missing, none, NULL, "no candidate exists");
    check_pick(NULL, missing, NULL, NULL, NULL, "no candidates");

    /* The real thing on this machine: with $SSL_CERT_FILE set it is that file. */
    setenv("SSL_CERT_FILE", present, 1);
    char *chosen = dds_ca_store_default();
    CHECK_MSG(chosen && strcmp(chosen, present) == 0, "dds_ca_store_default ignored SSL_CERT_FILE");
    free(chosen);
    unsetenv("SSL_CERT_FILE");

    unlink(present);
    unlink(other);
    rmdir(subdir);
    rmdir(dir);
    return check_report(argv[0]);
}
