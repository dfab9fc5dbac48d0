/* timestamp_limit.h — the one bound on timestamps and spans of time the library accepts. */
#ifndef DDSTREAM_TIMESTAMP_LIMIT_H
#define DDSTREAM_TIMESTAMP_LIMIT_H

#include <stdint.h>

/*
 * |timestamp| <= 1e15 ms (about ±31,000 years) keeps every accepted timestamp exact in a double
 * and leaves room for the ms <-> s arithmetic downstream without int64 overflow. Both JSON paths
 * (parse.c, pointlist.c) must accept the same points, so they share this bound; intervals, chunk
 * bounds and granularities are held to the same span in seconds.
 */
#define DDS_TIME_LIMIT_S  INT64_C(1000000000000)
#define DDS_TIME_LIMIT_MS (DDS_TIME_LIMIT_S * 1000)

#endif
