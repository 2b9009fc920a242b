/*
 * order.h - the order model: request validation and JSON rendering.
 *
 * Validation collects every field error rather than stopping at the first, so
 * a client fixes its request in one round trip. Parsing is strict: duplicate
 * keys, unknown fields, non-integer numbers and invalid UTF-8 are refused; no
 * value is coerced.
 */
#ifndef ORDER_ORDER_H
#define ORDER_ORDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORDER_MAX_BODY_BYTES (64 * 1024)
#define ORDER_MAX_ITEMS 100
#define ORDER_MAX_STR 128
#define ORDER_MIN_QUANTITY 1
#define ORDER_MAX_QUANTITY 10000
#define ORDER_MAX_ERRORS 20
#define CORRELATION_ID_MAX 128

struct order_item {
    char product_id[ORDER_MAX_STR + 1];
    int64_t quantity;
    int64_t unit_price_cents;
};

struct order_request {
    char customer_id[ORDER_MAX_STR + 1];
    char currency[4];
    size_t n_items;
    struct order_item items[ORDER_MAX_ITEMS];
    int64_t total_cents;
    char hash[65]; /* SHA-256 of the canonical request; set by order_request_hash */
};

struct field_error {
    char field[64];
    char message[160];
};

/* Why a request was refused: code is "invalid_json" (status 400) or
 * "validation_failed" (422), with one detail per offending field. */
struct order_errors {
    int status;
    const char *code;
    char message[200];
    size_t n;
    struct field_error details[ORDER_MAX_ERRORS];
};

/* Parses and validates a POST /orders body. Returns 0 and fills out, or -1 and fills errs. */
int order_parse(const char *body, size_t len, struct order_request *out, struct order_errors *errs);
/* Same, but a body without customer_id takes default_customer (the caller's
 * own customer, from its token) when that is not NULL. */
int order_parse_for(const char *body, size_t len, const char *default_customer,
                    struct order_request *out, struct order_errors *errs);

/* Fills o->hash: SHA-256 of a canonical rendering (sorted keys, no
 * whitespace), so bodies that differ only in key order or spacing are the
 * same request for Idempotency-Key purposes. Only requests that carry a key
 * need it: it is not free (a JSON dump and a digest). */
int order_request_hash(struct order_request *o); /* 0, or -1 when out of memory */

/* items as stored in the jsonb column and returned to clients (new reference),
 * or NULL when out of memory: never an array missing some items. */
json_t *order_items_json(const struct order_request *o);

/* An order as clients see it, from whichever source holds it (a request just
 * committed, a database row). Strings are borrowed. */
struct order_view {
    const char *id;
    const char *status;
    const char *customer_id;
    const char *currency;
    json_t *items; /* borrowed array of items; keys are rendered in a fixed order */
    int64_t total_cents;
    const char *correlation_id;
    const char *created_at;
    const char *updated_at;
    const char *processed_at;   /* NULL renders null */
    const char *canceled_at;    /* NULL: omitted */
    const char *failure_reason; /* NULL: omitted */
};
/* The one rendering of an order: GET /orders/{id}, listings, the 201 of a
 * POST, cancel answers and event payloads all use it. NULL when out of memory. */
json_t *order_json(const struct order_view *v);

/* True when s may be used as a correlation id: 1-128 characters of [A-Za-z0-9._-]. */
bool order_correlation_id_valid(const char *s);

/* The body of the SQS message for a new order: {"type":"order.created","version":1,"order_id":...}.
 */
char *order_message_body(const char *order_id);

/* Parses an SQS message body written by order_message_body. Returns 0 and
 * fills order_id (UUID_STR_LEN), or -1 with the reason in err. */
int order_message_parse(const char *body, size_t len, char *order_id, char *err, size_t errlen);

/* The error envelope {"error":{"code","message","details":[...]}}; details may
 * be NULL. NULL when out of memory (never an envelope missing a detail). */
json_t *order_error_json(const char *code, const char *message, const struct field_error *details,
                         size_t n_details);

#endif
