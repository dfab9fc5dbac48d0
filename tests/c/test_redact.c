/*
 * test_redact.c — dds_redact, the one redactor (log lines, errors, text from the server): a secret
 * of any length is scrubbed when whole, a longer one also by its pieces of 8 characters or more;
 * the message never grows, and a secret made of '*' cannot loop on its own mask.
 */
#include "check.h"
#include "error.h"

typedef struct redact_case {
    const char *secret;
    const char *msg;
    const char *expected;
} redact_case;

static const redact_case cases[] = {
    /* Short secrets: whole occurrences, however short (a 3-character key echoed by a server). */
    {"k3y", "HTTP 403: key k3y is invalid", "HTTP 403: key *** is invalid"},
    {"k3y", "k3yk3y", "******"},
    {"ab", "ab: abc", "**: **c"},
    {"Z", "Z Z", "* *"},
    {"12345", "the key 12345 (12345)", "the key *** (***)"},
    {"1234567", "1234567x", "***x"},
    /* Long secrets: whole, and any piece of 8 or more characters (a message cut the key). */
    {"0123456789abcdef0123456789abcdef", "near \"0123456789abcdef0123\" end", "near \"***\" end"},
    {"0123456789abcdef0123456789abcdef", "tail: cdef0123456789abcdef", "tail: ***"},
    {"0123456789abcdef0123456789abcdef", "short 0123456 piece", "short 0123456 piece"},
    {"0123456789abcdef0123456789abcdef", "two 89abcdef and 01234567!", "two *** and ***!"},
    /* Secrets of '*': scrubbed once, no endless loop. */
    {"**", "a ** b", "a ** b"},
    {"*", "*", "*"},
    {"****", "x****y", "x***y"},
    /* Nothing to do. */
    {"secret", "", ""},
    {"", "message", "message"},
};

int main(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", cases[i].msg);
        size_t before = strlen(msg);
        dds_redact(msg, cases[i].secret);
        CHECK_MSG(strcmp(msg, cases[i].expected) == 0, "secret '%s' in '%s': '%s', expected '%s'",
                  cases[i].secret, cases[i].msg, msg, cases[i].expected);
        CHECK(strlen(msg) <= before);
    }
    dds_redact(NULL, "x");
    char msg[] = "kept";
    dds_redact(msg, NULL);
    CHECK_STR(msg, "kept");
    /* Both keys at once, either of them absent. */
    char both[128];
    snprintf(both, sizeof both, "api=APIKEY1234 app=APPKEY5678!");
    dds_redact_keys(both, "APIKEY1234", "APPKEY5678");
    CHECK_STR(both, "api=*** app=***!");
    snprintf(both, sizeof both, "api=APIKEY1234 app=APPKEY5678!");
    dds_redact_keys(both, NULL, "APPKEY5678");
    CHECK_STR(both, "api=APIKEY1234 app=***!");
    /* dds_wipe zeroes every byte it is given, past a NUL too. */
    char secret[16] = "key\0tail-bytes";
    dds_wipe(secret, sizeof secret);
    for (size_t i = 0; i < sizeof secret; i++) CHECK_INT(secret[i], 0);
    return check_report("test_redact");
}
