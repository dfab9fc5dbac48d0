/* number_parse.c — JSON number text to double, bit-exact against strtod (see number_parse.h).
 *
 * Three ways, cheapest first:
 * 1. Clinger: a mantissa of at most 2^53 and a power of ten of at most 22 are both exact doubles,
 *    so one IEEE multiplication or division is correctly rounded, as strtod is.
 * 2. Eisel-Lemire (D. Lemire, "Number Parsing at a Gigabyte per Second", 2021; the form of
 *    fast_float's compute_float): the 19-digit mantissa, normalized, times a 128-bit
 *    approximation of 5^q (pow5_table.h) gives the 54 leading bits of the product and enough of
 *    the rest to see whether rounding them is certain. Not certain (a carry into the kept bits
 *    still possible after 128 bits of the product, or an exact halfway point outside the range
 *    where the table is exact) and subnormal results go to step 3, as does a number with more than 19 significant
 *    digits whose truncated mantissa w and w + 1 do not round to the same double.
 * 3. strtod on a NUL-terminated copy, with the locale's decimal point (as cJSON does).
 * Digits are read eight at a time (the SWAR idioms of simdjson and fast_float). */
#include "number_parse.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include "pow5_table.h"

#define MANTISSA_BITS  52 /* explicit bits of a double's significand */
#define EXPONENT_BIAS  1023
#define INFINITE_POWER 0x7FF
#define LOW_BITS_MASK  (UINT64_MAX >> (MANTISSA_BITS + 3)) /* product bits below the 55 kept */
#define EXPONENT_CAP   0x10000 /* an exponent's digits beyond this only matter to strtod */

/* The rare paths stay out of line, so that the common one keeps its registers and stays small. */
#if defined(__GNUC__)
#  define COLD __attribute__((noinline, cold))
#else
#  define COLD
#endif

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static const uint64_t pow10_u64[9] = {1,      10,      100,      1000,     10000,
                                      100000, 1000000, 10000000, 100000000};

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }

/* Runs of ASCII digits eight bytes at a time (little-endian loads). */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#  define SWAR_DIGITS 1

/* Leading digit bytes of v (first character in the low byte), 0..8. A byte's test is exact
 * up to the first non-digit: only a non-digit can carry into the byte after it. */
static unsigned leading_digits(uint64_t v) {
    uint64_t x = v ^ UINT64_C(0x3030303030303030); /* digits: 0x00..0x09 */
    uint64_t bad = ((x + UINT64_C(0x7676767676767676)) | x) & UINT64_C(0x8080808080808080);
    return bad ? (unsigned)__builtin_ctzll(bad) / 8 : 8;
}

/* The value of the k (1..8) leading digits of v. */
static uint64_t digits_value(uint64_t v, unsigned k) {
    /* Move them to the top and fill below with '0's: eight digits, the number unchanged. */
    if (k < 8) v = (v << (8 * (8 - k))) | (UINT64_C(0x3030303030303030) >> (8 * k));
    v -= UINT64_C(0x3030303030303030);
    v = v * 10 + (v >> 8); /* pairs */
    return ((v & UINT64_C(0x000000FF000000FF)) * UINT64_C(0x000F424000000064) +
            ((v >> 16) & UINT64_C(0x000000FF000000FF)) * UINT64_C(0x0000271000000001)) >>
           32;
}
#endif

/* Digits from p on, accumulated into *mant (wrapping past 19 digits: the caller counts them). */
static inline size_t eat_digits(const char *s, size_t n, size_t p, uint64_t *mant) {
    uint64_t m = *mant;
#ifdef SWAR_DIGITS
    while (n - p >= 8) {
        uint64_t v;
        memcpy(&v, s + p, 8);
        unsigned k = leading_digits(v);
        if (k == 0) break;
        m = m * pow10_u64[k] + digits_value(v, k);
        p += k;
        if (k < 8) {
            *mant = m;
            return p;
        }
    }
#endif
    while (p < n && is_digit(s[p])) m = m * 10 + (uint64_t)(s[p++] - '0');
    *mant = m;
    return p;
}

/* The high and low words of a * b. */
#if defined(__SIZEOF_INT128__)
__extension__ typedef unsigned __int128 u128;

static uint64_t mul_128(uint64_t a, uint64_t b, uint64_t *low) {
    u128 r = (u128)a * b;
    *low = (uint64_t)r;
    return (uint64_t)(r >> 64);
}
#else
static uint64_t mul_128(uint64_t a, uint64_t b, uint64_t *low) {
    uint64_t al = a & 0xFFFFFFFFu, ah = a >> 32, bl = b & 0xFFFFFFFFu, bh = b >> 32;
    uint64_t ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
    uint64_t mid = (ll >> 32) + (lh & 0xFFFFFFFFu) + (hl & 0xFFFFFFFFu);
    *low = (mid << 32) | (ll & 0xFFFFFFFFu);
    return hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
}
#endif

static int leading_zeros(uint64_t w) {
#if defined(__GNUC__)
    return __builtin_clzll(w);
#else
    int z = 0;
    while (!(w & (UINT64_C(1) << 63))) {
        w <<= 1;
        z++;
    }
    return z;
#endif
}

/* floor(log2(10^q)) + 63 for q in [-342, 308]: the binary exponent of the normalized product.
 * 217706 / 2^16 approximates log2(10) closely enough over that range (fast_float's constant);
 * the division is a floor for negative q too (no implementation-defined shift). */
static int64_t binary_power(int64_t q) {
    int64_t x = 217706 * q;
    int64_t f = x >= 0 ? x / 65536 : -((-x + 65535) / 65536);
    return f + 63;
}

/* The bits of the double nearest w * 10^q (w != 0), or -1 when this cannot decide. */
static int lemire_bits(uint64_t w, int64_t q, uint64_t *bits) {
    if (q < DDS_POW5_SMALLEST) { /* w * 10^q < 1e19 * 1e-343, below half the least subnormal */
        *bits = 0;
        return 0;
    }
    if (q > DDS_POW5_LARGEST) { /* at least 1e309: past the largest double */
        *bits = (uint64_t)INFINITE_POWER << MANTISSA_BITS;
        return 0;
    }
    int lz = leading_zeros(w);
    w <<= lz;
    size_t index = 2 * (size_t)(q - DDS_POW5_SMALLEST);
    uint64_t low, high = mul_128(w, dds_pow5_128[index], &low);
    if ((high & LOW_BITS_MASK) == LOW_BITS_MASK) {
        /* The bits that decide the rounding may carry: add the next 64 bits of the product. */
        uint64_t low2, high2 = mul_128(w, dds_pow5_128[index + 1], &low2);
        (void)low2;
        low += high2;
        if (high2 > low) high++;
        /* The rest of the product (w times the table's error, below 2^64 in units of low) adds
         * at most one to low: it can reach high only if low is all ones. Mushtak and Lemire
         * proved that it never changes the result; an exact method is cheap to ask here. */
        if (low == UINT64_MAX) return -1;
    }
    int upperbit = (int)(high >> 63);
    int shift = upperbit + 64 - MANTISSA_BITS - 3;
    uint64_t mantissa = high >> shift;
    int64_t power2 = binary_power(q) + upperbit - lz + EXPONENT_BIAS;
    if (power2 <= 0) return -1; /* subnormal (or zero): strtod's business */
    if (low <= 1 && (mantissa & 3) == 1 && (mantissa << shift) == high) {
        /* Exactly halfway between two doubles: round to even, which is down here. Only for
         * 10^-4..10^23, where the table's entries are exact (fast_float's bounds); elsewhere
         * an exact halfway point cannot arise, but an exact method is the one to say so. */
        if (q < -4 || q > 23) return -1;
        mantissa &= ~UINT64_C(1);
    }
    mantissa += mantissa & 1; /* round half up: the bit below the 53 kept */
    mantissa >>= 1;
    if (mantissa >= (UINT64_C(2) << MANTISSA_BITS)) { /* rounding carried into a new bit */
        mantissa = UINT64_C(1) << MANTISSA_BITS;
        power2++;
    }
    mantissa &= ~(UINT64_C(1) << MANTISSA_BITS);
    if (power2 >= INFINITE_POWER) {
        *bits = (uint64_t)INFINITE_POWER << MANTISSA_BITS;
        return 0;
    }
    *bits = mantissa | ((uint64_t)power2 << MANTISSA_BITS);
    return 0;
}

int dds_decimal_to_double(uint64_t w, int64_t q, int truncated, double *out) {
    uint64_t bits;
    if (lemire_bits(w, q, &bits) != 0) return -1;
    if (truncated) {
        /* The true mantissa lies in (w, w + 1): if both ends round alike, so does it. */
        uint64_t above;
        if (lemire_bits(w + 1, q, &above) != 0 || above != bits) return -1;
    }
    memcpy(out, &bits, sizeof bits);
    return 0;
}

/* strtod on a NUL-terminated copy of s[start..end), with the locale's decimal point. */
COLD static int fallback(const char *s, size_t start, size_t end, double *out) {
    size_t len = end - start;
    if (len >= DDS_NUMBER_TEXT_LIMIT) return -1;
    char buf[DDS_NUMBER_TEXT_LIMIT];
    memcpy(buf, s + start, len);
    buf[len] = 0;
    /* strtod reads the locale's decimal point; JSON's is always '.' (cJSON does the same). */
    const struct lconv *lc = localeconv();
    char point = (lc && lc->decimal_point && lc->decimal_point[0]) ? lc->decimal_point[0] : '.';
    if (point != '.') {
        char *dot = strchr(buf, '.');
        if (dot) *dot = point;
    }
    char *stop = NULL;
    double v = strtod(buf, &stop);
    if (stop != buf + len) return -1;
    *out = v;
    return 0;
}

/* More than 19 digits in [digits, digits_end) (a '.' may sit among them): the first 19
 * significant ones into *w, the power of ten to add for the dropped ones into *extra, and
 * whether any dropped one is nonzero. Returns 0 when there are 19 or fewer significant digits
 * (leading zeros do not count): the caller's mantissa is then exact. */
COLD static int first_19_digits(const char *s, size_t digits, size_t digits_end, uint64_t *w,
                                int64_t *extra, int *truncated) {
    size_t p = digits;
    while (p < digits_end && (s[p] == '0' || s[p] == '.')) p++;
    uint64_t m = 0;
    int kept = 0;
    int64_t dropped = 0;
    int nonzero = 0;
    for (; p < digits_end; p++) {
        if (s[p] == '.') continue;
        if (kept < 19) {
            m = m * 10 + (uint64_t)(s[p] - '0');
            kept++;
        } else {
            dropped++;
            nonzero |= s[p] != '0';
        }
    }
    if (dropped == 0) return 0;
    *w = m;
    *extra = dropped;
    *truncated = nonzero;
    return 1;
}

/* Every number: exponents, more than 19 digits, and what the common path could not settle. */
COLD static int parse_general(const char *s, size_t n, size_t *pos, double *out,
                              dds_number_path *how) {
    size_t start = *pos, p = start;
    int neg = p < n && s[p] == '-';
    p += (size_t)neg;
    size_t int_start = p;
    if (p >= n || !is_digit(s[p])) return -1;
    uint64_t mant = 0;
    if (s[p] == '0') p++; /* a leading zero stands alone */
    else p = eat_digits(s, n, p, &mant);
    size_t digits = p - int_start;
    int64_t exp10 = 0;
    if (p < n && s[p] == '.') {
        size_t frac_start = p + 1;
        p = eat_digits(s, n, frac_start, &mant);
        size_t frac = p - frac_start;
        if (frac == 0) return -1;
        digits += frac;
        exp10 = -(int64_t)frac;
    }
    size_t digits_end = p;
    int huge_exponent = 0;
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        int exp_neg = 0;
        if (p < n && (s[p] == '+' || s[p] == '-')) exp_neg = s[p++] == '-';
        if (p >= n || !is_digit(s[p])) return -1;
        int64_t e = 0;
        for (; p < n && is_digit(s[p]); p++) {
            if (e < EXPONENT_CAP) e = e * 10 + (s[p] - '0');
            else huge_exponent = 1;
        }
        exp10 += exp_neg ? -e : e;
    }
    dds_number_path path;
    double v;
    int truncated = 0;
    if (digits > 19) {
        uint64_t w;
        int64_t extra;
        if (first_19_digits(s, int_start, digits_end, &w, &extra, &truncated)) {
            mant = w;
            exp10 += extra;
        }
    }
    if (mant == 0 && !truncated) {
        path = DDS_NUMBER_ZERO; /* any exponent: 0e999999999 is 0 */
        v = 0.0;
    } else if (huge_exponent) {
        path = DDS_NUMBER_FALLBACK; /* the capped exponent is not the number's */
        if (fallback(s, start, p, &v) != 0) return -1;
        v = neg ? -v : v; /* undone below: strtod read the sign */
    } else if (!truncated && mant <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        path = DDS_NUMBER_CLINGER;
        v = (double)mant;
        v = exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
    } else if (dds_decimal_to_double(mant, exp10, truncated, &v) == 0) {
        path = DDS_NUMBER_LEMIRE;
    } else {
        path = DDS_NUMBER_FALLBACK;
        if (fallback(s, start, p, &v) != 0) return -1;
        v = neg ? -v : v;
    }
    *out = neg ? -v : v;
    *pos = p;
    if (how) *how = path;
    return 0;
}

/* The common shape, -?int(.frac)? with at most 19 digits and no exponent (every timestamp and
 * value Datadog writes), on a short path; anything else is parsed again by parse_general.
 * Returns the position after the number, or 0 (never a number's end) when refused. Inline in
 * both entry points, so that dds_number_scan's callers keep their position in a register. */
static inline size_t number_at(const char *s, size_t n, size_t start, double *out,
                               dds_number_path *how) {
    size_t p = start;
    int neg = p < n && s[p] == '-';
    p += (size_t)neg;
    size_t int_start = p;
    if (p >= n || !is_digit(s[p])) return 0;
    uint64_t mant = 0;
    if (s[p] == '0') p++; /* a leading zero stands alone */
    else p = eat_digits(s, n, p, &mant);
    size_t digits = p - int_start, frac = 0;
    if (p < n && s[p] == '.') {
        size_t frac_start = p + 1;
        p = eat_digits(s, n, frac_start, &mant);
        frac = p - frac_start;
        if (frac == 0) return 0;
        digits += frac;
    }
    if (digits > 19 || (p < n && (s[p] == 'e' || s[p] == 'E'))) {
        size_t pos = start;
        return parse_general(s, n, &pos, out, how) == 0 ? pos : 0;
    }
    double v;
    dds_number_path path;
    if (mant <= (UINT64_C(1) << 53) && frac <= 22) {
        path = mant == 0 ? DDS_NUMBER_ZERO : DDS_NUMBER_CLINGER;
        v = (double)mant;
        if (frac > 0) v /= pow10_exact[frac];
    } else {
        uint64_t bits;
        if (lemire_bits(mant, -(int64_t)frac, &bits) != 0) {
            size_t pos = start;
            return parse_general(s, n, &pos, out, how) == 0 ? pos : 0;
        }
        path = DDS_NUMBER_LEMIRE;
        memcpy(&v, &bits, sizeof v);
    }
    *out = neg ? -v : v;
    if (how) *how = path;
    return p;
}

int dds_number_parse(const char *s, size_t n, size_t *pos, double *out, dds_number_path *how) {
    size_t end = number_at(s, n, *pos, out, how);
    if (end == 0) return -1;
    *pos = end;
    return 0;
}

size_t dds_number_scan(const char *s, size_t n, size_t pos, double *out) {
    return number_at(s, n, pos, out, NULL);
}
