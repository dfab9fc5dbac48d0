/*
 * test_resume_token.c — the resume token's format alone (resume_token.c): a token written for a
 * plan reads back as its chunk, and every token that is not one, is for another plan, or points
 * past the plan is refused with a message saying which.
 */
#include <string.h>

#include "check.h"
#include "resume_token.h"

static dds_plan plan_of(int64_t start, int64_t end, int64_t step, size_t count) {
    dds_plan p = {.start = start, .end = end, .step = step, .count = count};
    return p;
}

typedef struct refusal {
    const char *token;
    const char *says; /* a piece of the message */
} refusal;

int main(void) {
    const char *q = "avg:system.cpu.user{*}";
    dds_plan p = plan_of(1700000000, 1700086400, 14400, 6);

    /* Round trips, for every index a stream can be at (0 .. count: count is "done"). */
    for (size_t i = 0; i <= p.count; i++) {
        char buf[DDS_RESUME_TOKEN_CAP];
        dds_resume_token_write(q, 60, &p, i, buf, sizeof buf);
        CHECK(strncmp(buf, "dds1-", 5) == 0);
        CHECK_INT(strlen(buf), 5 + 16 + 1 + 1);
        size_t at = 99;
        ddstream_error err = {0};
        CHECK_INT(dds_resume_token_read(buf, q, 60, &p, &at, &err), DDSTREAM_OK);
        CHECK_INT(at, i);
    }

    /* The fingerprint changes with each thing that gives an index its meaning. */
    uint64_t fp = dds_resume_fingerprint(q, 60, &p);
    dds_plan later = plan_of(1700000060, 1700086400, 14400, 6);
    dds_plan longer = plan_of(1700000000, 1700090000, 14400, 7);
    dds_plan finer = plan_of(1700000000, 1700086400, 7200, 12);
    CHECK(fp != dds_resume_fingerprint("avg:system.cpu.idle{*}", 60, &p));
    CHECK(fp != dds_resume_fingerprint(q, 120, &p));
    CHECK(fp != dds_resume_fingerprint(q, 60, &later));
    CHECK(fp != dds_resume_fingerprint(q, 60, &longer));
    CHECK(fp != dds_resume_fingerprint(q, 60, &finer));
    CHECK(fp == dds_resume_fingerprint(q, 60, &p)); /* and only with them */

    /* A token of another plan, and one past this plan's end. */
    char other[DDS_RESUME_TOKEN_CAP], past[DDS_RESUME_TOKEN_CAP], good[DDS_RESUME_TOKEN_CAP];
    dds_resume_token_write(q, 60, &finer, 3, other, sizeof other);
    dds_resume_token_write(q, 60, &p, p.count + 1, past, sizeof past);
    dds_resume_token_write(q, 60, &p, 2, good, sizeof good);
    char upper[DDS_RESUME_TOKEN_CAP], trailing[DDS_RESUME_TOKEN_CAP + 1], huge[96];
    snprintf(upper, sizeof upper, "%s", good);
    for (char *c = upper + 5; *c != '-'; c++)
        if (*c >= 'a' && *c <= 'f') *c = (char)(*c - 'a' + 'A');
    snprintf(trailing, sizeof trailing, "%s ", good);
    snprintf(huge, sizeof huge, "%.22s18446744073709551616", good); /* UINT64_MAX + 1 */

    const refusal refusals[] = {
        {"", "not a token"},
        {"dds1-", "not a token"},
        {"dds2-0123456789abcdef-1", "not a token"},
        {"dds1-0123456789abcde-1", "not a token"},   /* 15 hex digits */
        {"dds1-0123456789abcdefg-1", "not a token"}, /* a 17th character */
        {"dds1-0123456789abcdef-", "not a token"},
        {"dds1-0123456789abcdef--1", "not a token"},
        {"dds1-0123456789abcdef-+1", "not a token"},
        {"dds1-0123456789abcdef- 1", "not a token"},
        {"dds1-0123456789abcdef-1x", "not a token"},
        {upper, "not a token"},
        {trailing, "not a token"},
        {huge, "not a token"},
        {other, "made for another query"},
        {past, "past the plan's 6 chunks"},
    };
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        size_t at = 77;
        ddstream_error err = {0};
        CHECK_MSG(
            dds_resume_token_read(refusals[i].token, q, 60, &p, &at, &err) == DDSTREAM_E_CONFIG,
            "token \"%s\" was accepted", refusals[i].token);
        CHECK_CONTAINS(err.message, refusals[i].says);
        CHECK_INT(at, 77); /* untouched */
    }

    /* The largest index a token can carry parses, and is then refused as past the plan. */
    uint64_t f = 0, index = 0;
    CHECK_INT(dds_resume_token_parse("dds1-ffffffffffffffff-18446744073709551615", &f, &index), 0);
    CHECK(f == UINT64_MAX);
    CHECK(index == UINT64_MAX);
    return check_report("test_resume_token");
}
