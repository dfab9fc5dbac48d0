/* stream_internal.h — what other modules of the library may read of a stream (not public). */
#ifndef DDSTREAM_STREAM_INTERNAL_H
#define DDSTREAM_STREAM_INTERNAL_H

#include "config.h"
#include "ddstream.h"

/* The stream's validated settings (its query, grouping, ...): valid until ddstream_close.
 * Read-only; safe from any thread while the stream is open (they never change after open). */
const dds_settings *dds_stream_settings(const ddstream_stream *stream);

/* Nonzero, with err (NULL allowed) filled as DDSTREAM_E_FORKED, when the calling process is a
 * fork()ed child of the one that opened the stream: then no lock, thread or curl handle of the
 * stream may be touched (see stream.c). */
int dds_stream_forked(const ddstream_stream *stream, ddstream_error *err);

#endif
