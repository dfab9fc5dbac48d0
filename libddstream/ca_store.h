/* ca_store.h — which CA certificates verify the server when the caller names none. */
#ifndef DDSTREAM_CA_STORE_H
#define DDSTREAM_CA_STORE_H

/*
 * The CA bundle to verify servers with when ddstream_config.ca_bundle is NULL; NULL means "let
 * libcurl use the store it was built with". In order:
 *   1. $SSL_CERT_FILE when set and non-empty (OpenSSL's variable, which libcurl ignores when it was
 *      built with a CA file of its own, as distributions build it);
 *   2. NULL when libcurl's built-in CA file, or else its CA directory, exists on this machine;
 *   3. the first file of the well-known locations of Linux distributions and BSDs that exists
 *      (a libcurl bundled into a wheel keeps the path of the distribution it was built on, which
 *      another distribution does not have: Debian's file on Fedora, say);
 *   4. NULL (libcurl's own choice, which then fails verification with a message naming ca_bundle).
 * Returned malloc'd (free()); NULL also when out of memory (libcurl's default then applies).
 * Thread-safe (reads the environment, which the caller must not change concurrently).
 */
char *dds_ca_store_default(void);

/*
 * The decision of dds_ca_store_default on explicit inputs, for tests: env_file is
 * $SSL_CERT_FILE (or NULL), builtin_file / builtin_dir libcurl's built-in CA file and directory
 * (or NULL), candidates a NULL-terminated list of paths to try.
 */
char *dds_ca_store_pick(const char *env_file, const char *builtin_file, const char *builtin_dir,
                        const char *const *candidates);

#endif
