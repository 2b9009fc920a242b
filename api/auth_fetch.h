/*
 * auth_fetch.h - the network side of key loading: which URLs may serve keys,
 * one bounded GET, and OpenID Connect discovery. Stateless; used by auth.c.
 */
#ifndef ORDER_AUTH_FETCH_H
#define ORDER_AUTH_FETCH_H

#include <stdatomic.h>
#include <stdint.h>

#include "util.h"

/* The largest discovery document or key set accepted. */
#define AUTH_MAX_FETCH_BYTES (256 * 1024)

/* 0 when url may serve keys: https://, or http:// to a loopback host only.
 * Otherwise -1 with "<name>: why" in err. */
int auth_check_key_url(const char *name, const char *url, char *err, size_t errlen);

/* GET url into body (reset first; at most AUTH_MAX_FETCH_BYTES), TLS verified,
 * redirects only to https, within timeout_ms; abandoned as soon as *stop is
 * true. 0 on a 200 answer, else -1 with the reason in err. */
int auth_http_get(const char *url, int64_t timeout_ms, const atomic_bool *stop, struct buf *body,
                  char *err, size_t errlen);

/* OpenID Connect Discovery 1.0 section 4: the jwks_uri that issuer publishes
 * (its document's issuer must equal issuer exactly, and the URI must pass
 * auth_check_key_url). A new string, or NULL with the reason in err. */
char *auth_discover(const char *issuer, int64_t timeout_ms, const atomic_bool *stop, char *err,
                    size_t errlen);

#endif
