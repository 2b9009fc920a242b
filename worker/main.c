/*
 * main.c - order-worker: its configuration table (every variable it reads,
 * printed by --help), signals, the metrics endpoint, and the event loop that
 * does the work (loop.c).
 *
 * SIGTERM and SIGINT arrive through a signalfd watched by the loop, so a
 * stop is just another event: no handler runs in the middle of a request.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "loop.h"
#include "worker.h"

#ifndef ORDER_VERSION
#define ORDER_VERSION "dev"
#endif

struct worker_config wcfg;
struct worker_metrics wmetrics;
static struct MHD_Daemon *metrics_daemon;

static const char usage[] =
    "usage: order-worker [--help] [--version]\n"
    "\n"
    "Long-polls SQS_QUEUE_URL, pays each order through PAYMENT_PROVIDER and marks it\n"
    "PROCESSED (approved) or FAILED (declined).\n";

/* ---- the configuration table: every variable order-worker reads ---- */

static const struct config_var cf_payment_delay_ms = {
    .name = "PAYMENT_DELAY_MS",
    .def = "2000",
    .programs = CONFIG_WORKER,
    .kind = CONFIG_INT,
    .min = 0,
    .max = 600000,
    .help = "simulated payment time, milliseconds",
};
static const struct config_choice payment_providers[] = {
    {"simulated", PAYMENT_SIMULATED},
    {"http", PAYMENT_HTTP},
    {NULL, 0},
};
static const struct config_var cf_payment_provider = {
    .name = "PAYMENT_PROVIDER",
    .def = "simulated",
    .programs = CONFIG_WORKER,
    .kind = CONFIG_ENUM,
    .choices = payment_providers,
    .help = "who takes payments: simulated (PAYMENT_DELAY_MS and the rates) or http (PAYMENT_URL)",
};
static const struct config_var cf_payment_decline_rate = {
    .name = "PAYMENT_DECLINE_RATE",
    .def = "0",
    .programs = CONFIG_WORKER,
    .kind = CONFIG_WORD,
    .help =
        "simulated: share of orders declined (FAILED), a number from 0 to 1, fixed per order id",
};
static const struct config_var cf_payment_error_rate = {
    .name = "PAYMENT_ERROR_RATE",
    .def = "0",
    .programs = CONFIG_WORKER,
    .kind = CONFIG_WORD,
    .help = "simulated: share of orders whose every attempt is a provider error, from 0 to 1",
};
static const struct config_var cf_payment_url = {
    .name = "PAYMENT_URL",
    .programs = CONFIG_WORKER,
    .kind = CONFIG_URL,
    .flags = CONFIG_URL_HTTPS,
    .help = "http: the provider's payment endpoint (POST); required with PAYMENT_PROVIDER=http",
};
static const struct config_var cf_payment_auth_header_file = {
    .name = "PAYMENT_AUTH_HEADER_FILE",
    .programs = CONFIG_WORKER,
    .kind = CONFIG_FILE,
    .help = "http: file holding the Authorization header's value, re-read when it changes",
};
static const struct config_var cf_payment_auth_header = {
    .name = "PAYMENT_AUTH_HEADER",
    .programs = CONFIG_WORKER,
    .kind = CONFIG_TEXT,
    .help = "http: the Authorization header's value itself (an ECS secret); not with the file",
};
static const struct config_var cf_payment_timeout_ms = {
    .name = "PAYMENT_TIMEOUT_MS",
    .def = "10000",
    .programs = CONFIG_WORKER,
    .kind = CONFIG_INT,
    .min = 100,
    .max = 120000,
    .help = "http: time allowed for one provider call, milliseconds",
};
static const struct config_var cf_payment_max_attempts = {
    .name = "PAYMENT_MAX_ATTEMPTS",
    .def = "3",
    .programs = CONFIG_WORKER,
    .kind = CONFIG_INT,
    .min = 1,
    .max = 20,
    .help = "provider calls per delivery before the message is released (order stays PENDING)",
};
static const struct config_var cf_worker_max_in_flight = {
    .name = "WORKER_MAX_IN_FLIGHT",
    .def = "5000",
    .programs = CONFIG_WORKER,
    .kind = CONFIG_INT,
    .min = 10,
    .max = 100000,
    .help = "most orders held at once",
};
static const struct config_var cf_worker_max_polls = {
    .name = "WORKER_MAX_POLLS",
    .def = "20",
    .programs = CONFIG_WORKER,
    .kind = CONFIG_INT,
    .min = 1,
    .max = 200,
    .help = "most long polls outstanding at once",
};
static const struct config_var cf_worker_wait_time_s = {
    .name = "WORKER_WAIT_TIME_S",
    .def = "20",
    .programs = CONFIG_WORKER,
    .kind = CONFIG_INT,
    .min = 0,
    .max = 20,
    .help = "WaitTimeSeconds of each long poll",
};
static const struct config_var cf_worker_visibility_timeout_s = {
    .name = "WORKER_VISIBILITY_TIMEOUT_S",
    .def = "30",
    .programs = CONFIG_WORKER,
    .kind = CONFIG_INT,
    .min = 5,
    .max = 43200,
    .help = "visibility asked for on receive, extended while an order is held",
};
static const struct config_var cf_worker_poison_delay_s = {
    .name = "WORKER_POISON_DELAY_S",
    .def = "10",
    .programs = CONFIG_WORKER,
    .kind = CONFIG_INT,
    .min = 0,
    .max = 43200,
    .help = "visibility given back to a message that cannot be processed",
};
static const struct config_var cf_worker_max_receive_count = {
    .name = "WORKER_MAX_RECEIVE_COUNT",
    .def = "5",
    .programs = CONFIG_WORKER,
    .kind = CONFIG_INT,
    .min = 1,
    .max = 1000,
    .help = "the queue's redrive maxReceiveCount: a message the worker gives up on at this "
            "receive is counted DlqBound",
};
static const struct config_var cf_worker_shutdown_grace_ms = {
    .name = "WORKER_SHUTDOWN_GRACE_MS",
    .def = "25000",
    .programs = CONFIG_WORKER,
    .kind = CONFIG_INT,
    .min = 0,
    .max = 600000,
    .help = "time to finish held orders after SIGTERM, milliseconds",
};

static const struct config_entry worker_entries[] = {
    {.var = &cf_log_level, .to.e = &wcfg.log_level},
    {.var = &cf_log_format, .to.e = &wcfg.log_format},
    {.var = &cf_database_url, .to.s = &wcfg.database_url},
    {.var = &cf_sqs_queue_url, .to.s = &wcfg.queue_url},
    CONFIG_AWS_ENTRIES,
    {.var = &cf_bind_address, .to.s = &wcfg.bind_address},
    {.var = &cf_metrics_port, .to.i = &wcfg.metrics_port},
    {.var = &cf_metrics_emf, .to.i = &wcfg.metrics_emf},
    {.var = &cf_metrics_emf_interval_s, .to.i = &wcfg.metrics_emf_interval_s},
    {.var = &cf_metrics_namespace, .to.s = &wcfg.metrics_namespace},
    {.var = &cf_payment_provider, .to.e = &wcfg.payment_provider},
    {.var = &cf_payment_delay_ms, .to.i = &wcfg.payment_delay_ms},
    {.var = &cf_payment_decline_rate, .to.s = &wcfg.payment_decline_rate_s},
    {.var = &cf_payment_error_rate, .to.s = &wcfg.payment_error_rate_s},
    {.var = &cf_payment_url, .to.s = &wcfg.payment_url},
    {.var = &cf_payment_auth_header, .to.s = &wcfg.payment_auth_header},
    {.var = &cf_payment_auth_header_file, .to.s = &wcfg.payment_auth_file},
    {.var = &cf_payment_timeout_ms, .to.i = &wcfg.payment_timeout_ms},
    {.var = &cf_payment_max_attempts, .to.i = &wcfg.payment_max_attempts},
    {.var = &cf_worker_max_in_flight, .to.i = &wcfg.max_in_flight},
    {.var = &cf_worker_max_polls, .to.i = &wcfg.max_polls},
    {.var = &cf_worker_wait_time_s, .to.i = &wcfg.wait_time_s},
    {.var = &cf_worker_visibility_timeout_s, .to.i = &wcfg.visibility_s},
    {.var = &cf_worker_poison_delay_s, .to.i = &wcfg.poison_delay_s},
    {.var = &cf_worker_max_receive_count, .to.i = &wcfg.max_receive_count},
    {.var = &cf_worker_shutdown_grace_ms, .to.i = &wcfg.shutdown_grace_ms},
};
static const struct config_table worker_table = {
    CONFIG_WORKER,
    worker_entries,
    sizeof(worker_entries) / sizeof(worker_entries[0]),
};

/* The rules between the payment variables the table cannot express. */
static int check_payment(char *err, size_t errlen)
{
    if (payment_rate_parse(wcfg.payment_decline_rate_s, &wcfg.payment_decline_rate) != 0) {
        snprintf(err, errlen, "PAYMENT_DECLINE_RATE must be a number from 0 to 1, e.g. 0.25");
        return -1;
    }
    if (payment_rate_parse(wcfg.payment_error_rate_s, &wcfg.payment_error_rate) != 0) {
        snprintf(err, errlen, "PAYMENT_ERROR_RATE must be a number from 0 to 1, e.g. 0.25");
        return -1;
    }
    if (wcfg.payment_provider == PAYMENT_HTTP && !wcfg.payment_url) {
        snprintf(err, errlen, "PAYMENT_URL is required when PAYMENT_PROVIDER is http");
        return -1;
    }
    if (wcfg.payment_auth_header && wcfg.payment_auth_file) {
        snprintf(err, errlen,
                 "PAYMENT_AUTH_HEADER and PAYMENT_AUTH_HEADER_FILE are exclusive: "
                 "set one of them");
        return -1;
    }
    return payment_auth_refresh(err, errlen); /* its content, now rather than at the first call */
}

/* Every variable, or exit 2 with one line on stderr naming the first bad one. */
static void load_config(void)
{
    char err[512];
    if (config_load(&worker_table, CONFIG_SERVE, err, sizeof(err)) != 0 ||
        check_payment(err, sizeof(err)) != 0 || config_load_aws(&wcfg.sqs, err, sizeof(err)) != 0) {
        fprintf(stderr, "order-worker: configuration error: %s\n", err);
        exit(2);
    }
    log_init("order-worker", (enum log_level)wcfg.log_level, wcfg.log_format == CONFIG_LOG_TEXT);
}

static enum MHD_Result on_metrics(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    struct buf b;
    int status = 200;
    buf_init(&b, 0);
    if (strcmp(method, "GET") != 0) {
        status = 405;
        buf_append(&b, "method not allowed\n", 19);
    } else if (strcmp(url, "/metrics") == 0) {
        static const struct {
            const char *name, *help;
            _Atomic uint64_t *v;
        } counters[] = {
            {"order_worker_messages_received_total", "Messages received from SQS",
             &wmetrics.received},
            {"order_worker_orders_processed_total", "Orders paid and PROCESSED by this worker",
             &wmetrics.processed},
            {"order_worker_messages_skipped_total",
             "Messages acknowledged without payment (already processed or canceled)",
             &wmetrics.skipped},
            {"order_worker_messages_failed_total", "Poison messages and failed attempts",
             &wmetrics.failed},
            {"order_worker_messages_redelivered_total", "Messages received more than once",
             &wmetrics.redelivered},
            {"order_worker_sqs_requests_total", "SQS requests sent", &wmetrics.sqs_requests},
            {"order_worker_sqs_errors_total", "Failed SQS requests", &wmetrics.sqs_errors},
            {"order_worker_receive_errors_total", "Failed ReceiveMessage calls",
             &wmetrics.receive_errors},
            {"order_worker_dlq_bound_total",
             "Messages given up on at their last receive (bound for the dead-letter queue)",
             &wmetrics.dlq_bound},
            {"order_worker_payments_declined_total",
             "Orders FAILED because the payment was declined", &wmetrics.payments_declined},
            {"order_worker_payment_errors_total", "Payment attempts ending in a provider error",
             &wmetrics.payment_errors},
            {"order_worker_payments_released_total",
             "Messages released after PAYMENT_MAX_ATTEMPTS provider errors (order still PENDING)",
             &wmetrics.payments_released},
            {"order_worker_visibility_calls_total",
             "ChangeMessageVisibilityBatch requests sent to extend held messages",
             &wmetrics.visibility_calls},
            {"order_worker_visibility_extended_total",
             "Held messages whose visibility was extended", &wmetrics.visibility_extended},
            {"order_worker_visibility_expired_total",
             "Held messages whose visibility ran out before it was extended",
             &wmetrics.visibility_expired},
        };
        for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
            metrics_header(&b, counters[i].name, "counter", counters[i].help);
            metrics_sample(&b, counters[i].name, "", (double)atomic_load(counters[i].v));
        }
        metrics_one(&b, "order_worker_messages_in_flight", "gauge", "Messages held now",
                    (double)atomic_load(&wmetrics.in_flight));
        metrics_header(&b, "order_worker_payment_duration_seconds", "histogram",
                       "From receipt of the message to the order PROCESSED");
        metrics_histogram(&b, "order_worker_payment_duration_seconds", "",
                          &wmetrics.payment_latency);
        metrics_header(&b, "order_worker_end_to_end_seconds", "histogram",
                       "From order creation to PROCESSED");
        metrics_histogram(&b, "order_worker_end_to_end_seconds", "", &wmetrics.end_to_end_latency);
    } else if (strcmp(url, "/healthz") == 0) {
        buf_append(&b, "ok\n", 3);
    } else {
        status = 404;
        buf_append(&b, "not found\n", 10);
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(b.len, b.data ? b.data : (char *)"", MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    buf_free(&b);
    return ret;
}

int metrics_server_start(char *err, size_t errlen)
{
    struct sockaddr_in addr;
    if (wcfg.metrics_port == 0)
        return 0;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)wcfg.metrics_port);
    if (inet_pton(AF_INET, wcfg.bind_address, &addr.sin_addr) != 1) {
        snprintf(err, errlen, "BIND_ADDRESS must be an IPv4 address");
        return -1;
    }
    /* epoll, not MHD's default select(): with the http provider the worker
     * holds a socket per payment call, so a scrape's socket (and the health
     * check's, which is a GET /metrics) is numbered past FD_SETSIZE (1024),
     * which select() cannot watch: MHD would close it unanswered. */
    metrics_daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL,
                                      NULL, on_metrics, NULL, MHD_OPTION_SOCK_ADDR,
                                      (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT, 32u,
                                      MHD_OPTION_CONNECTION_TIMEOUT, 5u, MHD_OPTION_END);
    if (!metrics_daemon) {
        snprintf(err, errlen, "cannot listen on %s:%lld for metrics (METRICS_PORT)",
                 wcfg.bind_address, (long long)wcfg.metrics_port);
        return -1;
    }
    return 0;
}

void metrics_server_stop(void)
{
    if (metrics_daemon)
        MHD_stop_daemon(metrics_daemon);
    metrics_daemon = NULL;
}

int main(int argc, char **argv)
{
    char err[256];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            config_help(&worker_table, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("order-worker %s\n", ORDER_VERSION);
            return 0;
        }
        fprintf(stderr, "order-worker: unknown argument '%s'\n%s", argv[i], usage);
        return 2;
    }
    load_config();
    histogram_init(&wmetrics.payment_latency, metrics_latency_bounds, metrics_latency_n);
    histogram_init(&wmetrics.end_to_end_latency, metrics_latency_bounds, metrics_latency_n);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        log_error(NULL, "signalfd failed");
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (metrics_server_start(err, sizeof(err)) != 0) {
        log_error(NULL, "cannot start: %s", err);
        return 1;
    }
    if (wcfg.metrics_emf &&
        emf_start(wcfg.metrics_namespace, "order-worker", wcfg.metrics_emf_interval_s,
                  worker_emf_collect, NULL, err, sizeof(err)) != 0)
        log_error(NULL, "metrics: %s: no EMF lines", err); /* the worker itself still works */
    log_kv(LOG_INFO, NULL, "order-worker started", "max_in_flight", (long long)wcfg.max_in_flight,
           "payment_delay_ms", (long long)wcfg.payment_delay_ms, "payment_http",
           (long long)(wcfg.payment_provider == PAYMENT_HTTP), "metrics_port",
           (long long)wcfg.metrics_port, NULL);
    int rc = loop_run(sfd);
    emf_stop(); /* the last line: what happened since the previous one */
    metrics_server_stop();
    close(sfd);
    curl_global_cleanup();
    return rc;
}
