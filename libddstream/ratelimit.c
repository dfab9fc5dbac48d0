/* ratelimit.c — the process-wide registry of rate-limit budgets (see ratelimit.h for why).
 *
 * A budget follows the server's fixed window from the answers' headers:
 *   est        requests we may still send in the current window (our estimate). -1: unknown.
 *   reset_at   monotonic ms when the window ends (0: unknown).
 * Reserving decrements est; at reset_at the next window is assumed to start with x-ratelimit-limit
 * requests, and the answers of that window correct the guess.
 *
 * The correction is exact rather than merely cautious. The server counts requests one after the
 * other, so the lowest x-ratelimit-remaining of the window's answers (low_remaining) is its count
 * as of the latest request it has answered. A request of ours it counted before that one is in
 * that number already; only the requests of ours it has not answered yet (in_flight) and those
 * that will never tell (unplaced: abandoned, or answered as part of an earlier window though the
 * server may have counted them in this one) may have been counted after it. So
 *   est = low_remaining - in_flight - unplaced
 * after every answer: never more than the server still allows (no 429 of our making), and as each
 * answer comes in, the request it was for stops being counted twice, so the window is used to its
 * last slot. (Subtracting in_flight from each answer's own remaining and keeping the lowest
 * result, as this did before, counted every request already counted by the server but still in
 * flight a second time, and left slots unused at the end of every window.) When est reaches 0
 * while the server's numbers still leave room, a reservation polls for answers rather than
 * sleeping to the reset. Other processes spending the same organisation's budget show in the
 * server's numbers. While the budget is unknown (first request, or a window whose limit we never
 * learnt) one request at a time goes out to find out, so a pool of streams cannot stampede a
 * small window. A server that sends no rate-limit headers at all is not paced.
 */
#include "ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cancel.h"

/* How often a stream waiting for an unknown budget to be learnt, or for answers that free slots
 * of a window the server says is not spent, asks again. */
#define PROBE_POLL_MS 50
/* The wait when the window is spent but its end is unknown (no x-ratelimit-reset). */
#define UNKNOWN_RESET_MS 1000
/* Answers of one window disagree on its end by rounding (whole seconds) and latency; a reset
 * further out than this (or half a period) means the server has started a new window. */
#define SAME_WINDOW_SLACK_MS 1100
/* Added to every reset: x-ratelimit-reset is whole seconds, and sending early costs a 429. */
#define RESET_MARGIN_MS 50

struct dds_budget {
    struct dds_budget *next;
    char *scope;
    uint64_t key_hash;
    int refs;
    int in_flight; /* reserved, not yet answered or abandoned */
    int unpaced;   /* answers carry no rate-limit headers: nothing to follow */
    int confirmed; /* an answer of the current window has been seen */
    int64_t est;
    int64_t low_remaining; /* lowest x-ratelimit-remaining of the current window, -1 unknown */
    int64_t unplaced;      /* ours the server may count in this window, though none will say */
    int64_t reset_at;
    int64_t window_start; /* reservations made before this belong to an earlier window */
    int64_t limit;        /* x-ratelimit-limit, -1 unknown */
    int64_t period_ms;    /* x-ratelimit-period, 0 unknown */
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct dds_budget *registry;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void before_fork(void) { pthread_mutex_lock(&registry_mu); }
static void after_fork_parent(void) { pthread_mutex_unlock(&registry_mu); }
static void after_fork_child(void) {
    /* The child has none of the parent's threads: nothing of ours is in flight any more. */
    for (struct dds_budget *b = registry; b; b = b->next) b->in_flight = 0;
    pthread_mutex_unlock(&registry_mu);
}
static void register_atfork(void) {
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* FNV-1a then a splitmix finaliser: a well-mixed 64-bit hash. The registry compares hashes only;
 * two keys that collide would merely share a budget (wait more), never send a key anywhere. */
static uint64_t hash_key(const char *key) {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= UINT64_C(0x100000001b3);
    }
    h ^= h >> 30;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h *= UINT64_C(0x94d049bb133111eb);
    h ^= h >> 31;
    return h;
}

/* An unused budget is worth keeping while it still knows something a new stream should obey. */
static int evictable(const struct dds_budget *b, int64_t now_ms) {
    return b->refs == 0 && b->in_flight == 0 &&
           (b->unpaced || b->est != 0 || b->reset_at <= now_ms);
}

dds_budget *dds_budget_acquire(const char *scope, const char *api_key) {
    pthread_once(&atfork_once, register_atfork);
    uint64_t h = hash_key(api_key ? api_key : "");
    int64_t now = dds_now_ms();
    struct dds_budget *found = NULL;
    pthread_mutex_lock(&registry_mu);
    for (struct dds_budget **pp = &registry; *pp;) {
        struct dds_budget *b = *pp;
        if (b->key_hash == h && strcmp(b->scope, scope) == 0) {
            found = b;
            pp = &b->next;
        } else if (evictable(b, now)) {
            *pp = b->next;
            free(b->scope);
            free(b);
        } else {
            pp = &b->next;
        }
    }
    if (!found) {
        found = calloc(1, sizeof *found);
        char *copy = found ? strdup(scope) : NULL;
        if (!copy) {
            free(found);
            pthread_mutex_unlock(&registry_mu);
            return NULL;
        }
        found->scope = copy;
        found->key_hash = h;
        found->est = -1;
        found->low_remaining = -1;
        found->limit = -1;
        found->next = registry;
        registry = found;
    }
    found->refs++;
    pthread_mutex_unlock(&registry_mu);
    return found;
}

void dds_budget_release(dds_budget *b) {
    if (!b) return;
    pthread_mutex_lock(&registry_mu);
    b->refs--;
    pthread_mutex_unlock(&registry_mu);
}

/* The window we know of has ended: assume the next one, as far as we know its shape. */
static void roll_over(dds_budget *b, int64_t now_ms) {
    b->window_start = now_ms;
    b->confirmed = 0;
    b->est = b->limit > 0 ? b->limit : -1;
    b->low_remaining = -1;
    b->unplaced = 0;
    if (b->period_ms > 0) {
        b->reset_at += ((now_ms - b->reset_at) / b->period_ms + 1) * b->period_ms;
    } else {
        b->reset_at = 0;
    }
}

int64_t dds_budget_reserve(dds_budget *b, int64_t now_ms, int64_t *ticket) {
    *ticket = now_ms;
    if (!b) return 0;
    int64_t wait = 0;
    pthread_mutex_lock(&registry_mu);
    if (!b->unpaced) {
        if (b->reset_at > 0 && now_ms >= b->reset_at) roll_over(b, now_ms);
        if (b->est > 0) {
            b->est--;
        } else if (b->est < 0) {
            /* Unknown: one request finds out; the others wait for its answer. */
            if (b->in_flight > 0) wait = PROBE_POLL_MS;
        } else {
            wait = b->reset_at > now_ms ? b->reset_at - now_ms : UNKNOWN_RESET_MS;
            /* The server still allows more than we count on: the answers on their way will
             * give the slots of their requests back (see the top of this file). */
            if (b->confirmed && b->in_flight > 0 && b->low_remaining - b->unplaced > 0 &&
                wait > PROBE_POLL_MS)
                wait = PROBE_POLL_MS;
        }
    }
    if (wait == 0) b->in_flight++;
    pthread_mutex_unlock(&registry_mu);
    return wait;
}

void dds_budget_abandoned(dds_budget *b, int64_t ticket) {
    (void)ticket;
    if (!b) return;
    pthread_mutex_lock(&registry_mu);
    /* The server may have counted it (at any time, no answer will say): the slot is not given
     * back to est for the rest of the window. */
    if (b->in_flight > 0) {
        b->in_flight--;
        b->unplaced++;
    }
    pthread_mutex_unlock(&registry_mu);
}

void dds_budget_answered(dds_budget *b, int64_t ticket, int64_t now_ms, long http_status,
                         int64_t limit, int64_t remaining, int64_t reset_ms, int64_t period_s) {
    if (!b) return;
    pthread_mutex_lock(&registry_mu);
    if (b->in_flight > 0) b->in_flight--;
    int rate_limited = http_status == 429;
    if (ticket < b->window_start) {
        /* Sent in a window that is over: what it says about that window no longer matters, but
         * the server may have counted it in this one (sent just before our idea of the reset). */
        b->unplaced++;
    } else if (!rate_limited && remaining < 0) {
        /* No headers. A server that never sends them is not paced; one that sometimes omits
         * them (an error page from a proxy) keeps its budget: the request may have been counted
         * after every answer that said something. */
        if (b->est < 0 && b->reset_at == 0 && b->limit < 0) {
            b->unpaced = 1;
        } else {
            b->unplaced++;
        }
    } else {
        b->unpaced = 0;
        if (limit > 0) b->limit = limit;
        if (period_s > 0) b->period_ms = period_s * 1000;
        int64_t said = rate_limited || remaining < 0 ? 0 : remaining;
        int64_t reset_at = reset_ms >= 0
                               ? now_ms + reset_ms + RESET_MARGIN_MS
                               : (b->reset_at > now_ms ? b->reset_at : now_ms + UNKNOWN_RESET_MS);
        int64_t slack =
            b->period_ms / 2 > SAME_WINDOW_SLACK_MS ? b->period_ms / 2 : SAME_WINDOW_SLACK_MS;
        if (b->est < 0 || !b->confirmed || reset_at > b->reset_at + slack) {
            /* First word about this window (or the server has moved on to a new one). */
            if (b->confirmed && reset_at > b->reset_at + slack) {
                /* Requests still in flight may be counted in either window: in_flight keeps
                 * them subtracted until they answer, then unplaced does (their tickets are older
                 * than window_start). */
                b->window_start = ticket;
                b->unplaced = 0;
            }
            b->low_remaining = said;
            b->confirmed = 1;
        } else if (said < b->low_remaining) {
            b->low_remaining = said;
        }
        /* The latest word on the window's end wins: answers of one window agree within the
         * slack, and a 429 that says "sooner" (or "later") than the others is authoritative. */
        b->reset_at = reset_at;
        int64_t left = b->low_remaining - b->in_flight - b->unplaced;
        b->est = left > 0 ? left : 0;
    }
    pthread_mutex_unlock(&registry_mu);
}
