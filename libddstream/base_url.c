/* base_url.c — the check of ddstream_config.base_url.
 *
 * The URL is read by libcurl's URL API (curl_url), the same parser that connects later, and every
 * decision is taken on the parts it returns. A URL splitter of our own disagreed with libcurl on
 * where the host starts ("http://127.0.0.1:80@other:8080" is user "127.0.0.1", password "80",
 * host "other" for libcurl): a check that reads a URL differently from the code that connects
 * checks a different URL. The request URL is then built on libcurl's own rendering of the
 * checked parts (dds_settings.base_url), so what is checked is what is connected to. */
#include "base_url.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"

#define URL_ERR(...) dds_error_set(err, DDSTREAM_E_CONFIG, __VA_ARGS__)

int dds_host_is_loopback(const char *host) {
    if (!host) return 0;
    /* Only the bare name: "localhost." is a fully qualified name for the resolver to answer,
     * and "x.localhost" is not loopback for every resolver. */
    if (strcasecmp(host, "localhost") == 0) return 1;
    size_t n = strlen(host);
    if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
        char literal[INET6_ADDRSTRLEN + 1];
        if (n - 2 >= sizeof literal) return 0;
        memcpy(literal, host + 1, n - 2);
        literal[n - 2] = 0;
        struct in6_addr a6;
        if (inet_pton(AF_INET6, literal, &a6) != 1) return 0;
        if (IN6_IS_ADDR_LOOPBACK(&a6)) return 1;
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127; /* ::ffff:127.x.y.z */
    }
    /* libcurl has already turned "127.1", "0x7f.0.0.1" or "2130706433" into dotted decimal;
     * inet_pton reads only that form, so anything else counts as a name. */
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) != 1) return 0;
    return ((const unsigned char *)&a4.s_addr)[0] == 127;
}

static const char *curlu_text(CURLUcode rc) {
#if LIBCURL_VERSION_NUM >= 0x075000 /* curl_url_strerror: 7.80.0 */
    return curl_url_strerror(rc);
#else
    (void)rc;
    return "malformed URL";
#endif
}

/* Whether part is present in u (libcurl says CURLUE_NO_<PART> when it is not). An empty query
 * ("http://h/?") counts as present: it is still a '?' the caller wrote. */
static int has_part(CURLU *u, CURLUPart part) {
    char *v = NULL;
    CURLUcode rc = curl_url_get(u, part, &v, 0);
    curl_free(v);
    return rc == CURLUE_OK;
}

/* The raw text before libcurl reads it: the characters that make userinfo, a query or a fragment
 * are refused wherever they are (also where libcurl would take them for part of the path), so
 * that an "empty" part libcurl drops ("http://h/#") is refused as well. */
static ddstream_status check_raw(const char *url, ddstream_error *err) {
    if (!*url) return URL_ERR("base_url is empty: leave it unset for https://api.<site>");
    for (const char *p = url; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == 0x7f)
            return URL_ERR("base_url contains spaces or control characters");
        if (c == '\\') return URL_ERR("base_url contains a backslash: write the URL with '/' only");
        if (c == '@')
            return URL_ERR(
                "base_url must not contain credentials (a login and '@' before the "
                "host): the keys go in headers, and nothing may be sent as a login");
        if (c == '?') return URL_ERR("base_url must not contain a query string ('?...')");
        if (c == '#') return URL_ERR("base_url must not contain a fragment ('#...')");
    }
    /* "scheme://" then the host: libcurl also takes "http:/host" and "http:///host", which are
     * more likely a typo than what was meant. */
    size_t scheme = strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
    if (scheme == 0 || strncmp(url + scheme, "://", 3) != 0 || url[scheme + 3] == '/')
        return URL_ERR(
            "base_url must start with https:// or http:// followed by the host, "
            "e.g. https://api.datadoghq.com");
    if (!((scheme == 4 && strncasecmp(url, "http", 4) == 0) ||
          (scheme == 5 && strncasecmp(url, "https", 5) == 0)))
        return URL_ERR("base_url must start with https:// or http://, not %.*s://", (int)scheme,
                       url);
    /* The host and port end at the first '/' ('@', '?', '#' and '\' are refused above). libcurl
     * decodes "%xx" in a host but does not read the result as an address until it parses its own
     * rendering again ("http://%31" is host "1", written back "http://1", read as 0.0.0.1): a
     * host that needs decoding is not the host that is connected to. */
    const char *authority = url + scheme + 3;
    const char *pct = strchr(authority, '%');
    if (pct && (size_t)(pct - authority) < strcspn(authority, "/"))
        return URL_ERR(
            "base_url must give its host plainly, without '%%' (no percent-encoding, "
            "no IPv6 zone id)");
    return DDSTREAM_OK;
}

/* Whether libcurl reads its own rendering full as the scheme, host and port of u. */
static ddstream_status same_reading(const char *full, const char *scheme, const char *host,
                                    CURLU *u, ddstream_error *err) {
    CURLU *again = curl_url();
    if (!again) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory checking base_url");
    char *scheme2 = NULL, *host2 = NULL, *port = NULL, *port2 = NULL;
    int same = curl_url_set(again, CURLUPART_URL, full, 0) == CURLUE_OK &&
               curl_url_get(again, CURLUPART_SCHEME, &scheme2, 0) == CURLUE_OK &&
               curl_url_get(again, CURLUPART_HOST, &host2, 0) == CURLUE_OK &&
               strcmp(scheme, scheme2) == 0 && strcmp(host, host2) == 0;
    if (same) {
        CURLUcode p1 = curl_url_get(u, CURLUPART_PORT, &port, 0);
        CURLUcode p2 = curl_url_get(again, CURLUPART_PORT, &port2, 0);
        same = p1 == p2 && (p1 != CURLUE_OK || strcmp(port, port2) == 0);
    }
    ddstream_status st = DDSTREAM_OK;
    if (!same)
        st = URL_ERR(
            "base_url reads as host '%.100s' but as '%.100s' once libcurl writes it back: "
            "write the host plainly",
            host, host2 ? host2 : "(none)");
    curl_free(scheme2);
    curl_free(host2);
    curl_free(port);
    curl_free(port2);
    curl_url_cleanup(again);
    return st;
}

/* The checks on libcurl's parts. *normalized is set only on success. */
static ddstream_status check_parts(CURLU *u, int allow_insecure_http, char **normalized,
                                   ddstream_error *err) {
    char *scheme = NULL, *host = NULL, *full = NULL;
    ddstream_status st = DDSTREAM_OK;
    if (has_part(u, CURLUPART_USER) || has_part(u, CURLUPART_PASSWORD) ||
        has_part(u, CURLUPART_OPTIONS)) {
        st = URL_ERR("base_url must not contain credentials (a login and '@' before the host)");
        goto done;
    }
    if (has_part(u, CURLUPART_QUERY)) {
        st = URL_ERR("base_url must not contain a query string ('?...')");
        goto done;
    }
    if (has_part(u, CURLUPART_FRAGMENT)) {
        st = URL_ERR("base_url must not contain a fragment ('#...')");
        goto done;
    }
    if (has_part(u, CURLUPART_ZONEID)) {
        st = URL_ERR("base_url must not contain an IPv6 zone id ('%%25...' in the host)");
        goto done;
    }
    CURLUcode rc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (rc == CURLUE_OUT_OF_MEMORY) goto nomem;
    int https = rc == CURLUE_OK && strcmp(scheme, "https") == 0;
    if (!https && (rc != CURLUE_OK || strcmp(scheme, "http") != 0)) {
        st = URL_ERR("base_url must start with https:// or http://");
        goto done;
    }
    rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    if (rc == CURLUE_OUT_OF_MEMORY) goto nomem;
    if (rc != CURLUE_OK || !host[0]) {
        st = URL_ERR("base_url has no host");
        goto done;
    }
    if (!https && !allow_insecure_http && !dds_host_is_loopback(host)) {
        st = URL_ERR(
            "base_url is plain http to a non-loopback host ('%.200s'; loopback is "
            "127.0.0.0/8, ::1 or localhost): the keys would travel unencrypted; use "
            "https:// or set allow_insecure_http",
            host);
        goto done;
    }
    rc = curl_url_get(u, CURLUPART_URL, &full, 0);
    if (rc == CURLUE_OUT_OF_MEMORY) goto nomem;
    if (rc != CURLUE_OK) {
        st = URL_ERR("base_url could not be put back together by libcurl (%s)", curlu_text(rc));
        goto done;
    }
    /* Requests are built on full: it must read as the same scheme, host and port as what was
     * checked (a fixed point), whatever libcurl normalises on a second reading. */
    if ((st = same_reading(full, scheme, host, u, err)) != DDSTREAM_OK) goto done;
    size_t n = strlen(full);
    while (n > 0 && full[n - 1] == '/') n--;
    *normalized = malloc(n + 1);
    if (!*normalized) goto nomem;
    memcpy(*normalized, full, n);
    (*normalized)[n] = 0;
    goto done;
nomem:
    st = dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory checking base_url");
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(full);
    return st;
}

ddstream_status dds_base_url_check(const char *base_url, int allow_insecure_http, char **normalized,
                                   ddstream_error *err) {
    *normalized = NULL;
    if (!base_url) return URL_ERR("base_url is NULL");
    ddstream_status st = check_raw(base_url, err);
    if (st != DDSTREAM_OK) return st;
    CURLU *u = curl_url();
    if (!u) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory checking base_url");
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, base_url, 0);
    if (rc == CURLUE_OUT_OF_MEMORY) {
        st = dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory checking base_url");
    } else if (rc == CURLUE_NO_HOST) {
        st = URL_ERR("base_url has no host");
    } else if (rc != CURLUE_OK) {
        /* libcurl's words name the part ("Bad port number", "Bad IPv6 address"...); the URL is
         * not quoted: only a credential-free one would be safe to, and that is not known yet. */
        st = URL_ERR("base_url is not a valid URL: %s", curlu_text(rc));
    } else {
        st = check_parts(u, allow_insecure_http, normalized, err);
    }
    curl_url_cleanup(u);
    return st;
}
