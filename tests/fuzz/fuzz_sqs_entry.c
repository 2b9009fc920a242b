/*
 * fuzz_sqs_entry.c - libFuzzer target for the per-entry ReceiveMessage decoder.
 *
 * The input is one entry of a ReceiveMessage answer (a JSON object). Whatever
 * it holds, the decoder must either hand out a message the worker can act on
 * (MessageId, ReceiptHandle and Body non-empty, so its delete can be built)
 * or reject it with a reason that is valid UTF-8 for the log - never crash,
 * leak or read past size (the input is not NUL-terminated, on purpose).
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sqs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sqs_message m;
    struct sqs_rejected rej;
    struct sqs_error err;

    int rc = sqs_decode_receive_entry((const char *)data, size, &m, &rej, &err);
    if (rc == 0) {
        if (!m.message_id[0] || !m.receipt_handle[0] || !m.body[0])
            abort();
        if (strlen(m.message_id) > SQS_MAX_MESSAGE_ID_BYTES)
            abort();
        struct sqs_receipt_entry e = {.id = "0", .receipt_handle = m.receipt_handle};
        char *body = sqs_encode_delete_message_batch("https://sqs.example/1/q", &e, 1);
        if (!body)
            abort(); /* fault 1: a message whose delete cannot be built */
        free(body);
        (void)sqs_message_attr(&m, "correlation_id");
        sqs_message_clear(&m);
    } else if (rc == 1) {
        /* the reason and the id go into a JSON log line: they must stay valid UTF-8 */
        json_t *s = json_string(rej.why.message);
        json_t *id = json_string(rej.message_id);
        if (!s || !id)
            abort();
        json_decref(s);
        json_decref(id);
    }
    return 0;
}
