/*
 * fuzz_payment.c - libFuzzer target for the http payment provider's answer
 * parser (worker/payment_answer.c): the first two bytes pick the HTTP status,
 * the rest is the body. Whatever a provider sends must map to one outcome
 * with a bounded, printable reason and payment id, never crash or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "payment.h"

static void printable(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct payment_answer a;
    long status = 200;
    if (size >= 2) {
        status = (long)((data[0] << 8 | data[1]) % 700);
        data += 2;
        size -= 2;
    }
    payment_answer_parse(status, (const char *)data, size, &a);
    printable(a.payment_id, PAYMENT_ID_MAX);
    printable(a.reason, PAYMENT_REASON_MAX);
    switch (a.outcome) {
    case PAYMENT_APPROVED:
        if (!a.payment_id[0] || status < 200 || status > 299)
            abort();
        break;
    case PAYMENT_DECLINED:
        if (!a.reason[0])
            abort();
        break;
    case PAYMENT_ERROR:
        if (!a.reason[0] || (status >= 200 && status <= 299 && !a.unexpected))
            abort();
        break;
    default:
        abort();
    }
    return 0;
}
