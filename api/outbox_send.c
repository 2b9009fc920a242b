/*
 * outbox_send.c - sends one round of outbox rows to SQS and says, per row,
 * what happened.
 *
 * A round is split into SendMessageBatch calls of ten that run at once over
 * one curl multi handle (keep-alive connections are reused across rounds).
 * Each call gets exactly one attempt here: a row that did not go out stays
 * SEND_RETRY and the publisher reschedules it with backoff, so a failing SQS
 * is never hammered from this loop. Every result slot is written before
 * anything is sent, so no path can leave a row's outcome undefined.
 */
#include "outbox_send.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int outbox_sender_init(struct outbox_sender *s, struct sqs_client *sqs, const char *queue_url)
{
    memset(s, 0, sizeof(*s));
    s->sqs = sqs;
    s->queue_url = queue_url;
    s->multi = curl_multi_init();
    return s->multi ? 0 : -1;
}

void outbox_sender_cleanup(struct outbox_sender *s)
{
    if (s->multi)
        curl_multi_cleanup(s->multi);
    s->multi = NULL;
}

char *outbox_batch_encode(const char *queue_url, const struct outbox_msg *m, size_t n)
{
    struct sqs_send_entry e[SQS_MAX_BATCH];
    struct sqs_attr attrs[SQS_MAX_BATCH][2];
    char ids[SQS_MAX_BATCH][24];

    if (n == 0 || n > SQS_MAX_BATCH)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%zu", i);
        attrs[i][0] = (struct sqs_attr){"correlation_id", m[i].correlation_id};
        attrs[i][1] = (struct sqs_attr){"traceparent", m[i].traceparent};
        e[i] = (struct sqs_send_entry){.id = ids[i],
                                       .body = m[i].body,
                                       .attrs = attrs[i],
                                       .n_attrs = m[i].traceparent[0] ? 2 : 1,
                                       .trace_header =
                                           m[i].trace_header[0] ? m[i].trace_header : NULL};
    }
    return sqs_encode_send_message_batch(queue_url, e, n);
}

/* Entry ids are the decimal index of the row in its batch: "0".."9". */
static long entry_index(const char *id, size_t n)
{
    if (!id || id[0] < '0' || id[0] > '9' || (id[1] != '\0' && id[0] == '0'))
        return -1;
    char *end;
    long idx = strtol(id, &end, 10);
    return (*end == '\0' && idx >= 0 && (size_t)idx < n) ? idx : -1;
}

/* The error ends up in outbox.last_error, a text column that refuses invalid
 * UTF-8: SQS's code and message are cut at character boundaries (a "%.160s"
 * cut in bytes could split a character, and then the row could be neither
 * parked nor backed off). */
static void result_set(struct send_result *r, enum send_outcome o, const char *code,
                       const char *message)
{
    char c[81], m[161];
    r->outcome = o;
    aws_text_copy(c, sizeof(c), code ? code : "error");
    aws_text_copy(m, sizeof(m), message ? message : "");
    snprintf(r->error, sizeof(r->error), "%s%s%s", c, m[0] ? ": " : "", m);
}
_Static_assert(sizeof(((struct send_result *)0)->error) >= 80 + 2 + 160 + 1,
               "code and message fit the error whole");

static void results_fill(struct send_result *out, size_t n, const char *why)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        result_set(&out[i], SEND_RETRY, why, NULL);
    }
}

void outbox_batch_apply(const struct sqs_batch_result *res, size_t n, struct send_result *out)
{
    results_fill(out, n, "no answer for this entry");
    for (size_t k = 0; k < res->n_ok; k++) {
        long i = entry_index(res->ok_ids[k], n);
        if (i < 0)
            continue;
        const char *mid = res->ok_message_ids ? res->ok_message_ids[k] : NULL;
        out[i].outcome = SEND_OK;
        out[i].error[0] = '\0';
        util_strlcpy(out[i].message_id, mid ? mid : "", sizeof(out[i].message_id));
    }
    for (size_t k = 0; k < res->n_failed; k++) {
        const struct sqs_batch_failure *f = &res->failed[k];
        long i = entry_index(f->id, n);
        if (i < 0 || out[i].outcome == SEND_OK)
            continue; /* an entry reported both ways was sent: keep the message id */
        result_set(&out[i], f->sender_fault ? SEND_REJECTED : SEND_RETRY, f->code, f->message);
    }
}

static size_t batch_len(size_t n, size_t b)
{
    size_t off = b * SQS_MAX_BATCH;
    return n - off < SQS_MAX_BATCH ? n - off : SQS_MAX_BATCH;
}

/* Decodes the answer of batch b into out; the slots already say RETRY. */
static void batch_done(struct outbox_sender *s, struct sqs_request *r, CURLcode rc, size_t k,
                       struct send_result *out)
{
    struct sqs_error serr;
    struct sqs_batch_result res;
    size_t len;

    if (sqs_request_complete(r, rc, &serr) != 0) {
        atomic_fetch_add(&s->errors, 1);
        for (size_t i = 0; i < k; i++)
            result_set(&out[i], SEND_RETRY, serr.type[0] ? serr.type : "error", serr.message);
        return;
    }
    const char *resp = sqs_request_response(r, &len);
    if (sqs_decode_batch_result(resp, len, &res, &serr) != 0) {
        atomic_fetch_add(&s->errors, 1);
        for (size_t i = 0; i < k; i++)
            result_set(&out[i], SEND_RETRY, "unreadable answer", serr.message);
        return;
    }
    outbox_batch_apply(&res, k, out);
    if (res.n_failed)
        atomic_fetch_add(&s->errors, 1);
    sqs_batch_result_free(&res);
}

size_t outbox_send(struct outbox_sender *s, const struct outbox_msg *m, size_t n,
                   struct send_result *out)
{
    struct sqs_request *req[OUTBOX_ROUND_MAX / SQS_MAX_BATCH] = {0};
    size_t nb, running = 0, sent = 0;
    struct sqs_error serr;

    if (n > OUTBOX_ROUND_MAX)
        n = OUTBOX_ROUND_MAX;
    results_fill(out, n, "not sent");
    nb = (n + SQS_MAX_BATCH - 1) / SQS_MAX_BATCH;
    for (size_t b = 0; b < nb; b++) {
        size_t off = b * SQS_MAX_BATCH, k = batch_len(n, b);
        char *body = outbox_batch_encode(s->queue_url, &m[off], k);
        if (!body) {
            /* a row SQS could never take (or no memory): say so, row by row */
            for (size_t i = 0; i < k; i++)
                result_set(&out[off + i], SEND_RETRY, "encoding failed", NULL);
            continue;
        }
        /* the request carries its batch number: no search when it completes */
        req[b] = sqs_request_new(s->sqs, SQS_SEND_MESSAGE_BATCH, body, (void *)(uintptr_t)(b + 1));
        if (!req[b]) {
            for (size_t i = 0; i < k; i++)
                result_set(&out[off + i], SEND_RETRY, "out of memory", NULL);
            continue;
        }
        if (sqs_request_prepare(req[b], 0, &serr) != 0 ||
            curl_multi_add_handle(s->multi, sqs_request_easy(req[b])) != CURLM_OK) {
            for (size_t i = 0; i < k; i++)
                result_set(&out[off + i], SEND_RETRY, serr.type[0] ? serr.type : "error",
                           serr.message);
            sqs_request_free(req[b]);
            req[b] = NULL;
            continue;
        }
        atomic_fetch_add(&s->requests, 1);
        running++;
    }

    int still = running > 0;
    while (still) {
        if (curl_multi_perform(s->multi, &still) != CURLM_OK)
            break;
        if (still)
            curl_multi_poll(s->multi, NULL, 0, 1000, NULL);
    }
    CURLMsg *msg;
    int q;
    while ((msg = curl_multi_info_read(s->multi, &q))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        struct sqs_request *r = NULL;
        curl_multi_remove_handle(s->multi, easy);
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r); /* set by sqs_request_prepare */
        size_t b = r ? (size_t)(uintptr_t)sqs_request_userdata(r) : 0;
        if (b == 0 || b > nb || req[b - 1] != r)
            continue; /* not one of this round's: cannot happen, and must not crash */
        batch_done(s, r, rc, batch_len(n, b - 1), &out[(b - 1) * SQS_MAX_BATCH]);
        sqs_request_free(r);
        req[b - 1] = NULL;
    }
    for (size_t b = 0; b < nb; b++)
        if (req[b]) { /* the multi gave up on it: its rows stay SEND_RETRY */
            curl_multi_remove_handle(s->multi, sqs_request_easy(req[b]));
            sqs_request_free(req[b]);
        }
    size_t rejected = 0;
    for (size_t i = 0; i < n; i++) {
        sent += out[i].outcome == SEND_OK;
        rejected += out[i].outcome == SEND_REJECTED;
    }
    atomic_fetch_add(&s->sent, sent);
    atomic_fetch_add(&s->rejected, rejected);
    return sent;
}
