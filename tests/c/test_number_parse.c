/*
 * test_number_parse.c — number_parse.c against strtod, bit for bit, over millions of digit strings:
 * random doubles printed at every precision, full-precision values as Datadog writes them, points
 * near and exactly at the halfway between two doubles, 19- to 25-digit mantissas, exponents at
 * the edges (subnormals, overflow, underflow), and a table of hand-picked cases; then what JSON's
 * grammar refuses, and the table of powers of five against its definition where C can check it.
 *
 *   test_number_parse [SEED] [SCALE]   (defaults 1 and 1; SCALE multiplies every sample count)
 *
 * Under valgrind (DDS_TEST_NO_TIMING set, tests/c/meson.build) every count is a hundredth: the
 * memory checks need the paths, not the millions, and a full run would take most of an hour.
 */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "number_parse.h"
#include "pow5_table.h"

/* Every text is parsed from the end of this heap block, so a read past its length is a read past
 * the block (the sanitizers catch it). */
#define SLOT 1024
static char *slot_block;

static uint64_t rng_state;

static uint64_t next_u64(void) { /* splitmix64 */
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static int below(int n) { return (int)(next_u64() % (uint64_t)n); }

typedef struct tally {
    long compared, fallback, refused_long, mismatches;
    long paths[4];
} tally;

static uint64_t bits_of(double d) {
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

/* Parse text (a complete JSON number) both ways and compare. */
static void compare(tally *t, const char *text) {
    size_t len = strlen(text);
    if (len > SLOT) return;
    char *at = slot_block + SLOT - len;
    memcpy(at, text, len);
    size_t pos = 0;
    double got = 0;
    dds_number_path how = DDS_NUMBER_ZERO;
    int r = dds_number_parse(at, len, &pos, &got, &how);
    char *end = NULL;
    double want = strtod(text, &end);
    t->compared++;
    if (r != 0) {
        /* Refusing is allowed only for long text that needs the exact fallback. */
        if (len >= DDS_NUMBER_TEXT_LIMIT) {
            t->refused_long++;
            return;
        }
        t->mismatches++;
        if (t->mismatches <= 20) CHECK_MSG(0, "\"%s\" refused", text);
        return;
    }
    t->paths[how]++;
    if (how == DDS_NUMBER_FALLBACK) t->fallback++;
    if (bits_of(got) != bits_of(want) || pos != len || end != text + len) {
        t->mismatches++;
        if (t->mismatches <= 20)
            CHECK_MSG(0, "\"%s\": %a (read %zu bytes), strtod %a", text, got, pos, want);
    }
}

/* A random finite double, every bit pattern equally likely. */
static double random_double(void) {
    for (;;) {
        uint64_t b = next_u64();
        double d;
        memcpy(&d, &b, sizeof d);
        if (isfinite(d)) return d;
    }
}

/* The shortest %.Pg text that reads back as d (what Python's repr keeps: 1 to 17 digits). */
static void shortest(char *buf, size_t cap, double d) {
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, cap, "%.*g", p, d);
        if (strtod(buf, NULL) == d) return;
    }
}

/* Datadog's shape: a value like a CPU percentage or a byte count, at full precision, written
 * the shortest way as a fixed-point number (repr's form between 1e-4 and 1e16). */
static void datadog_value(tally *t) {
    char buf[64], fixed[96];
    double scale[] = {1.0, 100.0, 1e3, 1e6, 1e9, 1e12, 0.01};
    double d = (double)(next_u64() >> 11) / 9007199254740992.0 * scale[below(7)];
    if (below(2)) d = -d;
    shortest(buf, sizeof buf, d);
    /* The significant digits in fixed notation, as repr writes them (leading zeros not). */
    int digits = 0, leading = 1;
    for (const char *c = buf; *c && *c != 'e'; c++) {
        if (*c < '0' || *c > '9' || (leading && *c == '0')) continue;
        leading = 0;
        digits++;
    }
    int mag = d == 0 ? 0 : (int)floor(log10(fabs(d)));
    int decimals = digits - 1 - mag;
    if (decimals < 1) decimals = 1;
    if (decimals > 40) decimals = 40;
    snprintf(fixed, sizeof fixed, "%.*f", decimals, d);
    if (strtod(fixed, NULL) != d) snprintf(fixed, sizeof fixed, "%.17g", d);
    compare(t, fixed);
}

/* A random integer of exactly k decimal digits (k >= 1), into buf. */
static void random_digits(char *buf, int k) {
    buf[0] = (char)('1' + below(9));
    for (int i = 1; i < k; i++) buf[i] = (char)('0' + below(10));
    buf[k] = 0;
}

/* k digits with a '.' at a random place (or none) and an exponent in [emin, emax] (or none). */
static void random_number(tally *t, int k, int emin, int emax) {
    char digits[64], text[128];
    random_digits(digits, k);
    int point = below(k + 1); /* digits before the '.'; k: no '.' */
    int len = 0;
    if (below(4) == 0) text[len++] = '-';
    if (point == 0) {
        text[len++] = '0';
        text[len++] = '.';
        int zeros = below(4) == 0 ? below(30) : 0;
        for (int z = 0; z < zeros; z++) text[len++] = '0';
        memcpy(text + len, digits, (size_t)k);
        len += k;
    } else {
        memcpy(text + len, digits, (size_t)point);
        len += point;
        if (point < k) {
            text[len++] = '.';
            memcpy(text + len, digits + point, (size_t)(k - point));
            len += k - point;
        }
    }
    text[len] = 0;
    if (emax >= emin && below(8) != 0) {
        int e = emin + below(emax - emin + 1);
        snprintf(text + len, sizeof text - (size_t)len, "%s%d", below(2) ? "e" : "E", e);
    }
    compare(t, text);
}

/* Texts at and around the exact midpoint of d and the next double up. */
static void near_halfway(tally *t, double d) {
    double up = nextafter(d, INFINITY);
    if (!isfinite(up)) return;
    long double mid = ((long double)d + (long double)up) / 2; /* exact: 64-bit significand */
    char buf[SLOT];
    static const int precisions[] = {15, 16, 17, 18, 19, 20, 21, 23, 25, 30, 40, 60};
    for (size_t i = 0; i < sizeof precisions / sizeof precisions[0]; i++) {
        snprintf(buf, sizeof buf, "%.*Le", precisions[i], mid);
        compare(t, buf);
    }
    /* The exact midpoint, when it is short enough to be written whole. */
    snprintf(buf, sizeof buf, "%.700Le", mid);
    char *e = strchr(buf, 'e');
    if (e == NULL) return;
    char *last = e - 1;
    while (*last == '0') last--;
    if (*last == '.') last--;
    size_t mant_len = (size_t)(last - buf + 1);
    char exact[SLOT];
    snprintf(exact, sizeof exact, "%.*s%s", (int)mant_len, buf, e);
    compare(t, exact);
    /* One unit in the last written digit below and above the midpoint. */
    if (mant_len < 3 || buf[mant_len - 1] == '0' || buf[mant_len - 1] == '9') return;
    for (int delta = -1; delta <= 1; delta += 2) {
        char near[SLOT];
        snprintf(near, sizeof near, "%s", exact);
        near[mant_len - 1] = (char)(near[mant_len - 1] + delta);
        compare(t, near);
    }
}

static void report_tally(const char *name, const tally *t) {
    printf(
        "%-22s %9ld texts: %ld mismatches, Clinger %ld, Eisel-Lemire %ld, zero %ld, strtod "
        "fallback %ld, refused as too long %ld\n",
        name, t->compared, t->mismatches, t->paths[DDS_NUMBER_CLINGER], t->paths[DDS_NUMBER_LEMIRE],
        t->paths[DDS_NUMBER_ZERO], t->fallback, t->refused_long);
    CHECK_MSG(t->mismatches == 0, "%s: %ld mismatches with strtod", name, t->mismatches);
}

static const char *const special[] = {
    "0",
    "-0",
    "0.0",
    "-0.0",
    "0e0",
    "-0e-0",
    "0E+99999999999999",
    "0.000e-400",
    "1",
    "-1",
    "1e-400",
    "-1e-400",
    "1e309",
    "-1e309",
    "1e308",
    "1.7976931348623157e308",
    "1.7976931348623158e308",
    "1.7976931348623159e308", /* rounds to infinity */
    "1797693134862315807937289714053034150799341327100378269361737789804449682927647509466490179775"
    "8720709633028641669288791094655554785194040263065748867150582068190890200070838367627385484581"
    "7711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699"
    "508093042880177904174497791.9999999",
    "2.2250738585072014e-308",
    "2.2250738585072011e-308",
    "2.2250738585072012e-308",
    "4.9406564584124654e-324",
    "2.4703282292062327e-324",
    "2.4703282292062328e-324",
    "4.9e-324",
    "5e-324",
    "3e-324",
    "2e-324",
    "1e-323",
    "9007199254740993",
    "9007199254740992",
    "9007199254740994",
    "9007199254740995",
    "18014398509481993",
    "9007199254740993.0000000001",
    "123456789012345678901234567890",
    "0.1",
    "0.2",
    "0.3",
    "1e22",
    "1e23",
    "8.589973e9",
    "1699920000000",
    "1699920000000.0",
    "1641344100000",
    "91.4583840476142",
    "91.39889285551104",
    "91.64146314991845",
    "7.2057594037927933e16",
    "1e-7",
    "1E7",
    "1e+7",
    "123e-2",
    "0.000000000000000000000000000000000000000000000001",
    "1e0000000000000000000000000000000001",
    "1e-99999",
    "1e99999",
    "12345678901234567890",
    "12345678901234567891e-20",
    "10000000000000000000000000000000000000000000e-40",
    "1.00000000000000011102230246251565404",
    "1.00000000000000011102230246251565405",
    "1.000000000000000111022302462515654042363166809",
    "2.00000000000000044408920985006261616945267",
    "4503599627370496.5",
    "4503599627370497.5",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "3.0540412e5",
    "7.038531e-26",
    "9.8813129168249309e-324",
    "1.448997445238699",
};

/* JSON's grammar: what must be refused, and where a valid number stops. */
typedef struct grammar_case {
    const char *text;
    int ok;      /* 0: refused */
    size_t stop; /* bytes read when ok */
} grammar_case;

static const grammar_case grammar[] = {
    {"", 0, 0},          {"-", 0, 0},         {"+1", 0, 0},       {".5", 0, 0},
    {"-.5", 0, 0},       {"1.", 0, 0},        {"1.e5", 0, 0},     {"1e", 0, 0},
    {"1e+", 0, 0},       {"1E-", 0, 0},       {"Infinity", 0, 0}, {"NaN", 0, 0},
    {"-Infinity", 0, 0}, {"nan", 0, 0},       {"0x10", 1, 1},     {"01", 1, 1},
    {"-01", 1, 2},       {"00.5", 1, 1},      {"1.5.5", 1, 3},    {"1e5e5", 1, 3},
    {"1,2", 1, 1},       {"12]", 1, 2},       {"1 ", 1, 1},       {"-0.0e-0x", 1, 7},
    {"123456789", 1, 9}, {"1.25e+02,", 1, 8}, {"--1", 0, 0},      {" 1", 0, 0},
};

static void check_grammar(void) {
    for (size_t i = 0; i < sizeof grammar / sizeof grammar[0]; i++) {
        const grammar_case *g = &grammar[i];
        size_t len = strlen(g->text), pos = 0;
        char *at = slot_block + SLOT - len;
        memcpy(at, g->text, len);
        double v = 42;
        int r = dds_number_parse(at, len, &pos, &v, NULL);
        CHECK_MSG((r == 0) == g->ok, "\"%s\": returned %d", g->text, r);
        if (g->ok) {
            CHECK_MSG(pos == g->stop, "\"%s\": read %zu bytes, expected %zu", g->text, pos,
                      g->stop);
            char prefix[64];
            snprintf(prefix, sizeof prefix, "%.*s", (int)g->stop, g->text);
            CHECK_MSG(bits_of(v) == bits_of(strtod(prefix, NULL)), "\"%s\": %a", g->text, v);
        } else {
            CHECK_MSG(pos == 0 && v == 42, "\"%s\": refused but moved or wrote", g->text);
        }
    }
    /* A number in a longer text: starts where *pos says and stops before the next token. */
    const char *text = "[1699920000000,91.39889285551104]";
    size_t pos = 1;
    double v;
    CHECK(dds_number_parse(text, strlen(text), &pos, &v, NULL) == 0 && pos == 14 &&
          v == 1699920000000.0);
    pos = 15;
    CHECK(dds_number_parse(text, strlen(text), &pos, &v, NULL) == 0 && pos == 32 &&
          v == 91.39889285551104);
    /* The hot loop's form: the position after the number, or 0 for a refusal. */
    CHECK(dds_number_scan(text, strlen(text), 1, &v) == 14 && v == 1699920000000.0);
    CHECK(dds_number_scan(text, strlen(text), 15, &v) == 32 && v == 91.39889285551104);
    CHECK(dds_number_scan(text, strlen(text), 0, &v) == 0);
    CHECK(dds_number_scan("1e5", 3, 0, &v) == 3 && v == 1e5);
    /* The fallback's limit: long text that needs strtod is refused, not truncated. */
    char longer[200];
    snprintf(longer, sizeof longer, "1.%0120d1", 0);
    pos = 0;
    CHECK(dds_number_parse(longer, strlen(longer), &pos, &v, NULL) == 0 && v == 1.0);
}

/* The table against what C can compute exactly: 5^q for q in [0, 27] fits in 64 bits, and every
 * entry has its top bit set; entry q+1 is entry q times 5 (or 5/8, renormalized), up to the
 * rounding of the truncated or rounded-up low word. tests/python/test_pow5_table.py checks every
 * entry against its definition with exact integers. */
static void check_table(void) {
    uint64_t p5 = 1;
    for (int q = 0; q <= 27; q++) {
        size_t i = 2 * (size_t)(q - DDS_POW5_SMALLEST);
        int lz = __builtin_clzll(p5);
        CHECK_MSG(dds_pow5_128[i] == p5 << lz && dds_pow5_128[i + 1] == 0, "5^%d", q);
        p5 *= 5;
    }
    for (int q = DDS_POW5_SMALLEST; q <= DDS_POW5_LARGEST; q++) {
        size_t i = 2 * (size_t)(q - DDS_POW5_SMALLEST);
        CHECK_MSG(dds_pow5_128[i] >> 63 == 1, "5^%d is not normalized", q);
        if (q == DDS_POW5_LARGEST) break;
        /* high(5^(q+1)) is high(5^q) * 5 / 4 or * 5 / 8, whichever keeps bit 63. */
        long double ratio = (long double)dds_pow5_128[i + 2] / (long double)dds_pow5_128[i];
        CHECK_MSG(fabsl(ratio - 1.25L) < 1e-15L || fabsl(ratio - 0.625L) < 1e-15L,
                  "5^%d / 5^%d is %Lg", q + 1, q, ratio);
    }
}

int main(int argc, char **argv) {
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : 1;
    long scale = argc > 2 ? strtol(argv[2], NULL, 10) : 1;
    if (scale < 1) scale = 1;
    long divisor = getenv("DDS_TEST_NO_TIMING") != NULL ? 100 : 1;
    rng_state = seed;
    slot_block = malloc(SLOT);
    if (slot_block == NULL) return EXIT_FAILURE;
    printf("seed %" PRIu64 ", scale %ld%s\n", seed, scale, divisor > 1 ? " (a hundredth)" : "");

    check_grammar();
    check_table();

    tally t = {0};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) compare(&t, special[i]);
    report_tally("hand-picked", &t);

    /* Datadog's values must never reach strtod: that is the point of the module. */
    tally dd = {0};
    for (long i = 0; i < 1000000 * scale / divisor; i++) datadog_value(&dd);
    report_tally("datadog-shaped values", &dd);
    CHECK_MSG(dd.fallback == 0, "%ld Datadog-shaped values fell back to strtod", dd.fallback);

    tally any = {0};
    char buf[64];
    for (long i = 0; i < 300000 * scale / divisor; i++) {
        double d = random_double();
        static const char *const formats[] = {"%.17g", "%.16g", "%.15g", "%.*g"};
        int f = below(4);
        if (f == 3) snprintf(buf, sizeof buf, "%.*g", 1 + below(20), d);
        else snprintf(buf, sizeof buf, formats[f], d);
        compare(&any, buf);
        shortest(buf, sizeof buf, d);
        compare(&any, buf);
    }
    report_tally("random doubles", &any);

    tally half = {0};
    for (long i = 0; i < 30000 * scale / divisor; i++) {
        double d = below(2) ? random_double() : ldexp((double)(next_u64() >> 11), below(200) - 100);
        near_halfway(&half, fabs(d));
    }
    report_tally("near halfway", &half);

    tally wide = {0};
    for (long i = 0; i < 600000 * scale / divisor; i++)
        random_number(&wide, 15 + below(11), -30, 30);
    report_tally("15-25 digit mantissas", &wide);

    tally edge = {0};
    for (long i = 0; i < 300000 * scale / divisor; i++) {
        int k = 1 + below(20);
        if (below(2)) random_number(&edge, k, -345 - k, -290);
        else random_number(&edge, k, 280, 312);
    }
    report_tally("edge exponents", &edge);

    tally small = {0};
    for (long i = 0; i < 300000 * scale / divisor; i++)
        random_number(&small, 1 + below(19), -25, 25);
    report_tally("1-19 digit mantissas", &small);

    free(slot_block);
    return check_report(argv[0]);
}
