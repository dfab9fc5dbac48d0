/*
 * parse.c — Datadog response bodies to plain C data.
 *
 * The only file that includes cJSON.h: the rest of the library never sees a JSON tree, so the JSON
 * parser can be replaced without touching anything else. Every body is parsed once into a tree and
 * the tree is walked once; nothing here looks an element up by position or counts an array twice
 * per element, so the work stays linear in the body size.
 *
 * cJSON keeps a process-wide "last error" that every parse writes. Nothing here reads it (the
 * error position comes back through return_parse_end), so its value never matters to us.
 */
#include "parse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cJSON.h"
#include "error.h"
#include "json_check.h"
#include "pointlist.h"
#include "strparse.h"
#include "timestamp_limit.h"

/* A request carries four sub-queries; anything near this bound is garbage, not a real index. */
#define QUERY_INDEX_LIMIT 1000000
/* Longest text taken from a body into a message: enough to explain, too short to flood a log. */
#define TEXT_LIMIT 300
/* Bytes of the body quoted after a JSON syntax error. */
#define EXCERPT_LIMIT 24

static const char *type_name(const cJSON *v)
{
    if (v == NULL)
        return "nothing";
    switch (v->type & 0xFF) {
    case cJSON_False:
    case cJSON_True:
        return "boolean";
    case cJSON_NULL:
        return "null";
    case cJSON_Number:
        return "number";
    case cJSON_String:
        return "string";
    case cJSON_Array:
        return "array";
    case cJSON_Object:
        return "object";
    default:
        return "an invalid value";
    }
}

/* ---------------------------------------------------------------------------------------------
 * Text sanitising: everything a body contributes to a message goes through here, so messages are
 * always valid UTF-8, free of control characters, whitespace-collapsed and bounded.
 */

typedef struct text {
    char *out;
    size_t limit;       /* bytes of text allowed, excluding the NUL */
    size_t len;
    int pending_space;  /* whitespace seen since the last visible character */
    int full;           /* something was dropped for lack of room */
} text;

/* cap >= 1: there is always room for the NUL. */
static void text_init(text *t, char *out, size_t cap)
{
    t->out = out;
    t->limit = cap - 1 < TEXT_LIMIT ? cap - 1 : TEXT_LIMIT;
    t->len = 0;
    t->pending_space = 0;
    t->full = 0;
    out[0] = '\0';
}

static void text_space(text *t)
{
    if (t->len > 0)
        t->pending_space = 1;
}

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 if it is not valid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t k;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        k = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        if (c == 0xE0)
            lo = 0xA0;   /* overlong */
        if (c == 0xED)
            hi = 0x9F;   /* UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        if (c == 0xF0)
            lo = 0x90;   /* overlong */
        if (c == 0xF4)
            hi = 0x8F;   /* beyond U+10FFFF */
    } else
        return 0;
    if (n < k)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < k; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return k;
}

static int valid_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

/* Append n bytes of untrusted text. Returns 0 once the text is full, so callers can stop early. */
static int text_put(text *t, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (t->full)
            return 0;
        unsigned char c = p[i];
        if (c <= 0x20 || c == 0x7F) {
            text_space(t);
            i++;
            continue;
        }
        size_t k = utf8_seq(p + i, n - i);
        const char *bytes = (const char *)p + i;
        if (k == 0) {
            bytes = "?";
            k = 1;
            i += 1;
        } else {
            i += k;
        }
        size_t need = k + (size_t)t->pending_space;
        if (t->len + need > t->limit) {
            t->full = 1;
            return 0;
        }
        if (t->pending_space)
            t->out[t->len++] = ' ';
        t->pending_space = 0;
        memcpy(t->out + t->len, bytes, k);
        t->len += k;
    }
    return 1;
}

static int text_puts(text *t, const char *s)
{
    return text_put(t, s, strlen(s));
}

/* NUL-terminate; mark a cut with "..." (backing off whole UTF-8 characters to make room). */
static void text_finish(text *t)
{
    if (t->full && t->limit >= 3) {
        while (t->len > 0 && t->len + 3 > t->limit) {
            t->len--;
            while (t->len > 0 && ((unsigned char)t->out[t->len] & 0xC0) == 0x80)
                t->len--;
        }
        while (t->len > 0 && t->out[t->len - 1] == ' ')
            t->len--;
        memcpy(t->out + t->len, "...", 3);
        t->len += 3;
    }
    t->out[t->len] = '\0';
}

/* ---------------------------------------------------------------------------------------------
 * JSON entry point shared by every body we parse.
 */

static size_t skip_bom_ws(const char *s, size_t n)
{
    size_t i = 0;
    if (n >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
        (unsigned char)s[2] == 0xBF)
        i = 3;
    return dds_skip_json_ws(s, n, i);
}

static int looks_like_html(const char *s, size_t n)
{
    size_t head = n < 1024 ? n : 1024;
    return (n > 0 && s[0] == '<') || dds_find_ci(s, head, "<html") < head;
}

/* The JSON path of the first string of body that holds U+0000, or NULL if none does. */
static const char *string_with_nul(const char *body, size_t len, dds_json_check *check)
{
    if (!dds_json_may_hold_nul(body, len))
        return NULL;
    dds_json_check_body(body, len, check);
    return check->nul ? check->nul_path : NULL;
}

/*
 * Parse body as one JSON value with nothing but whitespace after it. On failure explain where and
 * how, and quote non-JSON bodies (HTML pages from proxies, plain text) via dds_parse_error_body.
 */
static ddstream_status parse_json(const char *body, size_t len, cJSON **out, char *msg, size_t cap)
{
    *out = NULL;
    size_t start = skip_bom_ws(body, len);
    if (start == len) {
        dds_set_msg(msg, cap, "expected a JSON object, got an empty body");
        return DDSTREAM_E_PROTOCOL;
    }
    if (body[start] != '{' && body[start] != '[') {
        char said[TEXT_LIMIT + 1];
        dds_parse_error_body(body, len, said, sizeof said);
        dds_set_msg(msg, cap, "expected a JSON object, got %s: %s",
                looks_like_html(body + start, len - start) ? "HTML" : "text", said);
        return DDSTREAM_E_PROTOCOL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (root == NULL) {
        /* json_check tells a body that stops early from one with a wrong byte (and where):
         * cJSON's position cannot, as it gives up on the last byte in both cases. */
        dds_json_check check;
        dds_json_shape shape = dds_json_check_body(body, len, &check);
        size_t pos = (end != NULL && end >= body && end <= body + len) ? (size_t)(end - body) : 0;
        if (shape == DDS_JSON_MALFORMED)
            pos = check.where;
        if (shape == DDS_JSON_TRUNCATED || (shape != DDS_JSON_MALFORMED && pos + 1 >= len)) {
            dds_set_msg(msg, cap, "invalid JSON: the body ends early (truncated? %zu bytes)", len);
        } else {
            char near[EXCERPT_LIMIT * 4 + 1];
            text t;
            text_init(&t, near, sizeof near);
            size_t n = len - pos < EXCERPT_LIMIT ? len - pos : EXCERPT_LIMIT;
            text_put(&t, body + pos, n);
            text_finish(&t);
            dds_set_msg(msg, cap, "invalid JSON at byte %zu of %zu, near \"%s\"", pos, len, near);
        }
        return DDSTREAM_E_PROTOCOL;
    }
    size_t rest = dds_skip_json_ws(body, len, (size_t)(end - body));
    if (rest != len) {
        cJSON_Delete(root);
        dds_set_msg(msg, cap, "invalid JSON: unexpected data after the value at byte %zu of %zu", rest,
                len);
        return DDSTREAM_E_PROTOCOL;
    }
    /* cJSON's strings are C strings: U+0000 would end one early, and "host:a\u0000x" would read
     * as "host:a", the same tag as "host:a\u0000y" (two series merged). Refused, wherever it is. */
    dds_json_check check;
    const char *nul_at = string_with_nul(body, len, &check);
    if (nul_at != NULL) {
        cJSON_Delete(root);
        dds_set_msg(msg, cap, "%s: a string holds U+0000 (NUL), which ddstream cannot keep apart from "
                "the text before it", nul_at);
        return DDSTREAM_E_PROTOCOL;
    }
    *out = root;
    return DDSTREAM_OK;
}

/* First member called key (duplicates: the first one wins, as in most JSON readers). */
static const cJSON *member(const cJSON *obj, const char *key)
{
    for (const cJSON *c = obj->child; c != NULL; c = c->next)
        if (c->string != NULL && strcmp(c->string, key) == 0)
            return c;
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Error bodies.
 */

/* Text of one error item given as an object: "title: detail", or whichever is there. */
static int put_error_object(text *t, const cJSON *obj)
{
    const cJSON *title = member(obj, "title");
    const cJSON *detail = member(obj, "detail");
    const char *ts = cJSON_IsString(title) && title->valuestring[0] ? title->valuestring : NULL;
    const char *ds = cJSON_IsString(detail) && detail->valuestring[0] ? detail->valuestring : NULL;
    if (ts != NULL && ds != NULL && strcmp(ts, ds) == 0)
        ds = NULL;
    if (ts != NULL || ds != NULL) {
        if (ts != NULL)
            text_puts(t, ts);
        if (ts != NULL && ds != NULL)
            text_puts(t, ":");
        text_space(t);
        if (ds != NULL)
            text_puts(t, ds);
        return 1;
    }
    const cJSON *m = member(obj, "message");
    if (!cJSON_IsString(m) || m->valuestring[0] == '\0')
        m = member(obj, "error");
    if (cJSON_IsString(m) && m->valuestring[0] != '\0') {
        text_puts(t, m->valuestring);
        return 1;
    }
    return 0;
}

/* Items of an "errors" array joined with "; ". Returns the number of items written. */
static int put_error_list(text *t, const cJSON *list)
{
    int n = 0;
    for (const cJSON *it = list->child; it != NULL && !t->full; it = it->next) {
        size_t before = t->len;
        int pending = t->pending_space;
        if (n > 0) {
            text_puts(t, ";");
            text_space(t);
        }
        int wrote = 0;
        if (cJSON_IsString(it) && it->valuestring[0] != '\0') {
            text_puts(t, it->valuestring);
            wrote = 1;
        } else if (cJSON_IsObject(it)) {
            wrote = put_error_object(t, it);
        }
        if (wrote)
            n++;
        else if (!t->full) {
            t->len = before;            /* undo the separator of an item that said nothing */
            t->pending_space = pending;
        }
    }
    return n;
}

static int put_error_json(text *t, const cJSON *root)
{
    if (cJSON_IsArray(root))
        return put_error_list(t, root);
    if (!cJSON_IsObject(root))
        return 0;
    const cJSON *errors = member(root, "errors");
    if (cJSON_IsArray(errors) && put_error_list(t, errors) > 0)
        return 1;
    if (cJSON_IsString(errors) && errors->valuestring[0] != '\0') {
        text_puts(t, errors->valuestring);
        return 1;
    }
    const cJSON *error = member(root, "error");
    if (cJSON_IsString(error) && error->valuestring[0] != '\0') {
        text_puts(t, error->valuestring);
        return 1;
    }
    if (cJSON_IsObject(error) && put_error_object(t, error))
        return 1;
    return put_error_object(t, root);
}

/* Decode one HTML character reference at s (s[0] == '&'); returns bytes consumed, 0 if none. */
static size_t put_entity(text *t, const char *s, size_t n)
{
    static const struct {
        const char *name;
        const char *text;
    } named[] = {{"&amp;", "&"},  {"&lt;", "<"},    {"&gt;", ">"},  {"&quot;", "\""},
                 {"&apos;", "'"}, {"&nbsp;", " "}, {"&#39;", "'"}};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        if (dds_starts_with_ci(s, n, named[i].name)) {
            text_puts(t, named[i].text);
            return strlen(named[i].name);
        }
    }
    if (n < 4 || s[1] != '#')
        return 0;
    size_t i = 2;
    int hex = 0;
    if (s[i] == 'x' || s[i] == 'X') {
        hex = 1;
        i++;
    }
    unsigned long cp = 0;
    size_t digits = 0;
    for (; i < n && digits < 8; i++, digits++) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (hex && c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (hex && c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            break;
        cp = cp * (hex ? 16u : 10u) + (unsigned long)d;
    }
    if (digits == 0 || i >= n || s[i] != ';')
        return 0;
    char u[4];
    size_t k;
    if (cp < 0x80) {
        u[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else if (cp <= 0x10FFFF) {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    } else {
        u[0] = '?';
        k = 1;
    }
    text_put(t, u, k);  /* invalid code points (surrogates, NUL) come out as '?' or a space */
    return i + 1;
}

/* Visible text of HTML: tags, comments, scripts and styles dropped, entities decoded. */
static void put_html_text(text *t, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && !t->full) {
        if (s[i] == '<') {
            size_t skip_to;
            if (dds_starts_with_ci(s + i, n - i, "<!--")) {
                size_t e = dds_find_ci(s + i + 4, n - i - 4, "-->");
                skip_to = i + 4 + e + 3;
            } else if (dds_starts_with_ci(s + i, n - i, "<script") ||
                       dds_starts_with_ci(s + i, n - i, "<style")) {
                /* Their content is code, not text a person was meant to read. */
                const char *close =
                    dds_starts_with_ci(s + i, n - i, "<script") ? "</script" : "</style";
                size_t e = dds_find_ci(s + i, n - i, close);
                size_t gt = i + e < n ? dds_find_ci(s + i + e, n - i - e, ">") : 0;
                skip_to = i + e + gt + 1;
            } else {
                size_t gt = dds_find_ci(s + i, n - i, ">");
                skip_to = i + gt + 1;
            }
            i = skip_to < n ? skip_to : n;
            text_space(t);  /* tags separate words */
            continue;
        }
        if (s[i] == '&') {
            size_t used = put_entity(t, s + i, n - i);
            if (used > 0) {
                i += used;
                continue;
            }
        }
        size_t j = i + 1;
        while (j < n && s[j] != '<' && s[j] != '&')
            j++;
        text_put(t, s + i, j - i);
        i = j;
    }
}

/* The page's <title>, else its visible text. */
static void put_html(text *t, const char *s, size_t n)
{
    size_t open = dds_find_ci(s, n, "<title");
    if (open < n) {
        size_t gt = dds_find_ci(s + open, n - open, ">");
        if (open + gt < n) {
            size_t from = open + gt + 1;
            size_t close = dds_find_ci(s + from, n - from, "</title");
            put_html_text(t, s + from, close);
            if (t->len > 0)
                return;
        }
    }
    put_html_text(t, s, n);
}

void dds_parse_error_body(const char *body, size_t len, char *out, size_t out_cap)
{
    if (out == NULL || out_cap == 0)
        return;
    out[0] = '\0';
    if (body == NULL || len == 0)
        return;
    text t;
    text_init(&t, out, out_cap);
    size_t start = skip_bom_ws(body, len);
    if (start == len)
        return;
    const char *s = body + start;
    size_t n = len - start;
    if (s[0] == '{' || s[0] == '[') {
        /* Trailing bytes are tolerated here: an error body is read for a message, not for data.
         * A string holding U+0000 would be cut there, hiding the rest: such a body is quoted as
         * it is (below), "\u0000" and all. */
        dds_json_check check;
        cJSON *root = string_with_nul(body, len, &check) ? NULL : cJSON_ParseWithLength(body, len);
        if (root != NULL) {
            int found = put_error_json(&t, root);
            cJSON_Delete(root);
            if (found && t.len > 0) {
                text_finish(&t);
                return;
            }
            text_init(&t, out, out_cap);
        }
    } else if (looks_like_html(s, n)) {
        put_html(&t, s, n);
        if (t.len > 0) {
            text_finish(&t);
            return;
        }
        text_init(&t, out, out_cap);
    }
    text_put(&t, s, n);
    text_finish(&t);
}

/* ---------------------------------------------------------------------------------------------
 * GET /api/v1/query.
 */

void dds_response_free(dds_response *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->count; i++) {
        free(r->series[i].tags);
        free(r->series[i].ts_ms);
        free(r->series[i].values);
    }
    free(r->series);
    memset(r, 0, sizeof *r);
}

ddstream_status dds_response_append(dds_response *into, dds_response *from)
{
    if (into == NULL || from == NULL || into == from)
        return DDSTREAM_E_INTERNAL;
    if (from->count == 0) {
        dds_response_free(from);
        return DDSTREAM_OK;
    }
    if (from->count > SIZE_MAX / sizeof(dds_series) - into->count)
        return DDSTREAM_E_NOMEM;
    size_t need = into->count + from->count;
    if (need > into->capacity) {
        size_t cap = into->capacity * 2;
        if (cap < need || cap > SIZE_MAX / sizeof(dds_series))
            cap = need;
        dds_series *grown = realloc(into->series, cap * sizeof *grown);
        if (grown == NULL)
            return DDSTREAM_E_NOMEM;
        into->series = grown;
        into->capacity = cap;
    }
    memcpy(into->series + into->count, from->series, from->count * sizeof *from->series);
    into->count = need;
    free(from->series);  /* the series' contents now belong to into */
    memset(from, 0, sizeof *from);
    return DDSTREAM_OK;
}

/* A number usable as an integer: finite, whole, within [lo, hi]. */
static int whole_in(double v, double lo, double hi)
{
    return isfinite(v) && v >= lo && v <= hi && (double)(int64_t)v == v;
}

static ddstream_status parse_tags(const cJSON *tag_set, size_t si, char **out, char *msg,
                                  size_t cap)
{
    if (tag_set == NULL) {
        dds_set_msg(msg, cap, "series[%zu].tag_set: missing", si);
        return DDSTREAM_E_PROTOCOL;
    }
    if (!cJSON_IsArray(tag_set)) {
        dds_set_msg(msg, cap, "series[%zu].tag_set: expected an array of strings, got %s", si,
                type_name(tag_set));
        return DDSTREAM_E_PROTOCOL;
    }
    size_t total = 1, j = 0;
    for (const cJSON *t = tag_set->child; t != NULL; t = t->next, j++) {
        if (!cJSON_IsString(t)) {
            dds_set_msg(msg, cap, "series[%zu].tag_set[%zu]: expected a string, got %s", si, j,
                    type_name(t));
            return DDSTREAM_E_PROTOCOL;
        }
        size_t k = strlen(t->valuestring);
        if (!valid_utf8(t->valuestring, k)) {
            /* Tags reach Python and Arrow as strings: both insist on UTF-8. */
            dds_set_msg(msg, cap, "series[%zu].tag_set[%zu]: not valid UTF-8", si, j);
            return DDSTREAM_E_PROTOCOL;
        }
        total += k + 1;  /* cannot overflow: bounded by the body size */
    }
    char *joined = malloc(total);
    if (joined == NULL) {
        dds_set_msg(msg, cap, "out of memory for series[%zu].tag_set", si);
        return DDSTREAM_E_NOMEM;
    }
    size_t len = 0;
    for (const cJSON *t = tag_set->child; t != NULL; t = t->next) {
        size_t k = strlen(t->valuestring);
        if (len > 0)
            joined[len++] = ',';
        memcpy(joined + len, t->valuestring, k);
        len += k;
    }
    joined[len] = '\0';
    *out = joined;
    return DDSTREAM_OK;
}

static ddstream_status parse_points(const cJSON *pointlist, size_t si, dds_series *s, char *msg,
                                    size_t cap)
{
    if (pointlist == NULL) {
        dds_set_msg(msg, cap, "series[%zu].pointlist: missing", si);
        return DDSTREAM_E_PROTOCOL;
    }
    if (!cJSON_IsArray(pointlist)) {
        dds_set_msg(msg, cap, "series[%zu].pointlist: expected an array, got %s", si,
                type_name(pointlist));
        return DDSTREAM_E_PROTOCOL;
    }
    size_t n = 0;
    for (const cJSON *p = pointlist->child; p != NULL; p = p->next)
        n++;
    if (n == 0)
        return DDSTREAM_OK;
    s->ts_ms = malloc(n * sizeof *s->ts_ms);  /* n * 8 < the body size: cannot overflow */
    s->values = malloc(n * sizeof *s->values);
    if (s->ts_ms == NULL || s->values == NULL) {
        dds_set_msg(msg, cap, "out of memory for series[%zu].pointlist (%zu points)", si, n);
        return DDSTREAM_E_NOMEM;
    }
    size_t j = 0;
    for (const cJSON *p = pointlist->child; p != NULL; p = p->next, j++) {
        if (!cJSON_IsArray(p)) {
            dds_set_msg(msg, cap,
                    "series[%zu].pointlist[%zu]: expected an array [timestamp, value], got %s", si,
                    j, type_name(p));
            return DDSTREAM_E_PROTOCOL;
        }
        const cJSON *ts = p->child;
        const cJSON *val = ts != NULL ? ts->next : NULL;
        if (ts == NULL || val == NULL || val->next != NULL) {
            size_t k = 0;
            for (const cJSON *e = p->child; e != NULL; e = e->next)
                k++;
            dds_set_msg(msg, cap,
                    "series[%zu].pointlist[%zu]: expected 2 elements [timestamp, value], got %zu",
                    si, j, k);
            return DDSTREAM_E_PROTOCOL;
        }
        if (!cJSON_IsNumber(ts)) {
            dds_set_msg(msg, cap, "series[%zu].pointlist[%zu][0]: expected a number, got %s", si, j,
                    type_name(ts));
            return DDSTREAM_E_PROTOCOL;
        }
        double t = ts->valuedouble;
        if (!isfinite(t) || t < -DDS_TIME_LIMIT_MS || t > DDS_TIME_LIMIT_MS) {
            dds_set_msg(msg, cap,
                    "series[%zu].pointlist[%zu][0]: timestamp %g ms is out of range (at most 1e15 "
                    "from 1970)",
                    si, j, t);
            return DDSTREAM_E_PROTOCOL;
        }
        if ((double)(int64_t)t != t) {
            dds_set_msg(msg, cap,
                    "series[%zu].pointlist[%zu][0]: timestamp %.3f is not a whole number of ms", si,
                    j, t);
            return DDSTREAM_E_PROTOCOL;
        }
        double v;
        if (cJSON_IsNull(val)) {
            v = NAN;
        } else if (cJSON_IsNumber(val)) {
            v = val->valuedouble;
            if (!isfinite(v)) {
                dds_set_msg(msg, cap,
                        "series[%zu].pointlist[%zu][1]: number out of range for a double", si, j);
                return DDSTREAM_E_PROTOCOL;
            }
        } else {
            dds_set_msg(msg, cap, "series[%zu].pointlist[%zu][1]: expected a number or null, got %s",
                    si, j, type_name(val));
            return DDSTREAM_E_PROTOCOL;
        }
        s->ts_ms[j] = (int64_t)t;
        s->values[j] = v;
    }
    s->length = n;
    return DDSTREAM_OK;
}

static ddstream_status parse_series(const cJSON *obj, size_t si, dds_series *s,
                                    dds_fast_pointlist *fast, char *msg, size_t cap)
{
    if (!cJSON_IsObject(obj)) {
        dds_set_msg(msg, cap, "series[%zu]: expected an object, got %s", si, type_name(obj));
        return DDSTREAM_E_PROTOCOL;
    }
    /* One pass over the members: a series object can be looked at once, whatever its key order. */
    const cJSON *query_index = NULL, *tag_set = NULL, *interval = NULL, *pointlist = NULL;
    for (const cJSON *c = obj->child; c != NULL; c = c->next) {
        if (c->string == NULL)
            continue;
        if (query_index == NULL && strcmp(c->string, "query_index") == 0)
            query_index = c;
        else if (tag_set == NULL && strcmp(c->string, "tag_set") == 0)
            tag_set = c;
        else if (interval == NULL && strcmp(c->string, "interval") == 0)
            interval = c;
        else if (pointlist == NULL && strcmp(c->string, "pointlist") == 0)
            pointlist = c;
    }

    if (query_index == NULL) {
        dds_set_msg(msg, cap, "series[%zu].query_index: missing", si);
        return DDSTREAM_E_PROTOCOL;
    }
    if (!cJSON_IsNumber(query_index)) {
        dds_set_msg(msg, cap, "series[%zu].query_index: expected a number, got %s", si,
                type_name(query_index));
        return DDSTREAM_E_PROTOCOL;
    }
    if (!whole_in(query_index->valuedouble, 0, QUERY_INDEX_LIMIT - 1)) {
        dds_set_msg(msg, cap, "series[%zu].query_index: expected an integer in 0..%d, got %g", si,
                QUERY_INDEX_LIMIT - 1, query_index->valuedouble);
        return DDSTREAM_E_PROTOCOL;
    }
    s->query_index = (int32_t)query_index->valuedouble;

    if (interval == NULL || cJSON_IsNull(interval)) {
        s->interval = 0;
    } else if (!cJSON_IsNumber(interval)) {
        dds_set_msg(msg, cap, "series[%zu].interval: expected a number or null, got %s", si,
                type_name(interval));
        return DDSTREAM_E_PROTOCOL;
    } else if (!whole_in(interval->valuedouble, 0, DDS_TIME_LIMIT_S)) {
        dds_set_msg(msg, cap, "series[%zu].interval: expected a whole number of seconds >= 0, got %g",
                si, interval->valuedouble);
        return DDSTREAM_E_PROTOCOL;
    } else {
        s->interval = (int64_t)interval->valuedouble;
    }

    ddstream_status st = parse_tags(tag_set, si, &s->tags, msg, cap);
    if (st != DDSTREAM_OK)
        return st;
    if (fast != NULL) {
        /* Already read and checked by the fast path (pointlist.c); the envelope shows "[]". */
        s->length = fast->length;
        s->ts_ms = fast->ts_ms;
        s->values = fast->values;
        fast->ts_ms = NULL;
        fast->values = NULL;
        return DDSTREAM_OK;
    }
    return parse_points(pointlist, si, s, msg, cap);
}

/* Copy of a message string from the body, sanitised and bounded. */
static void body_text(const char *s, char *out, size_t cap)
{
    text t;
    text_init(&t, out, cap);
    text_puts(&t, s);
    text_finish(&t);
}

/*
 * With fast: body is the envelope (pointlist.h) of original[0..original_len), whose fast items
 * hold the pointlists that the envelope shows as []. Should the envelope not parse (a document
 * the scanner accepted but cJSON does not), the original is parsed without the fast path, so
 * that the message and its byte positions are the general parser's.
 */
static ddstream_status parse_query(const char *body, size_t len, dds_fast_pointlists *fast,
                                   const char *original, size_t original_len,
                                   dds_response *out, char *msg, size_t msg_cap)
{
    if (out == NULL || (body == NULL && len > 0)) {
        dds_set_msg(msg, msg_cap, "internal: dds_parse_query_response called without a body or output");
        return DDSTREAM_E_INTERNAL;
    }
    memset(out, 0, sizeof *out);
    cJSON *root = NULL;
    ddstream_status st = parse_json(body, len, &root, msg, msg_cap);
    if (st != DDSTREAM_OK && fast != NULL)
        return parse_query(original, original_len, NULL, NULL, 0, out, msg, msg_cap);
    if (st != DDSTREAM_OK)
        return st;

    const cJSON *status = NULL, *error = NULL, *series = NULL;
    if (!cJSON_IsObject(root)) {
        dds_set_msg(msg, msg_cap, "expected a JSON object at the top level, got %s", type_name(root));
        st = DDSTREAM_E_PROTOCOL;
        goto done;
    }
    for (const cJSON *c = root->child; c != NULL; c = c->next) {
        if (c->string == NULL)
            continue;
        if (status == NULL && strcmp(c->string, "status") == 0)
            status = c;
        else if (error == NULL && strcmp(c->string, "error") == 0)
            error = c;
        else if (series == NULL && strcmp(c->string, "series") == 0)
            series = c;
    }

    if (status != NULL) {
        if (!cJSON_IsString(status)) {
            dds_set_msg(msg, msg_cap, "status: expected a string, got %s", type_name(status));
            st = DDSTREAM_E_PROTOCOL;
            goto done;
        }
        if (strcmp(status->valuestring, "error") == 0) {
            char said[TEXT_LIMIT + 1];
            said[0] = '\0';
            if (cJSON_IsString(error))
                body_text(error->valuestring, said, sizeof said);
            if (said[0] == '\0') {
                text t;
                text_init(&t, said, sizeof said);
                put_error_json(&t, root);
                text_finish(&t);
            }
            if (said[0] != '\0')
                dds_set_msg(msg, msg_cap, "%s", said);
            else
                dds_set_msg(msg, msg_cap, "Datadog answered \"status\": \"error\" without a message");
            st = DDSTREAM_E_QUERY;
            goto done;
        }
        if (strcmp(status->valuestring, "ok") != 0) {
            char said[64];
            body_text(status->valuestring, said, sizeof said);
            dds_set_msg(msg, msg_cap, "status: expected \"ok\" or \"error\", got \"%s\"", said);
            st = DDSTREAM_E_PROTOCOL;
            goto done;
        }
    }

    if (series == NULL) {
        char said[TEXT_LIMIT + 1];
        text t;
        text_init(&t, said, sizeof said);
        put_error_json(&t, root);
        text_finish(&t);
        if (said[0] != '\0')
            dds_set_msg(msg, msg_cap, "series: missing (the body says: %s)", said);
        else
            dds_set_msg(msg, msg_cap, "series: missing");
        st = DDSTREAM_E_PROTOCOL;
        goto done;
    }
    if (!cJSON_IsArray(series)) {
        dds_set_msg(msg, msg_cap, "series: expected an array, got %s", type_name(series));
        st = DDSTREAM_E_PROTOCOL;
        goto done;
    }

    size_t n = 0;
    for (const cJSON *c = series->child; c != NULL; c = c->next)
        n++;
    if (n > 0) {
        out->series = calloc(n, sizeof *out->series);
        if (out->series == NULL) {
            dds_set_msg(msg, msg_cap, "out of memory for %zu series", n);
            st = DDSTREAM_E_NOMEM;
            goto done;
        }
        out->capacity = n;
    }
    size_t i = 0, cursor = 0;
    for (const cJSON *c = series->child; c != NULL; c = c->next, i++) {
        /* Counted before parsing: a half-filled series is freed with the others on failure. */
        out->count = i + 1;
        dds_fast_pointlist *pl = fast ? dds_fast_pointlists_take(fast, i, &cursor) : NULL;
        st = parse_series(c, i, &out->series[i], pl, msg, msg_cap);
        if (st != DDSTREAM_OK)
            goto done;
    }
    st = DDSTREAM_OK;

done:
    cJSON_Delete(root);
    if (st != DDSTREAM_OK)
        dds_response_free(out);
    return st;
}

ddstream_status dds_parse_query_response(const char *body, size_t len, dds_response *out,
                                         char *msg, size_t msg_cap)
{
    return parse_query(body, len, NULL, NULL, 0, out, msg, msg_cap);
}

ddstream_status dds_parse_query_response_fast(const char *body, size_t len, dds_response *out,
                                              char *msg, size_t msg_cap)
{
    dds_fast_pointlists fast;
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (dds_fast_pointlists_scan(body, len, &fast) != 0) {
        dds_set_msg(msg, msg_cap, "out of memory reading a %zu-byte answer", len);
        return DDSTREAM_E_NOMEM;
    }
    if (fast.count == 0) {
        dds_fast_pointlists_free(&fast);
        return parse_query(body, len, NULL, NULL, 0, out, msg, msg_cap);
    }
    /* cJSON gets a copy without the pointlists' text: a few kilobytes to copy, where blanking
     * the pointlists in place left cJSON megabytes of spaces to skip one by one. */
    size_t env_len = 0;
    char *env = dds_fast_pointlists_envelope(body, len, &fast, &env_len);
    if (env == NULL) {
        dds_fast_pointlists_free(&fast);
        dds_set_msg(msg, msg_cap, "out of memory reading a %zu-byte answer", len);
        return DDSTREAM_E_NOMEM;
    }
    ddstream_status st = parse_query(env, env_len, &fast, body, len, out, msg, msg_cap);
    free(env);
    dds_fast_pointlists_free(&fast);
    return st;
}

/* ---------------------------------------------------------------------------------------------
 * GET /api/v1/validate.
 */

ddstream_status dds_parse_validate_response(const char *body, size_t len, int *valid, char *msg,
                                            size_t msg_cap)
{
    if (valid == NULL || (body == NULL && len > 0)) {
        dds_set_msg(msg, msg_cap, "internal: validate response parsed without body or output");
        return DDSTREAM_E_INTERNAL;
    }
    cJSON *root = NULL;
    ddstream_status st = parse_json(body, len, &root, msg, msg_cap);
    if (st != DDSTREAM_OK)
        return st;
    const cJSON *v = cJSON_IsObject(root) ? member(root, "valid") : NULL;
    if (!cJSON_IsObject(root)) {
        dds_set_msg(msg, msg_cap, "expected a JSON object at the top level, got %s", type_name(root));
        st = DDSTREAM_E_PROTOCOL;
    } else if (v == NULL) {
        dds_set_msg(msg, msg_cap, "valid: missing");
        st = DDSTREAM_E_PROTOCOL;
    } else if (!cJSON_IsBool(v)) {
        dds_set_msg(msg, msg_cap, "valid: expected true or false, got %s", type_name(v));
        st = DDSTREAM_E_PROTOCOL;
    } else {
        *valid = cJSON_IsTrue(v) ? 1 : 0;
    }
    cJSON_Delete(root);
    return st;
}
