/*
 * config.c - loading a program's configuration table from the environment,
 * the parsers and validators of each kind of value, --help, and the variables
 * both programs read.
 *
 * Every value is checked at start, before anything connects: a URL with an
 * invalid byte or a bind address that is not one must stop the program with
 * exit 2 and one line naming it, not crash the first request that uses it
 * (issue 10, fault 5). Messages never quote the value: it may be a secret,
 * and it may hold the very bytes that make it invalid.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "credentials.h"
#include "util.h"

/* ---- the variables both programs read ---------------------------------- */

#define BOTH (CONFIG_API | CONFIG_WORKER)

const struct config_var cf_database_url = {
    .name = "DATABASE_URL",
    .programs = BOTH,
    .kind = CONFIG_DATABASE_URL,
    .flags = CONFIG_REQUIRED,
    .help = "the PostgreSQL database (libpq's PG* variables apply too)",
};
const struct config_var cf_sqs_queue_url = {
    .name = "SQS_QUEUE_URL",
    .programs = BOTH,
    .kind = CONFIG_URL,
    .flags = CONFIG_REQUIRED,
    .help = "URL of the orders queue",
};
const struct config_var cf_aws_region = {
    .name = "AWS_REGION",
    .shown = "AWS_DEFAULT_REGION",
    .programs = BOTH,
    .kind = CONFIG_REGION,
    .help = "region for signing and the default endpoint",
};
const struct config_var cf_aws_default_region = {
    .name = "AWS_DEFAULT_REGION",
    .programs = BOTH,
    .kind = CONFIG_REGION,
    .help = "used when AWS_REGION is unset",
};
const struct config_var cf_aws_endpoint_url_sqs = {
    .name = "AWS_ENDPOINT_URL_SQS",
    .shown = "AWS_ENDPOINT_URL",
    .programs = BOTH,
    .kind = CONFIG_URL,
    .help = "SQS endpoint, scheme://host[:port] (LocalStack: http://127.0.0.1:4566)",
};
const struct config_var cf_aws_endpoint_url = {
    .name = "AWS_ENDPOINT_URL",
    .shown = "https://sqs.<region>.amazonaws.com",
    .programs = BOTH,
    .kind = CONFIG_URL,
    .help = "endpoint for every AWS service whose own one is unset",
};
const struct config_var cf_aws_access_key_id = {
    .name = "AWS_ACCESS_KEY_ID",
    .programs = BOTH,
    .kind = CONFIG_WORD,
    .help = "static or temporary credentials (first in the chain), with AWS_SECRET_ACCESS_KEY",
};
const struct config_var cf_aws_secret_access_key = {
    .name = "AWS_SECRET_ACCESS_KEY",
    .programs = BOTH,
    .kind = CONFIG_WORD,
    .help = "the secret of AWS_ACCESS_KEY_ID",
};
const struct config_var cf_aws_session_token = {
    .name = "AWS_SESSION_TOKEN",
    .programs = BOTH,
    .kind = CONFIG_WORD,
    .help = "session token of temporary credentials",
};
const struct config_var cf_aws_container_credentials_relative_uri = {
    .name = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    .programs = BOTH,
    .kind = CONFIG_URL_PATH,
    .help = "ECS task role: credentials from http://169.254.170.2<path> (set by ECS)",
};
const struct config_var cf_aws_container_credentials_full_uri = {
    .name = "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    .programs = BOTH,
    .kind = CONFIG_URL,
    .help = "credentials endpoint (https, or http to a loopback or the ECS/EKS agent address)",
};
const struct config_var cf_aws_container_authorization_token = {
    .name = "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    .programs = BOTH,
    .kind = CONFIG_TEXT,
    .help = "Authorization header for the full-URI credentials endpoint",
};
const struct config_var cf_aws_container_authorization_token_file = {
    .name = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    .programs = BOTH,
    .kind = CONFIG_FILE,
    .help = "file holding that header (wins over the variable; re-read on each refresh)",
};
/* The ranges are sqs_config_from_env's: the table refuses first, with the same rule. */
const struct config_var cf_sqs_max_attempts = {
    .name = "SQS_MAX_ATTEMPTS",
    .def = "5",
    .programs = BOTH,
    .kind = CONFIG_INT,
    .min = 1,
    .max = 20,
    .help = "attempts per synchronous SQS call",
};
const struct config_var cf_sqs_connect_timeout_ms = {
    .name = "SQS_CONNECT_TIMEOUT_MS",
    .def = "2000",
    .programs = BOTH,
    .kind = CONFIG_INT,
    .min = 1,
    .max = 600000,
    .help = "connect timeout for SQS, milliseconds",
};
const struct config_var cf_sqs_request_timeout_ms = {
    .name = "SQS_REQUEST_TIMEOUT_MS",
    .def = "30000",
    .programs = BOTH,
    .kind = CONFIG_INT,
    .min = 1,
    .max = 3600000,
    .help = "request timeout for SQS, milliseconds (long polls add their wait)",
};

static const struct config_choice log_levels[] = {
    {"debug", 0}, {"info", 1}, {"warn", 2}, {"warning", 2}, {"error", 3}, {NULL, 0},
};
const struct config_var cf_log_level = {
    .name = "LOG_LEVEL",
    .def = "info",
    .programs = BOTH,
    .kind = CONFIG_ENUM,
    .choices = log_levels,
    .help = "least severe level logged",
};
static const struct config_choice log_formats[] = {
    {"json", CONFIG_LOG_JSON},
    {"text", CONFIG_LOG_TEXT},
    {NULL, 0},
};
const struct config_var cf_log_format = {
    .name = "LOG_FORMAT",
    .def = "json",
    .programs = BOTH,
    .kind = CONFIG_ENUM,
    .choices = log_formats,
    .help = "json: one JSON object per line (CloudWatch); text: a compact line for terminals",
};
const struct config_var cf_bind_address = {
    .name = "BIND_ADDRESS",
    .def = "0.0.0.0",
    .programs = BOTH,
    .kind = CONFIG_IPV4,
    .help = "address the listeners bind to (HTTP API, /metrics)",
};
const struct config_var cf_metrics_port = {
    .name = "METRICS_PORT",
    .def = "9100",
    .programs = BOTH,
    .kind = CONFIG_INT,
    .min = 0,
    .max = 65535,
    .help = "port of Prometheus /metrics (and /healthz); 0 turns it off",
};

const struct config_var cf_metrics_emf = {
    .name = "METRICS_EMF",
    .def = "0",
    .programs = BOTH,
    .kind = CONFIG_INT,
    .min = 0,
    .max = 1,
    .help = "1: write metrics as CloudWatch Embedded Metric Format lines on stdout",
};

const struct config_var cf_metrics_emf_interval_s = {
    .name = "METRICS_EMF_INTERVAL_S",
    .def = "60",
    .programs = BOTH,
    .kind = CONFIG_INT,
    .min = 1,
    .max = 3600,
    .help = "seconds aggregated into one EMF line",
};

const struct config_var cf_metrics_namespace = {
    .name = "METRICS_NAMESPACE",
    .def = "OrderService",
    .programs = BOTH,
    .kind = CONFIG_WORD,
    .help = "CloudWatch namespace of the EMF metrics (dimension Service = the program)",
};

/* ---- messages ------------------------------------------------------------ */

/* The first byte of s outside [lo, hi], or NULL. */
static const char *byte_outside(const char *s, unsigned char lo, unsigned char hi)
{
    for (; *s; s++)
        if ((unsigned char)*s < lo || (unsigned char)*s > hi)
            return s;
    return NULL;
}

/* Why a byte is refused, by position: the value itself is never quoted. */
static void bad_byte(char *why, size_t whylen, const char *value, const char *at)
{
    unsigned char c = (unsigned char)*at;
    util_errf(why, whylen, "%s (byte 0x%02x at offset %zu)",
              c == ' ' || c == '\t' || c == '\n' || c == '\r' ? "must not hold whitespace"
              : c >= 0x80                                     ? "must be printable ASCII"
                                                              : "must not hold control characters",
              c, (size_t)(at - value));
}

/* ---- validators, one per kind -------------------------------------------- */

bool config_host_loopback(const char *host, size_t len)
{
    char h[64];
    struct in_addr a4;

    if (len == 0 || len >= sizeof(h))
        return false;
    memcpy(h, host, len);
    h[len] = '\0';
    if (strcasecmp(h, "localhost") == 0 || strcmp(h, "[::1]") == 0)
        return true;
    return inet_pton(AF_INET, h, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

int config_url_valid(const char *url, unsigned flags, char *why, size_t whylen)
{
    const char *bad, *host, *end, *p;
    size_t skip;
    bool https;

    if (strlen(url) > CONFIG_URL_MAX) {
        util_errf(why, whylen, "must be at most %d bytes", CONFIG_URL_MAX);
        return -1;
    }
    if ((bad = byte_outside(url, 0x21, 0x7e))) {
        bad_byte(why, whylen, url, bad);
        return -1;
    }
    if (strncasecmp(url, "https://", 8) == 0) {
        skip = 8;
        https = true;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        skip = 7;
        https = false;
    } else {
        util_errf(why, whylen, "must start with http:// or https://");
        return -1;
    }
    host = url + skip;
    end = host + strcspn(host, "/?#");
    if (memchr(host, '@', (size_t)(end - host))) {
        util_errf(why, whylen, "must not carry a user name or password");
        return -1;
    }
    if (*host == '[') { /* [IPv6] */
        char a6txt[INET6_ADDRSTRLEN];
        unsigned char a6[16];
        const char *close = memchr(host, ']', (size_t)(end - host));
        size_t n = close ? (size_t)(close - host - 1) : 0;
        if (!close || n == 0 || n >= sizeof(a6txt)) {
            util_errf(why, whylen, "has a malformed [IPv6] host");
            return -1;
        }
        memcpy(a6txt, host + 1, n);
        a6txt[n] = '\0';
        if (inet_pton(AF_INET6, a6txt, a6) != 1) {
            util_errf(why, whylen, "has a malformed [IPv6] host");
            return -1;
        }
        p = close + 1;
    } else {
        for (p = host; p < end && *p != ':'; p++) {
            if (!host_char(*p)) {
                util_errf(why, whylen, "has a character not allowed in a host name (offset %zu)",
                          (size_t)(p - url));
                return -1;
            }
        }
        if (p == host) {
            util_errf(why, whylen, "has no host");
            return -1;
        }
    }
    size_t host_len = (size_t)(p - host);
    if (p < end) {
        long port = 0;
        if (*p != ':') {
            util_errf(why, whylen, "has characters after the host");
            return -1;
        }
        if (++p == end || end - p > 5) {
            util_errf(why, whylen, "must have a port from 1 to 65535 after ':'");
            return -1;
        }
        for (; p < end; p++) {
            if (*p < '0' || *p > '9') {
                util_errf(why, whylen, "must have a port from 1 to 65535 after ':'");
                return -1;
            }
            port = port * 10 + (*p - '0');
        }
        if (port < 1 || port > 65535) {
            util_errf(why, whylen, "must have a port from 1 to 65535 after ':'");
            return -1;
        }
    }
    if ((flags & CONFIG_URL_HTTPS) && !https && !config_host_loopback(host, host_len)) {
        util_errf(why, whylen, "must use https (http only to a loopback host)");
        return -1;
    }
    return 0;
}

static int parse_int(const struct config_var *v, const char *s, int64_t *out, char *why,
                     size_t whylen)
{
    const char *digits = s[0] == '-' ? s + 1 : s;
    char *end;
    long long x;

    if (*digits < '0' || *digits > '9')
        goto bad;
    errno = 0;
    x = strtoll(s, &end, 10);
    if (errno || *end || x < v->min || x > v->max)
        goto bad;
    *out = x;
    return 0;
bad:
    util_errf(why, whylen, "must be an integer from %lld to %lld", (long long)v->min,
              (long long)v->max);
    return -1;
}

static void choice_names(const struct config_choice *c, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (; c->name && used < len; c++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", c->name);
}

static int parse_enum(const struct config_var *v, const char *s, int *out, char *why, size_t whylen)
{
    char names[256];
    for (const struct config_choice *c = v->choices; c->name; c++) {
        if (strcasecmp(s, c->name) == 0) {
            *out = c->value;
            return 0;
        }
    }
    choice_names(v->choices, names, sizeof(names));
    util_errf(why, whylen, "must be one of %s", names);
    return -1;
}

/* Names are compared exactly: a JOSE algorithm is "RS256", never "rs256". */
static int parse_set(const struct config_var *v, const char *s, unsigned *out, char *why,
                     size_t whylen)
{
    char names[256];
    unsigned set = 0;
    const char *item = s;

    for (;;) {
        size_t n = strcspn(item, ",");
        const struct config_choice *c = v->choices;
        for (; c->name; c++)
            if (strlen(c->name) == n && strncmp(item, c->name, n) == 0)
                break;
        if (!c->name)
            goto bad;
        set |= (unsigned)c->value;
        if (item[n] == '\0')
            break;
        item += n + 1;
    }
    *out = set;
    return 0;
bad:
    choice_names(v->choices, names, sizeof(names));
    util_errf(why, whylen, "must be a comma-separated list (no spaces) of %s", names);
    return -1;
}

static int check_list(const char *s, char *why, size_t whylen)
{
    const char *bad = byte_outside(s, 0x21, 0x7e);
    if (bad) {
        bad_byte(why, whylen, s, bad);
        return -1;
    }
    if (s[0] == ',' || s[strlen(s) - 1] == ',' || strstr(s, ",,")) {
        util_errf(why, whylen, "must be a comma-separated list without empty items");
        return -1;
    }
    return 0;
}

static int check_region(const char *s, char *why, size_t whylen)
{
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-");
    if (s[n] || n > 63) {
        util_errf(why, whylen, "must be a region name (a-z, 0-9 and '-', e.g. us-east-1)");
        return -1;
    }
    return 0;
}

static int check_url_path(const char *s, char *why, size_t whylen)
{
    const char *bad = byte_outside(s, 0x21, 0x7e);
    if (bad) {
        bad_byte(why, whylen, s, bad);
        return -1;
    }
    if (s[0] != '/') {
        util_errf(why, whylen, "must start with '/'");
        return -1;
    }
    return 0;
}

static int check_ipv4(const char *s, char *why, size_t whylen)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1) {
        util_errf(why, whylen, "must be an IPv4 address such as 0.0.0.0 or 127.0.0.1");
        return -1;
    }
    return 0;
}

/* libpq checks a port only when it connects: "5432" or, with several hosts,
 * "5432,,5433" (an empty item is the default port). */
static bool ports_valid(const char *v)
{
    for (;;) {
        size_t n = strcspn(v, ",");
        long port = 0;
        if (n > 5)
            return false;
        for (size_t i = 0; i < n; i++) {
            if (v[i] < '0' || v[i] > '9')
                return false;
            port = port * 10 + (v[i] - '0');
        }
        if (n && (port < 1 || port > 65535))
            return false;
        if (!v[n])
            return true;
        v += n + 1;
    }
}

/* libpq's own parser decides what it accepts; its error text quotes the
 * string, password included, so only our words reach the message. */
static int check_database_url(const char *s, char *why, size_t whylen)
{
    const char *bad = byte_outside(s, 0x20, 0x7e);
    char *perr = NULL;
    PQconninfoOption *opts;
    bool uri = strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
    bool host = false, port_ok = true;

    if (bad) {
        util_errf(why, whylen, "must be printable ASCII (byte 0x%02x at offset %zu)",
                  (unsigned char)*bad, (size_t)(bad - s));
        return -1;
    }
    if (!(opts = PQconninfoParse(s, &perr))) {
        PQfreemem(perr);
        util_errf(why, whylen, "is not a valid libpq connection string or URI");
        return -1;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        if ((!strcmp(o->keyword, "host") || !strcmp(o->keyword, "hostaddr")) && *o->val)
            host = true;
        if (!strcmp(o->keyword, "port") && !ports_valid(o->val))
            port_ok = false;
    }
    PQconninfoFree(opts);
    if (!port_ok) {
        util_errf(why, whylen, "must have ports from 1 to 65535");
        return -1;
    }
    if (uri && !host) {
        util_errf(why, whylen, "must name a host or a socket directory (postgresql://host/db)");
        return -1;
    }
    return 0;
}

static int check_path(const struct config_var *v, const char *s, char *why, size_t whylen)
{
    const char *what = v->kind == CONFIG_DIR ? "directory" : "file";
    struct stat st;

    if (byte_outside(s, 0x20, 0xff) || strchr(s, 0x7f)) {
        util_errf(why, whylen, "must not hold control characters");
        return -1;
    }
    if (stat(s, &st) != 0) {
        util_errf(why, whylen, "must name a readable %s (%s)", what, strerror(errno));
        return -1;
    }
    if (v->kind == CONFIG_DIR ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
        util_errf(why, whylen, "must name a %s", what);
        return -1;
    }
    if (access(s, v->kind == CONFIG_DIR ? R_OK | X_OK : R_OK) != 0) {
        util_errf(why, whylen, "must name a readable %s (%s)", what, strerror(errno));
        return -1;
    }
    return 0;
}

/* Checks s against v's kind; for the kinds stored as numbers, writes the result. */
static int parse_value(const struct config_var *v, const char *s, const struct config_entry *e,
                       char *why, size_t whylen)
{
    const char *bad;
    int64_t i;
    int en;
    unsigned set;

    switch (v->kind) {
    case CONFIG_INT:
        if (parse_int(v, s, &i, why, whylen) != 0)
            return -1;
        if (e && e->to.i)
            *e->to.i = i;
        return 0;
    case CONFIG_ENUM:
        if (parse_enum(v, s, &en, why, whylen) != 0)
            return -1;
        if (e && e->to.e)
            *e->to.e = en;
        return 0;
    case CONFIG_SET:
        if (parse_set(v, s, &set, why, whylen) != 0)
            return -1;
        if (e && e->to.set)
            *e->to.set = set;
        return 0;
    case CONFIG_WORD:
    case CONFIG_TEXT:
        bad = byte_outside(s, v->kind == CONFIG_WORD ? 0x21 : 0x20, 0x7e);
        if (bad)
            bad_byte(why, whylen, s, bad);
        return bad ? -1 : 0;
    case CONFIG_LIST:
        return check_list(s, why, whylen);
    case CONFIG_REGION:
        return check_region(s, why, whylen);
    case CONFIG_URL:
        return config_url_valid(s, v->flags, why, whylen);
    case CONFIG_URL_PATH:
        return check_url_path(s, why, whylen);
    case CONFIG_IPV4:
        return check_ipv4(s, why, whylen);
    case CONFIG_DATABASE_URL:
        return check_database_url(s, why, whylen);
    case CONFIG_FILE:
    case CONFIG_DIR:
        return check_path(v, s, why, whylen);
    }
    util_errf(why, whylen, "has a kind this program does not know");
    return -1;
}

/* An entry must bind at most one field, the one its kind stores into: a table
 * that says otherwise is a programming error caught on the first start. */
static bool binding_fits(const struct config_entry *e)
{
    int bound = !!e->to.i + !!e->to.e + !!e->to.set + !!e->to.s;
    if (bound == 0)
        return true;
    if (bound > 1)
        return false;
    switch (e->var->kind) {
    case CONFIG_INT:
        return e->to.i != NULL;
    case CONFIG_ENUM:
        return e->to.e != NULL;
    case CONFIG_SET:
        return e->to.set != NULL;
    default:
        return e->to.s != NULL;
    }
}

int config_load_entry(const struct config_entry *e, char *err, size_t errlen)
{
    const struct config_var *v = e->var;
    const char *s = getenv(v->name);
    char why[200];

    if (!binding_fits(e)) {
        util_errf(err, errlen, "%s: the program's table binds it to a field of the wrong type",
                  v->name);
        return -1;
    }
    if (!s || !*s) { /* as the AWS SDKs do, an empty variable counts as unset */
        if (v->flags & CONFIG_REQUIRED) {
            util_errf(err, errlen, "%s is required but not set", v->name);
            return -1;
        }
        if (!v->def) {
            if (e->to.s)
                *e->to.s = NULL;
            return 0;
        }
        s = v->def;
    }
    if (parse_value(v, s, e, why, sizeof(why)) != 0) {
        util_errf(err, errlen, "%s %s%s", v->name, why, s == v->def ? " (in its default)" : "");
        return -1;
    }
    if (e->to.s)
        *e->to.s = s;
    return 0;
}

int config_load(const struct config_table *t, unsigned cmd, char *err, size_t errlen)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct config_entry *e = &t->entries[i];
        if (!(e->var->programs & t->program)) {
            util_errf(err, errlen, "%s is in a table of a program it does not list", e->var->name);
            return -1;
        }
        if (!((e->cmds ? e->cmds : CONFIG_SERVE) & cmd))
            continue;
        if (config_load_entry(e, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int config_load_aws(struct sqs_config *sqs, char *err, size_t errlen)
{
    struct creds_provider *p;

    if (sqs_config_from_env(sqs, err, errlen) != 0)
        return -1;
    /* Builds the chain as the clients will (no network call) and drops it:
     * "no credentials at all" is known now, not at the first request. */
    if (!(p = creds_provider_new_default(err, errlen)))
        return -1;
    creds_provider_free(p);
    return 0;
}

/* ---- --help -------------------------------------------------------------- */

const char *config_shown_default(const struct config_var *v)
{
    if (v->shown)
        return v->shown;
    if (v->def)
        return v->def;
    return (v->flags & CONFIG_REQUIRED) ? "required" : "—";
}

static void rule(const struct config_var *v, char *buf, size_t len)
{
    char names[256];

    switch (v->kind) {
    case CONFIG_INT:
        snprintf(buf, len, "integer from %lld to %lld", (long long)v->min, (long long)v->max);
        return;
    case CONFIG_ENUM:
        choice_names(v->choices, names, sizeof(names));
        snprintf(buf, len, "one of %s", names);
        return;
    case CONFIG_SET:
        choice_names(v->choices, names, sizeof(names));
        snprintf(buf, len, "comma-separated list of %s", names);
        return;
    case CONFIG_LIST:
        snprintf(buf, len, "comma-separated list");
        return;
    case CONFIG_URL:
        snprintf(buf, len, "%s URL",
                 (v->flags & CONFIG_URL_HTTPS) ? "https (or http to loopback)" : "http or https");
        return;
    case CONFIG_URL_PATH:
        snprintf(buf, len, "path starting with /");
        return;
    case CONFIG_REGION:
        snprintf(buf, len, "region name");
        return;
    case CONFIG_DATABASE_URL:
        snprintf(buf, len, "libpq connection string or URI");
        return;
    case CONFIG_IPV4:
        snprintf(buf, len, "IPv4 address");
        return;
    case CONFIG_FILE:
        snprintf(buf, len, "readable file");
        return;
    case CONFIG_DIR:
        snprintf(buf, len, "readable directory");
        return;
    default:
        buf[0] = '\0';
        return;
    }
}

void config_help(const struct config_table *t, FILE *out)
{
    char r[300];
    fputs("\nConfiguration: environment variables, read once at start. A missing or bad\n"
          "value is named in one line on stderr and the program exits with status 2.\n",
          out);
    for (size_t i = 0; i < t->n; i++) {
        const struct config_var *v = t->entries[i].var;
        rule(v, r, sizeof(r));
        fprintf(out, "  %s [%s]%s%s\n      %s\n", v->name, config_shown_default(v),
                r[0] ? "  " : "", r, v->help);
    }
}

const char *config_env(const char *name)
{
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}
