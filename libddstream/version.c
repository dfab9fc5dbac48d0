/* version.c — the runtime version, checked by bindings before they trust struct layouts. */
#include "ddstream.h"

DDSTREAM_API const char *ddstream_version(void) { return "0.1.0"; }

DDSTREAM_API int32_t ddstream_version_int(void) { return DDSTREAM_VERSION_INT; }
