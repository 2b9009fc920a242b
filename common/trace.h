/*
 * trace.h - trace context: W3C traceparent and AWS X-Ray trace headers.
 *
 * The API continues a caller's trace (or starts one) and hands both headers
 * to the worker through the SQS message: traceparent as a message attribute,
 * the X-Ray header as the AWSTraceHeader system attribute.
 */
#ifndef ORDER_TRACE_H
#define ORDER_TRACE_H

#include <stdbool.h>
#include <stddef.h>

#define TRACEPARENT_LEN 56 /* 55 characters and the terminator */
#define XRAY_HEADER_MAX 256

/* Writes a traceparent continuing incoming (a new span of the same trace) or,
 * when incoming is NULL or malformed, starting a new sampled trace. */
void trace_traceparent(const char *incoming, char out[TRACEPARENT_LEN]);
/* True for "00-<32 hex>-<16 hex>-<2 hex>" with non-zero ids. */
bool trace_traceparent_valid(const char *s);

/* True for Root=1-<8 hex>-<24 hex>[;Parent=<16 hex>][;Sampled=0|1], the
 * AWSTraceHeader grammar SQS accepts. */
bool trace_xray_header_valid(const char *s);
/* Keeps an incoming X-Amzn-Trace-Id when trace_xray_header_valid; otherwise
 * (a client can send anything) starts "Root=1-<8 hex epoch>-<24 hex>;Sampled=0". */
void trace_xray_header(const char *incoming, long long epoch_s, char *out, size_t outlen);

#endif
