/*
 * main.c - order-api: its configuration table, subcommands and the process
 * lifecycle.
 *
 *   order-api             serve the HTTP API
 *   order-api migrate     apply pending database migrations and exit
 *   order-api healthcheck exit 0 when GET /healthz on this host answers 200
 *
 * Signals are blocked in every thread and taken by sigwait in main, so a
 * SIGTERM never interrupts a libpq or libcurl call half way; shutdown is an
 * ordinary, ordered sequence: stop accepting, drain, flush, exit 0.
 *
 * Every variable the program reads is an entry of api_table (config.h), which
 * --help prints; each subcommand loads the entries it needs and exits 2 with
 * one line on stderr at the first bad one.
 */
#include <curl/curl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "guard.h"
#include "config.h"
#include "db.h"
#include "log.h"

#ifndef ORDER_VERSION
#define ORDER_VERSION "dev"
#endif

struct api_config api_cfg;
struct api_metrics api_metrics;

static const char usage[] =
    "usage: order-api [serve | migrate | healthcheck] [--help] [--version]\n"
    "\n"
    "  serve        run the HTTP API (default)\n"
    "  migrate      apply pending migrations from MIGRATIONS_DIR and exit\n"
    "  healthcheck  exit 0 if http://127.0.0.1:$PORT/healthz answers 200 (container probe)\n";

/* ---- the configuration table: every variable order-api reads ---- */

static const struct config_var cf_port = {
    .name = "PORT",
    .def = "8080",
    .programs = CONFIG_API,
    .kind = CONFIG_INT,
    .min = 1,
    .max = 65535,
    .help = "HTTP port",
};
static const struct config_var cf_api_threads = {
    .name = "API_THREADS",
    .def = "4",
    .programs = CONFIG_API,
    .kind = CONFIG_INT,
    .min = 1,
    .max = 64,
    .help = "libmicrohttpd worker threads",
};
static const struct config_var cf_api_max_connections = {
    .name = "API_MAX_CONNECTIONS",
    .def = "1024",
    .programs = CONFIG_API,
    .kind = CONFIG_INT,
    .min = 16,
    .max = 60000,
    .help = "concurrent client connections",
};
static const struct config_var cf_api_client_timeout_s = {
    .name = "API_CLIENT_TIMEOUT_S",
    .def = "10",
    .programs = CONFIG_API,
    .kind = CONFIG_INT,
    .min = 1,
    .max = 3600,
    .help = "idle or slow client timeout, seconds",
};
static const struct config_var cf_api_shutdown_grace_ms = {
    .name = "API_SHUTDOWN_GRACE_MS",
    .def = "20000",
    .programs = CONFIG_API,
    .kind = CONFIG_INT,
    .min = 0,
    .max = 600000,
    .help = "how long SIGTERM waits for in-flight requests, milliseconds",
};
static const struct config_var cf_api_batch_max = {
    .name = "API_BATCH_MAX",
    .def = "256",
    .programs = CONFIG_API,
    .kind = CONFIG_INT,
    .min = 1,
    .max = 1024,
    .help = "most orders in one group commit",
};
static const struct config_var cf_outbox_relay_interval_ms = {
    .name = "OUTBOX_RELAY_INTERVAL_MS",
    .def = "1000",
    .programs = CONFIG_API,
    .kind = CONFIG_INT,
    .min = 50,
    .max = 600000,
    .help = "how often the relay looks for unsent outbox rows, milliseconds",
};
static const struct config_var cf_outbox_max_backlog = {
    .name = "OUTBOX_MAX_BACKLOG",
    .def = "100000",
    .programs = CONFIG_API,
    .kind = CONFIG_INT,
    .min = 0,
    .max = 1000000000,
    .help = "unsent outbox rows at which POST /orders answers 503 overloaded; 0: no limit",
};
static const struct config_var cf_migrations_dir = {
    .name = "MIGRATIONS_DIR",
    .shown = "<bin>/../share/order-service/migrations",
    .programs = CONFIG_API,
    .kind = CONFIG_DIR,
    .help = "where `order-api migrate` finds the SQL files",
};
static const struct config_var cf_openapi_path = {
    .name = "OPENAPI_PATH",
    .shown = "<bin>/../share/order-service/openapi.yaml",
    .programs = CONFIG_API,
    .kind = CONFIG_FILE,
    .help = "the document served at /openapi.yaml",
};
static const struct config_choice auth_modes[] = {
    {"jwt", API_AUTH_JWT},
    {"off", API_AUTH_OFF},
    {NULL, 0},
};
static const struct config_var cf_auth_mode = {
    .name = "AUTH_MODE",
    .def = "jwt",
    .programs = CONFIG_API,
    .kind = CONFIG_ENUM,
    .choices = auth_modes,
    .help = "jwt: every /orders request needs a bearer token; off: no authentication",
};
static const struct config_var cf_auth_issuer = {
    .name = "AUTH_ISSUER",
    .programs = CONFIG_API,
    .kind = CONFIG_URL,
    .flags = CONFIG_URL_HTTPS,
    .help = "the iss every token must carry (required with AUTH_MODE=jwt, refused with off)",
};
static const struct config_var cf_auth_audience = {
    .name = "AUTH_AUDIENCE",
    .programs = CONFIG_API,
    .kind = CONFIG_LIST,
    .help = "accepted aud values (required with AUTH_MODE=jwt)",
};
static const struct config_choice auth_algorithms[] = {
    {"RS256", API_AUTH_RS256},
    {"ES256", API_AUTH_ES256},
    {NULL, 0},
};
static const struct config_var cf_auth_algorithms = {
    .name = "AUTH_ALGORITHMS",
    .def = "RS256,ES256",
    .programs = CONFIG_API,
    .kind = CONFIG_SET,
    .choices = auth_algorithms,
    .help = "signature algorithms accepted",
};
static const struct config_var cf_auth_leeway_s = {
    .name = "AUTH_LEEWAY_S",
    .def = "60",
    .programs = CONFIG_API,
    .kind = CONFIG_INT,
    .min = 0,
    .max = 600,
    .help = "clock skew allowed on exp, nbf and iat, seconds",
};
static const struct config_var cf_auth_scope_prefix = {
    .name = "AUTH_SCOPE_PREFIX",
    .def = "orders/",
    .programs = CONFIG_API,
    .kind = CONFIG_WORD,
    .help = "prefix of the scopes read, write and admin",
};
static const struct config_var cf_auth_customer_claim = {
    .name = "AUTH_CUSTOMER_CLAIM",
    .def = "sub",
    .programs = CONFIG_API,
    .kind = CONFIG_WORD,
    .help = "claim holding the customer id",
};
static const struct config_var cf_auth_jwks_url = {
    .name = "AUTH_JWKS_URL",
    .programs = CONFIG_API,
    .kind = CONFIG_URL,
    .flags = CONFIG_URL_HTTPS,
    .help = "where the signing keys (JWKS) are fetched from",
};
static const struct config_var cf_auth_jwks_file = {
    .name = "AUTH_JWKS_FILE",
    .programs = CONFIG_API,
    .kind = CONFIG_FILE,
    .help = "signing keys (JWKS) from a file instead",
};
static const struct config_var cf_auth_jwks_refresh_s = {
    .name = "AUTH_JWKS_REFRESH_S",
    .def = "3600",
    .programs = CONFIG_API,
    .kind = CONFIG_INT,
    .min = 60,
    .max = 86400,
    .help = "how often the JWKS is fetched again, seconds",
};
static const struct config_var cf_auth_jwks_min_refresh_s = {
    .name = "AUTH_JWKS_MIN_REFRESH_S",
    .def = "30",
    .programs = CONFIG_API,
    .kind = CONFIG_INT,
    .min = 1,
    .max = 3600,
    .help = "least time between two fetches (an unknown kid asks for one), seconds",
};
static const struct config_var cf_auth_jwks_timeout_ms = {
    .name = "AUTH_JWKS_TIMEOUT_MS",
    .def = "5000",
    .programs = CONFIG_API,
    .kind = CONFIG_INT,
    .min = 100,
    .max = 60000,
    .help = "timeout of one JWKS fetch, milliseconds",
};
static const struct config_var cf_rate_limit_rps = {
    .name = "RATE_LIMIT_RPS",
    .def = "50",
    .programs = CONFIG_API,
    .kind = CONFIG_INT,
    .min = 0,
    .max = 1000000,
    .help = "requests per second allowed to one client; 0 turns the limit off",
};
static const struct config_var cf_rate_limit_burst = {
    .name = "RATE_LIMIT_BURST",
    .def = "100",
    .programs = CONFIG_API,
    .kind = CONFIG_INT,
    .min = 1,
    .max = 1000000,
    .help = "requests one client may send at once above the rate",
};

#define MIGRATE (CONFIG_SERVE | CONFIG_MIGRATE)
static const struct config_entry api_entries[] = {
    {.var = &cf_log_level, .to.e = &api_cfg.log_level, .cmds = MIGRATE},
    {.var = &cf_log_format, .to.e = &api_cfg.log_format, .cmds = MIGRATE},
    {.var = &cf_database_url, .to.s = &api_cfg.database_url, .cmds = MIGRATE},
    {.var = &cf_migrations_dir, .to.s = &api_cfg.migrations_dir, .cmds = MIGRATE},
    {.var = &cf_sqs_queue_url, .to.s = &api_cfg.queue_url},
    CONFIG_AWS_ENTRIES,
    {.var = &cf_bind_address, .to.s = &api_cfg.bind_address},
    {.var = &cf_port, .to.i = &api_cfg.port, .cmds = CONFIG_SERVE | CONFIG_HEALTHCHECK},
    {.var = &cf_api_threads, .to.i = &api_cfg.threads},
    {.var = &cf_api_max_connections, .to.i = &api_cfg.max_connections},
    {.var = &cf_api_client_timeout_s, .to.i = &api_cfg.client_timeout_s},
    {.var = &cf_api_shutdown_grace_ms, .to.i = &api_cfg.shutdown_grace_ms},
    {.var = &cf_api_batch_max, .to.i = &api_cfg.batch_max},
    {.var = &cf_outbox_relay_interval_ms, .to.i = &api_cfg.relay_interval_ms},
    {.var = &cf_outbox_max_backlog, .to.i = &api_cfg.outbox_max_backlog},
    {.var = &cf_openapi_path, .to.s = &api_cfg.openapi_path},
    {.var = &cf_metrics_port, .to.i = &api_cfg.metrics_port},
    {.var = &cf_metrics_emf, .to.i = &api_cfg.metrics_emf},
    {.var = &cf_metrics_emf_interval_s, .to.i = &api_cfg.metrics_emf_interval_s},
    {.var = &cf_metrics_namespace, .to.s = &api_cfg.metrics_namespace},
    {.var = &cf_auth_mode, .to.e = &api_cfg.auth.mode},
    {.var = &cf_auth_issuer, .to.s = &api_cfg.auth.issuer},
    {.var = &cf_auth_audience, .to.s = &api_cfg.auth.audience},
    {.var = &cf_auth_algorithms, .to.set = &api_cfg.auth.algorithms},
    {.var = &cf_auth_leeway_s, .to.i = &api_cfg.auth.leeway_s},
    {.var = &cf_auth_scope_prefix, .to.s = &api_cfg.auth.scope_prefix},
    {.var = &cf_auth_customer_claim, .to.s = &api_cfg.auth.customer_claim},
    {.var = &cf_auth_jwks_url, .to.s = &api_cfg.auth.jwks_url},
    {.var = &cf_auth_jwks_file, .to.s = &api_cfg.auth.jwks_file},
    {.var = &cf_auth_jwks_refresh_s, .to.i = &api_cfg.auth.jwks_refresh_s},
    {.var = &cf_auth_jwks_min_refresh_s, .to.i = &api_cfg.auth.jwks_min_refresh_s},
    {.var = &cf_auth_jwks_timeout_ms, .to.i = &api_cfg.auth.jwks_timeout_ms},
    {.var = &cf_rate_limit_rps, .to.i = &api_cfg.rate_limit_rps},
    {.var = &cf_rate_limit_burst, .to.i = &api_cfg.rate_limit_burst},
};
static const struct config_table api_table = {
    CONFIG_API,
    api_entries,
    sizeof(api_entries) / sizeof(api_entries[0]),
};

static void die_config(const char *err)
{
    fprintf(stderr, "order-api: configuration error: %s\n", err);
    exit(2);
}

/* Rules between variables, once each is valid on its own. */
static int check_serve(char *err, size_t errlen)
{
    const struct api_auth_config *a = &api_cfg.auth;
    if (a->mode == API_AUTH_OFF && a->issuer) {
        snprintf(err, errlen,
                 "AUTH_ISSUER is set but AUTH_MODE is off: set AUTH_MODE=jwt, or "
                 "unset AUTH_ISSUER to run without authentication");
        return -1;
    }
    if (a->mode == API_AUTH_JWT && !a->issuer) {
        snprintf(err, errlen,
                 "AUTH_ISSUER is required with AUTH_MODE=jwt (AUTH_MODE=off runs "
                 "without authentication)");
        return -1;
    }
    if (a->mode == API_AUTH_JWT && !a->audience) {
        snprintf(err, errlen, "AUTH_AUDIENCE is required with AUTH_MODE=jwt");
        return -1;
    }
    if (a->jwks_min_refresh_s > a->jwks_refresh_s) {
        snprintf(err, errlen, "AUTH_JWKS_MIN_REFRESH_S must not exceed AUTH_JWKS_REFRESH_S");
        return -1;
    }
    if (api_cfg.metrics_port == api_cfg.port) {
        snprintf(err, errlen, "METRICS_PORT must differ from PORT (/metrics has its own listener)");
        return -1;
    }
    return 0;
}

/* Every variable cmd reads, or exit 2 naming the first bad one. */
static void load_config(unsigned cmd)
{
    char err[512];
    if (config_load(&api_table, cmd, err, sizeof(err)) != 0 ||
        (cmd == CONFIG_SERVE && (config_load_aws(&api_cfg.sqs, err, sizeof(err)) != 0 ||
                                 check_serve(err, sizeof(err)) != 0)))
        die_config(err);
    if (cmd != CONFIG_HEALTHCHECK)
        log_init("order-api", (enum log_level)api_cfg.log_level,
                 api_cfg.log_format == CONFIG_LOG_TEXT);
}

/* MIGRATIONS_DIR, else the installed share/ directory beside bin/, else the source tree. */
static const char *migrations_dir(char *buf, size_t len)
{
    static const char *const rel[] = {"../share/order-service/migrations", "../migrations", NULL};
    if (api_cfg.migrations_dir)
        return api_cfg.migrations_dir;
    const char *d = util_data_path(NULL, rel, buf, len);
    return d ? d : "/usr/local/share/order-service/migrations";
}

static int cmd_migrate(void)
{
    char err[512], dir[PATH_MAX + 64];
    const char *d = migrations_dir(dir, sizeof(dir));
    PGconn *c = db_connect(api_cfg.database_url, "order-api-migrate", err, sizeof(err));
    if (!c) {
        log_error(NULL, "migrate: cannot connect to the database: %s", err);
        return 1;
    }
    int n = db_migrate(c, d, err, sizeof(err));
    PQfinish(c);
    if (n < 0) {
        log_error(NULL, "migrate: %s", err);
        return 1;
    }
    log_kv(LOG_INFO, NULL, n ? "migrations applied" : "database schema is up to date", "applied",
           (long long)n, NULL);
    return 0;
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

static int cmd_healthcheck(void)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%lld/healthz", (long long)api_cfg.port);
    CURL *h = curl_easy_init();
    long code = 0;
    if (!h) {
        fprintf(stderr, "order-api healthcheck: out of memory\n");
        return 1;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    if (code != 200) {
        fprintf(stderr, "order-api healthcheck: %s: %s\n", url,
                rc == CURLE_OK ? "unexpected status" : curl_easy_strerror(rc));
        return 1;
    }
    return 0;
}

static int cmd_serve(void)
{
    char err[512];
    sigset_t set;
    int sig = 0;

    histogram_init(&api_metrics.request_latency, metrics_latency_bounds, metrics_latency_n);
    histogram_init(&api_metrics.commit_batch_latency, metrics_latency_bounds, metrics_latency_n);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by every thread we start */
    signal(SIGPIPE, SIG_IGN);

    if (guard_start(err, sizeof(err)) != 0) {
        fprintf(stderr, "order-api: configuration error: %s\n", err);
        return 2;
    }
    if (publisher_start(err, sizeof(err)) != 0) {
        log_error(NULL, "cannot start: %s", err);
        guard_stop();
        return 1;
    }
    if (committer_start(err, sizeof(err)) != 0 || http_start(err, sizeof(err)) != 0) {
        log_error(NULL, "cannot start: %s", err);
        publisher_stop();
        guard_stop();
        return 1;
    }
    if (api_cfg.metrics_emf &&
        emf_start(api_cfg.metrics_namespace, "order-api", api_cfg.metrics_emf_interval_s,
                  api_emf_collect, NULL, err, sizeof(err)) != 0)
        log_error(NULL, "metrics: %s: no EMF lines", err); /* the service itself still works */
    log_kv(LOG_INFO, NULL, "order-api listening", "port", (long long)api_cfg.port, "threads",
           (long long)api_cfg.threads, NULL);
    sigwait(&set, &sig);
    log_info(NULL, "received %s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_stop(api_cfg.shutdown_grace_ms);
    committer_stop(2000);
    publisher_stop();
    emf_stop(); /* after the others: the last line holds everything they did */
    guard_stop();
    log_info(NULL, "order-api stopped");
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = "serve";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            config_help(&api_table, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("order-api %s\n", ORDER_VERSION);
            return 0;
        }
        if (i == 1 && argv[i][0] != '-') {
            cmd = argv[i];
            continue;
        }
        fprintf(stderr, "order-api: unknown argument '%s'\n%s", argv[i], usage);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc;
    if (strcmp(cmd, "healthcheck") == 0) {
        load_config(CONFIG_HEALTHCHECK);
        rc = cmd_healthcheck();
    } else if (strcmp(cmd, "migrate") == 0) {
        load_config(CONFIG_MIGRATE);
        rc = cmd_migrate();
    } else if (strcmp(cmd, "serve") == 0) {
        load_config(CONFIG_SERVE);
        rc = cmd_serve();
    } else {
        fprintf(stderr, "order-api: unknown command '%s'\n%s", cmd, usage);
        rc = 2;
    }
    curl_global_cleanup();
    return rc;
}
