/*
 * util.c - randomness, clocks, backoff and buffers shared by both programs.
 */
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

void util_random_bytes(unsigned char *buf, size_t len)
{
    if (RAND_bytes(buf, (int)len) != 1) {
        /* Without randomness we cannot make ids or jitter safely: nothing sane to do. */
        fputs("fatal: RAND_bytes failed\n", stderr);
        abort();
    }
}

void util_uuid_v4(char out[UUID_STR_LEN])
{
    unsigned char b[16];
    util_random_bytes(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, UUID_STR_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

bool util_is_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return s[36] == '\0';
}

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t util_mono_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

int64_t util_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t util_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms)
{
    int64_t ceiling = base_ms;
    uint32_t r;

    for (unsigned i = 0; i < attempt && ceiling < cap_ms; i++)
        ceiling *= 2;
    if (ceiling > cap_ms)
        ceiling = cap_ms;
    if (ceiling <= 0)
        return 0;
    util_random_bytes((unsigned char *)&r, sizeof(r));
    return (int64_t)(r % (uint64_t)(ceiling + 1));
}

size_t util_strlcpy(char *dst, const char *src, size_t dstlen)
{
    size_t n = strlen(src);
    if (dstlen) {
        size_t c = n < dstlen - 1 ? n : dstlen - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

void buf_init(struct buf *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
    b->failed = false;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
    if (b->failed || (b->limit && b->len + len > b->limit)) {
        b->failed = true;
        return -1;
    }
    if (b->len + len + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->len + len + 1)
            ncap *= 2;
        char *n = realloc(b->data, ncap);
        if (!n) {
            b->failed = true;
            return -1;
        }
        b->data = n;
        b->cap = ncap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->data)
        b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
    free(b->data);
    buf_init(b, b->limit);
}

char *util_read_file(const char *path, size_t limit, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct buf b;
    char chunk[4096];
    size_t n;
    bool ok = true;

    if (!f)
        return NULL;
    buf_init(&b, limit);
    while (ok && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        ok = buf_append(&b, chunk, n) == 0;
    fclose(f);
    if (ok && !b.data)
        ok = buf_append(&b, "", 0) == 0;
    if (!ok) {
        buf_free(&b);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.data;
}

const char *util_data_path(const char *env, const char *const *rel, char *buf, size_t len)
{
    const char *v = env ? getenv(env) : NULL;
    char exe[4096];

    if (v && *v) {
        util_strlcpy(buf, v, len);
        return buf;
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    for (; *rel; rel++) {
        snprintf(buf, len, "%s/%s", exe, *rel);
        if (access(buf, R_OK) == 0)
            return buf;
    }
    return NULL;
}

static int dump_to_buf(const char *data, size_t len, void *arg)
{
    return buf_append(arg, data, len);
}

char *util_json_dumps(const json_t *j, size_t flags)
{
    struct buf b;
    buf_init(&b, 0);
    if (!j || json_dump_callback(j, dump_to_buf, &b, flags) != 0 || b.failed || !b.data) {
        buf_free(&b);
        return NULL;
    }
    return b.data;
}

void util_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

bool util_host_unbracket(const char *host, char *out, size_t outlen)
{
    size_t n = strlen(host);
    if (n >= outlen)
        return false;
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        memcpy(out, host + 1, n - 2);
        out[n - 2] = '\0';
    } else {
        memcpy(out, host, n + 1);
    }
    return true;
}

bool util_host_is_loopback(const char *host)
{
    char bare[256];
    unsigned char a6[16];
    struct in_addr a4;
    static const unsigned char loop6[16] = {[15] = 1};

    if (!util_host_unbracket(host, bare, sizeof(bare)))
        return false;
    if (!strcasecmp(bare, "localhost"))
        return true;
    if (inet_pton(AF_INET, bare, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, bare, a6) == 1 && !memcmp(a6, loop6, sizeof(a6));
}
