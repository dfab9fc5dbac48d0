/*
 * ddstream.h — stream Datadog metric timeseries over long time ranges, in chunks.
 *
 * This is the only public header of libddstream. Nothing from libcurl, cJSON or any other dependency
 * appears here, and every exported symbol starts with ddstream_ / DDSTREAM_.
 *
 * THREAD SAFETY
 *   - Different streams may be used from different threads at the same time, freely.
 *   - One stream must be used from one thread at a time (the caller serialises), with one exception:
 *     ddstream_cancel() may be called from any thread at any time while the stream is open.
 *   - Global set-up (libcurl's global init) happens once, inside the library, thread-safely
 *     (pthread_once) and is never torn down. The only other global state is the registry of
 *     rate-limit budgets: one per (base URL, API key), shared by every stream of the process so
 *     that streams in a thread pool pace themselves together. It is mutex-protected, fork-safe,
 *     and holds a hash of each key, never the key.
 *   - Each function below states its own rule again.
 *
 * FORK
 *   A stream belongs to the process that opened it. fork() leaves the parent's streams working in
 *   the parent. In the child (which has none of the stream's threads, and shares its connections
 *   with the parent), every call on an inherited stream returns DDSTREAM_E_FORKED ("the stream was
 *   opened in process N; ...") without touching its locks, threads or connections; has_next
 *   returns 0, cancel does nothing, and ddstream_close (or releasing an inherited Arrow stream)
 *   releases nothing: the child's copy is left allocated on purpose, since freeing it would mean
 *   joining threads that do not exist, destroying locks another thread may hold, and closing
 *   connections the parent still uses. progress, chunk_count, chunk_at and the resume tokens still
 *   answer, so a child can open a new stream where the inherited one stood. New streams (and
 *   ddstream_validate) work in the child: the rate-limit registry is reset for it at fork().
 *
 * OWNERSHIP
 *   - The library copies every string it is given; the caller's config may be freed after a call.
 *   - Objects handed out (ddstream_stream, ddstream_batch) are owned by the caller until passed to
 *     their free/close function. Pointers inside a batch stay valid until ddstream_batch_free().
 *   - ddstream_error is caller-owned; every function that takes one accepts NULL.
 *
 * ERRORS
 *   Every fallible call returns a ddstream_status. DDSTREAM_OK, DDSTREAM_END and DDSTREAM_TIMEOUT are
 *   not errors. Error messages name what was wrong and never contain an API or application key.
 *
 * The declarations between DDSTREAM_CDEF_BEGIN and DDSTREAM_CDEF_END are written so that cffi (ABI
 * mode) and cgo can read them as they are: no unions, bitfields, or structs passed by value.
 */
#ifndef DDSTREAM_H
#define DDSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "ddstream_version.h"

/*
 * DDSTREAM_API marks every public function. The build of libddstream defines BUILDING_DDSTREAM
 * (meson.build, for the library's own files only) and compiles everything else hidden, so the
 * library exports exactly the functions marked here. Users define nothing: on Windows they import
 * from the DLL; elsewhere the mark is empty for them.
 */
#if defined(_WIN32)
#  if defined(BUILDING_DDSTREAM)
#    define DDSTREAM_API __declspec(dllexport)
#  else
#    define DDSTREAM_API __declspec(dllimport)
#  endif
#elif defined(BUILDING_DDSTREAM) && defined(__GNUC__)
#  define DDSTREAM_API __attribute__((visibility("default")))
#else
#  define DDSTREAM_API
#endif

/*
 * DDSTREAM_NODISCARD marks the functions that return a ddstream_status: ignoring one hides a
 * failure. It warns (GCC, Clang) in the library's own build, and in a program that defines
 * DDSTREAM_WARN_UNUSED_RESULT before including this header; otherwise it is empty, because GCC
 * offers no way to silence it for a status ignored on purpose (not even a cast to void).
 */
#if (defined(BUILDING_DDSTREAM) || defined(DDSTREAM_WARN_UNUSED_RESULT)) && defined(__GNUC__)
#  define DDSTREAM_NODISCARD __attribute__((warn_unused_result))
#else
#  define DDSTREAM_NODISCARD
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
 * VERSION of this header: DDSTREAM_VERSION_MAJOR, _MINOR, _PATCH, _STRING and _INT come from
 * ddstream_version.h, which the build writes from the project's version (meson.build). Compare
 * DDSTREAM_VERSION_HEX with ddstream_version_int() at run time before trusting struct layouts.
 *
 * ABI rule: within one MAJOR (the library's soname is libddstream.so.MAJOR) nothing is removed or
 * changed: functions and status codes are only added, and structs with a struct_size only grow at
 * their end (see ddstream_config). A program built against an older MINOR keeps working with a
 * newer library. Anything else bumps MAJOR.
 */
#define DDSTREAM_VERSION_HEX                                                                       \
  ((DDSTREAM_VERSION_MAJOR << 16) | (DDSTREAM_VERSION_MINOR << 8) | DDSTREAM_VERSION_PATCH)

/* DDSTREAM_CDEF_BEGIN */

/*
 * Status codes. Append-only: values are never renumbered or reused.
 */
typedef enum ddstream_status {
    DDSTREAM_OK = 0,      /* success */
    DDSTREAM_END = 1,     /* no more batches: the stream is exhausted (not an error) */
    DDSTREAM_TIMEOUT = 2, /* the wait timed out before a batch was ready: call again */
    DDSTREAM_E_INVALID_ARGUMENT =
        10,                       /* a NULL handle or pointer, or a struct_size we do not know */
    DDSTREAM_E_CONFIG = 11,       /* the configuration is invalid; the message names the field */
    DDSTREAM_E_NOMEM = 12,        /* an allocation failed */
    DDSTREAM_E_AUTH = 20,         /* 401/403: the API or application key was refused */
    DDSTREAM_E_RATE_LIMITED = 21, /* 429 and the retry budget is spent */
    DDSTREAM_E_QUERY = 22,        /* 400/404/422: Datadog rejected the query */
    DDSTREAM_E_SERVER = 23,       /* 5xx (after retries) or an HTTP status we do not handle */
    DDSTREAM_E_NETWORK = 24,      /* connection, DNS, TLS or transfer failure (after retries) */
    DDSTREAM_E_TIMEOUT = 25,   /* a request exceeded its connect or total timeout (after retries) */
    DDSTREAM_E_PROTOCOL = 26,  /* the answer was not what the Datadog API documents */
    DDSTREAM_E_CANCELLED = 27, /* ddstream_cancel() was called */
    DDSTREAM_E_INTERNAL = 28,  /* a bug in ddstream: please report it */
    DDSTREAM_E_FORKED = 29     /* the stream was opened in another process: this is a fork()ed
                                       child, which must open its own (see FORK below) */
} ddstream_status;

/* Log levels (config.log_level). WARN: retries, adjusted chunk sizes, chunks asked again; INFO:
 * the plan, resuming, rate-limit and request-gate waits; DEBUG: each request and each failure.
 * A failure the caller is told about (a returned status and its ddstream_error) is logged at
 * DEBUG only, so it is not reported twice; ERROR is for failures no call returns (none in this
 * version). */
typedef enum ddstream_log_level {
    DDSTREAM_LOG_NONE = 0,
    DDSTREAM_LOG_ERROR = 1,
    DDSTREAM_LOG_WARN = 2,
    DDSTREAM_LOG_INFO = 3,
    DDSTREAM_LOG_DEBUG = 4
} ddstream_log_level;

/*
 * A caller-owned error report. All fields are set by the function that fails; on success they are
 * left untouched. message is NUL-terminated, truncated to fit, and never contains a key.
 */
typedef struct ddstream_error {
    ddstream_status status;
    int32_t http_status; /* last HTTP status seen, 0 if none */
    int64_t chunk_start; /* epoch s of the chunk that failed, -1 if not about a chunk */
    int64_t chunk_end;   /* exclusive end, epoch s, -1 if not about a chunk */
    char message[512];
} ddstream_error;

/*
 * Log sink. Called from library threads (the caller's or the stream's worker), possibly
 * concurrently for different streams: it must be thread-safe and must not call back into the
 * stream. message is valid only during the call and never contains a key.
 */
typedef void (*ddstream_log_fn)(void *user, int32_t level, const char *message);

/*
 * Request gate: an optional hook every Datadog query request passes through, for sharing one
 * organisation's rate limit between processes or machines (ddstream's own budget is per process).
 * Called for every attempt at GET /api/v1/query (retries included; not /api/v1/validate):
 *   DDSTREAM_REQUEST_BEFORE     before the attempt is sent. Return 0 to send it now, a positive
 *                               number of ms to have the library wait (cancellably) and ask again,
 *                               or a negative number to fail the request with
 *                               DDSTREAM_E_RATE_LIMITED ("refused by the request gate").
 *   DDSTREAM_REQUEST_ANSWERED   the answer's status line and headers arrived: http_status and the
 *                               x-ratelimit-* values are set. Exactly once per attempt let through.
 *   DDSTREAM_REQUEST_NO_ANSWER  the attempt that was let through got no answer (network error,
 *                               timeout, cancellation). Exactly once per such attempt.
 * The return value of the last two is ignored. Called on the stream's fetcher threads (and on
 * the caller's thread for ddstream_validate's query), possibly concurrently: the gate must be
 * thread-safe, must not call back into the stream, and should return quickly (return a wait
 * rather than sleep: ddstream_cancel cannot interrupt a gate that blocks). info is valid only
 * during the call.
 */
typedef enum ddstream_request_phase {
    DDSTREAM_REQUEST_BEFORE = 0,
    DDSTREAM_REQUEST_ANSWERED = 1,
    DDSTREAM_REQUEST_NO_ANSWER = 2
} ddstream_request_phase;

typedef struct ddstream_request_info {
    size_t struct_size;          /* sizeof(ddstream_request_info) of the library calling */
    int32_t phase;               /* ddstream_request_phase */
    int32_t attempt;             /* 0 for a request's first attempt, then 1, 2... */
    int32_t http_status;         /* ANSWERED: the HTTP status; otherwise 0 */
    int64_t ratelimit_limit;     /* ANSWERED: x-ratelimit-limit, -1 when absent */
    int64_t ratelimit_remaining; /* ANSWERED: x-ratelimit-remaining, -1 when absent */
    int64_t ratelimit_period_s;  /* ANSWERED: x-ratelimit-period, -1 when absent */
    int64_t ratelimit_reset_ms;  /* ANSWERED: ms until the window resets (x-ratelimit-reset,
                                       from seconds or an epoch), -1 when absent */
} ddstream_request_info;

typedef int64_t (*ddstream_request_gate_fn)(void *user_data, const ddstream_request_info *info);

/*
 * Options. Initialise with ddstream_config_init(), then set what you need. struct_size lets the
 * struct grow at the end in later versions without breaking callers built against this one: the
 * library accepts any struct_size that is the size of a published layout, from ddstream 0.1.0's
 * (which ends at request_gate_release) up to its own, and gives the fields a smaller struct lacks
 * ddstream_config_init's defaults. A larger size, a smaller one, or one ending inside a field is
 * DDSTREAM_E_INVALID_ARGUMENT.
 * Every string is copied by the library; NULL means "the default" as described.
 */
typedef struct ddstream_config {
    size_t struct_size;    /* sizeof(ddstream_config), set by ddstream_config_init */
    const char *api_key;   /* NULL: environment DD_API_KEY */
    const char *app_key;   /* NULL: environment DD_APP_KEY */
    const char *site;      /* NULL: environment DD_SITE, else "datadoghq.com" */
    const char *base_url;  /* NULL: "https://api.<site>"; e.g. "http://127.0.0.1:8126".
                                       Read by libcurl's URL parser: no user:password@, query,
                                       fragment or IPv6 zone id; http:// only to 127.0.0.0/8,
                                       ::1 or localhost (see allow_insecure_http) */
    const char *query;     /* a single metric query, e.g. "avg:system.cpu.user{*} by {host}" */
    int64_t range_start;   /* epoch seconds, inclusive */
    int64_t range_end;     /* epoch seconds, exclusive */
    int64_t granularity;   /* bucket size in seconds, > 0 (default 60) */
    int64_t chunk_seconds; /* seconds per request; 0 (default): the largest the point cap allows */
    int32_t enable_prefetch; /* nonzero (default): fetch the next chunks while the caller works */
    int32_t prefetch_chunks; /* how many chunks ahead of the caller, 1..64 (default 2) */
    int32_t log_level;       /* ddstream_log_level (default DDSTREAM_LOG_NONE) */
    int32_t log_to_queue;    /* nonzero and log_fn NULL: keep lines for ddstream_poll_log() */
    ddstream_log_fn log_fn;  /* NULL: lines go to stderr (or to the queue, see above) */
    void *log_user;          /* passed to log_fn */
    int32_t max_retries;     /* retries per request on 408/429/5xx, network errors, timeouts
                                       and cut-short answers (default 5) */
    int32_t allow_insecure_http; /* nonzero: allow http:// to hosts other than loopback */
    int64_t max_retry_wait_ms;   /* time one request may spend retrying after its first failure:
                                       backoff sleeps and retried attempts, not the waits for a
                                       rate-limit window (default 300000) */
    int64_t connect_timeout_ms;  /* (default 10000) */
    int64_t request_timeout_ms;  /* whole request, connect to last byte (default 120000) */
    int64_t max_body_bytes;      /* largest answer accepted, decompressed (default 256 MiB) */
    const char *ca_bundle;       /* NULL: $SSL_CERT_FILE, else the system's CA store */
    int64_t retry_backoff_ms;    /* first retry waits 50-100% of this, doubling per retry up to
                                       30 s (default 500) */
    int64_t low_speed_limit;     /* abort a transfer slower than this many bytes/s ... */
    int64_t low_speed_time_ms;   /* ... for this long (default 1 B/s for 30000 ms; 0: off) */
    int64_t start_chunk;         /* first chunk to deliver, 0..chunk count (default 0): resume
                                       without refetching the chunks before it */
    const char *resume_token;    /* NULL, or a token from ddstream_resume_token(): start where it
                                       says, after checking it was made for this query and plan */
    int32_t max_in_flight;       /* with prefetch, requests in flight at once, each on its own
                                       keep-alive connection, 1..32 (default 4); batches still come
                                       in chunk order. Fetching runs up to max(prefetch_chunks,
                                       max_in_flight) chunks ahead. Without prefetch: 1 */
    ddstream_request_gate_fn request_gate; /* NULL (default): none; see ddstream_request_gate_fn */
    void *request_gate_data;               /* passed to request_gate */
    void (*request_gate_release)(void *request_gate_data); /* NULL, or called once when the stream
                                       no longer needs request_gate_data: when it is closed
                                       (ddstream_close, or the release of its Arrow stream's last
                                       handle), after its threads have stopped, on the thread that
                                       closes it. Not called when ddstream_open fails, nor by
                                       ddstream_validate */
    int64_t max_chunks;         /* largest plan accepted, in chunks (requests); 0 (default):
                                       1000000, about 26 days of requests at Datadog's published
                                       default of 1600 query requests/hour. A longer plan is
                                       DDSTREAM_E_CONFIG up front: raise chunk_seconds or the
                                       granularity, shorten the range, or raise this */
    int64_t max_batch_rows;     /* largest batch one chunk may make, in rows (buckets x
                                       series, ~44 bytes each); 0 (default): 10000000 (~440 MB).
                                       A chunk past it fails with DDSTREAM_E_PROTOCOL before its
                                       batch is allocated, as max_body_bytes bounds the answer */
    const char *const *queries; /* NULL, or query_count metric queries, each one expression: one
                                   stream, packed into as few requests per chunk as the budgets
                                   allow. query must be NULL when this is set */
    size_t query_count;
    uint32_t statistics; /* DDSTREAM_STAT_AVG|MIN|MAX|SUM mask; 0 (default): all four.
                                   Fewer statistics, fewer sub-queries per request */
    const char *const *distribution_metrics; /* NULL, or names of distribution metrics (see docs) */
    size_t distribution_metric_count;
    int32_t max_subqueries_per_request; /* 0 (default): 35 */
    int64_t max_request_uri_bytes;      /* 0 (default): 7000, the URI as sent, path+escaped query */
    const char *cache_dir;   /* NULL (default): no cache. A folder for the persistent chunk
                                       cache (created, mode 0700): see CHUNK CACHE below */
    int64_t cache_max_bytes; /* bound of the cache folder's entries, least recently used
                                       evicted first; 0 (default): 1 GiB */
    int32_t follow;          /* nonzero: the stream never ends; see FOLLOW MODE below */
    int64_t settle_seconds;  /* a chunk has settled once it ended at least this long ago
                                       (Datadog fills its last buckets in late): follow mode
                                       fetches it only then, and the chunk cache stores only
                                       settled chunks; 0 (default): 300 */
    int64_t (*now_fn)(void *now_data); /* NULL (default): the system's clock. Otherwise every
                                       "now" a follow stream reads, as epoch milliseconds: for
                                       replays and tests (see FOLLOW MODE). Called on the
                                       stream's threads and the caller's; must be thread-safe */
    void *now_data;                    /* passed to now_fn */
    const char *const *formulas;       /* NULL, or formula_count formulas over the queries' names
                                    ("a / b * 100", "per_second(a)"): the stream goes through
                                    Datadog's v2 endpoint, one value per bucket and group of each
                                    formula (batch column `value`, the formula's index in `query`)
                                    */
    size_t formula_count;
    const char *const *query_names; /* NULL, or query_count names for queries (a letter or '_',
                                       then letters, digits, '_'), as formulas refer to them;
                                       NULL: "q0", "q1", ... (a single `query`: "q0") */
    int32_t api; /* DDSTREAM_API_AUTO (0, default): v2 when formulas are set, else v1;
                    DDSTREAM_API_V1 (formulas refused) or DDSTREAM_API_V2 (without formulas,
                    each query is its own formula) */
} ddstream_config;

/* config.api: which Datadog endpoint a stream reads (v1's dense grids and interval, or v2's
 * formulas). */
#define DDSTREAM_API_AUTO 0
#define DDSTREAM_API_V1   1
#define DDSTREAM_API_V2   2

/* config.statistics: the statistics a four-statistics query asks for. */
#define DDSTREAM_STAT_AVG 1u
#define DDSTREAM_STAT_MIN 2u
#define DDSTREAM_STAT_MAX 4u
#define DDSTREAM_STAT_SUM 8u

/*
 * FOLLOW MODE (config.follow)
 *   The plan is open-ended: chunk i is [start + i*step, start + (i+1)*step) for every i, start
 *   being range_start rounded up to the granularity and step chunk_seconds (rounded as usual;
 *   0 means 60 buckets, an hour at 60 s, since a chunk is delivered only once it has ended).
 *   range_end is 0 (follow from range_start) or any later time: it does not cut the stream, it
 *   only bounds what ddstream_plan reports. Each chunk is fetched once its end is at least
 *   settle_seconds before now (now_fn, or the system's clock): the chunks already settled at
 *   open come at once, each later one when it settles, one request each. Between them the
 *   stream's threads wait on a condition variable, not a poll: until the next chunk is due by
 *   the clock (re-read at least every 60 s, in case the system clock is stepped), or until
 *   ddstream_clock_changed says a now_fn clock moved; ddstream_cancel and ddstream_close end the
 *   wait at once.
 *   - ddstream_next never returns DDSTREAM_END; with timeout_ms < 0 it blocks until the next
 *     chunk settles and arrives (or the stream is cancelled). ddstream_has_next is 1.
 *   - Open-ended counts: ddstream_chunk_count and every batch's chunk_count are SIZE_MAX, and
 *     is_last is never set. ddstream_chunk_at answers for any index (an index too far for int64
 *     gives end INT64_MAX). ddstream_progress is the fraction of the chunks settled so far that
 *     were delivered: 1.0 once the stream has caught up and waits for the next one.
 *   - ddstream_plan on a follow config gives the historical part: the chunks that end by
 *     range_end, or with range_end 0 the chunks settled now.
 *   - max_chunks bounds the historical part at open (the chunks settled then, after the start).
 *   - Resume tokens: a follow stream's token names its next chunk on the open-ended grid and a
 *     fingerprint of (query, granularity, start, step, follow); a stream opened with it later,
 *     whatever its range_end, delivers exactly the chunks after the last one delivered: no gap,
 *     no duplicate. Tokens of follow and bounded streams are not interchangeable.
 *   - settle_seconds is also the chunk cache's horizon (one field, one clock: now_fn), so every
 *     chunk a follow stream fetches can be stored.
 */

/* One chunk of the plan: buckets with start in [start, end), epoch seconds, aligned to granularity. */
typedef struct ddstream_chunk {
    int64_t start;
    int64_t end;
} ddstream_chunk;

/*
 * One batch per chunk, as parallel columns: row i of every column describes the same bucket.
 * Rows cover every bucket of the chunk (NaN where Datadog had no value). For grouped queries
 * ("... by {host}") rows are ordered by series, then time; series[i] indexes series_tags.
 * With several queries, rows are ordered by query, then series tags (strcmp), then time: an
 * ungrouped query gives one dense series of all buckets, a grouped one a series per group (0
 * rows when none). grouped is then nonzero (a series is a (query, tag set) pair; ungrouped
 * queries' series have tags "").
 * Read-only to the caller; valid until ddstream_batch_free().
 */
typedef struct ddstream_batch {
    size_t struct_size;        /* sizeof(ddstream_batch) of the library that made it */
    size_t length;             /* number of rows */
    const int64_t *timestamps; /* bucket start, epoch seconds */
    const double *avg;         /* NaN where Datadog had no value */
    const double *min;
    const double *max;
    const double *sum;
    const int32_t *series; /* per row, index into series_tags; NULL for ungrouped queries */
    size_t series_count;   /* 0 for ungrouped queries */
    const char *const
        *series_tags;       /* series_count strings: the tag set, comma-joined ("host:a,env:b") */
    int64_t chunk_start_ms; /* chunk bounds, epoch ms, [start, end) */
    int64_t chunk_end_ms;
    size_t chunk_index;   /* 0-based position of this chunk in the plan */
    size_t chunk_count;   /* chunks in the plan */
    int32_t is_last;      /* nonzero for the final chunk of the plan */
    int32_t grouped;      /* nonzero when the query has a "by {...}" clause */
    int64_t interval;     /* bucket size Datadog answered with, seconds */
    const int32_t *query; /* per row: index of its query (in queries, or in the comma-separated
                             query); NULL for a stream of one query given as `query` */
    size_t query_count;   /* queries in the stream */
    const int32_t *series_query; /* per series (series_count): its query; NULL when series is
                                    NULL */
    const double *value; /* per row: the one value per bucket of value-only queries; NaN on rows
                            of four-statistics queries (whose avg/min/max/sum are set, and whose
                            statistics outside the mask are NaN). NULL when no query of the stream
                            is value-only */
} ddstream_batch;

typedef struct ddstream_stream ddstream_stream;

/* Version. Thread-safe. The string is static. */
DDSTREAM_API const char *ddstream_version(void);
DDSTREAM_API int32_t ddstream_version_int(void);

/* Static text for a status ("ok", "end of stream", ...). Thread-safe. Never NULL. */
DDSTREAM_API const char *ddstream_status_str(ddstream_status status);

/* Fill cfg with defaults (all pointers NULL). Thread-safe (touches only *cfg). */
DDSTREAM_API void ddstream_config_init(ddstream_config *cfg);

/*
 * Check a config without any network I/O: keys present (after the environment defaults), query
 * or queries (not both) set and each query valid (an error names it, "query: " or "queries[i]: ",
 * and points at the offending character), statistics a mask of DDSTREAM_STAT_*, the request
 * budgets in bounds and every sub-query within max_request_uri_bytes, range_start < range_end,
 * granularity > 0, site known, base_url well-formed, a plan of at most max_chunks chunks.
 * Thread-safe. Returns DDSTREAM_OK or DDSTREAM_E_CONFIG.
 */
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status ddstream_config_validate(const ddstream_config *cfg,
                                                                         ddstream_error *err);

/*
 * The chunk plan for cfg: writes up to capacity chunks to chunks (which may be NULL when capacity
 * is 0) and the total number to *count. Thread-safe. No network I/O, and no keys needed (the
 * rest of cfg is checked as ddstream_config_validate does). The plan is the same for one query
 * or several: every query is asked at the one granularity, so each series of each query keeps
 * within Datadog's 1500-point cap per chunk; more queries cost more requests per chunk
 * (ddstream_explain), never more chunks.
 */
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status ddstream_plan(const ddstream_config *cfg,
                                                              ddstream_chunk *chunks,
                                                              size_t capacity, size_t *count,
                                                              ddstream_error *err);

/*
 * The compiled queries and the requests of one chunk, as JSON (UTF-8, NUL-terminated) written to buf:
 * {"queries":[{"query":"...","grouped":false,"statistics":["avg","min","max","sum"]|["value"],
 *   "reason":null|"...","subqueries":["..."]}],
 *  "requests_per_chunk":N,"requests":[{"subqueries":[[q,stat],...],"uri_bytes":N}],"chunks":N}
 * A v2 stream (formulas, or api DDSTREAM_API_V2) instead, with "api" first (v1's has no "api"):
 * {"api":"v2","queries":[{"name":"a","query":"...","grouped":true|false}],"formulas":["..."],
 *  "interval":G,"requests_per_chunk":1,"requests":[{"method":"POST",
 *  "path":"/api/v2/query/timeseries","chunk":[start,end],"body":"..."}],"chunks":N}
 * where "body" is the exact JSON text posted for the first chunk ("requests" is empty when the
 * plan has no chunk) and "formulas" is empty when each query is its own formula.
 * *needed gets the size including the NUL; DDSTREAM_E_INVALID_ARGUMENT when cap is too small (call
 * again). No network I/O, no keys needed. Thread-safe.
 */
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status ddstream_explain(const ddstream_config *cfg,
                                                                 char *buf, size_t cap,
                                                                 size_t *needed,
                                                                 ddstream_error *err);

/*
 * Check the credentials against the server: the API key with GET /api/v1/validate, then the
 * application key (and the query) with the smallest real query: one bucket of v1's first query,
 * or, for a stream over v2 (formulas), one bucket of its POST with every named query and formula,
 * as its chunks send them. Blocks (network I/O), but does not
 * wait out a rate-limit window (spent by streams of this process) that ends later than
 * max_retry_wait_ms: that is DDSTREAM_E_RATE_LIMITED at once.
 * Thread-safe. Returns DDSTREAM_OK, or the error (E_CONFIG, E_AUTH, E_QUERY, E_NETWORK, ...).
 */
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status ddstream_validate(const ddstream_config *cfg,
                                                                  ddstream_error *err);

/*
 * ddstream_validate, started on a thread of the library so that the caller can wait in slices
 * (and handle a signal such as Ctrl-C between them) and stop it: ddstream_validate_start checks
 * cfg without network I/O (a bad config fails here, *out untouched), starts the checks, and on
 * DDSTREAM_OK sets *out. ddstream_validate_wait waits up to timeout_ms (< 0: without limit; 0: just
 * check) and returns DDSTREAM_TIMEOUT while the checks run, then what ddstream_validate would
 * have returned, with err filled on an error (the result stays: calling again returns it again).
 * ddstream_validate_cancel stops the checks: the request in flight is abandoned at once and the
 * wait returns DDSTREAM_E_CANCELLED (unless the result was in). ddstream_validate_free cancels
 * the checks if still running, waits for the thread (promptly) and frees everything; NULL is fine.
 * Thread-safety: start is thread-safe; wait one thread at a time per validation; cancel any
 * thread, any time before free; no other call during or after free. After fork() the child's
 * copy answers DDSTREAM_E_FORKED and free releases nothing (see FORK).
 */
typedef struct ddstream_validation ddstream_validation;
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status ddstream_validate_start(const ddstream_config *cfg,
                                                                        ddstream_validation **out,
                                                                        ddstream_error *err);
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status
ddstream_validate_wait(ddstream_validation *validation, int64_t timeout_ms, ddstream_error *err);
DDSTREAM_API void ddstream_validate_cancel(ddstream_validation *validation);
DDSTREAM_API void ddstream_validate_free(ddstream_validation *validation);

/*
 * SCALARS: one value per group of each formula over the whole range (Datadog's
 * POST /api/v2/query/scalar, what Query Value, Table and Toplist widgets show).
 * The config is a stream's: query or queries (each one metric term), query_names, formulas,
 * range_start/range_end, keys, site, base_url, timeouts, retries, request gate; api is always v2
 * and statistics must be 0; granularity only sets the grid the range is cut on; follow is refused;
 * the stream-only options (prefetch, resume_token, start_chunk) do not apply.
 * aggregators: NULL (every query "avg"), or query_count texts (a NULL entry: "avg"), one of avg,
 * min, max, sum, last, count, mean, area, l2norm, norm, percentile (an unknown one is
 * DDSTREAM_E_CONFIG naming "queries[i] (name)").
 * The cut: pieces of chunk_seconds (0: 30 days) rounded up to the granularity, from
 * range_start rounded down to the granularity (the last piece ends at range_end). A range within one piece is one request with the formulas as
 * given. A longer one is cut only where that is exact: every aggregator is sum, min, max, count,
 * last or avg (asked as sum and count), and every formula is arithmetic (names, numbers, + - * /,
 * unary minus, parentheses). Each piece is then asked for every query's parts without the
 * formulas; the parts are combined per (query, group) and the formulas evaluated here with
 * Datadog's matching (equal tag sets join, an ungrouped operand applies to every group; a group
 * missing from a grouped operand is dropped; x / 0 and non-finite results are NaN). Otherwise
 * it is one request over the whole range, and split_reason says why ("queries[0] (a): the
 * aggregator percentile cannot be split exactly", "formulas[0] uses the function per_second").
 * A piece Datadog answers "Query timed out" is asked again in two halves (on the granularity's
 * grid) where exact; where not, that is the error, saying why it could not be split.
 * Exactness is Datadog's over the buckets under the scalar: a piece's buckets must be the whole
 * range's (queries with an explicit .rollup(m, s), chunk_seconds and granularity multiples of s).
 * cache_dir (with cache_max_bytes, settle_seconds, now_fn) is a stream's CHUNK CACHE below: every
 * request of the run (a piece, a timeout's half, the one request over the range) whose end has
 * settled is stored, keyed by its POST body (never a timeseries chunk's entry), and read back
 * without a request by a later run; cache_hits counts those. A cache_dir that cannot be used is
 * DDSTREAM_E_CONFIG naming it, before any request.
 * Retries, the rate-limit budget (the scalar endpoint's own), the request gate (asked per
 * attempt; request_gate_release is not called, as by ddstream_validate) and key hygiene are a
 * stream's. ddstream_scalar blocks; on DDSTREAM_OK *out is the table, owned by the caller
 * (ddstream_scalar_free; NULL is fine). Thread-safe.
 */
typedef struct ddstream_scalar_table {
    size_t struct_size;              /* sizeof(ddstream_scalar_table) of the library that made it */
    size_t row_count;                /* rows ordered by formula, then group tags (strcmp) */
    const int32_t *formula;          /* per row: the formula's index (the query's, without) */
    const char *const *group_tags;   /* per row: the tag set, comma-joined; "" when ungrouped */
    const double *value;             /* per row: NaN where there was no data (ungrouped only: a
                                      grouped formula has rows only for groups with a value) */
    size_t formula_count;            /* formulas (queries, without formulas) */
    const char *const *formula_text; /* per formula: its text (the query's, without formulas) */
    size_t chunks;                   /* pieces of time the answer was made from (1: one request) */
    size_t requests;                 /* requests sent, timeouts' splits included (not cache hits) */
    const char *split_reason;        /* NULL when split; else why one request over the range */
    size_t cache_hits;               /* answers read from the chunk cache instead of requested
                                        (0 without cache_dir); chunks <= requests + cache_hits */
} ddstream_scalar_table;

DDSTREAM_API DDSTREAM_NODISCARD ddstream_status ddstream_scalar(const ddstream_config *cfg,
                                                                const char *const *aggregators,
                                                                ddstream_scalar_table **out,
                                                                ddstream_error *err);
DDSTREAM_API void ddstream_scalar_free(ddstream_scalar_table *table);

/*
 * ddstream_scalar on a thread of the library, as ddstream_validate_start: start checks cfg and
 * aggregators (a bad one fails here) and starts the run; wait waits up to timeout_ms (< 0:
 * without limit; 0: just check), returns DDSTREAM_TIMEOUT while it runs, then its status with
 * *out the table on DDSTREAM_OK (handed over once: a second wait is DDSTREAM_E_INVALID_ARGUMENT)
 * or err filled. cancel abandons the request in flight at once (wait: DDSTREAM_E_CANCELLED).
 * run_free cancels, joins the thread and frees the run (and a table not handed over).
 * Thread-safety: start is thread-safe; wait one thread at a time; cancel any thread before free.
 */
typedef struct ddstream_scalar_run ddstream_scalar_run;
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status
ddstream_scalar_start(const ddstream_config *cfg, const char *const *aggregators,
                      ddstream_scalar_run **out, ddstream_error *err);
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status ddstream_scalar_wait(ddstream_scalar_run *run,
                                                                     int64_t timeout_ms,
                                                                     ddstream_scalar_table **out,
                                                                     ddstream_error *err);
DDSTREAM_API void ddstream_scalar_cancel(ddstream_scalar_run *run);
DDSTREAM_API void ddstream_scalar_run_free(ddstream_scalar_run *run);

/*
 * CHUNK CACHE (config.cache_dir)
 *   With cache_dir set, a stream keeps each answer whose chunk has settled (ended at least
 *   settle_seconds ago, by now_fn's clock when set) on disk, and a later stream asking the same request reads it from
 *   there: no request is sent, no request gate or rate-limit budget is consulted, and the batches,
 *   progress and Arrow output are those of a fetched stream. Later parts of a stream, and the
 *   halves of a chunk Datadog answered coarsely, are separate requests and separate entries.
 *   - Key: SHA-256 over the request as sent: the base URL (as checked, see base_url), the method,
 *     the path and query string (query, rollups, granularity, from/to of the chunk), the request
 *     body if any, and the scope below. Whatever changes an answer changes the key.
 *   - Scope: the entries of one API key live in <cache_dir>/<scope>/, scope being 32 hex digits of
 *     SHA-256("ddstream chunk cache scope v1", NUL, API key). The key is never stored; a stream
 *     with another API key (another organisation) finds nothing of this one's. The application key
 *     is not part of the scope.
 *   - Entry: <cache_dir>/<scope>/<64 hex digits of the key>: an 88-byte header (magic "DDSCACHE",
 *     format version 1, header length, the key, decoded and stored lengths, time written, CRC-32
 *     of the answer, encoding, CRC-32 of the header; little-endian) and the answer, raw-deflated
 *     (or as it came when that is smaller). Written to a temporary file in the same folder and
 *     renamed into place, so a reader sees a whole entry or none, with any number of threads and
 *     processes sharing the folder (no lock is taken). Every read checks the entry: an empty,
 *     truncated, corrupt or other-version file is a miss, logged at WARN, and the fetched answer
 *     replaces it. A hit sets the entry's modification time (its last use).
 *   - Size: after writes, when a stream's running estimate of the folder passes cache_max_bytes
 *     (and at its first write, and every 256 writes), the folder is scanned and the least recently
 *     used entries are deleted down to 90 % of it. Other processes writing at the same time may
 *     take it past the bound until their next scan.
 *   - Errors: a cache_dir that cannot be created or written makes ddstream_open fail with
 *     DDSTREAM_E_CONFIG naming it; a failure to write one entry later is logged at WARN and the
 *     stream goes on. ddstream_config_validate and ddstream_validate do not touch the folder.
 *   Only files named as above are ever deleted, and a CACHEDIR.TAG is written into a new folder.
 */

/*
 * The cache folder as a whole: with max_bytes >= 0, delete least recently used entries until
 * those left total at most max_bytes (0: every entry); with max_bytes < 0, only count. *entries
 * and *bytes (NULL allowed) receive the entries left and their size. A folder that does not exist
 * is an empty cache. Safe while streams and other processes use the folder. Thread-safe.
 * Returns DDSTREAM_OK, DDSTREAM_E_INVALID_ARGUMENT (cache_dir NULL or empty) or
 * DDSTREAM_E_CONFIG (the folder cannot be read, err says why).
 */
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status ddstream_cache_prune(const char *cache_dir,
                                                                     int64_t max_bytes,
                                                                     int64_t *entries,
                                                                     int64_t *bytes,
                                                                     ddstream_error *err);

/*
 * Open a stream over cfg's plan. Validates cfg first (no network I/O for a bad config). With
 * prefetch on, fetching starts at once on the stream's own threads. On success *out owns the
 * stream: close it with ddstream_close(). Thread-safe.
 */
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status ddstream_open(const ddstream_config *cfg,
                                                              ddstream_stream **out,
                                                              ddstream_error *err);

/*
 * The next batch, in chunk order. Blocks up to timeout_ms (< 0: without limit; 0: just check).
 * Returns DDSTREAM_OK with *out set (free it with ddstream_batch_free), DDSTREAM_END when every
 * chunk has been delivered, DDSTREAM_TIMEOUT when nothing was ready in time (call again), or an
 * error about the next chunk. After an error the same chunk is tried again by the next call: no
 * chunk is ever skipped. One thread at a time per stream.
 */
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status ddstream_next(ddstream_stream *stream,
                                                              int64_t timeout_ms,
                                                              ddstream_batch **out,
                                                              ddstream_error *err);

/* Free a batch (NULL is fine). Thread-safe for distinct batches; a batch outlives its stream. */
DDSTREAM_API void ddstream_batch_free(ddstream_batch *batch);

/* Nonzero while chunks remain to be delivered (always, when it follows). One thread at a time. */
DDSTREAM_API int32_t ddstream_has_next(const ddstream_stream *stream);

/* Fraction of chunks delivered, 0.0 to 1.0 (following: of those settled so far). One thread at a
 * time per stream. */
DDSTREAM_API double ddstream_progress(const ddstream_stream *stream);

/* Number of chunks in the stream's plan (SIZE_MAX when it follows: see FOLLOW MODE);
 * ddstream_chunk_at gives one. One thread at a time. */
DDSTREAM_API size_t ddstream_chunk_count(const ddstream_stream *stream);
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status ddstream_chunk_at(const ddstream_stream *stream,
                                                                  size_t index,
                                                                  ddstream_chunk *out);

/*
 * Restart delivery at chunk index (0 = the whole range again; chunk_count = nothing left).
 * Drops prefetched batches and in-flight requests, clears a cancellation. One thread at a time.
 */
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status ddstream_seek(ddstream_stream *stream,
                                                              size_t chunk_index,
                                                              ddstream_error *err);

/* ddstream_seek(stream, 0, err). */
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status ddstream_reset(ddstream_stream *stream,
                                                               ddstream_error *err);

/*
 * A resume token: where this stream stands (the next chunk ddstream_next will deliver) plus a
 * fingerprint of what it streams (query, range, granularity, chunk size). Store it once you have
 * stored the batches before it; a stream opened later, in any process, with config.resume_token
 * set to it starts at that chunk without refetching the earlier ones, and refuses a token made for
 * another query or plan (DDSTREAM_E_CONFIG). Printable ASCII, at most 64 bytes with its NUL.
 * Writes it to buf (cap >= 64) and returns DDSTREAM_OK, or DDSTREAM_E_INVALID_ARGUMENT.
 * One thread at a time per stream.
 */
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status ddstream_resume_token(const ddstream_stream *stream,
                                                                      char *buf, size_t cap);

/* The resume token for chunk_index (0..chunk count) of this stream's plan. Same rules. */
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status
ddstream_resume_token_at(const ddstream_stream *stream, size_t chunk_index, char *buf, size_t cap);

/*
 * Message of the last error returned by a call on this stream, "" if none. The pointer stays
 * valid until the next call on the stream. One thread at a time per stream.
 */
DDSTREAM_API const char *ddstream_last_error(const ddstream_stream *stream);

/*
 * Ask the stream to stop: blocked and future calls return DDSTREAM_E_CANCELLED promptly, and
 * in-flight requests are abandoned. Any thread, any time between ddstream_open and the start of
 * ddstream_close. Idempotent.
 * ddstream_seek/ddstream_reset clear it.
 */
DDSTREAM_API void ddstream_cancel(ddstream_stream *stream);

/*
 * Tell a follow stream that its now_fn clock moved (a replay or a test advancing a simulated
 * clock): its waiting thread reads the clock again at once and fetches what has settled. Without
 * now_fn there is no need to call it. Does nothing for a stream that does not follow. Any thread,
 * any time between ddstream_open and the start of ddstream_close, also while the stream is
 * Arrow's. Nothing in a fork()ed child.
 */
DDSTREAM_API void ddstream_clock_changed(ddstream_stream *stream);

/*
 * How long (ms from now) the stream's fetching still waits because it was told to: a spent
 * rate-limit window (x-ratelimit-remaining 0, or a 429 with x-ratelimit-reset), a server's
 * Retry-After, or the request gate; 0 when nothing waits for that (a plain retry backoff does
 * not count). Such a wait is never longer than the window's period (x-ratelimit-period), or 60 s
 * when the answer does not say it: a longer x-ratelimit-reset or Retry-After is cut to that and
 * logged at INFO. For progress displays ("waiting 42 s for the rate-limit window"). Any thread,
 * any time between ddstream_open and the start of ddstream_close, also while the stream is
 * Arrow's (ddstream_stream_arrow). 0 in a fork()ed child.
 */
DDSTREAM_API int64_t ddstream_rate_limit_wait_ms(const ddstream_stream *stream);

/*
 * Take the oldest queued log line (config.log_to_queue): copies it into buf (truncated to cap,
 * NUL-terminated), sets *level, and returns DDSTREAM_OK; DDSTREAM_END when none is queued.
 * The queue keeps the newest 256 lines. One thread at a time per stream.
 */
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status ddstream_poll_log(ddstream_stream *stream,
                                                                  int32_t *level, char *buf,
                                                                  size_t cap);

/*
 * Stop the worker, abandon requests, free everything the stream owns. NULL is fine. Batches
 * already handed out stay valid. Safe while the worker is busy. No other call on the stream,
 * ddstream_cancel included, may run during or after ddstream_close.
 */
DDSTREAM_API void ddstream_close(ddstream_stream *stream);

/*
 * ARROW
 * The Arrow C data and C stream interfaces, verbatim from the Arrow specification
 * (https://arrow.apache.org/docs/format/CDataInterface.html and CStreamInterface.html) under their
 * canonical guards, so this header works beside Arrow's, nanoarrow's or any other copy. Nothing
 * else of Arrow is needed to use them: examples/c/arrow_example.c reads the stream with plain C.
 * The schema of ddstream's record batches is in docs/arrow.md.
 */
#ifndef ARROW_C_DATA_INTERFACE
#  define ARROW_C_DATA_INTERFACE

#  define ARROW_FLAG_DICTIONARY_ORDERED 1
#  define ARROW_FLAG_NULLABLE           2
#  define ARROW_FLAG_MAP_KEYS_SORTED    4

struct ArrowSchema {
    // Array type description
    const char *format;
    const char *name;
    const char *metadata;
    int64_t flags;
    int64_t n_children;
    struct ArrowSchema **children;
    struct ArrowSchema *dictionary;

    // Release callback
    void (*release)(struct ArrowSchema *);
    // Opaque producer-specific data
    void *private_data;
};

struct ArrowArray {
    // Array data description
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;

    // Release callback
    void (*release)(struct ArrowArray *);
    // Opaque producer-specific data
    void *private_data;
};

#endif // ARROW_C_DATA_INTERFACE

#ifndef ARROW_C_STREAM_INTERFACE
#  define ARROW_C_STREAM_INTERFACE

struct ArrowArrayStream {
    // Callback to get the stream type
    // (will be the same for all arrays in the stream).
    //
    // Return value: 0 if successful, an `errno`-compatible error code otherwise.
    //
    // If successful, the ArrowSchema must be released independently from the stream.
    int (*get_schema)(struct ArrowArrayStream *, struct ArrowSchema *out);

    // Callback to get the next array
    // (if no error and the array is released, the stream has ended)
    //
    // Return value: 0 if successful, an `errno`-compatible error code otherwise.
    //
    // If successful, the ArrowArray must be released independently from the stream.
    int (*get_next)(struct ArrowArrayStream *, struct ArrowArray *out);

    // Callback to get optional detailed error information.
    // This must only be called if the last stream operation failed
    // with a non-0 return code.
    //
    // Return value: pointer to a null-terminated character array describing
    // the last error, or NULL if no description is available.
    //
    // The returned pointer is only valid until the next operation on this stream
    // (including release).
    const char *(*get_last_error)(struct ArrowArrayStream *);

    // Release callback: release the stream's own resources.
    // Note that arrays returned by `get_next` must be individually released.
    void (*release)(struct ArrowArrayStream *);

    // Opaque producer-specific data
    void *private_data;
};

#endif // ARROW_C_STREAM_INTERFACE

/*
 * Hand out the chunks that stream has not delivered yet as an Arrow C stream (*out): one record
 * batch per chunk, in chunk order, none skipped. Columns: timestamp (timestamp[s, UTC]), avg, min,
 * max, sum (float64, null where Datadog had no value) and, for grouped queries, series (the tag
 * set, dictionary<int32, utf8>); then, when the batches have them (see ddstream_batch), query
 * (the query's text, dictionary<int32, utf8>) and value (float64, null where there is none).
 * The schema's metadata holds the query (the queries joined with ", ") and the chunk plan.
 * Column buffers are the batch's own memory, not copies (docs/arrow.md says what is built).
 *
 * The schema is fixed before any chunk arrives: a series column when the stream's query has a
 * "by {...}" clause (or the stream has several queries), a query column when it has several (or
 * config.queries), a value column when a query is value-only. The query goes into the schema's
 * metadata.
 *
 * Ownership: on DDSTREAM_OK the Arrow stream owns `stream`: make no other call on it, except
 * ddstream_cancel(), ddstream_poll_log() and ddstream_rate_limit_wait_ms(), which any thread may
 * call until *out and every handle shared from it are released. When the last handle is released the stream is closed
 * (ddstream_close): the worker stops and requests in flight are abandoned — releasing early is how
 * a consumer stops fetching. On an error nothing changes: stream is still the caller's and *out
 * is untouched.
 *
 * The callbacks: get_schema does no I/O. get_next blocks until the next chunk is there; at the end
 * it returns 0 with out->release == NULL; on an error it returns an errno (EACCES: keys refused;
 * EBUSY: rate limited; EINVAL: query refused; ETIMEDOUT; ECANCELED: cancelled;
 * EPROTO: unexpected answer; ENOMEM; EIO: server, network or other) and a later call retries the
 * same chunk. get_last_error gives the message ddstream_next() would have given (chunk bounds
 * included, never a key), valid until the next call on the handle.
 *
 * Threads: as the Arrow specification says, one handle's callbacks are called from one thread at a
 * time. The release callback may be called from any thread, as may the release of every
 * ArrowArray and ArrowSchema handed out, which are independent of the stream and outlive it.
 */
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status ddstream_stream_arrow(ddstream_stream *stream,
                                                                      struct ArrowArrayStream *out,
                                                                      ddstream_error *err);

/*
 * A second handle on the Arrow stream `stream` (made by ddstream_stream_arrow): the same schema
 * and the same sequence of batches — a batch read through either handle is gone for both. For
 * consumers that open a source more than once (DuckDB asks for the schema through one handle, then
 * scans through another). Each handle is released on its own; the stream is closed when the last
 * one goes. Handles may be used from different threads: their get_next calls are serialised.
 * Returns DDSTREAM_OK, or DDSTREAM_E_INVALID_ARGUMENT if `stream` is released or not ddstream's.
 */
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status ddstream_stream_arrow_share(
    struct ArrowArrayStream *stream, struct ArrowArrayStream *out, ddstream_error *err);

/*
 * get_next with a timeout and a ddstream_error, for callers that want to stay responsive (or the
 * exact status): waits up to timeout_ms (< 0: without limit; 0: just check) for the next batch.
 * Returns DDSTREAM_OK with *out set (release it), DDSTREAM_END (out->release == NULL),
 * DDSTREAM_TIMEOUT (call again), or the chunk's error, as ddstream_next() does. Same threading
 * rules as get_next.
 */
DDSTREAM_API DDSTREAM_NODISCARD ddstream_status
ddstream_stream_arrow_next(struct ArrowArrayStream *stream, int64_t timeout_ms,
                           struct ArrowArray *out, ddstream_error *err);

/* DDSTREAM_CDEF_END */

#ifdef __cplusplus
}
#endif

#endif /* DDSTREAM_H */
