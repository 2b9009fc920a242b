/*
 * payment_sim.c - the simulated payment provider's outcome for an order.
 *
 * Deterministic per order id (SHA-256 of the id, read as a number in
 * [0, 1)): the same order always gets the same outcome, so tests are
 * repeatable and a redelivery never turns a decline into an approval.
 */
#include <math.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "payment.h"

double payment_sim_draw(const char *order_id)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    uint64_t u = 0;
    SHA256((const unsigned char *)order_id, strlen(order_id), md);
    for (int i = 0; i < 8; i++)
        u = (u << 8) | md[i];
    return (double)(u >> 11) * 0x1.0p-53; /* 53 bits: exact in a double, < 1 */
}

enum payment_outcome payment_sim_outcome(const char *order_id, double decline_rate,
                                         double error_rate)
{
    double d = payment_sim_draw(order_id);
    if (d < decline_rate)
        return PAYMENT_DECLINED;
    if (d < decline_rate + error_rate)
        return PAYMENT_ERROR;
    return PAYMENT_APPROVED;
}

int payment_rate_parse(const char *s, double *out)
{
    size_t digits = 0, dots = 0, n = s ? strlen(s) : 0;
    if (n == 0 || n > 20)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.')
            dots++;
        else if (s[i] >= '0' && s[i] <= '9')
            digits++;
        else
            return -1;
    }
    if (dots > 1 || digits == 0)
        return -1;
    char *end;
    double v = strtod(s, &end);
    if (*end || !isfinite(v) || v < 0.0 || v > 1.0)
        return -1;
    *out = v;
    return 0;
}
