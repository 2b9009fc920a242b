/*
 * alloc_fail.c - the counting allocator behind alloc_fail.h.
 *
 * The linker's --wrap sends every malloc, calloc, realloc, strdup, strndup
 * and free of the test executable's own objects (the static library under
 * test included) here; __real_* are libc's. Blocks handed out while armed go
 * into a small open-addressing set, so a free of anything else (libc's own
 * allocations, blocks from before arming) passes straight through. jansson is
 * a shared library, so --wrap does not reach it: json_set_alloc_funcs does.
 */
#include "alloc_fail.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);

#define SET_SLOTS (1u << 16) /* live blocks one run may hold */
#define TOMBSTONE ((void *)1)

static atomic_bool armed;
static bool jansson_may_fail;
static pthread_t owner;
static unsigned long count, fail_at;
static bool failed;
static void **set;
static size_t live;

static bool counting(void)
{
    return atomic_load(&armed) && pthread_equal(pthread_self(), owner);
}

static size_t slot_of(const void *p)
{
    uintptr_t h = (uintptr_t)p;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 7) & (SET_SLOTS - 1);
}

static void track(void *p)
{
    size_t i = slot_of(p);
    for (size_t probes = 0; probes < SET_SLOTS; probes++, i = (i + 1) & (SET_SLOTS - 1))
        if (!set[i] || set[i] == TOMBSTONE) {
            set[i] = p;
            live++;
            return;
        }
    fputs("alloc_fail: more live blocks than the set holds\n", stderr);
    abort();
}

static void untrack(void *p)
{
    size_t i = slot_of(p);
    for (size_t probes = 0; probes < SET_SLOTS && set[i]; probes++, i = (i + 1) & (SET_SLOTS - 1))
        if (set[i] == p) {
            set[i] = TOMBSTONE;
            live--;
            return;
        }
}

/* Whether this allocation may proceed (false: it is the one that fails). */
static bool allow(void)
{
    if (!counting())
        return true;
    count++;
    if (fail_at && count == fail_at) {
        failed = true;
        errno = ENOMEM; /* as malloc does */
        return false;
    }
    return true;
}

void *__wrap_malloc(size_t n);
void *__wrap_malloc(size_t n)
{
    if (!allow())
        return NULL;
    void *p = __real_malloc(n);
    if (p && counting())
        track(p);
    return p;
}

void *__wrap_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size)
{
    if (!allow())
        return NULL;
    void *p = __real_calloc(n, size);
    if (p && counting())
        track(p);
    return p;
}

void *__wrap_realloc(void *old, size_t n);
void *__wrap_realloc(void *old, size_t n)
{
    if (!allow())
        return NULL; /* old stays valid, as with a real failure */
    void *p = __real_realloc(old, n);
    if (p && counting()) {
        if (old)
            untrack(old);
        track(p);
    }
    return p;
}

void __wrap_free(void *p);
void __wrap_free(void *p)
{
    if (p && set && counting())
        untrack(p);
    __real_free(p);
}

char *__wrap_strdup(const char *s);
char *__wrap_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = __wrap_malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

char *__wrap_strndup(const char *s, size_t max);
char *__wrap_strndup(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    char *p = __wrap_malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static void *jansson_malloc(size_t n)
{
    if (jansson_may_fail || !counting())
        return __wrap_malloc(n);
    void *p = __real_malloc(n); /* not counted: it cannot be the one to fail */
    if (p)
        track(p);
    return p;
}

void alloc_fail_jansson(bool may_fail)
{
    jansson_may_fail = may_fail;
    json_set_alloc_funcs(jansson_malloc, __wrap_free);
}

void alloc_fail_arm(unsigned long n)
{
    if (!set && !(set = __real_calloc(SET_SLOTS, sizeof(*set)))) {
        fputs("alloc_fail: cannot allocate the tracking set\n", stderr);
        abort();
    }
    memset(set, 0, SET_SLOTS * sizeof(*set));
    live = 0;
    count = 0;
    fail_at = n;
    failed = false;
    owner = pthread_self();
    atomic_store(&armed, true);
}

struct alloc_fail_stats alloc_fail_disarm(void)
{
    atomic_store(&armed, false);
    return (struct alloc_fail_stats){.allocations = count, .failed = failed, .live = live};
}

int alloc_fail_walk(int (*fn)(void *arg), void *arg, unsigned long max_runs,
                    struct alloc_fail_walk *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned long n = 1; n <= max_runs; n++) {
        alloc_fail_arm(n);
        int rc = fn(arg);
        struct alloc_fail_stats st = alloc_fail_disarm();
        out->runs = n;
        if (st.live) {
            snprintf(out->why, sizeof(out->why),
                     "run %lu (allocation %lu failing): %zu block(s) not freed", n, n, st.live);
            return -1;
        }
        if (rc == ALLOC_FAIL_WRONG || (rc != ALLOC_FAIL_OK && rc != ALLOC_FAIL_ERROR)) {
            snprintf(out->why, sizeof(out->why),
                     "run %lu (allocation %lu failing): wrong result (%d)", n, n, rc);
            return -1;
        }
        if (!st.failed) { /* every allocation succeeded: the complete run */
            out->allocations = st.allocations;
            if (rc != ALLOC_FAIL_OK) {
                snprintf(out->why, sizeof(out->why),
                         "run %lu: failed although no allocation failed", n);
                return -1;
            }
            return 0;
        }
    }
    snprintf(out->why, sizeof(out->why), "no complete run within %lu runs", max_runs);
    return -1;
}
