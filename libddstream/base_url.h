/* base_url.h — the check of ddstream_config.base_url, on libcurl's own reading of the URL. */
#ifndef DDSTREAM_BASE_URL_H
#define DDSTREAM_BASE_URL_H

#include "ddstream.h"

/*
 * Check base_url and give the URL that requests are built on. The URL is parsed with libcurl's
 * URL API, the parser that later connects, and every decision is taken on the parts it returns:
 * scheme http or https; a host; no user name, password or login options (userinfo), no query, no
 * fragment, no IPv6 zone id; plain http only to a loopback host (an IP literal in 127.0.0.0/8,
 * ::1 or ::ffff:127.0.0.0/104, or the name "localhost") unless allow_insecure_http.
 *
 * On success *normalized (owned by the caller, free()) is libcurl's rendering of the checked
 * parts without a trailing '/': what is checked is what is connected to. On failure *normalized
 * is NULL and err (DDSTREAM_E_CONFIG, or E_NOMEM) names the rule; the message never quotes what
 * came before the host (it may be a password). Thread-safe; no network I/O.
 */
DDSTREAM_NODISCARD ddstream_status dds_base_url_check(const char *base_url, int allow_insecure_http,
                                                      char **normalized, ddstream_error *err);

/* Nonzero if host, as libcurl returns it (IPv6 in brackets), is certainly this machine. */
int dds_host_is_loopback(const char *host);

#endif
