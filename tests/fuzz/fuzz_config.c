/*
 * fuzz_config.c — arbitrary text through the checks of config.c and base_url.c: base_url (on
 * libcurl's parse) and the query's shape.
 *
 * Input: one flag byte (bit 0: allow_insecure_http), then the text (up to its first NUL), used as
 * base_url and, separately, as the query. The contracts, each checked against an independent
 * computation; a broken one aborts like a crash:
 *   - base_url accepted <=> a URL is given back; that URL is libcurl's own: it parses again to the
 *     same scheme and host, with no userinfo, query, fragment or zone id, none of the characters
 *     that make them, no trailing '/'; it is accepted again unchanged (idempotent); a request URL
 *     built on it ("<url>/api/v1/query?query=...") still goes to that host; plain http goes only
 *     to a loopback host (checked with a reference of our own) unless allow_insecure_http;
 *   - base_url refused: a DDSTREAM_E_CONFIG whose message names base_url and, when the text had
 *     a '@', quotes nothing of it (the fixed texts given then have no digit; a quote would);
 *   - the query refused when a reference check of the documented rules refuses it (blank, over
 *     4000 characters, control characters other than tabs and line breaks, unbalanced {} or (),
 *     an empty query between top-level commas; the parser refuses more), a refusal's message
 *     starts with "query" and quotes no key (even one pasted into the query), and the batches
 *     are grouped when a query is or there are several (as query_lang.c compiles them); the
 *     query language's own verdict (dds_query_compile_all) agrees with config.c's: what it
 *     refuses is refused at the same character, what config.c accepts it compiles, and a query
 *     it calls grouped has a "by {" by the reference.
 * Built with clang's libFuzzer (tests/fuzz/meson.build, scripts/fuzz.sh 120 fuzz_config) and
 * with replay.c in every build (tests/c/meson.build), over tests/fuzz/config_seeds.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base_url.h"
#include "config.h"
#include "ddstream.h"
#include "query_lang.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define API_KEY "fuzz-api-key-0123456789abcdef"
#define APP_KEY "fuzz-app-key-0123456789abcdef"

static void violated(int line, const char *what, const char *text) {
    fprintf(stderr, "fuzz_config.c:%d: contract broken: %s\n  input: \"%.300s\"\n", line, what,
            text);
    abort();
}

#define REQUIRE(cond, text)                                                                        \
  do {                                                                                             \
    if (!(cond)) violated(__LINE__, #cond, text);                                                  \
  } while (0)

/* ---------------------------------------------------------------------------------------------
 * References, written apart from the code under test.
 */

static int ref_loopback(const char *host) {
    if (strcasecmp(host, "localhost") == 0) return 1;
    unsigned a, b, c, d;
    char tail;
    if (sscanf(host, "%3u.%3u.%3u.%3u%c", &a, &b, &c, &d, &tail) == 4) {
        /* dotted decimal only, as libcurl renders an IPv4 address; no leading zeros */
        char again[32];
        snprintf(again, sizeof again, "%u.%u.%u.%u", a, b, c, d);
        return strcmp(again, host) == 0 && a == 127 && b < 256 && c < 256 && d < 256;
    }
    size_t n = strlen(host);
    if (n < 3 || host[0] != '[' || host[n - 1] != ']' || n > 64) return 0;
    char inner[64];
    memcpy(inner, host + 1, n - 2);
    inner[n - 2] = 0;
    unsigned char a6[16];
    if (inet_pton(AF_INET6, inner, a6) != 1) return 0;
    static const unsigned char one[16] = {[15] = 1};
    static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};
    return memcmp(a6, one, 16) == 0 || (memcmp(a6, mapped, 12) == 0 && a6[12] == 127);
}

static const char *ref_query_problem(const char *q) {
    size_t n = strlen(q), visible = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)q[i];
        if (!isspace(c)) visible++;
    }
    if (visible == 0) return "blank";
    if (n > 4000) return "too long";
    /* Tabs and line breaks separate tokens as spaces do (docs/queries.md); other controls
     * are refused. */
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)q[i] < 0x20 && !strchr("\t\n\r", q[i])) || q[i] == 0x7f)
            return "control";
    /* Several comma-separated queries are accepted (issue 14), but not an empty one. */
    long brace = 0, paren = 0;
    size_t part_visible = 0;
    for (size_t i = 0; i < n; i++) {
        brace += q[i] == '{';
        brace -= q[i] == '}';
        paren += q[i] == '(';
        paren -= q[i] == ')';
        if (brace < 0 || paren < 0) return "unbalanced";
        if (q[i] == ',' && brace == 0 && paren == 0) {
            if (part_visible == 0) return "empty part";
            part_visible = 0;
        } else if (!isspace((unsigned char)q[i])) {
            part_visible++;
        }
    }
    if (brace || paren) return "unclosed";
    return part_visible == 0 ? "empty part" : NULL;
}

/* Whether the query has a top-level ',' (several queries: batches are then grouped). */
static int ref_several(const char *q) {
    long depth = 0;
    for (const char *p = q; *p; p++) {
        depth += (*p == '{' || *p == '(') - (*p == '}' || *p == ')');
        if (*p == ',' && depth == 0) return 1;
    }
    return 0;
}

/* A top-level "by" (start, or after space, '}' or ')'), then spaces, then '{'. */
static int ref_grouped(const char *q) {
    size_t n = strlen(q);
    long brace = 0;
    for (size_t i = 0; i < n; i++) {
        char c = q[i];
        if (c == '{') {
            brace++;
            continue;
        }
        if (c == '}') {
            brace--;
            continue;
        }
        if (brace != 0 || i + 1 >= n || tolower((unsigned char)c) != 'b' ||
            tolower((unsigned char)q[i + 1]) != 'y')
            continue;
        if (i > 0 && !isspace((unsigned char)q[i - 1]) && q[i - 1] != '}' && q[i - 1] != ')')
            continue;
        size_t j = i + 2;
        while (j < n && isspace((unsigned char)q[j])) j++;
        if (j < n && q[j] == '{') return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The checks.
 */

static char *part(CURLU *u, CURLUPart which) {
    char *v = NULL;
    return curl_url_get(u, which, &v, 0) == CURLUE_OK ? v : NULL;
}

static void check_accepted_url(const char *text, const char *url, int allow) {
    REQUIRE(strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0, text);
    for (const char *p = url; *p; p++)
        REQUIRE((unsigned char)*p > 0x20 && *p != 0x7f && !strchr("@?#\\", *p), text);
    size_t n = strlen(url);
    REQUIRE(n > 0 && url[n - 1] != '/', text);

    CURLU *u = curl_url();
    REQUIRE(u != NULL, text);
    REQUIRE(curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK, text);
    char *host = part(u, CURLUPART_HOST), *scheme = part(u, CURLUPART_SCHEME);
    REQUIRE(host != NULL && scheme != NULL, text);
    REQUIRE(strncmp(url, scheme, strlen(scheme)) == 0, text);
    static const CURLUPart absent[] = {CURLUPART_USER,  CURLUPART_PASSWORD, CURLUPART_OPTIONS,
                                       CURLUPART_QUERY, CURLUPART_FRAGMENT, CURLUPART_ZONEID};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
        char *v = part(u, absent[i]);
        REQUIRE(v == NULL, text);
    }
    if (strcmp(scheme, "http") == 0 && !allow) REQUIRE(ref_loopback(host), text);
    REQUIRE(ref_loopback(host) == dds_host_is_loopback(host), text);

    /* The same host as libcurl reads in the text itself. */
    CURLU *orig = curl_url();
    REQUIRE(orig != NULL && curl_url_set(orig, CURLUPART_URL, text, 0) == CURLUE_OK, text);
    char *orig_host = part(orig, CURLUPART_HOST);
    REQUIRE(orig_host != NULL && strcmp(orig_host, host) == 0, text);
    curl_free(orig_host);
    curl_url_cleanup(orig);

    /* A request URL built on it goes to the same host. */
    size_t rlen = n + 64;
    char *request = malloc(rlen);
    REQUIRE(request != NULL, text);
    snprintf(request, rlen, "%s/api/v1/query?from=1&to=2&query=avg%%3Ax%%7B%%2A%%7D", url);
    CURLU *r = curl_url();
    REQUIRE(r != NULL && curl_url_set(r, CURLUPART_URL, request, 0) == CURLUE_OK, text);
    char *rhost = part(r, CURLUPART_HOST);
    REQUIRE(rhost != NULL && strcmp(rhost, host) == 0, text);
    char *ruser = part(r, CURLUPART_USER);
    REQUIRE(ruser == NULL, text);
    curl_free(rhost);
    curl_url_cleanup(r);
    free(request);

    /* Accepted again, unchanged. */
    char *again = NULL;
    ddstream_error err;
    REQUIRE(dds_base_url_check(url, allow, &again, &err) == DDSTREAM_OK, text);
    REQUIRE(again != NULL && strcmp(again, url) == 0, text);
    free(again);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
}

static void check_refused_url(const char *text, const ddstream_error *err) {
    REQUIRE(err->status == DDSTREAM_E_CONFIG || err->status == DDSTREAM_E_NOMEM, text);
    REQUIRE(err->message[0] != 0, text);
    REQUIRE(strstr(err->message, "base_url") != NULL, text);
    const char *at = strchr(text, '@');
    if (at == NULL) return;
    /* Nothing of what came before a '@' (a password, perhaps) is quoted: the messages given then
     * are fixed texts, none with a digit, so a quoted "user:pass1" or port would show. */
    for (const char *p = err->message; *p; p++) REQUIRE(!isdigit((unsigned char)*p), text);
}

static void base_config(ddstream_config *cfg) {
    ddstream_config_init(cfg);
    cfg->api_key = API_KEY;
    cfg->app_key = APP_KEY;
    cfg->query = "avg:system.cpu.user{*}";
    cfg->base_url = "https://api.datadoghq.com";
    cfg->range_start = 1700000000;
    cfg->range_end = 1700003600;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    int allow = data[0] & 1;
    char *text = malloc(size);
    if (text == NULL) abort();
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0; /* up to the first NUL: what a C caller can pass */

    /* base_url, directly and through the whole config check. */
    char *url = NULL;
    ddstream_error err;
    memset(&err, 0, sizeof err);
    ddstream_status st = dds_base_url_check(text, allow, &url, &err);
    REQUIRE((st == DDSTREAM_OK) == (url != NULL), text);
    if (st == DDSTREAM_OK) check_accepted_url(text, url, allow);
    else check_refused_url(text, &err);
    ddstream_config cfg;
    base_config(&cfg);
    cfg.base_url = text;
    cfg.allow_insecure_http = allow;
    dds_settings s;
    ddstream_error err2;
    ddstream_status st2 = dds_settings_load(&cfg, &s, &err2);
    REQUIRE(st2 == st, text);
    if (st2 == DDSTREAM_OK) {
        REQUIRE(strcmp(s.base_url, url) == 0, text);
        dds_settings_free(&s);
    } else {
        REQUIRE(strcmp(err.message, err2.message) == 0, text);
    }
    free(url);

    /* The query. */
    base_config(&cfg);
    cfg.query = text;
    st = dds_settings_load(&cfg, &s, &err);
    /* The parser refuses more than these rules (unknown aggregators, functions, ...): every
     * query they refuse is refused, not the converse. */
    const char *problem = ref_query_problem(text);
    if (problem != NULL) REQUIRE(st != DDSTREAM_OK, text);
    /* config.c's verdict against the query language's own, on the same granularity. */
    dds_query_options qopt = {.granularity = s.granularity > 0 ? s.granularity : 60};
    if (st != DDSTREAM_OK) qopt.granularity = 60; /* ddstream_config_init's default */
    dds_compiled_query *compiled = NULL;
    size_t compiled_count = 0;
    dds_query_error qerr;
    ddstream_status qst = dds_query_compile_all(text, &qopt, &compiled, &compiled_count, &qerr);
    if (qst == DDSTREAM_E_NOMEM) {
        if (st == DDSTREAM_OK) dds_settings_free(&s);
        free(text);
        return 0;
    }
    int any_grouped = 0;
    for (size_t i = 0; i < compiled_count; i++) any_grouped |= compiled[i].grouped != 0;
    if (st == DDSTREAM_OK) {
        REQUIRE(qst == DDSTREAM_OK, text);
        REQUIRE((compiled_count > 1) == (ref_several(text) != 0), text);
        REQUIRE((s.grouped != 0) == (compiled_count > 1 || any_grouped), text);
        dds_settings_free(&s);
    } else {
        REQUIRE(st == DDSTREAM_E_CONFIG && strncmp(err.message, "query", 5) == 0, text);
        REQUIRE(strstr(err.message, API_KEY) == NULL, text);
    }
    int blank = 1; /* config.c says "query is empty" for these, before parsing */
    for (const char *p = text; *p && blank; p++) blank = isspace((unsigned char)*p) != 0;
    if (qst == DDSTREAM_E_CONFIG && !blank) {
        /* "query: at character N:", N counted in characters (the offset is in bytes): checked
         * against the offset where the text before it is ASCII. */
        const char *colon = strchr(qerr.message, ':');
        REQUIRE(colon != NULL && strncmp(qerr.message, "at character ", 13) == 0, text);
        char where[64];
        snprintf(where, sizeof where, "query: %.*s", (int)(colon - qerr.message + 1), qerr.message);
        REQUIRE(st == DDSTREAM_E_CONFIG && strncmp(err.message, where, strlen(where)) == 0, text);
        int ascii = 1;
        for (size_t i = 0; i < qerr.offset && text[i]; i++) ascii &= (unsigned char)text[i] < 0x80;
        if (ascii) {
            snprintf(where, sizeof where, "at character %zu:", qerr.offset + 1);
            REQUIRE(strncmp(qerr.message, where, strlen(where)) == 0, text);
        }
    }
    REQUIRE(!any_grouped || ref_grouped(text), text);
    dds_compiled_queries_free(compiled, compiled_count);
    free(text);
    return 0;
}
