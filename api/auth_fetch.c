/*
 * auth_fetch.c - getting keys from the network for auth.c: the URL rule for key
 * sources, one bounded HTTPS GET, and OpenID Connect discovery.
 *
 * Design: nothing here holds state; the refresher thread in auth.c calls these
 * with its timeout and its stop flag, so a fetch in progress ends as soon as the
 * API stops. Every answer is size-limited (AUTH_MAX_FETCH_BYTES) before it is
 * parsed, redirects may only lead to https, and TLS is always verified.
 */
#include "auth_fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Keys must come over verified TLS; plain http only where nothing leaves the host. */
int auth_check_key_url(const char *name, const char *url, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = -1;

    if (!u) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(err, errlen, "%s: not a valid URL", name);
    } else if (!strcasecmp(scheme, "https")) {
        rc = 0;
    } else if (!strcasecmp(scheme, "http")) {
        if (util_host_is_loopback(host))
            rc = 0;
        else
            snprintf(err, errlen, "%s: http:// is allowed only for loopback hosts", name);
    } else {
        snprintf(err, errlen, "%s: must be an https:// URL", name);
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

static size_t write_body(char *data, size_t size, size_t n, void *userp)
{
    struct buf *b = userp;
    if (buf_append(b, data, size * n) < 0)
        return 0; /* over AUTH_MAX_FETCH_BYTES: curl aborts with CURLE_WRITE_ERROR */
    return size * n;
}

static int abort_on_stop(void *userp, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    const atomic_bool *stop = userp;
    (void)dt, (void)dn, (void)ut, (void)un;
    return atomic_load(stop) ? 1 : 0;
}

int auth_http_get(const char *url, int64_t timeout_ms, const atomic_bool *stop, struct buf *body,
                  char *err, size_t errlen)
{
    struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
    CURL *curl = curl_easy_init();
    long status = 0;
    CURLcode cc;
    int rc = -1;

    if (!curl || !headers) {
        snprintf(err, errlen, "GET %s: out of memory", url);
        goto done;
    }
    buf_reset(body);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "order-api/" ORDER_VERSION);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    /* A redirect may only lead to https: never from a verified host to plain http. */
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, abort_on_stop);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)stop);
    cc = curl_easy_perform(curl);
    if (cc == CURLE_WRITE_ERROR) {
        snprintf(err, errlen, "GET %s: response larger than %d KiB", url,
                 AUTH_MAX_FETCH_BYTES / 1024);
        goto done;
    }
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "GET %s: %s", url, curl_easy_strerror(cc));
        goto done;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        snprintf(err, errlen, "GET %s: HTTP %ld", url, status);
        goto done;
    }
    rc = 0;
done:
    curl_slist_free_all(headers);
    if (curl)
        curl_easy_cleanup(curl);
    return rc;
}

/* OpenID Connect Discovery 1.0 section 4: issuer + "/.well-known/openid-configuration",
 * whose "issuer" must be ours exactly and whose "jwks_uri" names the keys. */
char *auth_discover(const char *issuer, int64_t timeout_ms, const atomic_bool *stop, char *err,
                    size_t errlen)
{
    const char *wk = "/.well-known/openid-configuration";
    size_t n = strlen(issuer);
    char *url, *uri = NULL;
    struct buf body;
    json_error_t jerr;
    json_t *root = NULL, *iss, *ju;

    while (n > 0 && issuer[n - 1] == '/')
        n--;
    if (!(url = malloc(n + strlen(wk) + 1))) {
        snprintf(err, errlen, "discovery: out of memory");
        return NULL;
    }
    memcpy(url, issuer, n);
    strcpy(url + n, wk);
    buf_init(&body, AUTH_MAX_FETCH_BYTES);
    if (auth_http_get(url, timeout_ms, stop, &body, err, errlen) < 0)
        goto done;
    root = json_loadb(body.data ? body.data : "", body.len, JSON_REJECT_DUPLICATES, &jerr);
    iss = json_object_get(root, "issuer");
    ju = json_object_get(root, "jwks_uri");
    if (!json_is_object(root) || !json_is_string(ju)) {
        snprintf(err, errlen, "%s: not a discovery document with a jwks_uri", url);
        goto done;
    }
    if (!json_is_string(iss) || strcmp(json_string_value(iss), issuer) != 0) {
        snprintf(err, errlen, "%s: its issuer is not AUTH_ISSUER", url);
        goto done;
    }
    if (auth_check_key_url("jwks_uri", json_string_value(ju), err, errlen) < 0)
        goto done;
    if (!(uri = strdup(json_string_value(ju))))
        snprintf(err, errlen, "discovery: out of memory");
done:
    json_decref(root);
    buf_free(&body);
    free(url);
    return uri;
}
