/*
 * fuzz_sqs.c - libFuzzer target for the SQS response decoders.
 *
 * Every decoder sees the same bytes: a response is whatever the network hands
 * us, so each must reject or accept it without crashing, leaking or reading
 * past len (the input is not NUL-terminated, on purpose).
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "sqs.h"

/* Every error and reason ends up in a JSON log line: it must be valid UTF-8. */
static void must_be_text(const char *s)
{
    json_t *j = json_string(s);
    if (!j)
        abort();
    json_decref(j);
}

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
        for (size_t i = 0; i < rcv.n_rejected; i++) {
            must_be_text(rcv.rejected[i].why.message);
            must_be_text(rcv.rejected[i].message_id);
        }
        sqs_received_free(&rcv);
    } else {
        must_be_text(err.message);
    }
    if (sqs_decode_batch_result(json, size, &batch, &err) == 0)
        sqs_batch_result_free(&batch);
    else
        must_be_text(err.message);
    (void)sqs_decode_send_message(json, size, id, sizeof(id), &err);
    if (sqs_decode_get_queue_url(json, size, &url, &err) == 0)
        free(url);
    free(sqs_decode_queue_attribute(json, size, "ApproximateNumberOfMessages"));
    sqs_decode_error(400, json, size, &err);
    must_be_text(err.message);
    must_be_text(err.type);
    sqs_decode_error(503, json, size, &err);
    return 0;
}
