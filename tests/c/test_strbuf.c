/*
 * test_strbuf.c — the growable string (strbuf.c): growth across many doublings, embedded NULs,
 * printf of any length, JSON string escaping, take and free. Running out of memory cannot be
 * provoked here without an allocator to inject failures into, so the sticky flag is not tested.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "strbuf.h"

static void test_growth(void) {
    dds_strbuf b = DDS_STRBUF_INIT;
    /* 10,000 appends of 1..7 bytes: every byte checked against what was written, so a copy lost
     * or misplaced by a reallocation shows. */
    char want[40000];
    size_t wl = 0;
    for (size_t k = 0; k < 10000; k++) {
        char piece[8];
        size_t n = 1 + k % 7;
        for (size_t i = 0; i < n; i++) piece[i] = (char)('a' + (k + i) % 26);
        dds_strbuf_putn(&b, piece, n);
        memcpy(want + wl, piece, n);
        wl += n;
    }
    CHECK(!b.nomem);
    CHECK_INT(b.len, wl);
    CHECK(b.cap > b.len);
    CHECK(memcmp(b.p, want, wl) == 0);
    CHECK_INT(b.p[b.len], 0);
    dds_strbuf_free(&b);
    CHECK(b.p == NULL);
    CHECK_INT(b.len, 0);
    CHECK_INT(b.cap, 0);

    /* One append much larger than the first allocation. */
    char big[100000];
    memset(big, 'x', sizeof big);
    dds_strbuf_putc(&b, '<');
    dds_strbuf_putn(&b, big, sizeof big);
    dds_strbuf_puts(&b, ">");
    CHECK_INT(b.len, sizeof big + 2);
    CHECK_INT(b.p[0], '<');
    CHECK_INT(b.p[sizeof big], 'x');
    CHECK_INT(b.p[sizeof big + 1], '>');
    CHECK_INT(b.p[sizeof big + 2], 0);
    /* Freed buffers are usable again. */
    dds_strbuf_free(&b);
    dds_strbuf_puts(&b, "again");
    CHECK_STR(b.p, "again");
    dds_strbuf_free(&b);
}

static void test_embedded_nul(void) {
    dds_strbuf b = DDS_STRBUF_INIT;
    dds_strbuf_putn(&b, "a\0b", 3);
    dds_strbuf_putc(&b, '\0');
    dds_strbuf_puts(&b, "c");
    dds_strbuf_putn(&b, "ignored", 0);
    CHECK_INT(b.len, 5);
    CHECK(memcmp(b.p, "a\0b\0c", 6) == 0); /* the terminating NUL too */
    size_t len = b.len;
    char *t = dds_strbuf_take(&b);
    CHECK(t != NULL && memcmp(t, "a\0b\0c", len + 1) == 0);
    CHECK(b.p == NULL && b.len == 0 && b.cap == 0 && !b.nomem);
    free(t);
}

static void test_printf(void) {
    dds_strbuf b = DDS_STRBUF_INIT;
    dds_strbuf_printf(&b, "%d-%s-%zu", -42, "x", (size_t)7);
    CHECK_STR(b.p, "-42-x-7");
    dds_strbuf_printf(&b, "%lld", (long long)INT64_MIN);
    CHECK_STR(b.p, "-42-x-7-9223372036854775808");
    /* Longer than the first allocation and than any scratch array a writer might use: every
     * character must arrive, after what was there. */
    char arg[5001];
    for (size_t i = 0; i < sizeof arg - 1; i++) arg[i] = (char)('A' + i % 26);
    arg[sizeof arg - 1] = 0;
    dds_strbuf_printf(&b, "[%s|%s]", arg, arg);
    size_t head = strlen("-42-x-7-9223372036854775808");
    CHECK_INT(b.len, head + 2 * (sizeof arg - 1) + 3);
    CHECK(strncmp(b.p, "-42-x-7-9223372036854775808[", head + 1) == 0);
    CHECK(strncmp(b.p + head + 1, arg, sizeof arg - 1) == 0);
    CHECK_INT(b.p[head + sizeof arg], '|');
    CHECK(strncmp(b.p + head + sizeof arg + 1, arg, sizeof arg - 1) == 0);
    CHECK_INT(b.p[b.len - 1], ']');
    CHECK_INT(b.p[b.len], 0);
    /* Exactly filling the space left, then one more: the boundary of the in-place write. */
    dds_strbuf_free(&b);
    dds_strbuf_puts(&b, "x"); /* allocates the first block */
    size_t room = b.cap - b.len - 1;
    char fill[256];
    CHECK(room < sizeof fill);
    memset(fill, 'f', room);
    fill[room] = 0;
    dds_strbuf_printf(&b, "%s", fill);
    CHECK_INT(b.len, 1 + room);
    dds_strbuf_printf(&b, "%c", 'z');
    CHECK_INT(b.len, 2 + room);
    CHECK_INT(b.p[b.len - 1], 'z');
    CHECK_INT(b.p[b.len - 2], 'f');
    CHECK_INT(b.p[b.len], 0);
    dds_strbuf_printf(&b, "%s", ""); /* nothing appended */
    CHECK_INT(b.len, 2 + room);
    dds_strbuf_free(&b);
}

static void test_json_string(void) {
    dds_strbuf b = DDS_STRBUF_INIT;
    dds_strbuf_json_string(&b, "");
    CHECK_STR(b.p, "\"\"");
    dds_strbuf_free(&b);
    dds_strbuf_json_string(&b, "plain avg:cpu{host:a} by {x}");
    CHECK_STR(b.p, "\"plain avg:cpu{host:a} by {x}\"");
    dds_strbuf_free(&b);
    dds_strbuf_json_string(&b, "q\"b\\s/");
    CHECK_STR(b.p, "\"q\\\"b\\\\s/\"");
    dds_strbuf_free(&b);
    /* Control characters as \u00xx (lower-case hex); DEL and UTF-8 as they are. */
    dds_strbuf_json_string(&b, "\x01\t\n\x1f\x7f\xc3\xa9\xe2\x82\xac");
    CHECK_STR(b.p, "\"\\u0001\\u0009\\u000a\\u001f\x7f\xc3\xa9\xe2\x82\xac\"");
    dds_strbuf_free(&b);
    /* Escapes at the start, the end and back to back; appended after existing text. */
    dds_strbuf_puts(&b, "k:");
    dds_strbuf_json_string(&b, "\"\"x\n");
    CHECK_STR(b.p, "k:\"\\\"\\\"x\\u000a\"");
    dds_strbuf_free(&b);
}

static void test_take(void) {
    dds_strbuf b = DDS_STRBUF_INIT;
    char *empty = dds_strbuf_take(&b); /* nothing written: still owned text */
    CHECK(empty != NULL);
    if (empty) CHECK_STR(empty, "");
    free(empty);
    dds_strbuf_puts(&b, "one");
    char *one = dds_strbuf_take(&b);
    CHECK(one != NULL);
    if (one) CHECK_STR(one, "one");
    dds_strbuf_puts(&b, "two"); /* the taken text is not touched by later use */
    CHECK_STR(b.p, "two");
    if (one) CHECK_STR(one, "one");
    free(one);
    dds_strbuf_free(&b);
    dds_strbuf_free(&b); /* twice: harmless */
}

int main(int argc, char **argv) {
    (void)argc;
    test_growth();
    test_embedded_nul();
    test_printf();
    test_json_string();
    test_take();
    return check_report(argv[0]);
}
