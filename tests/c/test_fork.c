/*
 * test_fork.c — fork() while a stream's fetcher threads are busy, against real fake Datadog
 * servers (tests/c/with_fake_datadog.py: DDSTREAM_BASE_URL, and DDSTREAM_LATENCY_URL whose
 * queries take 0.3 s, so requests are in flight when the process forks).
 *
 * In the child, every call on the inherited stream (and on its Arrow stream) must fail with
 * DDSTREAM_E_FORKED at once — never hang on a lock a parent thread held at fork time — and
 * closing it must not crash (no join of threads the child does not have); a new stream opened in
 * the child must deliver the whole range. The parent must go on and get every batch, exactly.
 * Each case forks several times, at different moments, so that the race can actually show; a
 * child that hangs is killed after a deadline and counts as a failure.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "ddstream.h"

/* ThreadSanitizer cannot follow a child of a threaded process that starts threads of its own
 * ("dup thread with used id": it still tracks the parent's), so under it the child checks only
 * the inherited streams; the plain, ASan and valgrind runs check the new stream in the child. */
/* Under a sanitizer the child checks only the inherited streams: TSan cannot follow a forked
 * child that starts threads, and ASan's allocator (GCC 12's runtime) is not fork-safe: a lock it
 * held in a parent thread at fork() stays held in the child, whose first malloc from a new thread
 * then waits for ever (seen in gdb: every fetcher thread of the child's new stream parked in
 * SizeClassAllocator64::GetFromAllocator). glibc's malloc is fork-safe, so the plain and valgrind
 * runs check the child's new stream in full. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#  define DDS_SANITIZED_FORK 1
#elif defined(__has_feature)
#  if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#    define DDS_SANITIZED_FORK 1
#  endif
#endif
#ifdef DDS_SANITIZED_FORK
static const int child_may_start_threads = 0;
#else
static const int child_may_start_threads = 1;
#endif

static const int64_t DAY0 = INT64_C(1793491200); /* 2026-11-01T00:00:00Z */
#define CHUNKS           6
#define ROWS             1440
#define CHILD_DEADLINE_S 30

/* The child's inherited objects are kept here so that they stay reachable when it exits: they
 * are leaked there on purpose (include/ddstream.h, FORK). */
static ddstream_stream *inherited;
static struct ArrowArrayStream inherited_arrow;

static void base_config(ddstream_config *cfg, const char *url) {
    ddstream_config_init(cfg);
    cfg->api_key = "test-api-key";
    cfg->app_key = "test-app-key";
    cfg->base_url = url;
    cfg->query = "avg:system.cpu.user{*}";
    cfg->range_start = DAY0;
    cfg->range_end = DAY0 + 86400;
    cfg->granularity = 60;
    cfg->chunk_seconds = 14400;
    cfg->max_retries = 1;
    cfg->max_in_flight = 4;
    cfg->prefetch_chunks = 4;
}

typedef struct tally {
    size_t batches, rows;
    double sum;      /* of the non-NaN avg values */
    int64_t next_ts; /* the timestamp the next row must have: rows contiguous, none repeated */
    int ordered;
} tally;

static void tally_init(tally *t) {
    memset(t, 0, sizeof *t);
    t->next_ts = DAY0;
    t->ordered = 1;
}

static void tally_add(tally *t, const int64_t *ts, const double *avg, size_t n) {
    t->batches++;
    for (size_t i = 0; i < n; i++) {
        if (ts[i] != t->next_ts) t->ordered = 0;
        t->next_ts = ts[i] + 60;
        if (avg[i] == avg[i]) t->sum += avg[i];
    }
    t->rows += n;
}

/* Read the rest of s into t; returns the final status. */
static ddstream_status drain(ddstream_stream *s, tally *t) {
    ddstream_batch *b;
    ddstream_error err;
    ddstream_status st;
    while ((st = ddstream_next(s, 10000, &b, &err)) == DDSTREAM_OK) {
        tally_add(t, b->timestamps, b->avg, b->length);
        ddstream_batch_free(b);
    }
    return st;
}

/* The whole day, read without any fork: what every reader must get. */
static tally reference(void) {
    ddstream_config cfg;
    base_config(&cfg, getenv("DDSTREAM_BASE_URL"));
    ddstream_stream *s = NULL;
    ddstream_error err;
    tally t;
    tally_init(&t);
    CHECK_MSG(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "open: %s", err.message);
    if (!s) return t;
    CHECK_MSG(drain(s, &t) == DDSTREAM_END, "reference stream did not end: %s",
              ddstream_last_error(s));
    ddstream_close(s);
    CHECK_MSG(t.batches == CHUNKS && t.rows == ROWS && t.ordered,
              "reference: %zu batches, %zu rows", t.batches, t.rows);
    return t;
}

static int same(const tally *a, const tally *b) {
    return a->batches == b->batches && a->rows == b->rows && a->sum == b->sum && a->ordered &&
           b->ordered;
}

/* In the child: the inherited stream fails with the clear error, and a new stream works. */
static int child_checks(pid_t parent, const tally *expected) {
    int bad = 0;
#define CHILD_CHECK(cond, ...)                                                                     \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      bad++;                                                                                       \
      fprintf(stderr, "child %ld, %s:%d: ", (long)getpid(), __FILE__, __LINE__);                   \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
    }                                                                                              \
  } while (0)
    ddstream_error err;
    memset(&err, 0, sizeof err);
    if (inherited) {
        ddstream_batch *b = NULL;
        char expected_pid[64];
        snprintf(expected_pid, sizeof expected_pid, "opened in process %ld", (long)parent);
        ddstream_status st = ddstream_next(inherited, -1, &b, &err);
        CHILD_CHECK(st == DDSTREAM_E_FORKED && b == NULL, "next: %s", ddstream_status_str(st));
        CHILD_CHECK(strstr(err.message, expected_pid) && strstr(err.message, "fork()"),
                    "message: %s", err.message);
        CHILD_CHECK(strstr(ddstream_last_error(inherited), "fork()") != NULL, "last_error: %s",
                    ddstream_last_error(inherited));
        CHILD_CHECK(!ddstream_has_next(inherited), "has_next in the child");
        CHILD_CHECK(ddstream_seek(inherited, 0, &err) == DDSTREAM_E_FORKED, "seek");
        int32_t level;
        char line[64];
        CHILD_CHECK(ddstream_poll_log(inherited, &level, line, sizeof line) == DDSTREAM_E_FORKED,
                    "poll_log");
        struct ArrowArrayStream arrow = {0};
        CHILD_CHECK(ddstream_stream_arrow(inherited, &arrow, &err) == DDSTREAM_E_FORKED &&
                        arrow.release == NULL,
                    "stream_arrow");
        char token[64];
        CHILD_CHECK(ddstream_resume_token(inherited, token, sizeof token) == DDSTREAM_OK,
                    "the resume token still answers");
        double p = ddstream_progress(inherited);
        CHILD_CHECK(p >= 0.0 && p <= 1.0, "progress %f", p);
        ddstream_cancel(inherited);
        ddstream_close(inherited); /* inert: must neither crash nor hang */
    }
    if (inherited_arrow.release) {
        struct ArrowArray array;
        memset(&array, 0, sizeof array);
        int rc = inherited_arrow.get_next(&inherited_arrow, &array);
        const char *msg = inherited_arrow.get_last_error(&inherited_arrow);
        CHILD_CHECK(rc == EIO && msg && strstr(msg, "fork()"), "arrow get_next: %d %s", rc,
                    msg ? msg : "(none)");
        CHILD_CHECK(
            ddstream_stream_arrow_next(&inherited_arrow, 100, &array, &err) == DDSTREAM_E_FORKED,
            "stream_arrow_next");
        inherited_arrow.release(&inherited_arrow); /* inert as well */
    }
    if (!child_may_start_threads) return bad;
    /* A new stream in the child: the whole day, exactly. */
    ddstream_config cfg;
    base_config(&cfg, getenv("DDSTREAM_BASE_URL"));
    ddstream_stream *fresh = NULL;
    CHILD_CHECK(ddstream_open(&cfg, &fresh, &err) == DDSTREAM_OK, "open in the child: %s",
                err.message);
    if (fresh) {
        tally t;
        tally_init(&t);
        ddstream_status st = drain(fresh, &t);
        CHILD_CHECK(st == DDSTREAM_END && same(&t, expected),
                    "new stream in the child: %s, %zu batches", ddstream_status_str(st), t.batches);
        ddstream_close(fresh);
    }
    CHILD_CHECK(ddstream_validate(&cfg, &err) == DDSTREAM_OK, "validate in the child: %s",
                err.message);
    return bad;
#undef CHILD_CHECK
}

/* Wait for the child, at most CHILD_DEADLINE_S; a child still running then has hung. */
static void reap(pid_t pid, const char *what, int round) {
    time_t until = time(NULL) + CHILD_DEADLINE_S;
    int status = 0;
    pid_t got;
    while ((got = waitpid(pid, &status, WNOHANG)) == 0 && time(NULL) < until) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        CHECK_MSG(0, "%s, round %d: the child hung (killed after %d s)", what, round,
                  CHILD_DEADLINE_S);
        return;
    }
    CHECK_MSG(got == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "%s, round %d: the child %s %d", what, round,
              WIFSIGNALED(status) ? "died of signal" : "exited with",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

static pid_t fork_and_check(const tally *expected) {
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) _exit(child_checks(parent, expected) ? 1 : 0);
    CHECK_MSG(pid > 0, "fork: %s", strerror(errno));
    return pid;
}

/* fork() after `before` batches were read, with requests in flight; then read the rest. */
static void fork_mid_stream(const tally *expected, int before, int round) {
    ddstream_config cfg;
    base_config(&cfg, getenv("DDSTREAM_LATENCY_URL"));
    ddstream_error err;
    CHECK_MSG(ddstream_open(&cfg, &inherited, &err) == DDSTREAM_OK, "open: %s", err.message);
    if (!inherited) return;
    tally t;
    tally_init(&t);
    ddstream_batch *b;
    for (int i = 0; i < before; i++) {
        CHECK_MSG(ddstream_next(inherited, 10000, &b, &err) == DDSTREAM_OK, "next: %s",
                  err.message);
        tally_add(&t, b->timestamps, b->avg, b->length);
        ddstream_batch_free(b);
    }
    /* Vary the moment within a request too: 0, 0.1 or 0.2 s into the 0.3 s answers. */
    struct timespec ts = {0, (long)(round % 3) * 100000000L};
    nanosleep(&ts, NULL);
    pid_t pid = fork_and_check(expected);
    ddstream_status st = drain(inherited, &t);
    CHECK_MSG(st == DDSTREAM_END, "parent, round %d: %s (%s)", round, ddstream_status_str(st),
              ddstream_last_error(inherited));
    CHECK_MSG(same(&t, expected), "parent, round %d: %zu batches, %zu rows, sum %.17g vs %.17g",
              round, t.batches, t.rows, t.sum, expected->sum);
    reap(pid, "fork mid-stream", round);
    ddstream_close(inherited);
    inherited = NULL;
}

/* The same through the Arrow C stream: the parent reads every record batch after the fork. */
static void fork_mid_arrow(const tally *expected, int round) {
    ddstream_config cfg;
    base_config(&cfg, getenv("DDSTREAM_LATENCY_URL"));
    ddstream_error err;
    ddstream_stream *s = NULL;
    CHECK_MSG(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "open: %s", err.message);
    if (!s) return;
    CHECK_MSG(ddstream_stream_arrow(s, &inherited_arrow, &err) == DDSTREAM_OK, "arrow: %s",
              err.message);
    struct timespec ts = {0, (long)(round % 3) * 100000000L};
    nanosleep(&ts, NULL);
    pid_t pid = fork_and_check(expected);
    size_t batches = 0;
    int64_t rows = 0;
    struct ArrowArray array;
    for (;;) {
        memset(&array, 0, sizeof array);
        int rc = inherited_arrow.get_next(&inherited_arrow, &array);
        CHECK_MSG(rc == 0, "parent arrow get_next: %d", rc);
        if (rc != 0 || !array.release) break;
        batches++;
        rows += array.length;
        array.release(&array);
    }
    CHECK_MSG(batches == CHUNKS && rows == ROWS, "parent arrow, round %d: %zu batches, %lld rows",
              round, batches, (long long)rows);
    reap(pid, "fork mid-arrow", round);
    inherited_arrow.release(&inherited_arrow);
}

int main(void) {
    if (!getenv("DDSTREAM_BASE_URL") || !getenv("DDSTREAM_LATENCY_URL")) {
        fprintf(stderr, "run me through tests/c/with_fake_datadog.py\n");
        return 2;
    }
    tally expected = reference();
    for (int round = 0; round < 6; round++) fork_mid_stream(&expected, round % 3, round);
    for (int round = 0; round < 3; round++) fork_mid_arrow(&expected, round);
    return check_report("test_fork");
}
