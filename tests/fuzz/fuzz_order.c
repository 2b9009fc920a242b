/*
 * fuzz_order.c - libFuzzer target for the order validator and the worker's
 * message parser: any byte string must be refused or accepted cleanly, never
 * crash, leak or read out of bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "order.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct order_request req;
    static struct order_errors errs;
    char id[UUID_STR_LEN], err[128];

    if (order_parse((const char *)data, size, &req, &errs) == 0) {
        /* accepted: the invariants the API relies on must hold */
        if (req.n_items < 1 || req.n_items > ORDER_MAX_ITEMS || req.total_cents < 0 ||
            strlen(req.customer_id) == 0 || strlen(req.currency) != 3)
            abort();
        json_t *items = order_items_json(&req);
        json_decref(items);
    } else if (errs.n == 0 || errs.status < 400) {
        abort();
    } else {
        /* every refusal renders: the details quote the body, cut in bytes */
        json_t *e = order_error_json(errs.code, errs.message, errs.details, errs.n);
        if (!e)
            abort();
        json_decref(e);
    }
    if (order_message_parse((const char *)data, size, id, err, sizeof(err)) == 0) {
        /* the worker's Idempotency-Key: the canonical (lower-case) order id */
        for (size_t i = 0; i < UUID_STR_LEN - 1; i++)
            if (id[i] >= 'A' && id[i] <= 'Z')
                abort();
    }
    return 0;
}
