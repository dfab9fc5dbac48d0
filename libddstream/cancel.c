/* cancel.c — cancellation and cancellable sleeps on a monotonic clock. */
#include "cancel.h"

#include <errno.h>
#include <time.h>

int64_t dds_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec dds_deadline_after(int64_t ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

int dds_cancel_init(dds_cancel *c) {
    atomic_init(&c->flag, 0);
    c->wake = NULL;
    c->wake_arg = NULL;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) return -1;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&c->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0) return -1;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        pthread_cond_destroy(&c->cv);
        return -1;
    }
    return 0;
}

void dds_cancel_destroy(dds_cancel *c) {
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
}

void dds_cancel_trigger(dds_cancel *c) {
    pthread_mutex_lock(&c->mu);
    atomic_store(&c->flag, 1);
    pthread_cond_broadcast(&c->cv);
    void (*wake)(void *) = c->wake;
    void *arg = c->wake_arg;
    pthread_mutex_unlock(&c->mu);
    if (wake) wake(arg);
}

void dds_cancel_clear(dds_cancel *c) { atomic_store(&c->flag, 0); }

int dds_cancel_is_set(dds_cancel *c) { return atomic_load(&c->flag) != 0; }

int dds_cancel_sleep(dds_cancel *c, int64_t ms) {
    if (ms <= 0) return dds_cancel_is_set(c);
    struct timespec until = dds_deadline_after(ms);
    pthread_mutex_lock(&c->mu);
    while (!atomic_load(&c->flag)) {
        int rc = pthread_cond_timedwait(&c->cv, &c->mu, &until);
        if (rc == ETIMEDOUT) break;
    }
    int cancelled = atomic_load(&c->flag) != 0;
    pthread_mutex_unlock(&c->mu);
    return cancelled;
}
