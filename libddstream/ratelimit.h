/* ratelimit.h — one rate-limit budget per (server, endpoint, API key), shared by every stream of
 * the process.
 *
 * Datadog counts query requests per organisation in fixed windows and says where a window stands
 * in the x-ratelimit-* headers of every answer. A stream that paced itself alone would not know
 * what the nine other streams of a thread pool just spent, and ten streams waking at the same
 * reset would stampede into ten 429s. So the budget lives here, once per (base_url, endpoint,
 * API key), and every request reserves a slot before it is sent.
 *
 * PROCESS-GLOBAL STATE. The registry of budgets is, with libcurl's one-time global init, the only
 * global mutable state of the library. It is a list guarded by one mutex (statically initialised,
 * so it cannot fail), entries are reference-counted by the requests using them and kept a little
 * while after (so a stream opened later still knows the window is spent), and evicted once their
 * window is over. Entries are keyed by a hash of the API key, never the key itself: nothing in the
 * registry can leak a key into a core dump. fork() is handled (pthread_atfork, registered once
 * with pthread_once): the child gets an unlocked registry with no requests in flight.
 *
 * Every function is thread-safe.
 */
#ifndef DDSTREAM_RATELIMIT_H
#define DDSTREAM_RATELIMIT_H

#include <stdint.h>

typedef struct dds_budget dds_budget;

/*
 * The budget for requests to scope (base URL + endpoint path, e.g.
 * "https://api.datadoghq.com/api/v1/query") made with api_key. Creates it on first use.
 * Returns NULL only when out of memory (the caller then sends unpaced). Release with
 * dds_budget_release.
 */
dds_budget *dds_budget_acquire(const char *scope, const char *api_key);
void dds_budget_release(dds_budget *b);

/*
 * Ask to send one request at now_ms (monotonic). Returns 0 when granted: a slot is reserved and
 * *ticket identifies it for dds_budget_answered / dds_budget_abandoned (exactly one of them must
 * follow). Otherwise returns how many ms to wait before asking again (the window is spent, or the
 * budget is unknown and another request is finding it out).
 */
int64_t dds_budget_reserve(dds_budget *b, int64_t now_ms, int64_t *ticket);

/*
 * What the answer to the request of ticket said. Header values are -1 when absent; reset_ms is
 * the time until the window resets (already converted from seconds or from an epoch timestamp).
 * For a 429 without a reset header, pass the delay the caller chose: every stream waits it out.
 */
void dds_budget_answered(dds_budget *b, int64_t ticket, int64_t now_ms, long http_status,
                         int64_t limit, int64_t remaining, int64_t reset_ms, int64_t period_s);

/* The request of ticket got no answer (network error, cancellation): free its in-flight slot. */
void dds_budget_abandoned(dds_budget *b, int64_t ticket);

#endif
