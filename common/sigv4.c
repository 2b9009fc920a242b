/*
 * sigv4.c - AWS Signature Version 4 over HTTP headers: canonical request,
 * string to sign, signing key and the Authorization header value.
 *
 * Design: the path is URI-encoded as given (so an already %-encoded path is
 * encoded a second time), which is what every AWS service but S3 expects and
 * what the official test suite pins; the signer owns X-Amz-Date,
 * X-Amz-Security-Token and X-Amz-Content-Sha256 and refuses them from the
 * caller, so a request can never carry two disagreeing copies.
 */
#include "sigv4.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

/* One header as it enters the canonical form; seq keeps repeated names in request order. */
struct canon_header {
    char *name;  /* lower case */
    char *value; /* trimmed, inner whitespace collapsed */
    size_t seq;
};

struct query_param {
    char *key; /* encoded */
    char *value;
};

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        util_strlcpy(err, msg, errlen);
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

static int sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char empty = '\0';

    if (EVP_Digest(data ? data : &empty, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return -1;
    hex_encode(md, 32, out);
    return 0;
}

static int hmac_sha256(const unsigned char *key, size_t keylen, const void *data, size_t len,
                       unsigned char out[32])
{
    unsigned int outlen = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen) || outlen != 32)
        return -1;
    return 0;
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* RFC 3986 percent-encoding with upper-case hex, as SigV4 requires; keep_slash for paths. */
static int append_encoded(struct buf *b, const char *s, size_t n, bool keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            if (buf_append(b, &s[i], 1) < 0)
                return -1;
        } else {
            char esc[3] = {'%', digits[c >> 4], digits[c & 0x0f]};
            if (buf_append(b, esc, 3) < 0)
                return -1;
        }
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Query parameters are decoded before re-encoding so that "%E1%88%B4" and the raw
 * UTF-8 bytes canonicalize alike; a malformed escape is kept literally. */
static char *decode_then_encode(const char *s, size_t n)
{
    struct buf raw, enc;
    char *out = NULL;

    buf_init(&raw, 0);
    buf_init(&enc, 0);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        if (buf_append(&raw, &c, 1) < 0)
            goto done;
    }
    if (append_encoded(&enc, raw.data ? raw.data : "", raw.len, false) < 0)
        goto done;
    out = enc.data ? enc.data : strdup("");
    buf_init(&enc, 0);
done:
    buf_free(&raw);
    buf_free(&enc);
    return out;
}

static int query_param_cmp(const void *a, const void *b)
{
    const struct query_param *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->value, y->value);
}

/* Sorted by encoded key, then encoded value; "a" without '=' becomes "a=". */
static int append_canonical_query(struct buf *out, const char *query, char *err, size_t errlen)
{
    struct query_param *params = NULL;
    size_t n = 0, cap = 1;
    int rc = -1;

    if (!query || !*query)
        return 0;
    for (const char *p = query; *p; p++)
        cap += *p == '&';
    params = calloc(cap, sizeof(*params));
    if (!params)
        goto oom;

    for (const char *p = query; *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t klen = eq ? (size_t)(eq - p) : len;
            params[n].key = decode_then_encode(p, klen);
            params[n].value = eq ? decode_then_encode(eq + 1, len - klen - 1) : strdup("");
            n++;
            if (!params[n - 1].key || !params[n - 1].value)
                goto oom;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    qsort(params, n, sizeof(*params), query_param_cmp);
    for (size_t i = 0; i < n; i++) {
        if ((i && buf_append(out, "&", 1) < 0) ||
            buf_append(out, params[i].key, strlen(params[i].key)) < 0 ||
            buf_append(out, "=", 1) < 0 ||
            buf_append(out, params[i].value, strlen(params[i].value)) < 0)
            goto oom;
    }
    rc = 0;
    goto done;
oom:
    set_err(err, errlen, "sigv4: out of memory building the canonical query");
done:
    for (size_t i = 0; i < n; i++) {
        free(params[i].key);
        free(params[i].value);
    }
    free(params);
    return rc;
}

/* RFC 3986 remove_dot_segments plus collapsing empty segments, as the SDKs do for
 * every service but S3. A trailing slash (or a final "." / "..") is kept. */
static int append_canonical_path(struct buf *out, const char *path, bool normalize, char *err,
                                 size_t errlen)
{
    struct seg {
        const char *p;
        size_t n;
    } *stack = NULL;
    size_t depth = 0, cap = 1;
    bool trailing = false;
    int rc = -1;

    if (!normalize) {
        if (append_encoded(out, path, strlen(path), true) < 0)
            goto oom;
        return 0;
    }
    for (const char *p = path; *p; p++)
        cap += *p == '/';
    stack = calloc(cap, sizeof(*stack));
    if (!stack)
        goto oom;
    for (const char *p = path; *p;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        bool last = !end;
        if (len == 1 && p[0] == '.') {
            trailing = last;
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (depth)
                depth--;
            trailing = last;
        } else if (len > 0) {
            stack[depth].p = p;
            stack[depth].n = len;
            depth++;
            trailing = false;
        } /* empty segments ("//") collapse away */
        p += len;
        if (*p == '/')
            p++;
    }
    if (*path && path[strlen(path) - 1] == '/')
        trailing = true;
    if (buf_append(out, "/", 1) < 0)
        goto oom;
    for (size_t i = 0; i < depth; i++) {
        if ((i && buf_append(out, "/", 1) < 0) ||
            append_encoded(out, stack[i].p, stack[i].n, false) < 0)
            goto oom;
    }
    if (trailing && depth && buf_append(out, "/", 1) < 0)
        goto oom;
    rc = 0;
    goto done;
oom:
    set_err(err, errlen, "sigv4: out of memory building the canonical path");
done:
    free(stack);
    return rc;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trims and collapses runs of whitespace, including the line breaks of folded values. */
static char *normalize_value(const char *v)
{
    size_t n = strlen(v);
    char *out = malloc(n + 1);
    size_t o = 0;
    bool pending_space = false;

    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (is_space(v[i])) {
            pending_space = o > 0;
            continue;
        }
        if (pending_space)
            out[o++] = ' ';
        pending_space = false;
        out[o++] = v[i];
    }
    out[o] = '\0';
    return out;
}

static bool valid_header_name(const char *name)
{
    if (!*name)
        return false;
    for (const char *p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c >= 0x7f || c == ':')
            return false;
    }
    return true;
}

static int canon_header_cmp(const void *a, const void *b)
{
    const struct canon_header *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int add_header(struct canon_header *h, size_t *n, const char *name, const char *value)
{
    struct canon_header *e = &h[*n];
    e->name = strdup(name);
    e->value = normalize_value(value);
    e->seq = *n;
    (*n)++;
    if (!e->name || !e->value)
        return -1;
    for (char *p = e->name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return 0;
}

static bool signer_owned(const char *name)
{
    return !strcasecmp(name, "x-amz-date") || !strcasecmp(name, "x-amz-security-token") ||
           !strcasecmp(name, "x-amz-content-sha256") || !strcasecmp(name, "authorization");
}

/* Writes the canonical header block and the SignedHeaders list. */
static int append_canonical_headers(struct buf *canon, struct buf *signed_names,
                                    const struct sigv4_request *req, const struct sigv4_signing *s,
                                    const char *amz_date, const char *content_sha256, char *err,
                                    size_t errlen)
{
    struct canon_header *h = calloc(req->n_headers + 3, sizeof(*h));
    size_t n = 0;
    bool have_host = false;
    int rc = -1;

    if (!h)
        goto oom;
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct sigv4_header *in = &req->headers[i];
        if (!in->name || !in->value || !valid_header_name(in->name)) {
            set_err(err, errlen, "sigv4: header with an empty or invalid name or a NULL value");
            goto done;
        }
        if (signer_owned(in->name)) {
            char msg[128];
            snprintf(msg, sizeof(msg), "sigv4: header %.40s is added by the signer", in->name);
            set_err(err, errlen, msg);
            goto done;
        }
        have_host |= !strcasecmp(in->name, "host");
        if (add_header(h, &n, in->name, in->value) < 0)
            goto oom;
    }
    if (!have_host) {
        set_err(err, errlen, "sigv4: the request has no Host header");
        goto done;
    }
    if (add_header(h, &n, "x-amz-date", amz_date) < 0)
        goto oom;
    if (s->creds->session_token[0] &&
        add_header(h, &n, "x-amz-security-token", s->creds->session_token) < 0)
        goto oom;
    if (s->sign_body && add_header(h, &n, "x-amz-content-sha256", content_sha256) < 0)
        goto oom;

    qsort(h, n, sizeof(*h), canon_header_cmp);
    for (size_t i = 0; i < n; i++) {
        bool same_as_prev = i > 0 && !strcmp(h[i].name, h[i - 1].name);
        bool same_as_next = i + 1 < n && !strcmp(h[i].name, h[i + 1].name);
        if (!same_as_prev) {
            if ((signed_names->len && buf_append(signed_names, ";", 1) < 0) ||
                buf_append(signed_names, h[i].name, strlen(h[i].name)) < 0 ||
                buf_append(canon, h[i].name, strlen(h[i].name)) < 0 ||
                buf_append(canon, ":", 1) < 0)
                goto oom;
        }
        if (buf_append(canon, h[i].value, strlen(h[i].value)) < 0 ||
            buf_append(canon, same_as_next ? "," : "\n", 1) < 0)
            goto oom;
    }
    rc = 0;
    goto done;
oom:
    set_err(err, errlen, "sigv4: out of memory building the canonical headers");
done:
    if (h) {
        for (size_t i = 0; i < req->n_headers + 3; i++) {
            free(h[i].name);
            free(h[i].value);
        }
    }
    free(h);
    return rc;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
static int derive_signing_key(const char *secret, const char *date, const char *region,
                              const char *service, unsigned char key[32])
{
    unsigned char ksecret[4 + sizeof(((struct aws_credentials *)0)->secret_access_key)];
    unsigned char k[32];
    size_t slen = strlen(secret);
    int rc = -1;

    if (slen + 4 > sizeof(ksecret))
        return -1;
    memcpy(ksecret, "AWS4", 4);
    memcpy(ksecret + 4, secret, slen);
    if (hmac_sha256(ksecret, slen + 4, date, strlen(date), k) < 0 ||
        hmac_sha256(k, 32, region, strlen(region), k) < 0 ||
        hmac_sha256(k, 32, service, strlen(service), k) < 0 ||
        hmac_sha256(k, 32, "aws4_request", 12, key) < 0)
        goto done;
    rc = 0;
done:
    OPENSSL_cleanse(ksecret, sizeof(ksecret));
    OPENSSL_cleanse(k, sizeof(k));
    return rc;
}

static bool valid_scope_part(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c >= 0x7f || c == '/')
            return false;
    }
    return true;
}

static char *take_buf(struct buf *b)
{
    char *p = b->data ? b->data : strdup("");
    buf_init(b, 0);
    return p;
}

int sigv4_sign(const struct sigv4_request *req, const struct sigv4_signing *s,
               struct sigv4_result *out, char *err, size_t errlen)
{
    struct buf canon, signed_names, sts, auth;
    char date[9], canon_hash[65];
    unsigned char key[32] = {0}, sig[32];
    struct tm tm;
    int rc = -1;

    if (!out) {
        set_err(err, errlen, "sigv4: no result");
        return -1;
    }
    memset(out, 0, sizeof(*out));
    if (!req || !s || !s->creds || !req->method || !*req->method ||
        (req->n_headers && !req->headers)) {
        set_err(err, errlen, "sigv4: missing request, method, signing parameters or credentials");
        return -1;
    }
    if (!valid_scope_part(s->region) || !valid_scope_part(s->service)) {
        set_err(err, errlen, "sigv4: region and service must be non-empty tokens");
        return -1;
    }
    if (!s->creds->access_key_id[0] || !s->creds->secret_access_key[0]) {
        set_err(err, errlen, "sigv4: credentials without an access key id or secret key");
        return -1;
    }
    if (req->path && *req->path && req->path[0] != '/') {
        set_err(err, errlen, "sigv4: the path must start with '/'");
        return -1;
    }
    if (!req->body && req->body_len) {
        set_err(err, errlen, "sigv4: body_len without a body");
        return -1;
    }
    if (!gmtime_r(&s->now, &tm) ||
        !strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm)) {
        set_err(err, errlen, "sigv4: the request time cannot be formatted");
        return -1;
    }
    memcpy(date, out->amz_date, 8);
    date[8] = '\0';
    if (sha256_hex(req->body, req->body_len, out->content_sha256) < 0) {
        set_err(err, errlen, "sigv4: SHA-256 failed");
        return -1;
    }

    buf_init(&canon, 0);
    buf_init(&signed_names, 0);
    buf_init(&sts, 0);
    buf_init(&auth, 0);

    /* Canonical request: method, path, query, headers, signed header names, body hash. */
    if (buf_append(&canon, req->method, strlen(req->method)) < 0 || buf_append(&canon, "\n", 1) < 0)
        goto oom;
    if (append_canonical_path(&canon, req->path && *req->path ? req->path : "/", s->normalize_path,
                              err, errlen) < 0)
        goto done;
    if (buf_append(&canon, "\n", 1) < 0)
        goto oom;
    if (append_canonical_query(&canon, req->query, err, errlen) < 0)
        goto done;
    if (buf_append(&canon, "\n", 1) < 0)
        goto oom;
    if (append_canonical_headers(&canon, &signed_names, req, s, out->amz_date, out->content_sha256,
                                 err, errlen) < 0)
        goto done;
    if (buf_append(&canon, "\n", 1) < 0 ||
        buf_append(&canon, signed_names.data, signed_names.len) < 0 ||
        buf_append(&canon, "\n", 1) < 0 || buf_append(&canon, out->content_sha256, 64) < 0)
        goto oom;

    if (sha256_hex(canon.data, canon.len, canon_hash) < 0) {
        set_err(err, errlen, "sigv4: SHA-256 failed");
        goto done;
    }
    {
        char scope_and_hash[512];
        int n = snprintf(scope_and_hash, sizeof(scope_and_hash),
                         SIGV4_ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s", out->amz_date, date,
                         s->region, s->service, canon_hash);
        if (n < 0 || (size_t)n >= sizeof(scope_and_hash)) {
            set_err(err, errlen, "sigv4: region or service name too long");
            goto done;
        }
        if (buf_append(&sts, scope_and_hash, (size_t)n) < 0)
            goto oom;
    }

    if (derive_signing_key(s->creds->secret_access_key, date, s->region, s->service, key) < 0 ||
        hmac_sha256(key, sizeof(key), sts.data, sts.len, sig) < 0) {
        set_err(err, errlen, "sigv4: HMAC-SHA256 failed");
        goto done;
    }
    hex_encode(sig, sizeof(sig), out->signature);

    {
        char head[512];
        int n = snprintf(head, sizeof(head),
                         SIGV4_ALGORITHM " Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=",
                         s->creds->access_key_id, date, s->region, s->service);
        if (n < 0 || (size_t)n >= sizeof(head)) {
            set_err(err, errlen, "sigv4: credential scope too long");
            goto done;
        }
        if (buf_append(&auth, head, (size_t)n) < 0 ||
            buf_append(&auth, signed_names.data, signed_names.len) < 0 ||
            buf_append(&auth, ", Signature=", 12) < 0 || buf_append(&auth, out->signature, 64) < 0)
            goto oom;
    }

    out->canonical_request = take_buf(&canon);
    out->string_to_sign = take_buf(&sts);
    out->authorization = take_buf(&auth);
    if (!out->canonical_request || !out->string_to_sign || !out->authorization) {
        sigv4_result_free(out);
        goto oom;
    }
    rc = 0;
    goto done;
oom:
    set_err(err, errlen, "sigv4: out of memory");
done:
    OPENSSL_cleanse(key, sizeof(key));
    buf_free(&canon);
    buf_free(&signed_names);
    buf_free(&sts);
    buf_free(&auth);
    if (rc < 0) {
        out->signature[0] = '\0';
    }
    return rc;
}

void sigv4_result_free(struct sigv4_result *r)
{
    if (!r)
        return;
    free(r->authorization);
    free(r->canonical_request);
    free(r->string_to_sign);
    r->authorization = NULL;
    r->canonical_request = NULL;
    r->string_to_sign = NULL;
}
