/* stream.c — the stream: fetcher threads fetch chunks, up to max_in_flight at once and within a
 * window of max(prefetch_chunks, max_in_flight) chunks from the caller's position; ddstream_next
 * hands them out strictly in chunk order (a later chunk that finishes first waits in its slot).
 *
 * Why one thread per request in flight rather than one thread driving several easy handles:
 * a request is more than a transfer (rate-limit reservation, retries with backoff, the
 * split-and-refetch of a coarsened answer), and fetch.c/chunk_fetch.c express that as straight
 * blocking code. Each fetcher owns a dds_http (its own easy handle, multi handle and keep-alive
 * connection, reused from chunk to chunk) and its own dds_cancel, whose trigger wakes that
 * fetcher's curl_multi_poll at once: cancel, seek and close trigger every fetcher's.
 *
 * Locking: one mutex guards every field below `mu`. Two condition variables (monotonic clock):
 * idle fetchers wait on work_cv, the caller on ready_cv, and a change wakes only who it can
 * help — one idle fetcher when there is a chunk to claim (which wakes the next if more remain),
 * the caller when the chunk it waits for is done — rather than every thread on every change:
 * with many small chunks, futile wake-ups and context switches cost more than the chunks.
 * quit and cancel wake everyone. A fetcher never holds the mutex during network I/O. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batch_pool.h"
#include "cancel.h"
#include "chunk_cache.h"
#include "chunk_fetch.h"
#include "chunk_v2.h"
#include "config.h"
#include "ddstream.h"
#include "error.h"
#include "fetch.h"
#include "follow.h"
#include "log.h"
#include "plan.h"
#include "resume_token.h"
#include "stream_internal.h"

/* One chunk of the window [next_deliver, next_deliver + wcap), at slots[index % wcap]. */
typedef enum { SLOT_EMPTY, SLOT_FETCHING, SLOT_DONE, SLOT_FAILED } slot_state;

typedef struct chunk_slot {
    slot_state state;
    int gated;             /* its error was delivered: fetch it again only on new demand */
    uint64_t fail_seq;     /* demand_seq when it failed */
    ddstream_batch *batch; /* SLOT_DONE */
    ddstream_error error;  /* SLOT_FAILED: delivered when the caller reaches this chunk */
} chunk_slot;

/* One request in flight at a time, on its own connection. */
typedef struct fetcher {
    ddstream_stream *st;
    dds_cancel stop;     /* aborts this fetcher's transfer and sleeps: on cancel, seek and close */
    dds_http *http;      /* used by this fetcher's thread only */
    dds_v2_memory v2mem; /* what its v2 chunks taught it (chunk_v2.h) */
    pthread_t thread;
    int stop_ready, started;
} fetcher;

struct ddstream_stream {
    pid_t owner_pid; /* the process that opened it: see "fork()" below */
    dds_settings s;
    dds_plan plan;
    dds_log log;
    fetcher *fetchers;
    size_t nfetchers;
    dds_chunk_cache *cache; /* NULL: no cache_dir; shared by the fetchers (chunk_cache.h) */
    dds_batch_pool *pool;   /* freed v2 batches' blocks for the next ones (batch_pool.h) */

    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* idle fetchers wait here for a chunk to claim */
    pthread_cond_t ready_cv; /* the caller waits here for the chunk it asked for */
    size_t idle;             /* fetchers waiting on work_cv */
    int caller_waiting;      /* the caller waits on ready_cv */
    int quit;                /* the worker must exit */
    int cancelled;           /* ddstream_cancel was called */
    size_t next_deliver;     /* index of the next chunk ddstream_next hands out */
    size_t wanted;           /* chunks the caller has asked for (without prefetch, the limit) */
    uint64_t demand_seq;     /* bumped by every ddstream_next */
    chunk_slot *slots;       /* the window: wcap slots */
    size_t wcap;
    size_t fetching;    /* requests in flight */
    int ramped;         /* a chunk succeeded since open or the last failure */
    size_t settled;     /* follow: chunks settled when the clock was last read */
    int clock_watch;    /* follow: a fetcher waits for the next chunk to settle */
    uint64_t clock_seq; /* follow: bumped by ddstream_clock_changed */
    char last_error[sizeof(((ddstream_error *)0)->message)];
};

static void format_utc(int64_t epoch, char *buf, size_t cap) {
    time_t t = (time_t)epoch;
    struct tm tm;
    if (gmtime_r(&t, &tm)) strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
    else snprintf(buf, cap, "%" PRId64, epoch);
}

/* Prefix an error with the chunk it is about, so a user knows which part of the range failed. */
static void describe_chunk_error(ddstream_stream *st, size_t idx, ddstream_error *err) {
    ddstream_chunk c = dds_plan_chunk(&st->plan, idx);
    char a[32], b[32], of[48] = "", msg[sizeof err->message + 128];
    format_utc(c.start, a, sizeof a);
    format_utc(c.end, b, sizeof b);
    if (!st->s.follow) snprintf(of, sizeof of, " of %zu", st->plan.count);
    snprintf(msg, sizeof msg, "chunk %zu%s [%s, %s): %s", idx + 1, of, a, b, err->message);
    dds_redact_keys(msg, st->s.api_key, st->s.app_key);
    size_t n = strnlen(msg, sizeof err->message - 1); /* truncate, keeping the chunk prefix */
    memcpy(err->message, msg, n);
    err->message[n] = 0;
    err->chunk_start = c.start;
    err->chunk_end = c.end;
}

/* ---- fork() ----
 * A child made by fork() has only the thread that called it. The stream's fetcher threads are
 * gone, its mutex may be held for ever by one of them, and its curl handles share their sockets
 * (and TLS sessions) with the parent's. So in a child, every call on an inherited stream fails
 * with DDSTREAM_E_FORKED before touching any of that, and ddstream_close leaks the stream
 * deliberately: no join (of threads that do not exist), no destruction of locks that may be held,
 * no curl cleanup (which could write a TLS close_notify into the parent's connection). The leak
 * is the child's copy of the parent's memory, made once per fork. The parent is untouched. */
static int forked(const ddstream_stream *st) { return getpid() != st->owner_pid; }

static ddstream_status forked_error(const ddstream_stream *st, ddstream_error *err) {
    return dds_error_set(err, DDSTREAM_E_FORKED,
                         "the stream was opened in process %ld; a stream cannot be used after "
                         "fork(): open a new one in the child",
                         (long)st->owner_pid);
}

int dds_stream_forked(const ddstream_stream *st, ddstream_error *err) {
    if (!forked(st)) return 0;
    forked_error(st, err);
    return 1;
}

/* Where a new stream starts: config.start_chunk and/or config.resume_token, checked. */
static ddstream_status starting_chunk(const ddstream_stream *st, size_t *start,
                                      ddstream_error *err) {
    *start = 0;
    if (st->s.resume_token) {
        ddstream_status rc = dds_resume_token_read(st->s.resume_token, st->s.identity,
                                                   st->s.granularity, &st->plan, start, err);
        if (rc != DDSTREAM_OK) return rc;
    }
    if (st->s.start_chunk != 0 || !st->s.resume_token) {
        if ((uint64_t)st->s.start_chunk > st->plan.count)
            return dds_error_set(err, DDSTREAM_E_CONFIG,
                                 "start_chunk %lld is past the plan's %zu chunks",
                                 (long long)st->s.start_chunk, st->plan.count);
        if (st->s.resume_token && (size_t)st->s.start_chunk != *start)
            return dds_error_set(err, DDSTREAM_E_CONFIG,
                                 "start_chunk %lld and resume_token (chunk %zu) disagree: set one",
                                 (long long)st->s.start_chunk, *start);
        *start = (size_t)st->s.start_chunk;
    }
    return DDSTREAM_OK;
}

DDSTREAM_API ddstream_status ddstream_resume_token_at(const ddstream_stream *st, size_t index,
                                                      char *buf, size_t cap) {
    if (!st || !buf || cap < DDS_RESUME_TOKEN_CAP || index > st->plan.count)
        return DDSTREAM_E_INVALID_ARGUMENT;
    dds_resume_token_write(st->s.identity, st->s.granularity, &st->plan, index, buf, cap);
    return DDSTREAM_OK;
}

DDSTREAM_API ddstream_status ddstream_resume_token(const ddstream_stream *st, char *buf,
                                                   size_t cap) {
    if (!st) return DDSTREAM_E_INVALID_ARGUMENT;
    if (forked(st)) /* no thread of the child can change it; its lock may be held for ever */
        return ddstream_resume_token_at(st, st->next_deliver, buf, cap);
    ddstream_stream *m = (ddstream_stream *)st; /* locking does not change the observable state */
    pthread_mutex_lock(&m->mu);
    size_t index = m->next_deliver;
    pthread_mutex_unlock(&m->mu);
    return ddstream_resume_token_at(st, index, buf, cap);
}

#define NO_CHUNK SIZE_MAX

static chunk_slot *slot_of(ddstream_stream *st, size_t idx) { return &st->slots[idx % st->wcap]; }

/* The chunk a fetcher should start next, or NO_CHUNK. The lowest not yet fetched in the window
 * (with prefetch off: only what the caller asked for). Nothing past a failed chunk whose error
 * has not been delivered, nor past one whose delivered error awaits new demand: a failing server
 * is not hammered ahead of the caller, and no chunk is ever skipped. */
static size_t next_to_claim(ddstream_stream *st) {
    if (st->quit || st->cancelled) return NO_CHUNK;
    /* Slow start: one request at a time until one succeeds, and again after a failure, so a
     * server that refuses (bad key, bad query, outage, rate limit) sees one request and its
     * retries, not max_in_flight of them. */
    if (!st->ramped && st->fetching > 0) return NO_CHUNK;
    size_t limit = st->next_deliver + st->wcap;
    if (!st->s.enable_prefetch && st->wanted < limit) limit = st->wanted;
    if (limit > st->plan.count) limit = st->plan.count;
    if (st->s.follow && limit > st->settled) limit = st->settled; /* not settled yet: not asked */
    for (size_t i = st->next_deliver; i < limit; i++) {
        chunk_slot *sl = slot_of(st, i);
        if (sl->state == SLOT_FAILED) return NO_CHUNK;
        if (sl->state != SLOT_EMPTY) continue;
        if (sl->gated && st->demand_seq <= sl->fail_seq) return NO_CHUNK;
        return i;
    }
    return NO_CHUNK;
}

/* Follow: the window has room for a chunk that has not settled yet, and no fetcher watches the
 * clock for it. */
static int needs_clock_watch(ddstream_stream *st) {
    if (!st->s.follow || st->quit || st->cancelled || st->clock_watch) return 0;
    size_t limit = st->next_deliver + st->wcap;
    if (!st->s.enable_prefetch && st->wanted < limit) limit = st->wanted;
    return st->settled < limit;
}

/* Wake one idle fetcher if there is a chunk for it to claim (or, following, a clock to watch). */
static void wake_fetcher(ddstream_stream *st) {
    if (st->idle > 0 && (next_to_claim(st) != NO_CHUNK || needs_clock_watch(st)))
        pthread_cond_signal(&st->work_cv);
}

/* Follow: read the clock (without the lock: now_fn is the caller's code) and count the chunks
 * settled; when none is new, wait on work_cv until the next one is due by that clock, at most
 * 60 s (the system clock may be stepped), or until ddstream_clock_changed, a cancel, a seek or
 * close wakes it. A condition variable, never a poll: with the system clock, one wake-up per
 * chunk. Called and returns with st->mu held. */
#define CLOCK_REREAD_MS INT64_C(60000)
static void watch_clock(ddstream_stream *st) {
    st->clock_watch = 1;
    uint64_t seq = st->clock_seq; /* a change while the lock is dropped must not be slept through */
    pthread_mutex_unlock(&st->mu);
    int64_t now = dds_follow_now_ms(&st->s);
    pthread_mutex_lock(&st->mu);
    size_t settled = dds_follow_settled(&st->plan, st->s.settle_s, now);
    if (settled > st->settled) {
        st->settled = settled;
        st->clock_watch = 0;
        wake_fetcher(st);
        return;
    }
    if (!st->quit && !st->cancelled && seq == st->clock_seq) {
        int64_t wait = dds_follow_due_ms(&st->plan, st->s.settle_s, st->settled) - now;
        if (wait < 1) wait = 1;
        if (wait > CLOCK_REREAD_MS) wait = CLOCK_REREAD_MS;
        struct timespec until = dds_deadline_after(wait);
        st->idle++;
        pthread_cond_timedwait(&st->work_cv, &st->mu, &until);
        st->idle--;
    }
    st->clock_watch = 0;
}

static void wake_everyone(ddstream_stream *st) {
    pthread_cond_broadcast(&st->work_cv);
    pthread_cond_broadcast(&st->ready_cv);
}

static void *fetcher_main(void *arg) {
    fetcher *f = arg;
    ddstream_stream *st = f->st;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        size_t idx = NO_CHUNK;
        while (!st->quit && (idx = next_to_claim(st)) == NO_CHUNK) {
            if (needs_clock_watch(st)) {
                watch_clock(st);
                continue;
            }
            st->idle++;
            pthread_cond_wait(&st->work_cv, &st->mu);
            st->idle--;
        }
        if (st->quit) break;
        chunk_slot *sl = slot_of(st, idx); /* stays this chunk's: next_deliver cannot pass it */
        sl->state = SLOT_FETCHING;
        sl->gated = 0;
        st->fetching++;
        wake_fetcher(st); /* the window may hold more: pass the wake-up on */
        pthread_mutex_unlock(&st->mu);

        ddstream_chunk c = dds_plan_chunk(&st->plan, idx);
        ddstream_batch *batch = NULL;
        ddstream_error err;
        memset(&err, 0, sizeof err);
        dds_logf(&st->log, DDSTREAM_LOG_DEBUG,
                 "fetching chunk %zu of %zu [%" PRId64 ", %" PRId64 ")", idx + 1, st->plan.count,
                 c.start, c.end);
        ddstream_status rc = st->s.v2.enabled
                                 ? dds_fetch_chunk_v2(f->http, st->cache, &st->s, c.start, c.end,
                                                      &f->v2mem, st->pool, &batch, &err)
                                 : dds_fetch_chunk(f->http, st->cache, &st->s, &st->log, c.start,
                                                   c.end, &batch, &err);

        pthread_mutex_lock(&st->mu);
        st->fetching--;
        if (st->quit) {
            ddstream_batch_free(batch);
            sl->state = SLOT_EMPTY;
            break;
        }
        if (rc == DDSTREAM_OK) {
            batch->chunk_index = idx;
            batch->chunk_count = st->plan.count; /* SIZE_MAX when following */
            batch->is_last = !st->s.follow && idx + 1 == st->plan.count;
            sl->batch = batch;
            sl->state = SLOT_DONE;
            st->ramped = 1;
        } else if (rc == DDSTREAM_E_CANCELLED && st->cancelled) {
            sl->state = SLOT_EMPTY;
        } else {
            describe_chunk_error(st, idx, &err);
            /* DEBUG, not ERROR: the caller gets this error from ddstream_next (and Python raises
             * it), so an ERROR line would report the same failure twice. */
            dds_logf(&st->log, DDSTREAM_LOG_DEBUG, "%s", err.message);
            sl->error = err;
            sl->state = SLOT_FAILED;
            sl->fail_seq = st->demand_seq;
            st->ramped = 0;
        }
        /* This fetcher claims the next chunk itself; one that slow start held back (ramped is
         * now set) wakes another through the hand-on above. */
        if (st->caller_waiting && idx == st->next_deliver) pthread_cond_signal(&st->ready_cv);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

static void stop_worker(ddstream_stream *st) {
    pthread_mutex_lock(&st->mu);
    st->quit = 1;
    wake_everyone(st);
    pthread_mutex_unlock(&st->mu);
    for (size_t i = 0; i < st->nfetchers; i++)
        if (st->fetchers[i].started) dds_cancel_trigger(&st->fetchers[i].stop);
    for (size_t i = 0; i < st->nfetchers; i++) {
        if (!st->fetchers[i].started) continue;
        pthread_join(st->fetchers[i].thread, NULL);
        st->fetchers[i].started = 0;
    }
}

static ddstream_status start_worker(ddstream_stream *st, ddstream_error *err) {
    st->quit = 0;
    if (st->plan.count == 0) return DDSTREAM_OK;
    for (size_t i = 0; i < st->nfetchers; i++) {
        if (pthread_create(&st->fetchers[i].thread, NULL, fetcher_main, &st->fetchers[i]) != 0) {
            stop_worker(st);
            return dds_error_set(err, DDSTREAM_E_INTERNAL,
                                 "could not start the stream's fetcher threads");
        }
        st->fetchers[i].started = 1;
    }
    return DDSTREAM_OK;
}

/* Free every fetched batch of the window and forget its errors. No fetcher may be running. */
static void drop_window(ddstream_stream *st) {
    for (size_t i = 0; i < st->wcap; i++) {
        ddstream_batch_free(st->slots[i].batch);
        memset(&st->slots[i], 0, sizeof st->slots[i]);
        st->slots[i].state = SLOT_EMPTY;
    }
}

DDSTREAM_API void ddstream_close(ddstream_stream *st) {
    if (!st) return;
    if (forked(st)) return; /* leaked on purpose in a fork()ed child: see "fork()" above */
    if (st->fetchers) stop_worker(st);
    if (st->slots) drop_window(st);
    free(st->slots);
    for (size_t i = 0; st->fetchers && i < st->nfetchers; i++) {
        dds_http_free(st->fetchers[i].http);
        if (st->fetchers[i].stop_ready) dds_cancel_destroy(&st->fetchers[i].stop);
    }
    free(st->fetchers);
    dds_batch_pool_close(st->pool); /* batches still out keep it until they are freed */
    dds_chunk_cache_free(st->cache);
    pthread_cond_destroy(&st->work_cv);
    pthread_cond_destroy(&st->ready_cv);
    pthread_mutex_destroy(&st->mu);
    dds_log_destroy(&st->log);
    /* Every thread that could call the request gate has stopped: its data may go now. */
    if (st->s.request_gate_release) st->s.request_gate_release(st->s.request_gate_data);
    dds_settings_free(&st->s);
    free(st);
}

static int init_sync(ddstream_stream *st) {
    if (pthread_mutex_init(&st->mu, NULL) != 0) return -1;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) return -1;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&st->work_cv, &attr);
    if (rc == 0 && (rc = pthread_cond_init(&st->ready_cv, &attr)) != 0)
        pthread_cond_destroy(&st->work_cv);
    pthread_condattr_destroy(&attr);
    return rc != 0 ? -1 : 0;
}

DDSTREAM_API ddstream_status ddstream_open(const ddstream_config *cfg, ddstream_stream **out,
                                           ddstream_error *err) {
    if (!out) return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    ddstream_stream *st = calloc(1, sizeof *st);
    if (!st) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory creating the stream");
    st->owner_pid = getpid();
    ddstream_status rc = dds_settings_load(cfg, &st->s, err);
    if (rc != DDSTREAM_OK) {
        free(st);
        return rc;
    }
    dds_log_init(&st->log, st->s.log_level, st->s.log_fn, st->s.log_user, st->s.log_to_queue,
                 st->s.api_key, st->s.app_key);
    if (init_sync(st) != 0) {
        dds_log_destroy(&st->log);
        dds_settings_free(&st->s);
        free(st);
        return dds_error_set(err, DDSTREAM_E_INTERNAL, "could not create the stream's locks");
    }
    rc = st->s.follow ? dds_follow_plan_make(&st->s, &st->plan, err)
                      : dds_plan_make(st->s.range_start, st->s.range_end, st->s.granularity,
                                      st->s.chunk_seconds, &st->plan, err);
    if (rc != DDSTREAM_OK) goto fail;
    if (st->plan.clamped)
        dds_logf(&st->log, DDSTREAM_LOG_WARN,
                 "chunk_seconds=%" PRId64 " would need more than %d points per series at %" PRId64
                 " s granularity: using %" PRId64 " s chunks",
                 st->s.chunk_seconds, DDS_MAX_POINTS, st->s.granularity, st->plan.step);
    else if (st->plan.rounded)
        dds_logf(&st->log, DDSTREAM_LOG_WARN,
                 "chunk_seconds=%" PRId64 " is not a multiple of the granularity: using %" PRId64
                 " s",
                 st->s.chunk_seconds, st->plan.step);
    if (st->s.follow)
        dds_logf(&st->log, DDSTREAM_LOG_INFO,
                 "plan: following from %" PRId64 " in chunks of %" PRId64 " s at %" PRId64
                 " s granularity, each once it ended %" PRId64 " s ago",
                 st->plan.start, st->plan.step, st->s.granularity, st->s.settle_s);
    else
        dds_logf(&st->log, DDSTREAM_LOG_INFO,
                 "plan: %zu chunks of %" PRId64 " s at %" PRId64 " s granularity over [%" PRId64
                 ", %" PRId64 ")",
                 st->plan.count, st->plan.step, st->s.granularity, st->plan.start, st->plan.end);
    size_t first;
    rc = starting_chunk(st, &first, err);
    if (rc != DDSTREAM_OK) goto fail;
    st->next_deliver = st->wanted = first;
    if (st->s.follow) {
        st->settled = dds_follow_settled(&st->plan, st->s.settle_s, dds_follow_now_ms(&st->s));
        if (st->settled > first && st->settled - first > (uint64_t)st->s.max_chunks) {
            rc = dds_error_set(err, DDSTREAM_E_CONFIG,
                               "following from range_start starts with %zu settled chunks (one "
                               "request each), more than max_chunks (%lld): start later, use a "
                               "larger chunk_seconds (now %lld s), or raise max_chunks",
                               st->settled - first, (long long)st->s.max_chunks,
                               (long long)st->plan.step);
            goto fail;
        }
    }
    if (first > 0) dds_logf(&st->log, DDSTREAM_LOG_INFO, "resuming at chunk %zu", first + 1);
    /* With prefetch, up to max_in_flight requests run at once, within a window of
     * max(prefetch_chunks, max_in_flight) chunks from the caller's position (so memory stays
     * bounded by the window). Without prefetch only the chunk the caller asks for is fetched:
     * one request, one slot. Never more fetchers than chunks. */
    size_t in_flight = st->s.enable_prefetch ? (size_t)st->s.max_in_flight : 1;
    st->wcap = st->s.enable_prefetch ? (size_t)st->s.prefetch_chunks : 1;
    if (st->wcap < in_flight) st->wcap = in_flight;
    st->nfetchers = in_flight < st->plan.count ? in_flight : (st->plan.count ? st->plan.count : 1);
    st->slots = calloc(st->wcap, sizeof *st->slots);
    st->fetchers = calloc(st->nfetchers, sizeof *st->fetchers);
    st->pool = dds_batch_pool_new(DDS_BATCH_POOL_MAX_BYTES);
    rc = dds_chunk_cache_open(&st->s, &st->log, &st->cache, err);
    if (rc != DDSTREAM_OK) goto fail;
    if (!st->slots || !st->fetchers || !st->pool) {
        rc = dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory creating the stream");
        goto fail;
    }
    for (size_t i = 0; i < st->nfetchers; i++) {
        fetcher *f = &st->fetchers[i];
        f->st = st;
        if (dds_cancel_init(&f->stop) != 0) {
            rc = dds_error_set(err, DDSTREAM_E_INTERNAL, "could not create the stream's locks");
            goto fail;
        }
        f->stop_ready = 1;
        f->http = dds_http_new(&st->s, &st->log, &f->stop, err);
        if (!f->http) {
            rc = err ? err->status : DDSTREAM_E_NOMEM;
            goto fail;
        }
        dds_http_wait_for_windows(
            f->http); /* a bulk export waits out the window; cancel stops it */
    }
    rc = start_worker(st, err);
    if (rc != DDSTREAM_OK) goto fail;
    *out = st;
    return DDSTREAM_OK;
fail:
    st->s.request_gate_release = NULL; /* a failed open leaves request_gate_data to the caller */
    ddstream_close(st);
    return rc;
}

static ddstream_status remember(ddstream_stream *st, ddstream_status rc, const ddstream_error *e) {
    if (rc == DDSTREAM_OK || rc == DDSTREAM_END) st->last_error[0] = 0;
    else if (rc != DDSTREAM_TIMEOUT && e) memcpy(st->last_error, e->message, sizeof st->last_error);
    return rc;
}

DDSTREAM_API ddstream_status ddstream_next(ddstream_stream *st, int64_t timeout_ms,
                                           ddstream_batch **out, ddstream_error *err) {
    if (!st || !out)
        return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "stream or out is NULL");
    *out = NULL;
    ddstream_error local;
    ddstream_error *e = err ? err : &local;
    ddstream_status rc;
    if (forked(st)) return remember(st, forked_error(st, e), e); /* the child's copy: no lock */
    struct timespec until = dds_deadline_after(timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&st->mu);
    if (st->cancelled) {
        rc = dds_error_set(e, DDSTREAM_E_CANCELLED, "the stream was cancelled");
        goto done;
    }
    if (st->next_deliver >= st->plan.count) {
        rc = DDSTREAM_END;
        goto done;
    }
    st->demand_seq++;
    if (st->wanted < st->next_deliver + 1) st->wanted = st->next_deliver + 1;
    wake_fetcher(st); /* new demand: a chunk without prefetch, or one whose error was delivered */
    chunk_slot *sl = slot_of(st, st->next_deliver);
    while (sl->state != SLOT_DONE && sl->state != SLOT_FAILED && !st->cancelled) {
        if (timeout_ms == 0) break;
        st->caller_waiting = 1;
        int timed_out = 0;
        if (timeout_ms < 0) pthread_cond_wait(&st->ready_cv, &st->mu);
        else timed_out = pthread_cond_timedwait(&st->ready_cv, &st->mu, &until) == ETIMEDOUT;
        st->caller_waiting = 0;
        if (timed_out) break;
    }
    if (st->cancelled) {
        rc = dds_error_set(e, DDSTREAM_E_CANCELLED, "the stream was cancelled");
    } else if (sl->state == SLOT_DONE) {
        *out = sl->batch;
        sl->batch = NULL;
        sl->state = SLOT_EMPTY;
        st->next_deliver++;
        wake_fetcher(st); /* the window moved on by one chunk */
        rc = DDSTREAM_OK;
    } else if (sl->state == SLOT_FAILED) {
        /* The next call fetches this chunk again (fail_seq: only once the caller asks anew). */
        *e = sl->error;
        sl->state = SLOT_EMPTY;
        sl->gated = 1;
        rc = e->status; /* nothing to wake: the chunk waits for the caller's next demand */
    } else {
        rc = DDSTREAM_TIMEOUT;
    }
done:
    remember(st, rc, e);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

DDSTREAM_API int32_t ddstream_has_next(const ddstream_stream *st) {
    if (!st || forked(st)) return 0;            /* nothing can be delivered in a fork()ed child */
    ddstream_stream *m = (ddstream_stream *)st; /* locking does not change the observable state */
    pthread_mutex_lock(&m->mu);
    int32_t more = m->next_deliver < m->plan.count;
    pthread_mutex_unlock(&m->mu);
    return more;
}

DDSTREAM_API double ddstream_progress(const ddstream_stream *st) {
    if (!st) return 0.0;
    if (forked(st)) /* no thread of the child can change it; its lock may be held for ever */
        return st->plan.count ? (double)st->next_deliver / (double)st->plan.count : 1.0;
    ddstream_stream *m = (ddstream_stream *)st;
    pthread_mutex_lock(&m->mu);
    double p = m->plan.count ? (double)m->next_deliver / (double)m->plan.count : 1.0;
    if (m->s.follow) /* of the chunks settled so far: 1.0 once caught up */
        p = m->settled > m->next_deliver ? (double)m->next_deliver / (double)m->settled : 1.0;
    pthread_mutex_unlock(&m->mu);
    return p;
}

DDSTREAM_API size_t ddstream_chunk_count(const ddstream_stream *st) {
    return st ? st->plan.count : 0;
}

DDSTREAM_API ddstream_status ddstream_chunk_at(const ddstream_stream *st, size_t index,
                                               ddstream_chunk *out) {
    if (!st || !out || index >= st->plan.count) return DDSTREAM_E_INVALID_ARGUMENT;
    *out = st->s.follow ? dds_follow_chunk(&st->plan, index) : dds_plan_chunk(&st->plan, index);
    return DDSTREAM_OK;
}

DDSTREAM_API ddstream_status ddstream_seek(ddstream_stream *st, size_t index, ddstream_error *err) {
    if (!st) return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "stream is NULL");
    if (index > st->plan.count)
        return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT,
                             "chunk index %zu is past the plan's %zu chunks", index,
                             st->plan.count);
    if (forked(st)) return forked_error(st, err);
    stop_worker(st);
    pthread_mutex_lock(&st->mu);
    drop_window(st);
    st->cancelled = 0;
    st->next_deliver = st->wanted = index;
    st->demand_seq = 0;
    st->fetching = 0; /* ramped stays: the server answered this stream before */
    st->last_error[0] = 0;
    for (size_t i = 0; i < st->nfetchers; i++) dds_cancel_clear(&st->fetchers[i].stop);
    pthread_mutex_unlock(&st->mu);
    return start_worker(st, err);
}

DDSTREAM_API ddstream_status ddstream_reset(ddstream_stream *st, ddstream_error *err) {
    return ddstream_seek(st, 0, err);
}

DDSTREAM_API const char *ddstream_last_error(const ddstream_stream *st) {
    return st ? st->last_error : "";
}

DDSTREAM_API void ddstream_cancel(ddstream_stream *st) {
    if (!st || forked(st)) return; /* the child has none of the threads to stop */
    pthread_mutex_lock(&st->mu);
    st->cancelled = 1;
    wake_everyone(st);
    pthread_mutex_unlock(&st->mu);
    for (size_t i = 0; i < st->nfetchers; i++) dds_cancel_trigger(&st->fetchers[i].stop);
}

DDSTREAM_API void ddstream_clock_changed(ddstream_stream *st) {
    if (!st || forked(st) || !st->s.follow) return;
    pthread_mutex_lock(&st->mu);
    st->clock_seq++;
    pthread_cond_broadcast(&st->work_cv); /* the watcher reads the clock again */
    pthread_mutex_unlock(&st->mu);
}

DDSTREAM_API ddstream_status ddstream_poll_log(ddstream_stream *st, int32_t *level, char *buf,
                                               size_t cap) {
    if (!st) return DDSTREAM_E_INVALID_ARGUMENT;
    if (forked(st)) return DDSTREAM_E_FORKED; /* the queue's lock may be held for ever */
    return dds_log_pop(&st->log, level, buf, cap) ? DDSTREAM_OK : DDSTREAM_END;
}

DDSTREAM_API int64_t ddstream_rate_limit_wait_ms(const ddstream_stream *st) {
    if (!st || forked(st)) return 0;
    /* fetchers and their clients are fixed from open to close; the waits are atomics */
    int64_t now = dds_now_ms(), longest = 0;
    for (size_t i = 0; i < st->nfetchers; i++) {
        int64_t w = dds_http_throttled_ms(st->fetchers[i].http, now);
        if (w > longest) longest = w;
    }
    return longest;
}

const dds_settings *dds_stream_settings(const ddstream_stream *st) { return &st->s; }
