/*
 * aws_json.c - jansson helpers shared by the AWS JSON codecs (see aws_json.h).
 */
#include "aws_json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int aws_json_set(json_t *o, const char *key, json_t *v)
{
    if (!v)
        return -1;
    return json_object_set_new(o, key, v) == 0 ? 0 : -1;
}

int aws_json_set_str(json_t *o, const char *key, const char *s)
{
    if (!s || !*s)
        return -1;
    return aws_json_set(o, key, json_string(s));
}

int aws_json_append(json_t *a, json_t *v)
{
    if (!v)
        return -1;
    return json_array_append_new(a, v) == 0 ? 0 : -1;
}

/* Takes o over. Not json_dumps: see util_json_dumps (akheron/jansson#655,
 * found by the allocation-failure walk in tests/unit/test_sqs.c). */
char *aws_json_dump(json_t *o)
{
    char *s = util_json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

json_t *aws_json_load(const char *json, size_t len, size_t flags, json_error_t *jerr, bool *oom)
{
    json_error_t local;
    if (!jerr)
        jerr = &local;
    *oom = false;
    errno = 0;
    json_t *root = json_loadb(json ? json : "", json ? len : 0, flags, jerr);
    /* jansson quotes the input near an error, raw: a cut or invalid UTF-8
     * sequence there would make the log line that carries it invalid. */
    for (char *p = jerr->text; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    if (errno == ENOMEM) {
        json_decref(root);
        *oom = true;
        snprintf(jerr->text, sizeof(jerr->text), "out of memory");
        return NULL;
    }
    return root;
}

json_t *aws_json_parse_object(const char *json, size_t len, const char *what, struct aws_error *err)
{
    json_error_t jerr;
    bool oom;
    json_t *root = aws_json_load(json, len, 0, &jerr, &oom);

    if (oom) {
        aws_error_set(err, AWS_ERR_PARSE, 0, "%s: out of memory", what);
        return NULL;
    }
    if (!root) {
        aws_error_set(err, AWS_ERR_PARSE, 0, "%s is not valid JSON (line %d, column %d): %s", what,
                      jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        aws_error_set(err, AWS_ERR_PARSE, 0, "%s is not a JSON object", what);
        json_decref(root);
        return NULL;
    }
    return root;
}

int aws_json_get_array(json_t *o, const char *key, size_t max, json_t **out, const char *what,
                       struct aws_error *err)
{
    json_t *a = json_object_get(o, key);
    *out = NULL;
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_array(a)) {
        aws_error_set(err, AWS_ERR_PARSE, 0, "%s: %s is not an array", what, key);
        return -1;
    }
    if (json_array_size(a) > max) {
        aws_error_set(err, AWS_ERR_PARSE, 0, "%s: %s has %zu entries, at most %zu expected", what,
                      key, json_array_size(a), max);
        return -1;
    }
    *out = a;
    return 0;
}

int aws_json_dup_string(json_t *o, const char *key, bool required, char **out, const char *what,
                        size_t index, struct aws_error *err)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!required && (!v || json_is_null(v)))
        return 0;
    if (!json_is_string(v)) {
        aws_error_set(err, AWS_ERR_PARSE, 0, "%s: entry %zu: %s is %s", what, index, key,
                      v ? "not a string" : "missing");
        return -1;
    }
    if (!(*out = strdup(json_string_value(v)))) {
        aws_error_set(err, AWS_ERR_PARSE, 0, "%s: out of memory", what);
        return -1;
    }
    return 0;
}
