/*
 * test_version.c — the version the header declares (ddstream_version.h, written from meson.build)
 * is the one the library reports, and the derived values agree with the three numbers.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "ddstream.h"

int main(void) {
    CHECK_INT(ddstream_version_int(), DDSTREAM_VERSION_HEX);
    CHECK_INT(DDSTREAM_VERSION_INT, DDSTREAM_VERSION_HEX);
    CHECK_STR(ddstream_version(), DDSTREAM_VERSION_STRING);
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", DDSTREAM_VERSION_MAJOR, DDSTREAM_VERSION_MINOR,
             DDSTREAM_VERSION_PATCH);
    CHECK_STR(DDSTREAM_VERSION_STRING, expected);
    CHECK_INT(DDSTREAM_VERSION_HEX >> 16, DDSTREAM_VERSION_MAJOR);
    CHECK_INT((DDSTREAM_VERSION_HEX >> 8) & 0xFF, DDSTREAM_VERSION_MINOR);
    CHECK_INT(DDSTREAM_VERSION_HEX & 0xFF, DDSTREAM_VERSION_PATCH);
    return check_report("test_version");
}
