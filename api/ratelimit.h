/*
 * ratelimit.h - per-caller token buckets (RATE_LIMIT_RPS / RATE_LIMIT_BURST).
 *
 * One bucket per key (the authenticated principal), in shards that each have
 * their own lock, so one caller's flood contends only with the few callers
 * that hash to the same shard. Memory is bounded: at most max_keys buckets;
 * the least recently used bucket is dropped to make room, and a bucket that
 * comes back starts full.
 */
#ifndef ORDER_RATELIMIT_H
#define ORDER_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ratelimit;

/* rps tokens per second refill a bucket of burst tokens (burst < 1 counts as 1).
 * rps 0 turns limiting off: every take succeeds. NULL when out of memory or
 * when rps is negative or not finite. */
struct ratelimit *ratelimit_new(double rps, double burst, size_t max_keys);

/* Takes one token from key's bucket at now_ms (any monotonic millisecond
 * clock). false when empty, with *retry_after_s (may be NULL) set to the whole
 * seconds until a token is back, at least 1. Keys are compared as strings. If
 * a new bucket cannot be allocated the request is let through: the limiter
 * never turns a memory shortage into an outage. */
bool ratelimit_take(struct ratelimit *r, const char *key, int64_t now_ms, int64_t *retry_after_s);

/* Buckets currently held (for tests and metrics). */
size_t ratelimit_size(struct ratelimit *r);

void ratelimit_free(struct ratelimit *r);

#endif
