/*
 * payment_answer.c - the http payment provider's wire format: the request
 * body order-worker sends and the classification of whatever comes back.
 *
 * Pure (no I/O, no globals) so that tests/fuzz/fuzz_payment.c can feed it
 * anything: a provider is outside our control, and what it says is bounded
 * and reduced to printable ASCII before it reaches a log or the database.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "payment.h"
#include "util.h"

void payment_excerpt(char *dst, size_t dstlen, const char *src, size_t len)
{
    size_t n = 0;
    if (!dstlen)
        return;
    for (size_t i = 0; i < len && n + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[n++] = (c >= 0x20 && c <= 0x7e) ? (char)c : '?';
    }
    dst[n] = '\0';
}

char *payment_request_body(const char *order_id, const char *customer_id, int64_t amount_cents,
                           const char *currency)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "order_id", order_id, "customer_id", customer_id,
                          "amount_cents", (json_int_t)amount_cents, "currency", currency);
    if (!o)
        return NULL;
    char *s = util_json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* A string member of the answer, or NULL. */
static const char *member(json_t *j, const char *key, size_t *len)
{
    json_t *v = json_object_get(j, key);
    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return json_string_value(v);
}

static void error_answer(struct payment_answer *a, long status, const char *body, size_t len,
                         bool unexpected)
{
    char excerpt[120];
    payment_excerpt(excerpt, sizeof(excerpt), body, len);
    a->outcome = PAYMENT_ERROR;
    a->unexpected = unexpected;
    snprintf(a->reason, sizeof(a->reason), "http %ld%s%s", status, excerpt[0] ? ": " : "", excerpt);
}

/* A declined answer: the provider's reason, else the fallback. */
static void declined(struct payment_answer *a, json_t *j, const char *fallback)
{
    size_t len = 0;
    const char *r = j ? member(j, "reason", &len) : NULL;
    a->outcome = PAYMENT_DECLINED;
    if (r && len)
        payment_excerpt(a->reason, sizeof(a->reason), r, len);
    else
        util_strlcpy(a->reason, fallback, sizeof(a->reason));
}

void payment_answer_parse(long status, const char *body, size_t len, struct payment_answer *a)
{
    memset(a, 0, sizeof(*a));
    if (!body)
        len = 0;
    json_t *j = NULL;
    if (len && len <= PAYMENT_ANSWER_MAX)
        j = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    if (status == 402 || status == 422) {
        char fallback[16];
        snprintf(fallback, sizeof(fallback), "http_%ld", status);
        declined(a, j, fallback);
    } else if (status == 429 || (status >= 500 && status <= 599)) {
        error_answer(a, status, body, len, false);
    } else if (status >= 200 && status <= 299 && j) {
        size_t slen = 0, plen = 0;
        const char *st = member(j, "status", &slen);
        const char *pid = member(j, "payment_id", &plen);
        if (st && strcmp(st, "approved") == 0 && slen == 8 && pid && plen >= 1 &&
            plen <= PAYMENT_ID_MAX && strlen(pid) == plen) {
            a->outcome = PAYMENT_APPROVED;
            payment_excerpt(a->payment_id, sizeof(a->payment_id), pid, plen);
        } else if (st && strcmp(st, "declined") == 0 && slen == 8) {
            declined(a, j, "declined");
        } else {
            error_answer(a, status, body, len, true);
        }
    } else {
        error_answer(a, status, body, len, true);
    }
    json_decref(j);
}
