/*
 * guard.h - authentication, scopes and rate limits for order-api requests.
 */
#ifndef ORDER_API_GUARD_H
#define ORDER_API_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* Loads the token verifier (AUTH_MODE=jwt) and the rate limiter. 0 or -1 with err. */
int guard_start(char *err, size_t errlen);
void guard_stop(void);
/* False until the first key set has loaded (AUTH_MODE=jwt). */
bool guard_ready(void);
/* MHD_YES when c may proceed (c->caller filled in); otherwise the refusal
 * has been queued and its result is returned. Public routes always pass. */
enum MHD_Result guard_request(struct req_ctx *c);
/* Appends the auth and rate-limit counters to a /metrics page. */
void guard_metrics(struct buf *b);

#endif
