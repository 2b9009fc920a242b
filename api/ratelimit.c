/*
 * ratelimit.c - token buckets per principal, sharded, bounded.
 *
 * Design: 64 shards, each a chained hash table with its own mutex and its own
 * LRU list; a request touches exactly one shard for a few hundred nanoseconds,
 * so a tenant flooding the API only ever waits on its own shard's lock and
 * never holds it across I/O. Buckets are created full and refilled lazily on
 * use (no timer thread). When a shard is at its share of max_keys, its least
 * recently used bucket is dropped: an idle caller's bucket has refilled anyway,
 * so dropping it loses nothing.
 */
#include "ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define RL_MAX_SHARDS 64

struct bucket {
    struct bucket *chain;         /* next in the hash chain */
    struct bucket *newer, *older; /* LRU list */
    uint64_t hash;
    double tokens;
    int64_t last_ms;
    size_t keylen;
    char key[];
};

struct shard {
    pthread_mutex_t mu;
    struct bucket **table;
    size_t mask;
    size_t count;
    struct bucket *newest, *oldest;
} __attribute__((aligned(64))); /* one cache line each: shards do not false-share */

struct ratelimit {
    double rps, burst;
    bool off;
    size_t n_shards, per_shard;
    uint64_t seed;
    struct shard shards[RL_MAX_SHARDS];
};

/* FNV-1a with a per-process random seed. Keys are authenticated principals,
 * so collisions cannot be chosen freely; the seed keeps them unpredictable. */
static uint64_t key_hash(uint64_t seed, const char *key, size_t len)
{
    uint64_t h = 14695981039346656037ULL ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

struct ratelimit *ratelimit_new(double rps, double burst, size_t max_keys)
{
    struct ratelimit *r;
    size_t slots = 1;

    if (!isfinite(rps) || rps < 0 || !isfinite(burst))
        return NULL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->rps = rps;
    r->burst = burst < 1 ? 1 : burst;
    r->off = rps == 0;
    if (max_keys < 1)
        max_keys = 1;
    r->n_shards = max_keys >= RL_MAX_SHARDS ? RL_MAX_SHARDS : 1;
    r->per_shard = max_keys / r->n_shards;
    util_random_bytes((unsigned char *)&r->seed, sizeof(r->seed));
    while (slots < r->per_shard)
        slots <<= 1;
    for (size_t i = 0; i < r->n_shards; i++) {
        struct shard *s = &r->shards[i];
        pthread_mutex_init(&s->mu, NULL);
        s->mask = slots - 1;
        if (!r->off && !(s->table = calloc(slots, sizeof(*s->table)))) {
            r->n_shards = i + 1;
            ratelimit_free(r);
            return NULL;
        }
    }
    return r;
}

static void lru_unlink(struct shard *s, struct bucket *b)
{
    if (b->newer)
        b->newer->older = b->older;
    else
        s->newest = b->older;
    if (b->older)
        b->older->newer = b->newer;
    else
        s->oldest = b->newer;
    b->newer = b->older = NULL;
}

static void lru_push(struct shard *s, struct bucket *b)
{
    b->older = s->newest;
    b->newer = NULL;
    if (s->newest)
        s->newest->newer = b;
    s->newest = b;
    if (!s->oldest)
        s->oldest = b;
}

static void evict_oldest(struct shard *s)
{
    struct bucket *b = s->oldest, **pp;

    if (!b)
        return;
    for (pp = &s->table[b->hash & s->mask]; *pp && *pp != b; pp = &(*pp)->chain)
        ;
    if (*pp)
        *pp = b->chain;
    lru_unlink(s, b);
    s->count--;
    free(b);
}

/* The bucket for key, created full when missing; NULL only when out of memory. */
static struct bucket *lookup(struct ratelimit *r, struct shard *s, const char *key, size_t len,
                             uint64_t h, int64_t now_ms)
{
    struct bucket **head = &s->table[h & s->mask], *b;

    for (b = *head; b; b = b->chain) {
        if (b->hash == h && b->keylen == len && !memcmp(b->key, key, len)) {
            lru_unlink(s, b);
            lru_push(s, b);
            return b;
        }
    }
    if (s->count >= r->per_shard)
        evict_oldest(s);
    b = malloc(sizeof(*b) + len + 1);
    if (!b)
        return NULL;
    b->hash = h;
    b->tokens = r->burst;
    b->last_ms = now_ms;
    b->keylen = len;
    memcpy(b->key, key, len + 1);
    b->chain = *head; /* head is still valid: evictions unlink, they never move slots */
    *head = b;
    lru_push(s, b);
    s->count++;
    return b;
}

bool ratelimit_take(struct ratelimit *r, const char *key, int64_t now_ms, int64_t *retry_after_s)
{
    size_t len;
    uint64_t h;
    struct shard *s;
    struct bucket *b;
    bool ok = true;

    if (!r || r->off || !key)
        return true;
    len = strlen(key);
    h = key_hash(r->seed, key, len);
    s = &r->shards[(h >> 40) % r->n_shards];
    pthread_mutex_lock(&s->mu);
    b = lookup(r, s, key, len, h, now_ms);
    if (b) {
        /* A clock that steps back never refills, and never drains either. */
        if (now_ms > b->last_ms) {
            b->tokens += (double)(now_ms - b->last_ms) * r->rps / 1000.0;
            if (b->tokens > r->burst)
                b->tokens = r->burst;
            b->last_ms = now_ms;
        }
        if (b->tokens >= 1.0) {
            b->tokens -= 1.0;
        } else {
            ok = false;
            if (retry_after_s) {
                double secs = ceil((1.0 - b->tokens) / r->rps);
                *retry_after_s = secs < 1 ? 1 : (int64_t)secs;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

size_t ratelimit_size(struct ratelimit *r)
{
    size_t n = 0;
    for (size_t i = 0; r && i < r->n_shards; i++) {
        pthread_mutex_lock(&r->shards[i].mu);
        n += r->shards[i].count;
        pthread_mutex_unlock(&r->shards[i].mu);
    }
    return n;
}

void ratelimit_free(struct ratelimit *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_shards; i++) {
        struct shard *s = &r->shards[i];
        struct bucket *b = s->newest, *next;
        for (; b; b = next) {
            next = b->older;
            free(b);
        }
        free(s->table);
        pthread_mutex_destroy(&s->mu);
    }
    free(r);
}
