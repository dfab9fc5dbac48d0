/* log.c — log lines never carry keys: every line is scrubbed before it leaves. */
#include "log.h"

#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *level_name(int32_t level) {
    switch (level) {
    case DDSTREAM_LOG_ERROR: return "ERROR";
    case DDSTREAM_LOG_WARN: return "WARN";
    case DDSTREAM_LOG_INFO: return "INFO";
    default: return "DEBUG";
    }
}

void dds_log_init(dds_log *log, int32_t level, ddstream_log_fn fn, void *user, int to_queue,
                  const char *secret1, const char *secret2) {
    memset(log, 0, sizeof *log);
    log->level = level;
    log->fn = fn;
    log->user = user;
    log->to_queue = to_queue;
    log->secrets[0] = secret1;
    log->secrets[1] = secret2;
    pthread_mutex_init(&log->mu, NULL);
}

void dds_log_destroy(dds_log *log) {
    for (size_t i = 0; i < DDS_LOG_QUEUE_LINES; i++) free(log->lines[i]);
    pthread_mutex_destroy(&log->mu);
}

static void enqueue(dds_log *log, int32_t level, const char *line) {
    char *copy = strdup(line);
    if (!copy) return; /* logging must never fail the caller's work */
    pthread_mutex_lock(&log->mu);
    size_t slot = (log->head + log->count) % DDS_LOG_QUEUE_LINES;
    if (log->count == DDS_LOG_QUEUE_LINES) {
        /* full: drop the oldest, keeping the newest lines (the ones that explain a failure) */
        free(log->lines[log->head]);
        log->lines[log->head] = NULL;
        log->head = (log->head + 1) % DDS_LOG_QUEUE_LINES;
        slot = (log->head + log->count - 1) % DDS_LOG_QUEUE_LINES;
    } else {
        log->count++;
    }
    log->lines[slot] = copy;
    log->levels[slot] = level;
    pthread_mutex_unlock(&log->mu);
}

void dds_logf(dds_log *log, int32_t level, const char *fmt, ...) {
    if (!log || level > log->level || level <= DDSTREAM_LOG_NONE) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    dds_redact_keys(line, log->secrets[0], log->secrets[1]);
    if (log->fn) {
        log->fn(log->user, level, line);
    } else if (log->to_queue) {
        enqueue(log, level, line);
    } else {
        fprintf(stderr, "ddstream %s: %s\n", level_name(level), line);
    }
}

int dds_log_pop(dds_log *log, int32_t *level, char *buf, size_t cap) {
    pthread_mutex_lock(&log->mu);
    if (log->count == 0) {
        pthread_mutex_unlock(&log->mu);
        return 0;
    }
    char *line = log->lines[log->head];
    int32_t lvl = log->levels[log->head];
    log->lines[log->head] = NULL;
    log->head = (log->head + 1) % DDS_LOG_QUEUE_LINES;
    log->count--;
    pthread_mutex_unlock(&log->mu);
    if (level) *level = lvl;
    if (buf && cap) {
        snprintf(buf, cap, "%s", line);
    }
    free(line);
    return 1;
}
