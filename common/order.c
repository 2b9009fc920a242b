/*
 * order.c - strict validation of incoming orders and the JSON shapes shared by
 * the API and the worker.
 *
 * The total is computed here, server side, with overflow checks; a client
 * never supplies it. The idempotency hash is taken over a canonical rendering
 * of the validated order (sorted keys), so two bodies that differ only in key
 * order or whitespace are "the same body" for Idempotency-Key purposes.
 */
#include "order.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static void add_error(struct order_errors *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_error(struct order_errors *e, const char *field, const char *fmt, ...)
{
    va_list ap;
    if (e->n >= ORDER_MAX_ERRORS)
        return;
    util_strlcpy(e->details[e->n].field, field, sizeof(e->details[e->n].field));
    va_start(ap, fmt);
    vsnprintf(e->details[e->n].message, sizeof(e->details[e->n].message), fmt, ap);
    va_end(ap);
    e->n++;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number with a fraction or exponent";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

/* Copies a required, non-empty string of at most ORDER_MAX_STR bytes. */
static void take_string(json_t *obj, const char *key, const char *field, char *dst,
                        struct order_errors *e)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        add_error(e, field, "is required");
        return;
    }
    if (!json_is_string(v)) {
        add_error(e, field, "must be a string, got %s", json_type_name(v));
        return;
    }
    size_t n = json_string_length(v);
    if (n == 0) {
        add_error(e, field, "must not be empty");
        return;
    }
    if (n > ORDER_MAX_STR) {
        add_error(e, field, "must be at most %d bytes, got %zu", ORDER_MAX_STR, n);
        return;
    }
    memcpy(dst, json_string_value(v), n);
    dst[n] = '\0';
}

static bool take_int(json_t *obj, const char *key, const char *field, int64_t min, int64_t max,
                     int64_t *dst, struct order_errors *e)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        add_error(e, field, "is required");
        return false;
    }
    if (!json_is_integer(v)) {
        add_error(e, field, "must be an integer, got %s", json_type_name(v));
        return false;
    }
    json_int_t x = json_integer_value(v);
    if (x < min || x > max) {
        if (max == INT64_MAX)
            add_error(e, field, "must be at least %lld", (long long)min);
        else
            add_error(e, field, "must be between %lld and %lld", (long long)min, (long long)max);
        return false;
    }
    *dst = x;
    return true;
}

static void reject_unknown(json_t *obj, const char *const *known, const char *prefix,
                           struct order_errors *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (const char *const *k = known; *k; k++)
            if (strcmp(*k, key) == 0)
                ok = true;
        if (!ok) {
            char field[64];
            /* The key is client text: keep the field name short and printable. */
            char shown[24];
            size_t i;
            for (i = 0; key[i] && i < sizeof(shown) - 1; i++)
                shown[i] = (key[i] >= 0x20 && key[i] < 0x7f) ? key[i] : '?';
            shown[i] = '\0';
            snprintf(field, sizeof(field), "%s%s", prefix, shown);
            add_error(e, field, "is not a known field");
        }
    }
}

int order_request_hash(struct order_request *o)
{
    json_t *root = json_pack("{s:s, s:s, s:o}", "customer_id", o->customer_id, "currency",
                             o->currency, "items", order_items_json(o));
    char *s = root ? util_json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    unsigned char md[32];
    unsigned int mdlen = 0;
    int rc = -1;

    if (s && EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == 32) {
        for (unsigned i = 0; i < 32; i++)
            snprintf(o->hash + 2 * i, 3, "%02x", md[i]);
        rc = 0;
    }
    free(s);
    json_decref(root);
    return rc;
}

int order_parse(const char *body, size_t len, struct order_request *out, struct order_errors *e)
{
    return order_parse_for(body, len, NULL, out, e);
}

int order_parse_for(const char *body, size_t len, const char *default_customer,
                    struct order_request *out, struct order_errors *e)
{
    static const char *const top_keys[] = {"customer_id", "currency", "items", NULL};
    static const char *const item_keys[] = {"product_id", "quantity", "unit_price_cents", NULL};
    json_error_t jerr;

    memset(out, 0, sizeof(*out));
    memset(e, 0, sizeof(*e));
    e->status = 422;
    e->code = "validation_failed";
    util_strlcpy(e->message, "the order is not valid", sizeof(e->message));

    if (len > ORDER_MAX_BODY_BYTES) {
        e->status = 413;
        e->code = "payload_too_large";
        snprintf(e->message, sizeof(e->message), "body exceeds %d bytes", ORDER_MAX_BODY_BYTES);
        add_error(e, "body", "must be at most %d bytes", ORDER_MAX_BODY_BYTES);
        return -1;
    }
    /* Duplicate keys are refused: which of two values wins is not something
     * a payment system should leave to a parser. Bodies are bounded, and
     * jansson bounds nesting depth, so parsing cannot exhaust the stack. */
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        e->status = 400;
        e->code = "invalid_json";
        util_strlcpy(e->message, "the body is not valid JSON", sizeof(e->message));
        add_error(e, "body", "%s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return -1;
    }
    if (!json_is_object(root)) {
        e->status = 400;
        e->code = "invalid_json";
        util_strlcpy(e->message, "the body must be a JSON object", sizeof(e->message));
        add_error(e, "body", "must be an object, got %s", json_type_name(root));
        json_decref(root);
        return -1;
    }

    reject_unknown(root, top_keys, "", e);
    if (default_customer && !json_object_get(root, "customer_id")) {
        size_t n = strlen(default_customer);
        if (n == 0 || n > ORDER_MAX_STR)
            add_error(e, "customer_id", "the token's customer must be 1-%d bytes", ORDER_MAX_STR);
        else
            memcpy(out->customer_id, default_customer, n + 1);
    } else {
        take_string(root, "customer_id", "customer_id", out->customer_id, e);
    }

    json_t *cur = json_object_get(root, "currency");
    if (!cur) {
        add_error(e, "currency", "is required");
    } else if (!json_is_string(cur)) {
        add_error(e, "currency", "must be a string, got %s", json_type_name(cur));
    } else {
        const char *c = json_string_value(cur);
        if (json_string_length(cur) != 3 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' ||
            c[2] < 'A' || c[2] > 'Z')
            add_error(e, "currency", "must be three upper-case letters (ISO 4217), e.g. \"BRL\"");
        else
            memcpy(out->currency, c, 4);
    }

    json_t *items = json_object_get(root, "items");
    if (!items) {
        add_error(e, "items", "is required");
    } else if (!json_is_array(items)) {
        add_error(e, "items", "must be an array, got %s", json_type_name(items));
    } else if (json_array_size(items) < 1 || json_array_size(items) > ORDER_MAX_ITEMS) {
        add_error(e, "items", "must hold between 1 and %d items, got %zu", ORDER_MAX_ITEMS,
                  json_array_size(items));
    } else {
        size_t i;
        json_t *it;
        int64_t total = 0;
        bool total_ok = true;

        out->n_items = json_array_size(items);
        json_array_foreach(items, i, it)
        {
            char f[64], prefix[32];
            struct order_item *oi = &out->items[i];
            snprintf(prefix, sizeof(prefix), "items[%zu].", i);
            if (!json_is_object(it)) {
                snprintf(f, sizeof(f), "items[%zu]", i);
                add_error(e, f, "must be an object, got %s", json_type_name(it));
                total_ok = false;
                continue;
            }
            reject_unknown(it, item_keys, prefix, e);
            snprintf(f, sizeof(f), "items[%zu].product_id", i);
            take_string(it, "product_id", f, oi->product_id, e);
            snprintf(f, sizeof(f), "items[%zu].quantity", i);
            bool q = take_int(it, "quantity", f, ORDER_MIN_QUANTITY, ORDER_MAX_QUANTITY,
                              &oi->quantity, e);
            snprintf(f, sizeof(f), "items[%zu].unit_price_cents", i);
            bool p = take_int(it, "unit_price_cents", f, 0, INT64_MAX, &oi->unit_price_cents, e);
            if (q && p && total_ok) {
                int64_t line;
                if (__builtin_mul_overflow(oi->quantity, oi->unit_price_cents, &line) ||
                    __builtin_add_overflow(total, line, &total)) {
                    snprintf(f, sizeof(f), "items[%zu]", i);
                    add_error(e, f, "makes the order total exceed %lld cents",
                              (long long)INT64_MAX);
                    total_ok = false;
                }
            } else {
                total_ok = false;
            }
        }
        out->total_cents = total_ok ? total : 0;
    }
    json_decref(root);
    return e->n > 0 ? -1 : 0;
}

json_t *order_items_json(const struct order_request *o)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < o->n_items; i++) {
        json_t *it = json_pack("{s:s, s:I, s:I}", "product_id", o->items[i].product_id, "quantity",
                               (json_int_t)o->items[i].quantity, "unit_price_cents",
                               (json_int_t)o->items[i].unit_price_cents);
        /* all or nothing: an order stored without one of its items would be wrong */
        if (json_array_append_new(a, it) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

bool order_correlation_id_valid(const char *s)
{
    size_t n = 0;
    if (!s)
        return false;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= CORRELATION_ID_MAX)
            return false;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

char *order_message_body(const char *order_id)
{
    json_t *o =
        json_pack("{s:s, s:i, s:s}", "type", "order.created", "version", 1, "order_id", order_id);
    char *s = util_json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

int order_message_parse(const char *body, size_t len, char *order_id, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = -1;

    if (!root) {
        snprintf(err, errlen, "body is not JSON: %s", jerr.text);
        return -1;
    }
    json_t *type = json_object_get(root, "type");
    json_t *version = json_object_get(root, "version");
    json_t *id = json_object_get(root, "order_id");
    if (!json_is_object(root))
        snprintf(err, errlen, "body is not a JSON object");
    else if (!json_is_string(type) || strcmp(json_string_value(type), "order.created") != 0)
        snprintf(err, errlen, "unknown message type");
    else if (!json_is_integer(version) || json_integer_value(version) != 1)
        snprintf(err, errlen, "unsupported message version");
    else if (!json_is_string(id) || !util_is_uuid(json_string_value(id)))
        snprintf(err, errlen, "order_id is missing or not a UUID");
    else {
        /* Canonical (lower-case) text, as PostgreSQL prints a uuid: the worker
         * keys the provider's Idempotency-Key and the simulated draw on it, so
         * two spellings of one order must not become two keys. */
        const char *v = json_string_value(id);
        for (size_t i = 0; i < UUID_STR_LEN - 1; i++)
            order_id[i] = (char)tolower((unsigned char)v[i]);
        order_id[UUID_STR_LEN - 1] = '\0';
        rc = 0;
    }
    json_decref(root);
    return rc;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * form, surrogate or code point past U+10FFFF), 0 when there is none. */
static size_t utf8_seq_len(const unsigned char *p)
{
    size_t len;
    uint32_t cp, min;

    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xE0) == 0xC0) {
        len = 2, cp = p[0] & 0x1Fu, min = 0x80;
    } else if ((p[0] & 0xF0) == 0xE0) {
        len = 3, cp = p[0] & 0x0Fu, min = 0x800;
    } else if ((p[0] & 0xF8) == 0xF0) {
        len = 4, cp = p[0] & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) /* (a NUL ends the check here too) */
            return 0;
        cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    return cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ? 0 : len;
}

/* src as valid UTF-8 in dst: a byte that starts no well-formed sequence (the
 * tail of a character cut by an earlier truncation, a request's raw bytes)
 * becomes '?', so the error can always be rendered as JSON. */
static void utf8_clean(char *dst, size_t cap, const char *src)
{
    const unsigned char *p = (const unsigned char *)src;
    size_t n = 0;

    while (*p && n + 1 < cap) {
        size_t len = utf8_seq_len(p);
        if (len == 0) {
            dst[n++] = '?';
            p++;
            continue;
        }
        if (n + len + 1 > cap)
            break;
        memcpy(dst + n, p, len);
        n += len;
        p += len;
    }
    dst[n] = '\0';
}

json_t *order_error_json(const char *code, const char *message, const struct field_error *details,
                         size_t n_details)
{
    json_t *d = json_array();
    for (size_t i = 0; d && i < n_details; i++) {
        /* fields and messages may quote the request (an unknown key, a
         * parser's excerpt), cut in bytes: jansson refuses invalid UTF-8, and
         * the client would get a 500 for its own bad input */
        struct field_error c;
        utf8_clean(c.field, sizeof(c.field), details[i].field);
        utf8_clean(c.message, sizeof(c.message), details[i].message);
        if (json_array_append_new(
                d, json_pack("{s:s, s:s}", "field", c.field, "message", c.message)) != 0) {
            json_decref(d);
            d = NULL;
        }
    }
    /* "o" takes d over, also when packing fails or d is NULL */
    return json_pack("{s:{s:s, s:s, s:o}}", "error", "code", code, "message", message, "details",
                     d);
}

/* Sets key to a new value; false (and v released) when either is NULL. */
static bool put(json_t *o, const char *key, json_t *v)
{
    return v && json_object_set_new(o, key, v) == 0;
}

static json_t *items_canonical(json_t *items)
{
    json_t *a = json_array();
    size_t i;
    json_t *it;
    if (!a)
        return NULL;
    json_array_foreach(items, i, it)
    {
        json_t *o = json_object();
        if (!o || json_array_append_new(a, o) != 0 ||
            !put(o, "product_id", json_copy(json_object_get(it, "product_id"))) ||
            !put(o, "quantity", json_copy(json_object_get(it, "quantity"))) ||
            !put(o, "unit_price_cents", json_copy(json_object_get(it, "unit_price_cents")))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *order_json(const struct order_view *v)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    bool ok = put(o, "id", json_string(v->id)) && put(o, "status", json_string(v->status)) &&
              put(o, "customer_id", json_string(v->customer_id)) &&
              put(o, "currency", json_string(v->currency)) &&
              put(o, "items", items_canonical(v->items)) &&
              put(o, "total_cents", json_integer((json_int_t)v->total_cents)) &&
              put(o, "correlation_id", json_string(v->correlation_id)) &&
              put(o, "created_at", json_string(v->created_at)) &&
              put(o, "updated_at", json_string(v->updated_at)) &&
              put(o, "processed_at", str_or_null(v->processed_at)) &&
              (!v->canceled_at || put(o, "canceled_at", json_string(v->canceled_at))) &&
              (!v->failure_reason || put(o, "failure_reason", json_string(v->failure_reason)));
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}
