/*
 * main.c - order-api: configuration, subcommands and the process lifecycle.
 *
 *   order-api             serve the HTTP API
 *   order-api migrate     apply pending database migrations and exit
 *   order-api healthcheck exit 0 when GET /healthz on this host answers 200
 *
 * Signals are blocked in every thread and taken by sigwait in main, so a
 * SIGTERM never interrupts a libpq or libcurl call half way; shutdown is an
 * ordinary, ordered sequence: stop accepting, drain, flush, exit 0.
 */
#include <curl/curl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
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
    "  healthcheck  exit 0 if http://127.0.0.1:$PORT/healthz answers 200 (container probe)\n"
    "\n"
    "Configuration comes from the environment (see README.md):\n"
    "  DATABASE_URL (required), SQS_QUEUE_URL (required to serve), AWS_REGION,\n"
    "  AWS_ENDPOINT_URL_SQS, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the ECS container\n"
    "  credentials, PORT (8080), BIND_ADDRESS (0.0.0.0), LOG_LEVEL (info), API_THREADS (4),\n"
    "  API_MAX_CONNECTIONS (1024), API_CLIENT_TIMEOUT_S (10), API_SHUTDOWN_GRACE_MS (20000),\n"
    "  API_BATCH_MAX (256), OUTBOX_RELAY_INTERVAL_MS (1000), MIGRATIONS_DIR, OPENAPI_PATH.\n";

static void die_config(const char *err)
{
    fprintf(stderr, "order-api: configuration error: %s\n", err);
    exit(2);
}

static void load_common(void)
{
    char err[256];
    int64_t level;
    const char *lvl = config_str("LOG_LEVEL", "info");
    if ((level = log_level_parse(lvl)) < 0)
        die_config("LOG_LEVEL must be one of debug, info, warn, error");
    log_init("order-api", (enum log_level)level);
    if (config_required("DATABASE_URL", &api_cfg.database_url, err, sizeof(err)) != 0 ||
        db_conninfo_check(api_cfg.database_url, err, sizeof(err)) != 0)
        die_config(err);
}

static void load_serve(void)
{
    char err[256];
    if (config_int("PORT", 8080, 1, 65535, &api_cfg.port, err, sizeof(err)) != 0 ||
        config_int("API_THREADS", 4, 1, 64, &api_cfg.threads, err, sizeof(err)) != 0 ||
        config_int("API_MAX_CONNECTIONS", 1024, 16, 60000, &api_cfg.max_connections, err,
                   sizeof(err)) != 0 ||
        config_int("API_CLIENT_TIMEOUT_S", 10, 1, 3600, &api_cfg.client_timeout_s, err,
                   sizeof(err)) != 0 ||
        config_int("API_SHUTDOWN_GRACE_MS", 20000, 0, 600000, &api_cfg.shutdown_grace_ms, err,
                   sizeof(err)) != 0 ||
        config_int("API_BATCH_MAX", 256, 1, 1024, &api_cfg.batch_max, err, sizeof(err)) != 0 ||
        config_int("OUTBOX_RELAY_INTERVAL_MS", 1000, 50, 600000, &api_cfg.relay_interval_ms, err,
                   sizeof(err)) != 0 ||
        config_required("SQS_QUEUE_URL", &api_cfg.queue_url, err, sizeof(err)) != 0 ||
        sqs_config_from_env(&api_cfg.sqs, err, sizeof(err)) != 0)
        die_config(err);
    api_cfg.bind_address = config_str("BIND_ADDRESS", "0.0.0.0");
}

/* MIGRATIONS_DIR, else the installed share/ directory beside bin/, else the source tree. */
static const char *migrations_dir(char *buf, size_t len)
{
    static const char *const rel[] = {"../share/order-service/migrations", "../migrations", NULL};
    const char *d = util_data_path("MIGRATIONS_DIR", rel, buf, len);
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
    char err[256], url[64];
    int64_t port;
    if (config_int("PORT", 8080, 1, 65535, &port, err, sizeof(err)) != 0)
        die_config(err);
    snprintf(url, sizeof(url), "http://127.0.0.1:%lld/healthz", (long long)port);
    CURL *h = curl_easy_init();
    long code = 0;
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

    if (publisher_start(err, sizeof(err)) != 0) {
        log_error(NULL, "cannot start: %s", err);
        return 1;
    }
    if (committer_start(err, sizeof(err)) != 0 || http_start(err, sizeof(err)) != 0) {
        log_error(NULL, "cannot start: %s", err);
        publisher_stop();
        return 1;
    }
    log_kv(LOG_INFO, NULL, "order-api listening", "port", (long long)api_cfg.port, "threads",
           (long long)api_cfg.threads, NULL);
    sigwait(&set, &sig);
    log_info(NULL, "received %s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_stop(api_cfg.shutdown_grace_ms);
    committer_stop(2000);
    publisher_stop();
    log_info(NULL, "order-api stopped");
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = "serve";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
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
        rc = cmd_healthcheck();
    } else if (strcmp(cmd, "migrate") == 0) {
        load_common();
        rc = cmd_migrate();
    } else if (strcmp(cmd, "serve") == 0) {
        load_common();
        load_serve();
        rc = cmd_serve();
    } else {
        fprintf(stderr, "order-api: unknown command '%s'\n%s", cmd, usage);
        rc = 2;
    }
    curl_global_cleanup();
    return rc;
}
