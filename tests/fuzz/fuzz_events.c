/*
 * fuzz_events.c - libFuzzer target for the EventBridge PutEvents answer
 * decoder (and the error classifier every AWS answer goes through).
 *
 * The first byte chooses how many entries the request had (1-10), the rest
 * is the answer. A decoded result must answer exactly that many entries,
 * count its failures right and keep its strings valid UTF-8 for the log;
 * nothing may crash, leak or read past size (no NUL terminator, on purpose).
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"

static void must_be_text(const char *s, size_t cap)
{
    if (strnlen(s, cap) == cap)
        abort(); /* not terminated */
    json_t *j = json_string(s);
    if (!j)
        abort(); /* not valid UTF-8: the log line would be dropped */
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct events_put_result r;
    struct aws_error err;

    if (size < 1)
        return 0;
    size_t n_sent = (size_t)(data[0] % EVENTS_MAX_BATCH) + 1;
    const char *json = (const char *)data + 1;
    size_t len = size - 1;

    if (events_decode_put_events(json, len, n_sent, &r, &err) == 0) {
        size_t failed = 0;
        if (r.n != n_sent)
            abort();
        for (size_t i = 0; i < r.n; i++) {
            const struct events_result_entry *e = &r.entry[i];
            failed += e->outcome != EVENTS_OK;
            if (e->outcome == EVENTS_OK && !e->event_id[0])
                abort();
            must_be_text(e->event_id, sizeof(e->event_id));
            must_be_text(e->error_code, sizeof(e->error_code));
            must_be_text(e->error_message, sizeof(e->error_message));
        }
        if (failed != r.n_failed)
            abort();
    } else {
        must_be_text(err.message, sizeof(err.message));
    }
    aws_decode_error(400, json, len, &err);
    must_be_text(err.message, sizeof(err.message));
    must_be_text(err.type, sizeof(err.type));
    return 0;
}
