/* stream_internal.h — what other modules of the library may read of a stream (not public). */
#ifndef DDSTREAM_STREAM_INTERNAL_H
#define DDSTREAM_STREAM_INTERNAL_H

#include "config.h"
#include "ddstream.h"

/* The stream's validated settings (its query, grouping, ...): valid until ddstream_close.
 * Read-only; safe from any thread while the stream is open (they never change after open). */
const dds_settings *dds_stream_settings(const ddstream_stream *stream);

#endif
