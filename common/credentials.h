/*
 * credentials.h - AWS credentials and the SDKs' default provider chain.
 *
 * Order, as in the AWS SDKs: environment (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), then the ECS/Fargate container
 * endpoint (credentials_ecs.h: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI against
 * 169.254.170.2, or AWS_CONTAINER_CREDENTIALS_FULL_URI with
 * AWS_CONTAINER_AUTHORIZATION_TOKEN or AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE). Temporary
 * credentials are cached and refreshed ahead of their expiration; while one caller refreshes, the
 * others keep using the cached, still-valid credentials, so traffic does not stall. Secrets never
 * appear in an error message.
 */
#ifndef ORDER_CREDENTIALS_H
#define ORDER_CREDENTIALS_H

#include <stddef.h>
#include <time.h>

struct aws_credentials {
    char access_key_id[128];
    char secret_access_key[128];
    char session_token[4096]; /* "" when none */
    time_t expiration;        /* 0 = does not expire */
};

/* Refresh this long before expiration (the SDKs use 5 minutes, 15 for ECS roles). */
#define CREDS_REFRESH_AHEAD_S (5 * 60)

struct creds_provider;

/* Builds the default chain from the environment; returns NULL with err when no
 * provider in the chain is configured. Thread-safe once built. */
struct creds_provider *creds_provider_new_default(char *err, size_t errlen);
/* A provider that always returns these credentials (tests, tools). */
struct creds_provider *creds_provider_new_static(const struct aws_credentials *c);
/* Copies current credentials into out, refreshing when they are within
 * CREDS_REFRESH_AHEAD_S of expiring. Returns 0, or -1 with err. */
int creds_provider_get(struct creds_provider *p, struct aws_credentials *out, char *err,
                       size_t errlen);
/* Short name of the provider that supplied credentials: "environment", "container", "static". */
const char *creds_provider_name(const struct creds_provider *p);
void creds_provider_free(struct creds_provider *p);

/* Parses "2024-01-02T03:04:05Z" (fractional seconds and +00:00 accepted) to UTC seconds; -1 on
 * error. */
time_t creds_parse_rfc3339(const char *s);
/* True when c should be refreshed at time now. */
int creds_need_refresh(const struct aws_credentials *c, time_t now);

/* Overwrites the secret parts with zeros. */
void creds_wipe(struct aws_credentials *c);

#endif
