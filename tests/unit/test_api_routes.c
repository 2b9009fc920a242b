/*
 * test_api_routes.c - order-api's routing table: exact paths, ids, methods.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "routes.h"

static void test_exact_paths(void **s)
{
    (void)s;
    char id[UUID_STR_LEN];
    bool bad;
    assert_int_equal(route_of("/healthz", id, &bad), R_HEALTHZ);
    assert_int_equal(route_of("/orders", id, &bad), R_ORDERS);
    assert_int_equal(route_of("/orders/", id, &bad), R_ORDERS);
    assert_int_equal(route_of("/healthz/", id, &bad), R_NONE);
    assert_int_equal(route_of("/orders/x/y", id, &bad), R_NONE);
    assert_int_equal(route_of("/ORDERS", id, &bad), R_NONE);
    assert_int_equal(route_of("", id, &bad), R_NONE);
}

static void test_order_ids_are_canonical_uuids(void **s)
{
    (void)s;
    char id[UUID_STR_LEN];
    bool bad;
    assert_int_equal(route_of("/orders/3F0E8A6C-1D2B-4C5D-8E9F-0A1B2C3D4E5F/events", id, &bad),
                     R_ORDER_EVENTS);
    assert_false(bad);
    assert_string_equal(id, "3f0e8a6c-1d2b-4c5d-8e9f-0a1b2c3d4e5f");
    assert_int_equal(route_of("/orders/nope/cancel", id, &bad), R_ORDER_CANCEL);
    assert_true(bad);
    assert_int_equal(route_of("/orders/3f0e8a6c-1d2b-4c5d-8e9f-0a1b2c3d4e5fX", id, &bad), R_ORDER);
    assert_true(bad);
}

static void test_methods(void **s)
{
    (void)s;
    assert_true(route_method_allowed(R_ORDERS, "POST"));
    assert_false(route_method_allowed(R_ORDERS, "HEAD"));
    assert_true(route_method_allowed(R_ORDER, "HEAD"));
    assert_false(route_method_allowed(R_ORDER_CANCEL, "GET"));
    assert_false(route_method_allowed(R_NONE, "GET"));
    assert_string_equal(route_allowed_methods(R_ORDER_CANCEL), "POST");
    assert_true(route_is_public(R_HEALTHZ));
    assert_false(route_is_public(R_ORDERS));
    assert_false(route_is_public(R_METRICS));
    assert_string_equal(route_name(R_ORDER_EVENTS), "/orders/{id}/events");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_paths),
        cmocka_unit_test(test_order_ids_are_canonical_uuids),
        cmocka_unit_test(test_methods),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
