/*
 * events_codec.h - Amazon EventBridge PutEvents in the AWS JSON 1.1
 * protocol: the request body and the answer, pure functions, no I/O.
 *
 * Limits are checked the way EventBridge checks them, before anything is
 * queued or sent: at most 10 entries a request, and the entries' total size
 * (the UTF-8 bytes of Source, DetailType and Detail, as the EventBridge User
 * Guide's "Calculating PutEvents event entry size" counts them) below 256 KB.
 * An entry that can never be accepted is refused here, so it cannot fail a
 * batch forever. The answer is read per entry: EventBridge accepts or fails
 * each one on its own, and says which failures are worth another try.
 */
#ifndef ORDER_EVENTS_CODEC_H
#define ORDER_EVENTS_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include "aws_error.h"

#define EVENTS_MAX_BATCH 10
#define EVENTS_MAX_REQUEST_BYTES (256 * 1024) /* the entries' total size stays below */
#define EVENTS_MAX_SOURCE_BYTES 256
#define EVENTS_MAX_DETAIL_TYPE_CHARS 128
#define EVENTS_MAX_BUS_NAME_BYTES 1600
#define EVENTS_MAX_TRACE_HEADER_BYTES 500
#define EVENTS_MAX_EVENT_ID_BYTES 64

struct events_entry {
    const char *source;         /* e.g. "order-service"; "aws." is reserved */
    const char *detail_type;    /* e.g. "order.created" */
    const char *detail;         /* a JSON object, as text */
    const char *event_bus_name; /* a bus name or ARN */
    const char *trace_header;   /* X-Ray trace header, or NULL */
};

/* The size EventBridge counts against the request limit. */
size_t events_entry_size(const struct events_entry *e);
/* 0 when e can be sent, else -1 with why naming the field and the rule. */
int events_entry_check(const struct events_entry *e, char *why, size_t whylen);
/* How many of e[0..n) go into one request: at most 10, total size below the
 * limit (an entry too large on its own still counts as one, so a caller that
 * skips events_entry_check learns of it from the encoder). */
size_t events_batch_fit(const struct events_entry *e, size_t n);
/* The PutEvents body for e[0..n) (malloc), or NULL with err (AWS_ERR_CLIENT
 * naming the entry and the rule, or out of memory). */
char *events_encode_put_events(const struct events_entry *e, size_t n, struct aws_error *err);

enum events_outcome {
    EVENTS_OK,       /* accepted: event_id is set */
    EVENTS_RETRY,    /* InternalFailure, throttling, or a code not known to be final */
    EVENTS_REJECTED, /* the event itself is invalid (InvalidArgument, MalformedDetail,
                        ValidationException, RedactionFailure): never retry it */
    EVENTS_DENIED,   /* not allowed (AccessDeniedException, NotAuthorizedFor...,
                        InvalidAccountIdException): fails until permissions change */
};
/* The outcome EventBridge's documentation gives an entry's ErrorCode. */
enum events_outcome events_classify_error_code(const char *code);

struct events_result_entry {
    enum events_outcome outcome;
    char event_id[EVENTS_MAX_EVENT_ID_BYTES + 1]; /* EVENTS_OK */
    char error_code[128];                         /* the others */
    char error_message[256];                      /* cut at a character boundary */
};

struct events_put_result {
    size_t n;        /* entries answered: always the number sent */
    size_t n_failed; /* entries not EVENTS_OK */
    struct events_result_entry entry[EVENTS_MAX_BATCH]; /* in request order */
};

/* Decodes the answer to a PutEvents of n_sent entries. -1 with a PARSE error
 * when it cannot be read or does not answer each entry exactly once
 * (Entries of another length, a FailedEntryCount that disagrees with them):
 * the caller then treats the whole batch as not sent. */
int events_decode_put_events(const char *json, size_t len, size_t n_sent,
                             struct events_put_result *out, struct aws_error *err);

#endif
