/* ca_store.c — which CA certificates verify the server when the caller names none. */
#include "ca_store.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Where distributions keep their CA bundle (the list Go's crypto/x509 uses on Linux and BSD). */
static const char *const well_known_bundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",                /* Debian, Ubuntu, Gentoo, Arch, Alpine */
    "/etc/pki/tls/certs/ca-bundle.crt",                  /* Fedora, RHEL 6 */
    "/etc/ssl/ca-bundle.pem",                            /* openSUSE */
    "/etc/pki/tls/cacert.pem",                           /* OpenELEC */
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* CentOS, RHEL 7+ */
    "/etc/ssl/cert.pem",                                 /* Alpine, macOS, BSDs */
    NULL,
};

static int is_file(const char *path) {
    struct stat st;
    return path && *path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *path) {
    struct stat st;
    return path && *path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *dds_ca_store_pick(const char *env_file, const char *builtin_file, const char *builtin_dir,
                        const char *const *candidates) {
    if (env_file && *env_file) return strdup(env_file);
    if (is_file(builtin_file) || is_dir(builtin_dir)) return NULL;
    for (const char *const *c = candidates; c && *c; c++)
        if (is_file(*c)) return strdup(*c);
    return NULL;
}

char *dds_ca_store_default(void) {
    const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
    /* cainfo and capath are in every version this library accepts (CURLVERSION_SEVENTH+). */
    return dds_ca_store_pick(getenv("SSL_CERT_FILE"), info ? info->cainfo : NULL,
                             info ? info->capath : NULL, well_known_bundles);
}
