/*
 * aws_json.h - the jansson helpers every AWS JSON codec here shares.
 *
 * Building: each helper steals or checks its value, so a chain of them fails
 * as a whole when any step fails (invalid UTF-8, out of memory) and the
 * caller frees one root. Reading: answers are hostile input, so every member
 * is type-checked before use, arrays are bounded, and errors name the member.
 * Pure functions, no I/O: the codecs built on them are fuzzed.
 */
#ifndef ORDER_AWS_JSON_H
#define ORDER_AWS_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "aws_error.h"

/* o[key] = v, stealing v; -1 when v is NULL (a failed builder) or on failure. */
int aws_json_set(json_t *o, const char *key, json_t *v);
/* o[key] = s; -1 when s is NULL, empty or not valid UTF-8. */
int aws_json_set_str(json_t *o, const char *key, const char *s);
/* Appends v to a, stealing v; -1 when v is NULL or on failure. */
int aws_json_append(json_t *a, json_t *v);
/* Compact text of o in insertion order (malloc), or NULL when memory runs
 * out (never a truncated or malformed text); always drops o. */
char *aws_json_dump(json_t *o);

/* json_loadb, except that a parse during which memory ran out is a failure
 * (*oom set) even when jansson returned a tree: jansson 2.14's lexer drops
 * the byte it could not store and carries on (akheron/jansson#362), so such
 * a tree may hold silently altered keys, strings or numbers. A failed
 * allocation is seen through errno (ENOMEM), which malloc sets. jerr->text
 * comes back printable ASCII (jansson quotes raw input bytes there). */
json_t *aws_json_load(const char *json, size_t len, size_t flags, json_error_t *jerr, bool *oom);

/* Parses an answer that must be one JSON object; NULL with a PARSE error
 * naming what ("ReceiveMessage response") otherwise. */
json_t *aws_json_parse_object(const char *json, size_t len, const char *what,
                              struct aws_error *err);
/* An optional array member: absent or null reads as no array (*out NULL).
 * -1 with a PARSE error for any other type or more than max elements. */
int aws_json_get_array(json_t *o, const char *key, size_t max, json_t **out, const char *what,
                       struct aws_error *err);
/* Copies the string member key of o into *out (malloc). Absent or null is an
 * error when required, else leaves *out NULL. -1 with a PARSE error naming
 * what, the entry index and the member when it is missing, not a string or
 * memory runs out. */
int aws_json_dup_string(json_t *o, const char *key, bool required, char **out, const char *what,
                        size_t index, struct aws_error *err);

#endif
