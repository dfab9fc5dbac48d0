/* log.h — a stream's log sink: the caller's callback, a bounded queue, or stderr. */
#ifndef DDSTREAM_LOG_H
#define DDSTREAM_LOG_H

#include <pthread.h>
#include <stddef.h>

#include "ddstream.h"
#include "compiler.h"

#define DDS_LOG_QUEUE_LINES 256

typedef struct dds_log {
    int32_t level;
    ddstream_log_fn fn;
    void *user;
    int to_queue;
    const char *secrets[2]; /* scrubbed from every line (borrowed, owned by the settings) */
    pthread_mutex_t mu;     /* guards the queue: the worker writes, the caller's thread reads */
    char *lines[DDS_LOG_QUEUE_LINES];
    int32_t levels[DDS_LOG_QUEUE_LINES];
    size_t head, count;
} dds_log;

void dds_log_init(dds_log *log, int32_t level, ddstream_log_fn fn, void *user, int to_queue,
                  const char *secret1, const char *secret2);
void dds_log_destroy(dds_log *log);

/* Write a line if level <= the configured level. Thread-safe. */
void dds_logf(dds_log *log, int32_t level, const char *fmt, ...) DDS_PRINTF(3, 4);

/* Pop the oldest queued line into buf. Returns 1 if a line was copied, 0 if none. Thread-safe. */
int dds_log_pop(dds_log *log, int32_t *level, char *buf, size_t cap);

#endif
