/* version.c — the runtime version, checked by bindings before they trust struct layouts. */
#include "ddstream.h"

/* The generated literal (read as text by bindings) and the derived value must agree. */
_Static_assert(DDSTREAM_VERSION_INT == DDSTREAM_VERSION_HEX,
               "ddstream_version.h: DDSTREAM_VERSION_INT does not match MAJOR/MINOR/PATCH");

DDSTREAM_API const char *ddstream_version(void) { return DDSTREAM_VERSION_STRING; }

DDSTREAM_API int32_t ddstream_version_int(void) { return DDSTREAM_VERSION_INT; }
