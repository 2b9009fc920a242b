/*
 * test_worker_batch.c - the entries of the worker's DeleteMessageBatch and
 * ChangeMessageVisibilityBatch requests (worker/batch.c): at most ten, ids
 * that map back to their messages, and what an answer means for each entry,
 * down to the request body the SQS encoder makes of them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../worker/batch.c"

static struct held msgs[13];
static struct held *ptrs[13];
static char receipts[13][32];

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < 13; i++) {
        memset(&msgs[i], 0, sizeof(msgs[i]));
        snprintf(receipts[i], sizeof(receipts[i]), "receipt-%zu", i);
        msgs[i].receipt = receipts[i];
        ptrs[i] = &msgs[i];
    }
    return 0;
}

static void test_fill_takes_at_most_ten(void **state)
{
    (void)state;
    struct receipt_batch b;
    assert_int_equal(receipt_batch_fill(&b, ptrs, 13, 30), SQS_MAX_BATCH);
    assert_int_equal(b.n, SQS_MAX_BATCH);
    for (size_t i = 0; i < b.n; i++) {
        char id[24];
        snprintf(id, sizeof(id), "%zu", i);
        assert_string_equal(b.e[i].id, id);
        assert_string_equal(b.e[i].receipt_handle, receipts[i]);
        assert_int_equal(b.e[i].visibility_timeout, 30);
    }
    /* the rest go in the next batch, starting again at id "0" */
    assert_int_equal(receipt_batch_fill(&b, ptrs + 10, 3, 0), 3);
    assert_string_equal(b.e[0].id, "0");
    assert_string_equal(b.e[2].receipt_handle, "receipt-12");
    assert_int_equal(b.e[2].visibility_timeout, 0);
}

static void test_encoded_bodies(void **state)
{
    (void)state;
    struct receipt_batch b;
    receipt_batch_fill(&b, ptrs, 3, 45);
    char *body = sqs_encode_change_visibility_batch("https://sqs.example/q", b.e, b.n);
    assert_non_null(body);
    json_t *j = json_loads(body, 0, NULL);
    json_t *entries = json_object_get(j, "Entries");
    assert_int_equal(json_array_size(entries), 3);
    json_t *e1 = json_array_get(entries, 1);
    assert_string_equal(json_string_value(json_object_get(e1, "Id")), "1");
    assert_string_equal(json_string_value(json_object_get(e1, "ReceiptHandle")), "receipt-1");
    assert_int_equal(json_integer_value(json_object_get(e1, "VisibilityTimeout")), 45);
    json_decref(j);
    free(body);

    receipt_batch_fill(&b, ptrs, 10, 0);
    body = sqs_encode_delete_message_batch("https://sqs.example/q", b.e, b.n);
    assert_non_null(body);
    j = json_loads(body, 0, NULL);
    entries = json_object_get(j, "Entries");
    assert_int_equal(json_array_size(entries), 10);
    assert_null(json_object_get(json_array_get(entries, 0), "VisibilityTimeout"));
    json_decref(j);
    free(body);
}

static void test_index_accepts_only_our_ids(void **state)
{
    (void)state;
    assert_int_equal(receipt_batch_index("0", 10), 0);
    assert_int_equal(receipt_batch_index("9", 10), 9);
    assert_int_equal(receipt_batch_index("3", 3), -1);   /* beyond this batch */
    assert_int_equal(receipt_batch_index("10", 10), -1); /* never ours */
    assert_int_equal(receipt_batch_index("05", 10), -1);
    assert_int_equal(receipt_batch_index("-1", 10), -1);
    assert_int_equal(receipt_batch_index("+1", 10), -1);
    assert_int_equal(receipt_batch_index("1a", 10), -1);
    assert_int_equal(receipt_batch_index("", 10), -1);
    assert_int_equal(receipt_batch_index("123456789012", 10), -1);
    assert_int_equal(receipt_batch_index(NULL, 10), -1);
}

static void test_outcome_per_entry(void **state)
{
    (void)state;
    char *ok_ids[] = {"0", "2", "7"}; /* "7" is not one of our 4 entries */
    struct sqs_batch_failure failed[] = {{.id = "1", .code = "ReceiptHandleIsInvalid"},
                                         {.id = "x", .code = "Nonsense"}};
    struct sqs_batch_result r = {.n_ok = 3, .ok_ids = ok_ids, .n_failed = 2, .failed = failed};
    bool ok[4] = {true, true, true, true};
    receipt_batch_outcome(&r, 4, ok);
    assert_true(ok[0]);
    assert_false(ok[1]); /* failed */
    assert_true(ok[2]);
    assert_false(ok[3]); /* not mentioned: not done */
}

static void test_outcome_failure_wins(void **state)
{
    (void)state;
    /* an answer naming an entry both ways is not trusted as a success */
    char *ok_ids[] = {"0"};
    struct sqs_batch_failure failed[] = {{.id = "0", .code = "InternalError"}};
    struct sqs_batch_result r = {.n_ok = 1, .ok_ids = ok_ids, .n_failed = 1, .failed = failed};
    bool ok[1];
    receipt_batch_outcome(&r, 1, ok);
    assert_false(ok[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_fill_takes_at_most_ten, setup),
        cmocka_unit_test_setup(test_encoded_bodies, setup),
        cmocka_unit_test(test_index_accepts_only_our_ids),
        cmocka_unit_test(test_outcome_per_entry),
        cmocka_unit_test(test_outcome_failure_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
