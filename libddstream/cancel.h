/* cancel.h — a flag that stops a stream's blocking work: sleeps wake at once, transfers abort. */
#ifndef DDSTREAM_CANCEL_H
#define DDSTREAM_CANCEL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct dds_cancel {
    atomic_int flag;
    pthread_mutex_t mu;
    pthread_cond_t cv;    /* CLOCK_MONOTONIC */
    void (*wake)(void *); /* also called on trigger: interrupts a transfer's poll */
    void *wake_arg;
} dds_cancel;

int dds_cancel_init(dds_cancel *c);
void dds_cancel_destroy(dds_cancel *c);
/* Set the flag and wake every sleeper. Thread-safe. */
void dds_cancel_trigger(dds_cancel *c);
void dds_cancel_clear(dds_cancel *c);
int dds_cancel_is_set(dds_cancel *c);
/* Sleep up to ms milliseconds; returns nonzero if woken by cancellation. */
int dds_cancel_sleep(dds_cancel *c, int64_t ms);

/* Monotonic clock in milliseconds. */
int64_t dds_now_ms(void);
/* Deadline helper: absolute CLOCK_MONOTONIC timespec ms from now. */
struct timespec dds_deadline_after(int64_t ms);

#endif
