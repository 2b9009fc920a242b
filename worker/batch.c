/*
 * batch.c - the entries of the worker's DeleteMessageBatch and
 * ChangeMessageVisibilityBatch requests, and what an answer means for each.
 *
 * Entry ids are the entries' positions ("0".."9"), so failed entries in an
 * answer map straight back to their messages. Pure: no I/O.
 */
#include <stdio.h>
#include <string.h>

#include "worker.h"

size_t receipt_batch_fill(struct receipt_batch *b, struct held *const *h, size_t n,
                          int visibility_s)
{
    if (n > SQS_MAX_BATCH)
        n = SQS_MAX_BATCH;
    for (size_t i = 0; i < n; i++) {
        /* i < SQS_MAX_BATCH (10): the modulo only shows the compiler it fits */
        snprintf(b->ids[i], sizeof(b->ids[i]), "%u", (unsigned)(i % 1000));
        b->e[i] = (struct sqs_receipt_entry){
            .id = b->ids[i], .receipt_handle = h[i]->receipt, .visibility_timeout = visibility_s};
    }
    b->n = n;
    return n;
}

int receipt_batch_index(const char *id, size_t n)
{
    /* exactly the ids receipt_batch_fill writes: one or more digits, no sign, no leading zero */
    if (!id || !id[0] || (id[0] == '0' && id[1]) || strlen(id) > 2)
        return -1;
    int v = 0;
    for (const char *p = id; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    return (size_t)v < n ? v : -1;
}

void receipt_batch_outcome(const struct sqs_batch_result *r, size_t n, bool *ok)
{
    for (size_t i = 0; i < n; i++)
        ok[i] = false;
    for (size_t i = 0; i < r->n_ok; i++) {
        int k = receipt_batch_index(r->ok_ids[i], n);
        if (k >= 0)
            ok[k] = true;
    }
    for (size_t i = 0; i < r->n_failed; i++) {
        int k = receipt_batch_index(r->failed[i].id, n);
        if (k >= 0)
            ok[k] = false;
    }
}
