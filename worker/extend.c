/*
 * extend.c - keeps the visibility of held messages from running out: sends
 * the ChangeMessageVisibilityBatch calls that visibility.c schedules and
 * reads each answer entry by entry.
 *
 * A message's new deadline counts from when its call went out, not from the
 * answer, so a slow answer never makes the worker believe in time it does not
 * have. A message that is acknowledged or freed while its extension is out is
 * detached from the call (extend_forget), so the answer never touches freed
 * memory.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loop.h"

static struct {
    struct sqs_client *sqs;
    struct vis_policy policy;
    struct vis_queue vis;
    int calls;              /* OP_EXTEND outstanding */
    int64_t backoff_until;  /* after a failed call, no extension before this */
    unsigned call_failures; /* consecutive */
    int64_t log_at;         /* the next progress line, at most one a second */
    uint64_t log_n;         /* messages sent for extension since the last line */
} E;

void extend_init(struct sqs_client *sqs)
{
    E.sqs = sqs;
    vis_policy_init(&E.policy, wcfg.visibility_s);
}

void extend_track(struct held *h)
{
    vis_queue_insert(&E.vis, h);
}

void extend_forget(struct held *h)
{
    vis_queue_remove(&E.vis, h);
    if (h->ext_op) {
        ((struct op *)h->ext_op)->items[h->ext_slot] = NULL;
        h->ext_op = NULL;
    }
}

/* One ChangeMessageVisibilityBatch extending h[0..n) (n <= SQS_MAX_BATCH). */
static void send_extension(struct held **h, size_t n, int64_t now)
{
    struct receipt_batch b;
    receipt_batch_fill(&b, h, n, (int)wcfg.visibility_s);
    char *body = sqs_encode_change_visibility_batch(wcfg.queue_url, b.e, b.n);
    struct op *o = calloc(1, sizeof(*o));
    struct sqs_request *req =
        o ? sqs_request_new(E.sqs, SQS_CHANGE_MESSAGE_VISIBILITY_BATCH, body, o) : NULL;
    if (!o)
        free(body);
    if (!req) {
        /* cannot even be built: back in the queue, tried again at the next tick */
        free(o);
        log_warn(NULL, "cannot build a ChangeMessageVisibilityBatch request (%zu messages)", n);
        for (size_t i = 0; i < n; i++)
            vis_queue_insert(&E.vis, h[i]);
        E.backoff_until = now + util_backoff_ms(E.call_failures++, 250, 5000);
        return;
    }
    o->kind = OP_EXTEND;
    o->req = req;
    o->n = n;
    for (size_t i = 0; i < n; i++) {
        o->items[i] = h[i];
        h[i]->ext_op = o;
        h[i]->ext_slot = i;
        h[i]->ext_sent_ms = now;
    }
    E.calls++;
    atomic_fetch_add(&wmetrics.visibility_calls, 1);
    loop_submit(o);
}

/* Sends the extensions that are due now, paced by vis_take_due. */
void extend_visibility(int64_t now, int64_t *next_timer)
{
    struct held *due[16 * SQS_MAX_BATCH];
    int64_t next;
    if (now < E.backoff_until) {
        if (E.backoff_until < *next_timer)
            *next_timer = E.backoff_until;
        return;
    }
    size_t max = sizeof(due) / sizeof(due[0]);
    size_t n = vis_take_due(&E.vis, &E.policy, now, EXTEND_MAX_CALLS - E.calls, due, max, &next);
    if (next < *next_timer)
        *next_timer = next;
    for (size_t i = 0; i < n; i++)
        if (due[i]->visible_until_ms <= now) {
            struct log_fields f = fields_of(due[i]);
            atomic_fetch_add(&wmetrics.visibility_expired, 1);
            log_kv(LOG_WARN, &f, "visibility ran out before its extension: may be redelivered",
                   "late_ms", (long long)(now - due[i]->visible_until_ms), NULL);
        }
    for (size_t off = 0; off < n; off += SQS_MAX_BATCH)
        send_extension(due + off, n - off < SQS_MAX_BATCH ? n - off : SQS_MAX_BATCH, now);
    E.log_n += n;
    if (E.log_n && now >= E.log_at) {
        log_kv(LOG_INFO, NULL, "extending visibility of held messages", "count", (long long)E.log_n,
               "waiting", (long long)E.vis.n, "calls_outstanding", (long long)E.calls, NULL);
        E.log_n = 0;
        E.log_at = now + 1000;
    }
}

/* Entry errors after which extending that receipt again cannot succeed. */
static bool extension_hopeless(const char *code)
{
    return code &&
           (strcmp(code, "ReceiptHandleIsInvalid") == 0 ||
            strcmp(code, "MessageNotInflight") == 0 || strcmp(code, "InvalidParameterValue") == 0);
}

/* The answer to an OP_EXTEND: each message extended goes back in the queue
 * with its new deadline, each one that failed with its old one (so it is due
 * again at once), up to three times in a row. */
void extension_done(struct op *o, CURLcode code)
{
    struct sqs_error err;
    struct sqs_batch_result res = {0};
    bool ok[SQS_MAX_BATCH] = {false};
    const char *why[SQS_MAX_BATCH] = {NULL};
    int64_t now = util_mono_ms();
    bool answered = sqs_request_complete(o->req, code, &err) == 0;
    E.calls--;
    if (answered) {
        size_t len;
        const char *resp = sqs_request_response(o->req, &len);
        answered = sqs_decode_batch_result(resp, len, &res, &err) == 0;
    }
    if (answered) {
        receipt_batch_outcome(&res, o->n, ok);
        for (size_t i = 0; i < res.n_failed; i++) {
            int k = receipt_batch_index(res.failed[i].id, o->n);
            if (k >= 0)
                why[k] = res.failed[i].code ? res.failed[i].code : "unknown";
        }
        E.call_failures = 0;
    } else {
        atomic_fetch_add(&wmetrics.sqs_errors, 1);
        int64_t d = util_backoff_ms(E.call_failures++, 250, 5000);
        E.backoff_until = now + d;
        log_warn(NULL,
                 "SQS ChangeMessageVisibilityBatch failed (%s%s%s); extensions resume in %lld ms",
                 err.type[0] ? err.type : "", err.type[0] ? ": " : "", err.message, (long long)d);
    }
    for (size_t i = 0; i < o->n; i++) {
        struct held *h = o->items[i];
        if (!h)
            continue; /* freed while the request was out */
        h->ext_op = NULL;
        if (h->state == H_DONE)
            continue; /* acknowledged meanwhile: no longer held */
        if (ok[i]) {
            h->visible_until_ms = h->ext_sent_ms + wcfg.visibility_s * 1000;
            h->ext_failures = 0;
            atomic_fetch_add(&wmetrics.visibility_extended, 1);
            vis_queue_insert(&E.vis, h);
            continue;
        }
        h->ext_failures++;
        if (extension_hopeless(why[i]) || h->ext_failures >= 3) {
            struct log_fields f = fields_of(h);
            log_kv(LOG_WARN, &f, "visibility extension given up: the message may be redelivered",
                   "error", why[i] ? why[i] : "request failed", "attempts",
                   (long long)h->ext_failures, NULL);
            continue;
        }
        vis_queue_insert(&E.vis, h);
    }
    sqs_batch_result_free(&res);
}
