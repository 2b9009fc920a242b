/*
 * util.h - small helpers every module needs: randomness and UUIDs, clocks,
 * jittered backoff, a growable byte buffer, bounded string copies.
 */
#ifndef ORDER_UTIL_H
#define ORDER_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UUID_STR_LEN 37 /* 36 characters and the terminator */

/* Cryptographically strong random bytes (OpenSSL RAND_bytes); aborts if the RNG fails. */
void util_random_bytes(unsigned char *buf, size_t len);
/* Writes a random (version 4) UUID in lower case into out[UUID_STR_LEN]. */
void util_uuid_v4(char out[UUID_STR_LEN]);
/* True for the canonical 8-4-4-4-12 hex form, any case. */
bool util_is_uuid(const char *s);

int64_t util_mono_ms(void); /* monotonic clock, for timers and deadlines */
int64_t util_mono_us(void); /* the same clock in microseconds, for latencies */
int64_t util_wall_ms(void); /* Unix epoch milliseconds */

/* "Full jitter" exponential backoff: random in [0, min(cap, base * 2^attempt)]. */
int64_t util_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms);

/* Copies at most dstlen-1 bytes and always terminates; returns strlen(src). */
size_t util_strlcpy(char *dst, const char *src, size_t dstlen);

/* Reads a whole file (at most limit bytes) into a NUL-terminated malloc'd
 * string; *len gets its length. NULL when it cannot be opened or is larger. */
char *util_read_file(const char *path, size_t limit, size_t *len);

/* Where a file installed with the programs is: the value of the environment
 * variable env when set, else the first of rel (paths relative to the running
 * executable's directory, NULL-terminated) that exists. Writes into buf and
 * returns it, or returns NULL when none exists. */
const char *util_data_path(const char *env, const char *const *rel, char *buf, size_t len);

/* Formats into err (when err is not NULL and errlen > 0): the one way every
 * module reports what went wrong to its caller. */
void util_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* host as a URL gives it (an IPv6 address in brackets) without the brackets,
 * into out; false when it does not fit. */
bool util_host_unbracket(const char *host, char *out, size_t outlen);
/* True for "localhost", 127.0.0.0/8 and ::1: a host nothing leaves the machine for. */
bool util_host_is_loopback(const char *host);

/* A growable buffer; len never counts the terminating NUL that is always kept. */
struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t limit; /* 0 = unlimited; appends beyond it fail */
    bool failed;  /* an append failed: every later one fails too, until buf_reset */
};
void buf_init(struct buf *b, size_t limit);
/* 0, or -1 (over the limit, out of memory, or an earlier append failed), so
 * a buffer built by many appends is either whole or marked failed. */
int buf_append(struct buf *b, const void *data, size_t len);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

/* json_dumps that never returns a damaged document: jansson 2.14 ignores a
 * failed write of an object key (dump.c does not check dump_string's result
 * for keys), so under memory pressure json_dumps can return JSON with a key
 * missing. This dumps through a struct buf whose failure is sticky: the whole
 * document, or NULL. */
struct json_t;
char *util_json_dumps(const struct json_t *j, size_t flags);

#endif
