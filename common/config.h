/*
 * config.h - the configuration tables both programs are read through.
 *
 * Each program declares one table (PgBouncer's cf_* style): every environment
 * variable it reads, the default shown to users, which programs read it, a
 * one-line help, and how the value is parsed into the program's config struct.
 * That one table is loaded at start, printed by --help and mirrored by the
 * README, so the three cannot name different sets (tests/integration/
 * test_config.py checks it). Variables both programs read are described once,
 * here (the cf_* below); each program only says where their values go.
 *
 * A missing or bad value is a configuration error: config_load fills err with
 * one line naming the variable (never its value, which may be a secret or
 * hold bytes a terminal cannot show), and the program exits 2 before it
 * connects to anything.
 */
#ifndef ORDER_CONFIG_H
#define ORDER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sqs.h"

enum config_kind {
    CONFIG_INT,      /* integer in [min, max] -> int64_t */
    CONFIG_ENUM,     /* one of choices, any case -> int (the choice's value) */
    CONFIG_SET,      /* comma-separated choices, exact case, no spaces -> unsigned (OR of values) */
    CONFIG_WORD,     /* printable ASCII without spaces (names, keys, tokens) -> const char * */
    CONFIG_TEXT,     /* printable ASCII, spaces allowed -> const char * */
    CONFIG_LIST,     /* comma-separated words, none empty -> const char * */
    CONFIG_REGION,   /* AWS region name: a-z, 0-9 and '-' -> const char * */
    CONFIG_URL,      /* config_url_valid -> const char * */
    CONFIG_URL_PATH, /* the path part of a URL: '/' then printable ASCII -> const char * */
    CONFIG_IPV4,     /* dotted-quad IPv4 address -> const char * */
    CONFIG_DATABASE_URL, /* libpq connection string or URI -> const char * */
    CONFIG_FILE,         /* a readable regular file -> const char * */
    CONFIG_DIR,          /* a readable directory -> const char * */
};

/* config_var.flags */
#define CONFIG_REQUIRED 0x1u  /* unset or empty is an error */
#define CONFIG_URL_HTTPS 0x2u /* CONFIG_URL: https, or http only to a loopback host */

/* config_var.programs: who reads the variable (--help, the README's "program" column). */
#define CONFIG_API 0x1u
#define CONFIG_WORKER 0x2u

struct config_choice {
    const char *name;
    int value;
};

/* What a variable is, whichever program reads it. */
struct config_var {
    const char *name;
    /* Value used when the variable is unset or empty, parsed exactly like one
     * from the environment; NULL: none (the field stays NULL / 0). */
    const char *def;
    /* The default as users see it (--help, README) when it is not def, e.g.
     * "AWS_DEFAULT_REGION"; NULL: def, or "required" / "—". */
    const char *shown;
    unsigned programs;
    enum config_kind kind;
    unsigned flags;
    int64_t min, max;                    /* CONFIG_INT */
    const struct config_choice *choices; /* CONFIG_ENUM, CONFIG_SET; ends with {NULL, 0} */
    const char *help;                    /* one line; the kind's rule is appended by --help */
};

/* config_entry.cmds: the order-api subcommands an entry is loaded for. */
#define CONFIG_SERVE 0x1u
#define CONFIG_MIGRATE 0x2u
#define CONFIG_HEALTHCHECK 0x4u

/* A variable as one program reads it. Exactly one member of `to` is set, the
 * one of the variable's kind; none for a variable this table only validates
 * and a client library reads itself (SQS client, credential chain). */
struct config_entry {
    const struct config_var *var;
    struct {
        int64_t *i;     /* CONFIG_INT */
        int *e;         /* CONFIG_ENUM */
        unsigned *set;  /* CONFIG_SET */
        const char **s; /* every other kind */
    } to;
    unsigned cmds; /* 0 means CONFIG_SERVE */
};

struct config_table {
    unsigned program; /* CONFIG_API or CONFIG_WORKER */
    const struct config_entry *entries;
    size_t n;
};

/* Loads, in table order, every entry read by cmd (a CONFIG_SERVE... bit);
 * stops at the first error. Returns 0, or -1 with err naming the variable. */
/* The value of an environment variable, or NULL when unset or empty: for the
 * few readers that must see a variable again after start (the credentials
 * chain, the AWS clients); the tables validated it already. */
const char *config_env(const char *name);

int config_load(const struct config_table *t, unsigned cmd, char *err, size_t errlen);
/* Parses one entry from the environment into its field. Returns 0 or -1. */
int config_load_entry(const struct config_entry *e, char *err, size_t errlen);
/* Writes the table for --help: "  NAME [default]  rule" and an indented help line. */
void config_help(const struct config_table *t, FILE *out);
/* The default as shown to users: shown, def, "required" or "—". */
const char *config_shown_default(const struct config_var *v);

/* After the table (which validated each variable): fills the SQS client's
 * configuration from its variables, and checks that the credential chain has
 * a source (environment keys or the container endpoint), without a network
 * call. Returns 0, or -1 with err naming the variable. */
int config_load_aws(struct sqs_config *sqs, char *err, size_t errlen);

/* 0 when url is http:// or https:// (any case), then a non-empty host (name,
 * IPv4 or [IPv6]), an optional port 1-65535 and an optional path, query and
 * fragment; printable ASCII only (no whitespace, control character or byte
 * above 0x7e), no user info, at most CONFIG_URL_MAX bytes. flags may hold
 * CONFIG_URL_HTTPS. Otherwise -1 with the reason (without the URL) in why. */
#define CONFIG_URL_MAX 2048
int config_url_valid(const char *url, unsigned flags, char *why, size_t whylen);
/* True for localhost, 127.0.0.0/8 and [::1]. */
bool config_host_loopback(const char *host, size_t len);

/* enum log_format, the values of LOG_FORMAT. */
enum config_log_format { CONFIG_LOG_JSON = 0, CONFIG_LOG_TEXT = 1 };

/* ---- variables both programs read (described once, in config.c) ---- */

extern const struct config_var cf_database_url;
extern const struct config_var cf_sqs_queue_url;
extern const struct config_var cf_aws_region;
extern const struct config_var cf_aws_default_region;
extern const struct config_var cf_aws_endpoint_url_sqs;
extern const struct config_var cf_aws_endpoint_url;
extern const struct config_var cf_aws_access_key_id;
extern const struct config_var cf_aws_secret_access_key;
extern const struct config_var cf_aws_session_token;
extern const struct config_var cf_aws_container_credentials_relative_uri;
extern const struct config_var cf_aws_container_credentials_full_uri;
extern const struct config_var cf_aws_container_authorization_token;
extern const struct config_var cf_aws_container_authorization_token_file;
extern const struct config_var cf_sqs_max_attempts;
extern const struct config_var cf_sqs_connect_timeout_ms;
extern const struct config_var cf_sqs_request_timeout_ms;
extern const struct config_var cf_log_level;
extern const struct config_var cf_log_format;
extern const struct config_var cf_bind_address;
extern const struct config_var cf_metrics_port;
extern const struct config_var cf_metrics_emf;
extern const struct config_var cf_metrics_emf_interval_s;
extern const struct config_var cf_metrics_namespace;

/* The SQS client's and the credential chain's variables, in the order a
 * program's table lists them (validated only; the clients read them). */
/* clang-format off */
#define CONFIG_AWS_ENTRIES \
    {.var = &cf_aws_region}, \
    {.var = &cf_aws_default_region}, \
    {.var = &cf_aws_endpoint_url_sqs}, \
    {.var = &cf_aws_endpoint_url}, \
    {.var = &cf_sqs_max_attempts}, \
    {.var = &cf_sqs_connect_timeout_ms}, \
    {.var = &cf_sqs_request_timeout_ms}, \
    {.var = &cf_aws_access_key_id}, \
    {.var = &cf_aws_secret_access_key}, \
    {.var = &cf_aws_session_token}, \
    {.var = &cf_aws_container_credentials_relative_uri}, \
    {.var = &cf_aws_container_credentials_full_uri}, \
    {.var = &cf_aws_container_authorization_token}, \
    {.var = &cf_aws_container_authorization_token_file}
/* clang-format on */

#endif
