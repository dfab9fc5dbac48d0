/*
 * test_ratelimit.c — the shared rate-limit budget (ratelimit.c) against a simulated server, on a
 * simulated clock: several fetchers reserve, their requests are counted by a fixed-window server
 * some milliseconds after they go out and answered some milliseconds after that, so answers come
 * back in another order than the server counted them, with other requests of ours still in
 * flight. Many seeds of random latencies, each checked for: no request ever past the server's
 * limit (no 429), and every window but the last used to its last slot. Then the same with
 * another client spending part of every window, and with answers that never arrive (abandoned
 * requests the server did count), where only "no 429" can be asked for.
 */
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "ratelimit.h"

#define FETCHERS  4
#define LIMIT     20
#define PERIOD_MS 10000
#define REQUESTS  58 /* what the multi-query benchmark sends: 3 windows of 20 suffice */
#define WINDOWS   8
#define START_MS  INT64_C(5000000) /* the simulated monotonic clock's start, a window boundary */

/* xorshift64*: reproducible latencies from a seed. */
static uint64_t next_random(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * UINT64_C(2685821657736338717);
}

static int64_t between(uint64_t *state, int64_t lo, int64_t hi) {
    return lo + (int64_t)(next_random(state) % (uint64_t)(hi - lo + 1));
}

typedef enum { WANTS_SLOT, SENT, COUNTED, DONE } fetcher_state;

typedef struct fetcher {
    fetcher_state state;
    int64_t at; /* when its next event happens */
    int64_t ticket;
    long status; /* the answer decided when the server counted the request */
    int64_t remaining, reset_ms;
    int lost; /* the answer will never arrive */
} fetcher;

typedef struct outcome {
    int ours[WINDOWS];   /* our requests the server counted, per window */
    int others[WINDOWS]; /* the other client's */
    int refused;         /* 429s */
    int abandoned;
    int64_t finished_ms; /* when the last answer came, from START_MS */
} outcome;

typedef struct scenario {
    int others_per_window; /* the other client spends these at the start of each window */
    int lose_one_in;       /* 0: every answer arrives */
} scenario;

/* The server's decision for a request counted at t (ms since START_MS). */
static void count_request(outcome *o, fetcher *f, int64_t t) {
    int64_t w = t / PERIOD_MS;
    int counted = o->ours[w] + o->others[w];
    int64_t reset_s = (PERIOD_MS - t % PERIOD_MS + 999) / 1000; /* whole seconds, rounded up */
    f->reset_ms = reset_s * 1000;
    if (counted >= LIMIT) {
        f->status = 429;
        f->remaining = 0;
        o->refused++;
    } else {
        o->ours[w]++;
        f->status = 200;
        f->remaining = LIMIT - counted - 1;
    }
}

static outcome simulate(uint64_t seed, scenario sc) {
    outcome o = {{0}, {0}, 0, 0, 0};
    char scope[64];
    snprintf(scope, sizeof scope, "sim://seed-%llu-%d-%d/api/v1/query", (unsigned long long)seed,
             sc.others_per_window, sc.lose_one_in);
    dds_budget *b = dds_budget_acquire(scope, "key");
    CHECK(b != NULL);
    if (!b) return o;
    uint64_t rng = seed * UINT64_C(0x9E3779B97F4A7C15) + 1;
    fetcher fs[FETCHERS] = {{0}};
    for (int k = 0; k < FETCHERS; k++) fs[k].at = between(&rng, 0, 5);
    int started = 0, outstanding = 0, answered = 0, other_window = -1;
    for (int steps = 0; answered < REQUESTS && steps < 1000000; steps++) {
        int k = -1;
        for (int j = 0; j < FETCHERS; j++)
            if (fs[j].state != DONE && (k < 0 || fs[j].at < fs[k].at)) k = j;
        if (k < 0) break;
        fetcher *f = &fs[k];
        int64_t t = f->at;
        if (t / PERIOD_MS >= WINDOWS) break;
        if (sc.others_per_window > 0 && t / PERIOD_MS > other_window) {
            /* Another process of the organisation, first in every window. */
            other_window = (int)(t / PERIOD_MS);
            o.others[other_window] = sc.others_per_window;
        }
        switch (f->state) {
        case WANTS_SLOT: {
            if (answered + outstanding >= REQUESTS) { /* enough are out: this fetcher is done */
                f->state = DONE;
                break;
            }
            int64_t wait = dds_budget_reserve(b, START_MS + t, &f->ticket);
            CHECK_MSG(wait >= 0, "negative wait %lld", (long long)wait);
            if (wait > 0) {
                f->at = t + wait;
            } else {
                started++;
                outstanding++;
                f->lost = sc.lose_one_in > 0 && started % sc.lose_one_in == 0;
                f->state = SENT;
                f->at = t + between(&rng, 1, 40);
            }
            break;
        }
        case SENT:
            count_request(&o, f, t);
            f->state = COUNTED;
            f->at = t + between(&rng, 1, 90);
            break;
        case COUNTED:
            if (f->lost) {
                dds_budget_abandoned(b, f->ticket);
                o.abandoned++;
            } else {
                dds_budget_answered(b, f->ticket, START_MS + t, f->status, LIMIT, f->remaining,
                                    f->reset_ms, PERIOD_MS / 1000);
            }
            outstanding--;
            if (f->status == 200) {
                answered++;
                o.finished_ms = t;
            }
            f->state = WANTS_SLOT; /* the next slot right away (a 429: the same request again) */
            break;
        case DONE: break;
        }
    }
    CHECK_MSG(answered == REQUESTS, "seed %llu: %d of %d requests answered",
              (unsigned long long)seed, answered, REQUESTS);
    dds_budget_release(b);
    return o;
}

int main(void) {
    for (uint64_t seed = 1; seed <= 300; seed++) {
        /* Only ours: every window but the last carries exactly LIMIT requests, none refused. */
        outcome o = simulate(seed, (scenario){0, 0});
        CHECK_MSG(o.refused == 0, "seed %llu: %d requests past the limit", (unsigned long long)seed,
                  o.refused);
        CHECK_MSG(o.ours[0] == LIMIT && o.ours[1] == LIMIT && o.ours[2] == REQUESTS - 2 * LIMIT,
                  "seed %llu: windows carried %d, %d, %d (want %d, %d, %d)",
                  (unsigned long long)seed, o.ours[0], o.ours[1], o.ours[2], LIMIT, LIMIT,
                  REQUESTS - 2 * LIMIT);
        CHECK_MSG(o.finished_ms < 3 * PERIOD_MS, "seed %llu: done after %lld ms",
                  (unsigned long long)seed, (long long)o.finished_ms);

        /* Another client spends 7 of each window first: the server's numbers say so, and we
         * take the 13 left, to the last. */
        o = simulate(seed, (scenario){7, 0});
        CHECK_MSG(o.refused == 0, "seed %llu, shared: %d requests past the limit",
                  (unsigned long long)seed, o.refused);
        for (int w = 0; w < 5; w++)
            CHECK_MSG(o.ours[w] == (w < 4 ? LIMIT - 7 : REQUESTS - 4 * (LIMIT - 7)),
                      "seed %llu, shared: window %d carried %d of ours", (unsigned long long)seed,
                      w, o.ours[w]);

        /* One answer in five never arrives though the server counted the request: the budget
         * cannot know when, so it keeps those slots spent; never a 429. */
        o = simulate(seed, (scenario){0, 5});
        CHECK_MSG(o.refused == 0, "seed %llu, lost answers: %d requests past the limit",
                  (unsigned long long)seed, o.refused);
        CHECK_MSG(o.abandoned > 0, "seed %llu: no answer was lost", (unsigned long long)seed);
    }
    return check_report("test_ratelimit");
}
