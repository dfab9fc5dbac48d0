/* status.c — static text for every ddstream_status. */
#include "ddstream.h"

DDSTREAM_API const char *ddstream_status_str(ddstream_status status) {
    switch (status) {
    case DDSTREAM_OK: return "ok";
    case DDSTREAM_END: return "end of stream";
    case DDSTREAM_TIMEOUT: return "timed out waiting for a batch; call again";
    case DDSTREAM_E_INVALID_ARGUMENT: return "invalid argument";
    case DDSTREAM_E_CONFIG: return "invalid configuration";
    case DDSTREAM_E_NOMEM: return "out of memory";
    case DDSTREAM_E_AUTH: return "authentication failed";
    case DDSTREAM_E_RATE_LIMITED: return "rate limited";
    case DDSTREAM_E_QUERY: return "query rejected";
    case DDSTREAM_E_SERVER: return "server error";
    case DDSTREAM_E_NETWORK: return "network error";
    case DDSTREAM_E_TIMEOUT: return "request timed out";
    case DDSTREAM_E_PROTOCOL: return "unexpected answer from the server";
    case DDSTREAM_E_CANCELLED: return "cancelled";
    case DDSTREAM_E_INTERNAL: return "internal error";
    case DDSTREAM_E_FORKED: return "the stream was opened by another process (before fork())";
    }
    return "unknown status";
}
