/*
 * fuzz_sqs.c - libFuzzer target for the SQS response decoders.
 *
 * Every decoder sees the same bytes: a response is whatever the network hands
 * us, so each must reject or accept it without crashing, leaking or reading
 * past len (the input is not NUL-terminated, on purpose).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "sqs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *json = (const char *)data;
    struct sqs_error err;
    struct sqs_received rcv;
    struct sqs_batch_result batch;
    char id[128];
    char *url;

    if (sqs_decode_receive_message(json, size, &rcv, &err) == 0) {
        /* what the decoder promises the worker: every message can be acted on */
        for (size_t i = 0; i < rcv.n; i++) {
            if (!rcv.msgs[i].message_id[0] || !rcv.msgs[i].receipt_handle[0] ||
                !rcv.msgs[i].body[0])
                abort();
            (void)sqs_message_attr(&rcv.msgs[i], "order_id");
        }
        sqs_received_free(&rcv);
    }
    if (sqs_decode_batch_result(json, size, &batch, &err) == 0)
        sqs_batch_result_free(&batch);
    (void)sqs_decode_send_message(json, size, id, sizeof(id), &err);
    if (sqs_decode_get_queue_url(json, size, &url, &err) == 0)
        free(url);
    free(sqs_decode_queue_attribute(json, size, "ApproximateNumberOfMessages"));
    sqs_decode_error(400, json, size, &err);
    sqs_decode_error(503, json, size, &err);
    return 0;
}
