/*
 * test_worker_payment.c - the payment provider's pure parts: the simulated
 * provider's outcome is fixed by the order id (worker/payment_sim.c), the
 * rates parse strictly, and every answer an http provider can give maps to
 * exactly one outcome with a bounded, printable reason
 * (worker/payment_answer.c).
 *
 * The worker's pure files are compiled into the test directly, as in
 * test_worker_heap.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../worker/payment_answer.c"
#include "../../worker/payment_sim.c"

static void id_of(unsigned i, char out[37])
{
    snprintf(out, 37, "%08x-0000-4000-8000-%012x", i * 2654435761u, i);
}

/* Pinned to Python's hashlib: int.from_bytes(sha256(id)[:8], "big") >> 11, over 2^53. */
static void test_draw_is_sha256_of_the_id(void **state)
{
    (void)state;
    assert_true(payment_sim_draw("3af7ead0-9d4b-4a2a-8882-ec80ade2ee9c") ==
                342823326497896.0 / 9007199254740992.0);
    assert_true(payment_sim_draw("00000000-0000-0000-0000-000000000000") ==
                658774693498827.0 / 9007199254740992.0);
}

static void test_same_order_same_outcome(void **state)
{
    (void)state;
    char id[37];
    for (unsigned i = 0; i < 500; i++) {
        id_of(i, id);
        double d = payment_sim_draw(id);
        assert_true(d >= 0.0 && d < 1.0);
        assert_true(payment_sim_draw(id) == d);
        assert_int_equal(payment_sim_outcome(id, 0.3, 0.2), payment_sim_outcome(id, 0.3, 0.2));
    }
}

static void test_rates_split_orders(void **state)
{
    (void)state;
    char id[37];
    unsigned n = 4000, declined = 0, errors = 0;
    for (unsigned i = 0; i < n; i++) {
        id_of(i, id);
        assert_int_equal(payment_sim_outcome(id, 0, 0), PAYMENT_APPROVED);
        assert_int_equal(payment_sim_outcome(id, 1.0, 0), PAYMENT_DECLINED);
        assert_int_equal(payment_sim_outcome(id, 0, 1.0), PAYMENT_ERROR);
        enum payment_outcome o = payment_sim_outcome(id, 0.25, 0.25);
        declined += o == PAYMENT_DECLINED;
        errors += o == PAYMENT_ERROR;
        /* a higher rate only adds declines: an order declined at 0.25 stays declined */
        if (o == PAYMENT_DECLINED)
            assert_int_equal(payment_sim_outcome(id, 0.5, 0), PAYMENT_DECLINED);
    }
    assert_in_range(declined, n * 22 / 100, n * 28 / 100);
    assert_in_range(errors, n * 22 / 100, n * 28 / 100);
}

static void test_rate_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        double v;
    } good[] = {{"0", 0}, {"1", 1}, {"1.0", 1}, {"0.25", 0.25}, {".5", 0.5}, {"0.000", 0}};
    static const char *const bad[] = {"",    "1.5", "-0", "abc", "1e-1", "0.5.5", "nan",
                                      "inf", " 0",  "0 ", ".",   "2",    "0x1",   "99999999999"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        double v = -1;
        assert_int_equal(payment_rate_parse(good[i].s, &v), 0);
        assert_true(v == good[i].v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        double v = -1;
        assert_int_equal(payment_rate_parse(bad[i], &v), -1);
        assert_true(v == -1);
    }
    assert_int_equal(payment_rate_parse(NULL, NULL), -1);
}

static void parse(long status, const char *body, struct payment_answer *a)
{
    payment_answer_parse(status, body, body ? strlen(body) : 0, a);
}

static void test_answers_approved_and_declined(void **state)
{
    (void)state;
    struct payment_answer a;
    parse(200, "{\"status\":\"approved\",\"payment_id\":\"pay_123\"}", &a);
    assert_int_equal(a.outcome, PAYMENT_APPROVED);
    assert_string_equal(a.payment_id, "pay_123");
    parse(201, "{\"status\":\"declined\",\"reason\":\"insufficient_funds\"}", &a);
    assert_int_equal(a.outcome, PAYMENT_DECLINED);
    assert_string_equal(a.reason, "insufficient_funds");
    parse(200, "{\"status\":\"declined\"}", &a);
    assert_int_equal(a.outcome, PAYMENT_DECLINED);
    assert_string_equal(a.reason, "declined");
    parse(402, "{\"reason\":\"card_expired\"}", &a);
    assert_int_equal(a.outcome, PAYMENT_DECLINED);
    assert_string_equal(a.reason, "card_expired");
    parse(422, "not json", &a);
    assert_int_equal(a.outcome, PAYMENT_DECLINED);
    assert_string_equal(a.reason, "http_422");
    parse(402, NULL, &a);
    assert_string_equal(a.reason, "http_402");
}

static void test_answers_that_are_errors(void **state)
{
    (void)state;
    struct payment_answer a;
    static const struct {
        long status;
        const char *body;
        bool unexpected;
    } cases[] = {
        {429, "slow down", false},
        {500, "", false},
        {503, "{\"status\":\"approved\",\"payment_id\":\"x\"}", false},
        {200, "", true},
        {200, "[]", true},
        {200, "{\"status\":\"approved\"}", true},
        {200, "{\"status\":\"approved\",\"payment_id\":\"\"}", true},
        {200, "{\"status\":\"approved\",\"payment_id\":7}", true},
        {200, "{\"status\":\"maybe\"}", true},
        {200, "{\"status\":\"approved\",\"status\":\"declined\",\"payment_id\":\"p\"}", true},
        {301, "", true},
        {400, "{\"reason\":\"bad\"}", true},
        {404, "", true},
        {0, "", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse(cases[i].status, cases[i].body, &a);
        assert_int_equal(a.outcome, PAYMENT_ERROR);
        assert_int_equal(a.unexpected, cases[i].unexpected);
        char want[32];
        snprintf(want, sizeof(want), "http %ld", cases[i].status);
        assert_memory_equal(a.reason, want, strlen(want));
    }
}

static void test_reasons_are_bounded_and_printable(void **state)
{
    (void)state;
    struct payment_answer a;
    char body[4000];
    char big[3000];
    memset(big, 'r', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(body, sizeof(body), "{\"status\":\"declined\",\"reason\":\"%s\"}", big);
    parse(200, body, &a);
    assert_int_equal(a.outcome, PAYMENT_DECLINED);
    assert_int_equal(strlen(a.reason), PAYMENT_REASON_MAX);

    parse(402, "{\"reason\":\"a\\nb\\u0000c\\u00e9\"}", &a);
    assert_int_equal(a.outcome, PAYMENT_DECLINED);
    assert_string_equal(a.reason, "a?b?c??"); /* é is two UTF-8 bytes */

    /* a body with a NUL and control bytes: the excerpt stops nowhere early
     * and shows none of them */
    static const char raw[] = "oops\0\x1b[31m\xff";
    payment_answer_parse(502, raw, sizeof(raw) - 1, &a);
    assert_string_equal(a.reason, "http 502: oops??[31m?");

    char id[200];
    memset(id, 'p', 129);
    id[129] = '\0';
    snprintf(body, sizeof(body), "{\"status\":\"approved\",\"payment_id\":\"%s\"}", id);
    parse(200, body, &a); /* a payment id over 128 bytes is not one we can store */
    assert_int_equal(a.outcome, PAYMENT_ERROR);
}

static void test_request_body(void **state)
{
    (void)state;
    char *s = payment_request_body("3af7ead0-9d4b-4a2a-8882-ec80ade2ee9c", "c-\"1\"", 3000, "BRL");
    assert_non_null(s);
    assert_string_equal(s, "{\"order_id\":\"3af7ead0-9d4b-4a2a-8882-ec80ade2ee9c\","
                           "\"customer_id\":\"c-\\\"1\\\"\",\"amount_cents\":3000,"
                           "\"currency\":\"BRL\"}");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_draw_is_sha256_of_the_id),
        cmocka_unit_test(test_same_order_same_outcome),
        cmocka_unit_test(test_rates_split_orders),
        cmocka_unit_test(test_rate_parse),
        cmocka_unit_test(test_answers_approved_and_declined),
        cmocka_unit_test(test_answers_that_are_errors),
        cmocka_unit_test(test_reasons_are_bounded_and_printable),
        cmocka_unit_test(test_request_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
