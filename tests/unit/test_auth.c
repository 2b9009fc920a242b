/*
 * test_auth.c - api/auth.c (configuration, key loading and refresh, the
 * verified-token cache) and api/ratelimit.c.
 *
 * Keys are served by a small JWKS server on 127.0.0.1 (an ephemeral port, one
 * thread, answers set by the test, hits counted per path), so refreshes are
 * counted from the far side of the socket. It is local to this file until the
 * shared tests/unit/http_stub lands on main; its functions are static so the
 * two can coexist.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "auth.h"
#include "jwt_mint.h"
#include "log.h"
#include "ratelimit.h"
#include "util.h"

#define ISS "https://issuer.example"

/* ---- a JWKS server ---- */

struct srv {
    int fd, port;
    pthread_t thread;
    pthread_mutex_t mu;
    atomic_int stop;
    char *jwks;      /* body of GET /jwks */
    int jwks_status; /* 0 = 200 */
    char *discovery; /* body of GET /.well-known/openid-configuration */
    int delay_ms;
    size_t jwks_hits, discovery_hits;
};

static void srv_serve(struct srv *s, int c)
{
    char req[4096], path[256] = "", head[256];
    size_t len = 0;
    struct timeval tv = {.tv_sec = 2};
    char *body;
    int status, delay;

    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (len < sizeof(req) - 1) {
        ssize_t n = recv(c, req + len, sizeof(req) - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    req[len] = '\0';
    sscanf(req, "GET %255s", path);

    pthread_mutex_lock(&s->mu);
    delay = s->delay_ms;
    if (!strcmp(path, "/jwks")) {
        s->jwks_hits++;
        status = s->jwks_status ? s->jwks_status : 200;
        body = strdup(s->jwks ? s->jwks : "");
    } else if (!strcmp(path, "/.well-known/openid-configuration") && s->discovery) {
        s->discovery_hits++;
        status = 200;
        body = strdup(s->discovery);
    } else {
        status = 404;
        body = strdup("{}");
    }
    pthread_mutex_unlock(&s->mu);

    if (delay > 0)
        usleep((useconds_t)delay * 1000);
    if (body) {
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                         status, strlen(body));
        if (send(c, head, (size_t)n, MSG_NOSIGNAL) == n) {
            size_t off = 0, total = strlen(body);
            while (off < total) {
                ssize_t w = send(c, body + off, total - off, MSG_NOSIGNAL);
                if (w <= 0)
                    break;
                off += (size_t)w;
            }
        }
    }
    free(body);
    close(c);
}

static void *srv_main(void *arg)
{
    struct srv *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c >= 0)
            srv_serve(s, c);
    }
    return NULL;
}

static void srv_start(struct srv *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t alen = sizeof(a);

    memset(s, 0, sizeof(*s));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 64), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &alen), 0);
    s->port = ntohs(a.sin_port);
    pthread_mutex_init(&s->mu, NULL);
    assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
}

static void srv_stop(struct srv *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
    free(s->jwks);
    free(s->discovery);
}

/* Takes ownership of jwks. */
static void srv_set_jwks(struct srv *s, char *jwks, int status)
{
    pthread_mutex_lock(&s->mu);
    free(s->jwks);
    s->jwks = jwks;
    s->jwks_status = status;
    pthread_mutex_unlock(&s->mu);
}

static void srv_set_delay(struct srv *s, int ms)
{
    pthread_mutex_lock(&s->mu);
    s->delay_ms = ms;
    pthread_mutex_unlock(&s->mu);
}

static size_t srv_jwks_hits(struct srv *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->jwks_hits;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static char *srv_url(struct srv *s, const char *path)
{
    return mint_printf("http://127.0.0.1:%d%s", s->port, path);
}

/* ---- fixtures ---- */

/* r1: RSA 2048; k2: EC P-256, the key rotated in. RSA key generation is what
 * makes this suite slow under valgrind, so there is one. */
static struct {
    EVP_PKEY *r1, *k2;
    char *jwk_r1, *jwk_k2;
    char dir[64];
} K;

static int suite_setup(void **state)
{
    (void)state;
    log_init("test_auth", LOG_WARN, 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    K.r1 = mint_rsa_key(2048);
    K.k2 = mint_ec_key("P-256");
    K.jwk_r1 = mint_jwk(K.r1, "r1", ",\"alg\":\"RS256\",\"use\":\"sig\"");
    K.jwk_k2 = mint_jwk(K.k2, "k2", ",\"alg\":\"ES256\",\"use\":\"sig\"");
    snprintf(K.dir, sizeof(K.dir), "/tmp/test_auth.XXXXXX");
    return mkdtemp(K.dir) ? 0 : -1;
}

static int suite_teardown(void **state)
{
    char path[128];
    (void)state;
    snprintf(path, sizeof(path), "%s/jwks.json", K.dir);
    unlink(path);
    rmdir(K.dir);
    EVP_PKEY_free(K.r1);
    EVP_PKEY_free(K.k2);
    free(K.jwk_r1);
    free(K.jwk_k2);
    curl_global_cleanup();
    return 0;
}

static char *jwks_of(const char *a, const char *b)
{
    const char *k[2] = {a, b};
    return mint_jwks(k, b ? 2 : 1);
}

static char *write_jwks_file(const char *json)
{
    char *path = mint_printf("%s/jwks.json", K.dir);
    char *tmp = mint_printf("%s/jwks.json.tmp", K.dir);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    assert_int_equal(fputs(json, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
    free(tmp);
    return path;
}

static struct auth_config base_config(void)
{
    struct auth_config c;
    auth_config_defaults(&c);
    c.issuer = ISS;
    c.audience = "order-api";
    c.jwks_timeout_ms = 2000;
    return c;
}

static struct auth *started(const struct auth_config *c)
{
    char err[256] = "";
    struct auth *a = auth_new(c, err, sizeof(err));
    if (!a)
        fail_msg("auth_new: %s", err);
    assert_int_equal(auth_start(a, err, sizeof(err)), 0);
    return a;
}

static bool wait_ready(struct auth *a, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        if (auth_ready(a))
            return true;
        usleep(10000);
    }
    return auth_ready(a);
}

/* "Bearer " + a token signed by key (RS256 or ES256 by its type) for kid,
 * customer sub, expiring at exp. */
static char *bearer(EVP_PKEY *key, const char *kid, const char *sub, int64_t exp)
{
    bool rsa = EVP_PKEY_is_a(key, "RSA");
    char *hdr = mint_printf("{\"alg\":\"%s\",\"kid\":\"%s\"}", rsa ? "RS256" : "ES256", kid);
    char *pl = mint_printf("{\"iss\":\"" ISS "\",\"aud\":\"order-api\",\"sub\":\"%s\","
                           "\"exp\":%lld,\"scope\":\"orders/read orders/admin\"}",
                           sub, (long long)exp);
    char *t = mint_token(hdr, pl, rsa ? MINT_RS256 : MINT_ES256, key, NULL, 0);
    char *h = mint_printf("Bearer %s", t);
    free(t);
    free(pl);
    free(hdr);
    return h;
}

static enum auth_status check(struct auth *a, const char *header, const char **reason)
{
    struct auth_principal p;
    return auth_check(a, header, time(NULL), &p, reason);
}

static struct auth_stats stats(struct auth *a)
{
    struct auth_stats s;
    auth_get_stats(a, &s);
    return s;
}

static size_t reason_index(const char *name)
{
    for (size_t i = 0; i < auth_reason_table_size(); i++)
        if (!strcmp(auth_reason_name(i), name))
            return i;
    fail_msg("no reason named %s", name);
    return 0;
}

/* ---- configuration ---- */

static void expect_config_error(struct auth_config c, const char *want)
{
    char err[256] = "";
    struct auth *a = auth_new(&c, err, sizeof(err));
    if (a) {
        auth_free(a);
        fail_msg("accepted a configuration that should fail with: %s", want);
    }
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
}

static void test_config_errors_name_the_variable(void **state)
{
    struct auth_config c;
    (void)state;
    c = base_config();
    c.issuer = NULL;
    expect_config_error(c, "AUTH_ISSUER: required");
    c = base_config();
    c.audience = "";
    expect_config_error(c, "AUTH_AUDIENCE: required");
    c = base_config();
    c.audience = "order-api,,other";
    expect_config_error(c, "AUTH_AUDIENCE: entry 2 is empty");
    c = base_config();
    c.algorithms = "RS256,HS256";
    expect_config_error(c, "AUTH_ALGORITHMS: HS256 is not allowed");
    c = base_config();
    c.algorithms = "none";
    expect_config_error(c, "AUTH_ALGORITHMS: none is not allowed");
    c = base_config();
    c.algorithms = "RS256,";
    expect_config_error(c, "AUTH_ALGORITHMS: an empty entry is not allowed");
    c = base_config();
    c.leeway_s = -1;
    expect_config_error(c, "AUTH_LEEWAY_S");
    c = base_config();
    c.jwks_url = "http://keys.example.com/jwks";
    expect_config_error(c, "AUTH_JWKS_URL: http:// is allowed only for loopback hosts");
    c = base_config();
    c.jwks_url = "ftp://127.0.0.1/jwks";
    expect_config_error(c, "AUTH_JWKS_URL: must be an https:// URL");
    c = base_config();
    c.jwks_url = "https://keys.example.com/jwks";
    c.jwks_file = "/tmp/jwks.json";
    expect_config_error(c, "AUTH_JWKS_FILE: cannot be combined with AUTH_JWKS_URL");
    c = base_config();
    c.issuer = "http://issuer.example.com"; /* discovery over plain http */
    expect_config_error(c, "AUTH_ISSUER: http:// is allowed only for loopback hosts");
    c = base_config();
    c.jwks_min_refresh_s = -5;
    expect_config_error(c, "AUTH_JWKS_MIN_REFRESH_S");
    c = base_config();
    c.jwks_timeout_ms = 10;
    expect_config_error(c, "AUTH_JWKS_TIMEOUT_MS");
    c = base_config();
    c.customer_claim = "";
    expect_config_error(c, "AUTH_CUSTOMER_CLAIM");

    /* accepted: https anywhere, http on loopback, discovery from an https issuer */
    const char *ok_urls[] = {"https://keys.example.com/jwks", "http://127.0.0.1:1/jwks",
                             "http://localhost:8/jwks", "http://[::1]:9/jwks"};
    for (size_t i = 0; i < sizeof(ok_urls) / sizeof(ok_urls[0]); i++) {
        char err[256] = "";
        c = base_config();
        c.jwks_url = ok_urls[i];
        struct auth *a = auth_new(&c, err, sizeof(err));
        if (!a)
            fail_msg("%s refused: %s", ok_urls[i], err);
        auth_free(a);
    }
    char err[256] = "";
    c = base_config();
    c.audience = " order-api , console ";
    struct auth *a = auth_new(&c, err, sizeof(err));
    assert_non_null(a);
    assert_false(auth_ready(a)); /* no I/O before auth_start */
    auth_free(a);
}

/* ---- loading keys ---- */

static void test_not_ready_until_keys_load(void **state)
{
    struct auth_config c = base_config();
    char *path = mint_printf("%s/jwks.json", K.dir);
    char *h = bearer(K.r1, "r1", "c-1", time(NULL) + 600);
    const char *reason;
    (void)state;
    unlink(path);
    c.jwks_file = path;
    struct auth *a = started(&c);
    usleep(100000);
    assert_false(auth_ready(a));
    assert_int_equal(check(a, h, &reason), AUTH_NOT_READY);
    assert_string_equal(reason, "keys not loaded");
    assert_int_equal(check(a, NULL, &reason), AUTH_NOT_READY); /* fail closed, even with no token */
    char *set = jwks_of(K.jwk_r1, NULL);
    free(write_jwks_file(set));
    assert_true(wait_ready(a, 5000)); /* the retry after a failed first load */
    assert_int_equal(check(a, h, &reason), AUTH_OK);
    assert_true(stats(a).jwks_fetch_failures >= 1);
    auth_free(a);
    free(set);
    free(h);
    free(path);
}

/* An auth reading its keys from a file holding jwk1 (and jwk2). */
static struct auth *file_auth(struct auth_config *c, const char *jwk1, const char *jwk2)
{
    char *set = jwks_of(jwk1, jwk2);
    c->jwks_file = write_jwks_file(set);
    free(set);
    struct auth *a = started(c);
    assert_true(wait_ready(a, 5000));
    return a;
}

static void file_auth_free(struct auth *a, struct auth_config *c)
{
    auth_free(a);
    free((char *)c->jwks_file);
}

static void test_jwks_file_happy_path_and_no_token(void **state)
{
    struct auth_config c = base_config();
    const char *reason;
    struct auth_principal p;
    int64_t exp = time(NULL) + 600;
    char *h = bearer(K.r1, "r1", "c-123", exp);
    (void)state;
    struct auth *a = file_auth(&c, K.jwk_r1, K.jwk_k2);
    assert_int_equal(auth_check(a, h, time(NULL), &p, &reason), AUTH_OK);
    assert_string_equal(reason, "ok");
    assert_string_equal(p.sub, "c-123");
    assert_string_equal(p.customer, "c-123");
    assert_int_equal(p.scopes, AUTH_SCOPE_READ | AUTH_SCOPE_ADMIN);
    assert_int_equal(p.exp, exp);
    assert_int_equal(stats(a).keys, 2);
    assert_int_equal(auth_check(a, NULL, time(NULL), &p, &reason), AUTH_NO_TOKEN);
    assert_string_equal(reason, "no token");
    assert_int_equal(auth_check(a, "Basic dXNlcjpwYXNz", time(NULL), &p, &reason), AUTH_NO_TOKEN);
    assert_string_equal(reason, "not a bearer token");
    assert_int_equal(auth_check(a, "Bearer x.y.z", time(NULL), &p, &reason), AUTH_INVALID);
    assert_string_equal(reason, "malformed token");
    assert_string_equal(p.sub, ""); /* a refusal leaves no principal behind */
    file_auth_free(a, &c);
    free(h);
}

static void test_oversized_authorization_header(void **state)
{
    struct auth_config c = base_config();
    const char *reason;
    char *big = malloc(9000);
    (void)state;
    assert_non_null(big);
    memset(big, 'A', 8999);
    memcpy(big, "Bearer ", 7);
    big[8999] = '\0';
    struct auth *a = file_auth(&c, K.jwk_r1, NULL);
    uint64_t before = auth_failures(a, reason_index("authorization header too large"));
    assert_int_equal(check(a, big, &reason), AUTH_INVALID);
    assert_string_equal(reason, "authorization header too large");
    assert_int_equal(auth_failures(a, reason_index("authorization header too large")), before + 1);
    assert_int_equal(stats(a).signature_checks, 0);
    file_auth_free(a, &c);
    free(big);
}

/* ---- cache ---- */

static void test_cache_hit_skips_signature(void **state)
{
    struct auth_config c = base_config();
    int64_t now = time(NULL);
    char *h = bearer(K.r1, "r1", "c-9", now + 100);
    const char *reason;
    struct auth_principal p;
    (void)state;
    struct auth *a = file_auth(&c, K.jwk_r1, NULL);
    assert_int_equal(auth_check(a, h, now, &p, &reason), AUTH_OK);
    assert_int_equal(stats(a).signature_checks, 1);
    assert_int_equal(auth_check(a, h, now + 1, &p, &reason), AUTH_OK);
    assert_string_equal(p.customer, "c-9");
    assert_int_equal(stats(a).signature_checks, 1); /* the second check computed no signature */
    assert_int_equal(stats(a).cache_hits, 1);
    /* a cached token still expires: exp re-checked against now (leeway 60) */
    assert_int_equal(auth_check(a, h, now + 161, &p, &reason), AUTH_INVALID);
    assert_string_equal(reason, "expired");
    assert_int_equal(stats(a).signature_checks, 1);
    assert_int_equal(stats(a).cache_hits, 2);
    file_auth_free(a, &c);
    free(h);
}

static void test_cache_off_and_bounded(void **state)
{
    struct auth_config c = base_config();
    int64_t now = time(NULL);
    char *h = bearer(K.r1, "r1", "c-9", now + 100);
    const char *reason;
    struct auth_principal p;
    (void)state;
    c.cache_max = 0;
    struct auth *a = file_auth(&c, K.jwk_r1, K.jwk_k2);
    assert_int_equal(auth_check(a, h, now, &p, &reason), AUTH_OK);
    assert_int_equal(auth_check(a, h, now, &p, &reason), AUTH_OK);
    assert_int_equal(stats(a).signature_checks, 2);
    auth_free(a);

    /* 64 entries (16 shards x 4 ways x 1 set): 160 tokens cannot all stay */
    enum { N = 160 };
    char *tokens[N];
    c.cache_max = 64;
    a = started(&c);
    assert_true(wait_ready(a, 5000));
    for (int i = 0; i < N; i++) {
        char sub[16];
        snprintf(sub, sizeof(sub), "c-%d", i);
        tokens[i] = bearer(K.k2, "k2", sub, now + 100); /* ES256 signs faster under valgrind */
        assert_int_equal(auth_check(a, tokens[i], now, &p, &reason), AUTH_OK);
    }
    assert_int_equal(stats(a).signature_checks, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(auth_check(a, tokens[i], now, &p, &reason), AUTH_OK);
    struct auth_stats s = stats(a);
    assert_true(s.cache_hits <= 64);
    assert_int_equal(s.signature_checks + s.cache_hits, 2 * N);
    for (int i = 0; i < N; i++)
        free(tokens[i]);
    file_auth_free(a, &c);
    free(h);
}

/* ---- refresh over HTTP ---- */

/* A key server holding r1's set and a configuration pointing at it. */
struct jwks_fx {
    struct srv s;
    struct auth_config c;
    char *url;
};

static void fx_start(struct jwks_fx *f)
{
    srv_start(&f->s);
    srv_set_jwks(&f->s, jwks_of(K.jwk_r1, NULL), 0);
    f->c = base_config();
    f->url = srv_url(&f->s, "/jwks");
    f->c.jwks_url = f->url;
}

static struct auth *fx_auth(struct jwks_fx *f)
{
    struct auth *a = started(&f->c);
    assert_true(wait_ready(a, 5000));
    return a;
}

static void fx_stop(struct jwks_fx *f, struct auth *a)
{
    auth_free(a);
    srv_stop(&f->s);
    free(f->url);
}

struct rotated {
    struct auth *a;
    char *header;
    enum auth_status st;
};

static void *check_rotated(void *arg)
{
    struct rotated *r = arg;
    const char *reason;
    r->st = check(r->a, r->header, &reason);
    return NULL;
}

static void test_unknown_kid_then_rotated_in(void **state)
{
    struct jwks_fx f;
    const char *reason;
    char *h2 = bearer(K.k2, "k2", "c-2", time(NULL) + 600);
    (void)state;
    fx_start(&f);
    f.c.jwks_min_refresh_s = 30;
    struct auth *a = fx_auth(&f);
    assert_int_equal(srv_jwks_hits(&f.s), 1);
    /* the issuer rotates k2 in; the first token signed with it is accepted */
    srv_set_jwks(&f.s, jwks_of(K.jwk_r1, K.jwk_k2), 0);
    assert_int_equal(check(a, h2, &reason), AUTH_OK);
    assert_int_equal(srv_jwks_hits(&f.s), 2);
    assert_int_equal(stats(a).keys, 2);
    assert_int_equal(stats(a).key_set_changes, 2);
    auth_free(a);

    /* several requests carrying the new key at once: one fetch, all accepted */
    srv_set_jwks(&f.s, jwks_of(K.jwk_r1, NULL), 0);
    a = started(&f.c);
    assert_true(wait_ready(a, 5000));
    size_t hits = srv_jwks_hits(&f.s);
    srv_set_jwks(&f.s, jwks_of(K.jwk_r1, K.jwk_k2), 0);
    srv_set_delay(&f.s, 300);
    struct rotated r[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        char sub[16];
        snprintf(sub, sizeof(sub), "c-%d", i);
        r[i] = (struct rotated){.a = a, .header = bearer(K.k2, "k2", sub, time(NULL) + 600)};
        assert_int_equal(pthread_create(&t[i], NULL, check_rotated, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].st, AUTH_OK);
        free(r[i].header);
    }
    assert_int_equal(srv_jwks_hits(&f.s), hits + 1);
    fx_stop(&f, a);
    free(h2);
}

/* The issuer rotates a key in while a periodic fetch is under way whose
 * answer predates the rotation: the first token signed with the new key must
 * not settle for that stale answer, but get a fetch that starts after it. */
static void test_rotated_in_during_a_periodic_fetch(void **state)
{
    struct jwks_fx f;
    const char *reason;
    char *h2 = bearer(K.k2, "k2", "c-2", time(NULL) + 600);
    (void)state;
    fx_start(&f);
    f.c.jwks_refresh_s = 1;
    f.c.jwks_min_refresh_s = 30;
    f.c.jwks_timeout_ms = 5000;
    struct auth *a = fx_auth(&f);
    srv_set_delay(&f.s, 800);
    size_t hits = srv_jwks_hits(&f.s);
    for (int i = 0; i < 500 && srv_jwks_hits(&f.s) == hits; i++)
        usleep(10000);
    /* the periodic fetch has been answered with the old set (sent after the delay) */
    assert_true(srv_jwks_hits(&f.s) > hits);
    srv_set_jwks(&f.s, jwks_of(K.jwk_r1, K.jwk_k2), 0);
    assert_int_equal(check(a, h2, &reason), AUTH_OK);
    assert_int_equal(stats(a).keys, 2);
    fx_stop(&f, a);
    free(h2);
}

struct flood {
    struct auth *a;
    int n, unknown;
    unsigned seed;
};

static void *flood_main(void *arg)
{
    struct flood *f = arg;
    for (int i = 0; i < f->n; i++) {
        char kid[32];
        const char *reason;
        snprintf(kid, sizeof(kid), "rnd-%u-%d", f->seed, i);
        /* refused on the kid, before any signature: a real one would only cost time */
        char *hdr = mint_printf("{\"alg\":\"RS256\",\"kid\":\"%s\"}", kid);
        char *t = mint_token(hdr, "{\"sub\":\"attacker\"}", MINT_NONE, NULL, NULL, 0);
        char *h = mint_printf("Bearer %sAAAA", t);
        free(hdr);
        free(t);
        if (check(f->a, h, &reason) == AUTH_INVALID && !strcmp(reason, "unknown key"))
            f->unknown++;
        free(h);
    }
    return NULL;
}

static void test_min_refresh_bound_under_kid_flood(void **state)
{
    struct jwks_fx f;
    struct flood fl[4];
    pthread_t t[4];
    (void)state;
    fx_start(&f);
    f.c.jwks_min_refresh_s = 30;
    struct auth *a = fx_auth(&f);
    for (int i = 0; i < 4; i++) {
        fl[i] = (struct flood){.a = a, .n = 50, .seed = (unsigned)i};
        assert_int_equal(pthread_create(&t[i], NULL, flood_main, &fl[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(fl[i].unknown, 50);
    }
    /* 200 random kids: the start-up fetch and exactly one on-demand fetch */
    assert_int_equal(srv_jwks_hits(&f.s), 2);
    assert_int_equal(auth_failures(a, reason_index("unknown key")), 200);
    fx_stop(&f, a);
}

static void test_refresh_failure_keeps_keys(void **state)
{
    struct jwks_fx f;
    const char *reason;
    (void)state;
    fx_start(&f);
    f.c.jwks_min_refresh_s = 0; /* every unknown kid may ask: each ask below reaches the server */
    struct auth *a = fx_auth(&f);

    const char *outages[][2] = {{"{\"error\":\"down\"}", "500"},
                                {"<html>not json</html>", "200"},
                                {"{\"keys\":[]}", "200"}};
    for (size_t i = 0; i < 3; i++) {
        size_t hits = srv_jwks_hits(&f.s);
        srv_set_jwks(&f.s, strdup(outages[i][0]), atoi(outages[i][1]));
        char *unknown = bearer(K.k2, "k2", "c-2", time(NULL) + 600);
        assert_int_equal(check(a, unknown, &reason), AUTH_INVALID);
        assert_string_equal(reason, "unknown key");
        assert_true(srv_jwks_hits(&f.s) >= hits + 1); /* (+ retries of the failed fetch) */
        /* a token never seen before, so its signature is verified with the old keys now */
        char sub[16];
        snprintf(sub, sizeof(sub), "c-%zu", i);
        char *known = bearer(K.r1, "r1", sub, time(NULL) + 600);
        assert_int_equal(check(a, known, &reason), AUTH_OK);
        assert_true(auth_ready(a));
        free(unknown);
        free(known);
    }
    assert_true(stats(a).jwks_fetch_failures >= 3);
    assert_int_equal(stats(a).keys, 1);
    fx_stop(&f, a);
}

/* While the issuer fails, a token naming an unknown kid is refused at once
 * rather than waiting for the retry under way: such tokens need no valid
 * signature, and each wait would hold a request thread through the outage. */
static void test_unknown_kid_does_not_wait_on_a_failing_issuer(void **state)
{
    struct jwks_fx f;
    const char *reason;
    char *h2 = bearer(K.k2, "k2", "c-2", time(NULL) + 600);
    (void)state;
    fx_start(&f);
    f.c.jwks_min_refresh_s = 3600; /* one on-demand fetch, then only the retries */
    f.c.jwks_timeout_ms = 3000;
    struct auth *a = fx_auth(&f);
    srv_set_jwks(&f.s, strdup("{\"error\":\"down\"}"), 500);
    assert_int_equal(check(a, h2, &reason), AUTH_INVALID); /* the on-demand fetch fails */
    size_t hits = srv_jwks_hits(&f.s);
    srv_set_delay(&f.s, 2500); /* the retry (due in about 1 s) hangs */
    for (int i = 0; i < 400 && srv_jwks_hits(&f.s) == hits; i++)
        usleep(10000);
    assert_true(srv_jwks_hits(&f.s) > hits); /* the retry is under way */
    int64_t t0 = util_mono_ms();
    assert_int_equal(check(a, h2, &reason), AUTH_INVALID);
    assert_string_equal(reason, "unknown key");
    assert_true(util_mono_ms() - t0 < 1000); /* not the retry's 2.5 s */
    assert_true(auth_ready(a));              /* the last good keys stay */
    fx_stop(&f, a);
    free(h2);
}

static void test_removed_key_invalidates_cached_tokens(void **state)
{
    struct jwks_fx f;
    const char *reason;
    char *h1 = bearer(K.r1, "r1", "c-1", time(NULL) + 600);
    char *h2 = bearer(K.k2, "k2", "c-2", time(NULL) + 600);
    (void)state;
    fx_start(&f);
    f.c.jwks_min_refresh_s = 0;
    struct auth *a = fx_auth(&f);
    assert_int_equal(check(a, h1, &reason), AUTH_OK);
    assert_int_equal(check(a, h1, &reason), AUTH_OK);
    assert_int_equal(stats(a).cache_hits, 1);
    /* the issuer drops r1 for k2 (say r1 leaked); k2's first token brings the new set */
    srv_set_jwks(&f.s, jwks_of(K.jwk_k2, NULL), 0);
    assert_int_equal(check(a, h2, &reason), AUTH_OK);
    /* r1's token was cached under the old set: it is verified again, and refused */
    size_t hits = srv_jwks_hits(&f.s);
    assert_int_equal(check(a, h1, &reason), AUTH_INVALID);
    assert_string_equal(reason, "unknown key");
    assert_int_equal(srv_jwks_hits(&f.s), hits + 1);
    fx_stop(&f, a);
    free(h1);
    free(h2);
}

static void test_background_refresh(void **state)
{
    struct jwks_fx f;
    const char *reason;
    (void)state;
    fx_start(&f);
    f.c.jwks_refresh_s = 1;
    f.c.jwks_min_refresh_s = 3600; /* so only the periodic refresh can bring k2 in */
    struct auth *a = fx_auth(&f);
    srv_set_jwks(&f.s, jwks_of(K.jwk_r1, K.jwk_k2), 0);
    for (int i = 0; i < 300 && stats(a).keys < 2; i++)
        usleep(10000);
    assert_int_equal(stats(a).keys, 2);
    char *h2 = bearer(K.k2, "k2", "c-2", time(NULL) + 600);
    assert_int_equal(check(a, h2, &reason), AUTH_OK);
    /* an unchanged set is fetched again but not swapped */
    size_t hits = srv_jwks_hits(&f.s);
    for (int i = 0; i < 300 && srv_jwks_hits(&f.s) == hits; i++)
        usleep(10000);
    assert_true(srv_jwks_hits(&f.s) > hits);
    assert_int_equal(stats(a).key_set_changes, 2);
    fx_stop(&f, a);
    free(h2);
}

static void test_requesting_thread_waits_at_most_timeout(void **state)
{
    struct jwks_fx f;
    const char *reason;
    char *h2 = bearer(K.k2, "k2", "c-2", time(NULL) + 600);
    (void)state;
    fx_start(&f);
    f.c.jwks_timeout_ms = 300;
    struct auth *a = fx_auth(&f);
    srv_set_delay(&f.s, 2000);
    int64_t t0 = util_mono_ms();
    assert_int_equal(check(a, h2, &reason), AUTH_INVALID);
    int64_t waited = util_mono_ms() - t0;
    assert_string_equal(reason, "unknown key");
    assert_true(waited >= 250);
    assert_true(waited < 1500);
    auth_free(a);

    /* stopping aborts a fetch still under way instead of waiting for its timeout */
    srv_set_delay(&f.s, 4000);
    f.c.jwks_timeout_ms = 10000;
    a = started(&f.c);
    usleep(200000);
    assert_false(auth_ready(a));
    t0 = util_mono_ms();
    auth_free(a);
    assert_true(util_mono_ms() - t0 < 2500);
    fx_stop(&f, NULL);
    free(h2);
}

static void test_discovery_from_issuer(void **state)
{
    struct srv s;
    struct auth_config c = base_config();
    const char *reason;
    (void)state;
    srv_start(&s);
    char *issuer = srv_url(&s, "");
    char *jwks = srv_url(&s, "/jwks");
    srv_set_jwks(&s, jwks_of(K.jwk_r1, NULL), 0);
    pthread_mutex_lock(&s.mu);
    s.discovery = mint_printf("{\"issuer\":\"%s\",\"jwks_uri\":\"%s\"}", issuer, jwks);
    pthread_mutex_unlock(&s.mu);
    c.issuer = issuer;
    struct auth *a = started(&c);
    assert_true(wait_ready(a, 5000));
    char *hdr = mint_printf("%s", "{\"alg\":\"RS256\",\"kid\":\"r1\"}");
    char *pl = mint_printf("{\"iss\":\"%s\",\"aud\":\"order-api\",\"sub\":\"c\",\"exp\":%lld}",
                           issuer, (long long)time(NULL) + 600);
    char *t = mint_token(hdr, pl, MINT_RS256, K.r1, NULL, 0);
    char *h = mint_printf("Bearer %s", t);
    assert_int_equal(check(a, h, &reason), AUTH_OK);
    pthread_mutex_lock(&s.mu);
    assert_int_equal(s.discovery_hits, 1);
    pthread_mutex_unlock(&s.mu);
    auth_free(a);

    /* a discovery document for another issuer is not trusted */
    pthread_mutex_lock(&s.mu);
    free(s.discovery);
    s.discovery = mint_printf("{\"issuer\":\"https://evil.example\",\"jwks_uri\":\"%s\"}", jwks);
    pthread_mutex_unlock(&s.mu);
    a = started(&c);
    assert_false(wait_ready(a, 500));
    assert_true(stats(a).jwks_fetch_failures >= 1);
    auth_free(a);
    srv_stop(&s);
    free(issuer);
    free(jwks);
    free(hdr);
    free(pl);
    free(t);
    free(h);
}

static void test_oversized_jwks_response_refused(void **state)
{
    struct srv s;
    struct auth_config c = base_config();
    char *url = NULL;
    (void)state;
    srv_start(&s);
    /* a valid set padded past 256 KiB with an ignored member */
    char *pad = malloc(300 * 1024);
    assert_non_null(pad);
    memset(pad, 'x', 300 * 1024 - 1);
    pad[300 * 1024 - 1] = '\0';
    srv_set_jwks(&s, mint_printf("{\"keys\":[%s],\"pad\":\"%s\"}", K.jwk_r1, pad), 0);
    free(pad);
    url = srv_url(&s, "/jwks");
    c.jwks_url = url;
    struct auth *a = started(&c);
    assert_false(wait_ready(a, 500));
    assert_true(stats(a).jwks_fetch_failures >= 1);
    auth_free(a);
    srv_stop(&s);
    free(url);
}

static void test_failure_counters_by_reason(void **state)
{
    struct auth_config c = base_config();
    char *set = jwks_of(K.jwk_r1, NULL);
    char *expired = bearer(K.r1, "r1", "c", time(NULL) - 3600);
    const char *reason;
    (void)state;
    c.jwks_file = write_jwks_file(set);
    struct auth *a = started(&c);
    assert_true(wait_ready(a, 5000));
    assert_int_equal(check(a, expired, &reason), AUTH_INVALID);
    assert_int_equal(check(a, expired, &reason), AUTH_INVALID);
    assert_int_equal(check(a, NULL, &reason), AUTH_NO_TOKEN);
    assert_int_equal(auth_failures(a, reason_index("expired")), 2);
    assert_int_equal(auth_failures(a, reason_index("no token")), 1);
    assert_int_equal(auth_failures(a, reason_index("ok")), 0);
    assert_int_equal(auth_failures(a, auth_reason_table_size()), 0);
    /* the reason handed out is the table's own static string, never built from the token */
    bool from_table = false;
    for (size_t i = 0; i < auth_reason_table_size(); i++)
        from_table = from_table || reason == auth_reason_name(i);
    assert_true(from_table);
    assert_string_equal(reason, "no token");
    auth_free(a);
    free((char *)c.jwks_file);
    free(set);
    free(expired);
}

/* ---- rate limiter ---- */

static void test_ratelimit_bucket(void **state)
{
    struct ratelimit *r = ratelimit_new(1, 3, 100);
    int64_t retry = 0;
    (void)state;
    assert_non_null(r);
    for (int i = 0; i < 3; i++)
        assert_true(ratelimit_take(r, "alice", 1000, &retry));
    assert_false(ratelimit_take(r, "alice", 1000, &retry));
    assert_int_equal(retry, 1);
    assert_false(ratelimit_take(r, "alice", 1500, &retry)); /* half a token */
    assert_true(ratelimit_take(r, "alice", 2000, &retry));
    assert_false(ratelimit_take(r, "alice", 2000, &retry));
    /* refill stops at the burst */
    for (int i = 0; i < 3; i++)
        assert_true(ratelimit_take(r, "alice", 100000, &retry));
    assert_false(ratelimit_take(r, "alice", 100000, &retry));
    /* a clock that steps back neither refills nor breaks the bucket */
    assert_false(ratelimit_take(r, "alice", 50, &retry));
    ratelimit_free(r);

    r = ratelimit_new(0.25, 1, 10);
    assert_true(ratelimit_take(r, "bob", 0, &retry));
    assert_false(ratelimit_take(r, "bob", 0, &retry));
    assert_int_equal(retry, 4);
    ratelimit_free(r);
}

static void test_ratelimit_off(void **state)
{
    struct ratelimit *r = ratelimit_new(0, 100, 10);
    (void)state;
    assert_non_null(r);
    for (int i = 0; i < 10000; i++)
        assert_true(ratelimit_take(r, "flood", 0, NULL));
    assert_int_equal(ratelimit_size(r), 0);
    ratelimit_free(r);
    assert_null(ratelimit_new(-1, 1, 10));
}

static void test_ratelimit_tenants_independent(void **state)
{
    struct ratelimit *r = ratelimit_new(50, 100, 10000);
    (void)state;
    for (int i = 0; i < 100; i++)
        assert_true(ratelimit_take(r, "tenant-a", 0, NULL));
    assert_false(ratelimit_take(r, "tenant-a", 0, NULL));
    for (int i = 0; i < 100; i++)
        assert_true(ratelimit_take(r, "tenant-b", 0, NULL));
    assert_false(ratelimit_take(r, "tenant-b", 0, NULL));
    assert_true(ratelimit_take(r, "tenant-c", 0, NULL));
    /* "tenant-a" and "tenant-a\0..." style prefixes are different keys */
    assert_true(ratelimit_take(r, "tenant-", 0, NULL));
    assert_int_equal(ratelimit_size(r), 4);
    ratelimit_free(r);
}

static void test_ratelimit_bounded_memory(void **state)
{
    struct ratelimit *r = ratelimit_new(1, 2, 128);
    char key[32];
    (void)state;
    assert_true(ratelimit_take(r, "first", 0, NULL));
    assert_true(ratelimit_take(r, "first", 0, NULL));
    assert_false(ratelimit_take(r, "first", 0, NULL));
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "k-%d", i);
        assert_true(ratelimit_take(r, key, 0, NULL));
        assert_true(ratelimit_size(r) <= 128);
    }
    assert_int_equal(ratelimit_size(r), 128);
    /* "first" was evicted long ago and comes back with a full bucket */
    assert_true(ratelimit_take(r, "first", 0, NULL));
    ratelimit_free(r);
}

struct taker {
    struct ratelimit *r;
    const char *key;
    int ok;
};

static void *take_many(void *arg)
{
    struct taker *t = arg;
    for (int i = 0; i < 2000; i++)
        if (ratelimit_take(t->r, t->key, 0, NULL))
            t->ok++;
    return NULL;
}

static void test_ratelimit_threads(void **state)
{
    struct ratelimit *r = ratelimit_new(1, 100, 10000);
    struct taker t[8];
    pthread_t th[8];
    (void)state;
    /* four threads share "shared"; four others each flood their own tenant */
    const char *keys[8] = {"shared", "shared", "shared", "shared", "t1", "t2", "t3", "t4"};
    for (int i = 0; i < 8; i++) {
        t[i] = (struct taker){.r = r, .key = keys[i]};
        assert_int_equal(pthread_create(&th[i], NULL, take_many, &t[i]), 0);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(t[0].ok + t[1].ok + t[2].ok + t[3].ok, 100);
    for (int i = 4; i < 8; i++)
        assert_int_equal(t[i].ok, 100);
    ratelimit_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors_name_the_variable),
        cmocka_unit_test(test_not_ready_until_keys_load),
        cmocka_unit_test(test_jwks_file_happy_path_and_no_token),
        cmocka_unit_test(test_oversized_authorization_header),
        cmocka_unit_test(test_cache_hit_skips_signature),
        cmocka_unit_test(test_cache_off_and_bounded),
        cmocka_unit_test(test_unknown_kid_then_rotated_in),
        cmocka_unit_test(test_rotated_in_during_a_periodic_fetch),
        cmocka_unit_test(test_min_refresh_bound_under_kid_flood),
        cmocka_unit_test(test_refresh_failure_keeps_keys),
        cmocka_unit_test(test_unknown_kid_does_not_wait_on_a_failing_issuer),
        cmocka_unit_test(test_removed_key_invalidates_cached_tokens),
        cmocka_unit_test(test_background_refresh),
        cmocka_unit_test(test_requesting_thread_waits_at_most_timeout),
        cmocka_unit_test(test_discovery_from_issuer),
        cmocka_unit_test(test_oversized_jwks_response_refused),
        cmocka_unit_test(test_failure_counters_by_reason),
        cmocka_unit_test(test_ratelimit_bucket),
        cmocka_unit_test(test_ratelimit_off),
        cmocka_unit_test(test_ratelimit_tenants_independent),
        cmocka_unit_test(test_ratelimit_bounded_memory),
        cmocka_unit_test(test_ratelimit_threads),
    };
    return cmocka_run_group_tests(tests, suite_setup, suite_teardown);
}
