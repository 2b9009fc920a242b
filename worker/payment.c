/*
 * payment.c - one payment attempt for a held order, by the configured
 * provider: simulated (a deterministic draw, no I/O) or http (a POST to
 * PAYMENT_URL on the event loop's libcurl multi handle).
 *
 * The http calls share the multi handle with the SQS requests, so they cost
 * no thread and reuse connections; each carries Idempotency-Key: <order id>,
 * the same on every attempt and redelivery, which is what makes calling the
 * provider more than once safe (the provider contract, README). Calls live in
 * one slab sized for WORKER_MAX_IN_FLIGHT, so a finished easy handle is known
 * to be ours by its address. The Authorization value comes from
 * PAYMENT_AUTH_HEADER (ECS injects secrets as variables) or is re-read from
 * PAYMENT_AUTH_HEADER_FILE when the file changes; it is never logged.
 * Each concurrent call holds a connection, so the soft open-files limit is
 * raised to cover WORKER_MAX_IN_FLIGHT of them (see raise_fd_limit).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "log.h"
#include "loop.h"
#include "trace.h"

#define AUTH_MAX 8192
#define AUTH_CHECK_MS 1000 /* how often the auth file's mtime is looked at */

struct pay_call {
    CURL *easy; /* kept across calls (curl_easy_reset) */
    struct curl_slist *headers;
    char *body;
    struct buf resp;
    struct held *h;
    struct pay_call *next_free;
};

static struct {
    CURLM *multi;
    struct pay_call *slab;
    size_t cap;
    struct pay_call *free_list;
    size_t in_flight;
    char auth[AUTH_MAX + 1]; /* the Authorization header's value ("" = none) */
    struct timespec auth_mtime;
    off_t auth_size;
    int64_t auth_checked_ms;
    bool auth_loaded;
} P;

/* Reads the auth file when it changed. On a failure the last good value is
 * kept. 0, or -1 with err (never the file's content). */
int payment_auth_refresh(char *err, size_t errlen)
{
    struct stat st;
    const char *path = wcfg.payment_auth_file;
    if (!path &&
        wcfg.payment_auth_header) { /* from the environment: fixed (CONFIG_TEXT checked it) */
        if (strlen(wcfg.payment_auth_header) > AUTH_MAX) {
            snprintf(err, errlen, "PAYMENT_AUTH_HEADER is over %d bytes", AUTH_MAX);
            return -1;
        }
        util_strlcpy(P.auth, wcfg.payment_auth_header, sizeof(P.auth));
        return 0;
    }
    if (!path)
        return 0;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "PAYMENT_AUTH_HEADER_FILE cannot be read");
        return -1;
    }
    if (P.auth_loaded && st.st_mtim.tv_sec == P.auth_mtime.tv_sec &&
        st.st_mtim.tv_nsec == P.auth_mtime.tv_nsec && st.st_size == P.auth_size)
        return 0;
    FILE *f = fopen(path, "r");
    char tmp[AUTH_MAX + 2];
    size_t n = f ? fread(tmp, 1, sizeof(tmp) - 1, f) : 0;
    bool bad = !f || ferror(f) || n > AUTH_MAX;
    if (f)
        fclose(f);
    while (n && (tmp[n - 1] == '\n' || tmp[n - 1] == '\r' || tmp[n - 1] == ' '))
        n--;
    for (size_t i = 0; i < n && !bad; i++)
        bad = (unsigned char)tmp[i] < 0x20 || (unsigned char)tmp[i] > 0x7e;
    if (bad || n == 0) {
        snprintf(err, errlen,
                 "PAYMENT_AUTH_HEADER_FILE must hold one line of printable ASCII, at most %d bytes",
                 AUTH_MAX);
        return -1;
    }
    memcpy(P.auth, tmp, n);
    P.auth[n] = '\0';
    P.auth_mtime = st.st_mtim;
    P.auth_size = st.st_size;
    P.auth_loaded = true;
    return 0;
}

/* One descriptor per concurrent call. A soft RLIMIT_NOFILE of 1024 (the
 * default of many container runtimes) would cap the calls at about a thousand,
 * the ones beyond failing to connect and burning retries, so it is raised up
 * to the hard limit; when even that is short, the shortfall is logged. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)wcfg.max_in_flight + (rlim_t)wcfg.max_polls + EXTEND_MAX_CALLS + 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        rl.rlim_cur = was;
    if (rl.rlim_cur < want)
        log_warn(NULL,
                 "open files limited to %llu (RLIMIT_NOFILE), fewer than the %llu that "
                 "WORKER_MAX_IN_FLIGHT=%lld payment calls need: calls beyond it fail and are "
                 "retried",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)want,
                 (long long)wcfg.max_in_flight);
    else
        log_kv(LOG_INFO, NULL, "raised the open files limit for the payment calls", "from",
               (long long)was, "to", (long long)rl.rlim_cur, NULL);
}

int payment_init(CURLM *multi, char *err, size_t errlen)
{
    P.multi = multi; /* (the auth value may be loaded already: main.c checks it) */
    if (wcfg.payment_provider != PAYMENT_HTTP)
        return 0;
    raise_fd_limit();
    P.cap = (size_t)wcfg.max_in_flight;
    P.slab = calloc(P.cap, sizeof(*P.slab));
    if (!P.slab) {
        snprintf(err, errlen, "out of memory for %zu payment calls", P.cap);
        return -1;
    }
    for (size_t i = P.cap; i-- > 0;) {
        P.slab[i].next_free = P.free_list;
        P.free_list = &P.slab[i];
    }
    P.auth_checked_ms = util_mono_ms();
    return payment_auth_refresh(err, errlen);
}

void payment_cleanup(void)
{
    for (size_t i = 0; i < P.cap; i++) {
        if (P.slab[i].h)
            payment_forget(P.slab[i].h);
        if (P.slab[i].easy)
            curl_easy_cleanup(P.slab[i].easy);
    }
    free(P.slab);
    memset(&P, 0, sizeof(P));
}

size_t payment_in_flight(void)
{
    return P.in_flight;
}

static void call_release(struct pay_call *c)
{
    curl_slist_free_all(c->headers);
    c->headers = NULL;
    free(c->body);
    c->body = NULL;
    buf_free(&c->resp);
    if (c->h)
        c->h->pay_call = NULL;
    c->h = NULL;
    c->next_free = P.free_list;
    P.free_list = c;
    P.in_flight--;
}

void payment_forget(struct held *h)
{
    struct pay_call *c = h->pay_call;
    if (!c)
        return;
    curl_multi_remove_handle(P.multi, c->easy);
    call_release(c);
}

static void finish(struct held *h, enum payment_outcome o, const char *payment_id,
                   const char *reason)
{
    h->outcome = o;
    h->latency_ms = util_mono_ms() - h->attempt_started_ms;
    util_strlcpy(h->payment_id, payment_id ? payment_id : "", sizeof(h->payment_id));
    util_strlcpy(h->reason, reason ? reason : "", sizeof(h->reason));
    loop_payment_done(h);
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
    struct pay_call *c = userp;
    return buf_append(&c->resp, data, size * nmemb) == 0 ? size * nmemb : 0;
}

static bool add_header(struct curl_slist **l, const char *name, const char *value)
{
    char line[AUTH_MAX + 64];
    snprintf(line, sizeof(line), "%s: %s", name, value);
    struct curl_slist *n = curl_slist_append(*l, line);
    if (!n)
        return false;
    *l = n;
    return true;
}

/* The headers of h's call; false when memory ran out. */
static bool build_headers(struct pay_call *c, const struct held *h)
{
    bool ok = add_header(&c->headers, "Content-Type", "application/json") &&
              add_header(&c->headers, "Accept", "application/json") &&
              add_header(&c->headers, "Expect", "") &&
              add_header(&c->headers, "Idempotency-Key", h->order_id);
    if (ok && h->correlation_id[0] && order_correlation_id_valid(h->correlation_id))
        ok = add_header(&c->headers, "X-Correlation-Id", h->correlation_id);
    if (ok && h->traceparent[0] && trace_traceparent_valid(h->traceparent))
        ok = add_header(&c->headers, "traceparent", h->traceparent);
    if (ok && P.auth[0])
        ok = add_header(&c->headers, "Authorization", P.auth);
    return ok;
}

static void start_http(struct held *h)
{
    char err[200];
    int64_t now = util_mono_ms();
    if (wcfg.payment_auth_file && now - P.auth_checked_ms >= AUTH_CHECK_MS) {
        P.auth_checked_ms = now;
        if (payment_auth_refresh(err, sizeof(err)) != 0)
            log_warn(NULL, "%s; keeping the previous value", err);
    }
    struct pay_call *c = P.free_list;
    if (!c) { /* cannot happen: one call per held message at most */
        finish(h, PAYMENT_ERROR, NULL, "no payment call slot free");
        return;
    }
    if (!c->easy && !(c->easy = curl_easy_init())) {
        finish(h, PAYMENT_ERROR, NULL, "out of memory for the provider request");
        return;
    }
    P.free_list = c->next_free;
    P.in_flight++;
    c->h = h;
    h->pay_call = c;
    buf_init(&c->resp, PAYMENT_ANSWER_MAX);
    c->body = payment_request_body(h->order_id, h->customer_id, h->amount_cents, h->currency);
    CURL *e = c->easy;
    curl_easy_reset(e);
    bool ok = c->body && build_headers(c, h);
#define SET(opt, val) ok = ok && curl_easy_setopt(e, opt, val) == CURLE_OK
    SET(CURLOPT_URL, wcfg.payment_url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_POSTFIELDS, c->body);
    SET(CURLOPT_POSTFIELDSIZE, (long)(c->body ? strlen(c->body) : 0));
    SET(CURLOPT_HTTPHEADER, c->headers);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, c);
    SET(CURLOPT_PRIVATE, (char *)c);
    SET(CURLOPT_TIMEOUT_MS, (long)wcfg.payment_timeout_ms);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_USERAGENT, "order-worker");
    /* answers are a few hundred bytes, and every open call keeps its handle's
     * receive buffer: 1 KiB instead of 16 saved ~5 KiB of RSS per open call
     * (3,000 calls: 69 -> 53 MiB, bench/RESULTS.md). Set after every
     * curl_easy_reset, so the buffer and its size never disagree. */
    SET(CURLOPT_BUFFERSIZE, 1024L);
#undef SET
    if (!ok || curl_multi_add_handle(P.multi, e) != CURLM_OK) {
        call_release(c);
        finish(h, PAYMENT_ERROR, NULL, "cannot build the provider request (out of memory)");
        return;
    }
}

void payment_start(struct held *h)
{
    h->attempts++;
    if (wcfg.payment_provider == PAYMENT_HTTP) {
        h->attempt_started_ms = util_mono_ms();
        start_http(h);
        return;
    }
    enum payment_outcome o =
        payment_sim_outcome(h->order_id, wcfg.payment_decline_rate, wcfg.payment_error_rate);
    finish(h, o, NULL,
           o == PAYMENT_DECLINED ? "card_declined"
           : o == PAYMENT_ERROR  ? "simulated provider error"
                                 : NULL);
}

bool payment_handles(CURL *easy, CURLcode code)
{
    char *p = NULL;
    if (!P.slab || curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p) != CURLE_OK || !p)
        return false;
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)P.slab, hi = (uintptr_t)(P.slab + P.cap);
    if (a < lo || a >= hi)
        return false;
    struct pay_call *c = (struct pay_call *)p;
    struct held *h = c->h;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(P.multi, easy);
    struct payment_answer a_;
    if (code != CURLE_OK) {
        a_.outcome = PAYMENT_ERROR;
        a_.unexpected = false;
        if (code == CURLE_OPERATION_TIMEDOUT)
            snprintf(a_.reason, sizeof(a_.reason), "timeout after %lld ms",
                     (long long)wcfg.payment_timeout_ms);
        else if (code == CURLE_WRITE_ERROR && c->resp.failed)
            snprintf(a_.reason, sizeof(a_.reason), "http %ld: answer over %d bytes", status,
                     PAYMENT_ANSWER_MAX);
        else
            snprintf(a_.reason, sizeof(a_.reason), "transport: %s", curl_easy_strerror(code));
    } else {
        payment_answer_parse(status, c->resp.data, c->resp.len, &a_);
    }
    call_release(c);
    if (!h)
        return true;
    if (a_.outcome == PAYMENT_ERROR && a_.unexpected) {
        struct log_fields f = fields_of(h);
        log_warn(&f, "payment provider answered outside its contract (status %ld): %s", status,
                 a_.reason);
    }
    if (a_.outcome == PAYMENT_APPROVED)
        finish(h, PAYMENT_APPROVED, a_.payment_id, NULL);
    else
        finish(h, a_.outcome, NULL, a_.reason);
    return true;
}
