/*
 * credentials_ecs.h - the container credentials provider: the ECS/Fargate
 * task role endpoint (and EKS Pod Identity, which speaks the same protocol).
 *
 * AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is fetched from 169.254.170.2;
 * AWS_CONTAINER_CREDENTIALS_FULL_URI from wherever it points (https, or http
 * to loopback or the ECS/EKS agents only), with AWS_CONTAINER_AUTHORIZATION_
 * TOKEN_FILE (re-read on every fetch) or AWS_CONTAINER_AUTHORIZATION_TOKEN as
 * the Authorization header. Caching and refresh are the chain's job
 * (credentials.c); this file only knows how to ask. Secrets never appear in
 * an error message.
 */
#ifndef ORDER_CREDENTIALS_ECS_H
#define ORDER_CREDENTIALS_ECS_H

#include <stddef.h>

#include "credentials.h"

struct creds_ecs;

/* 1 with *out when the container endpoint is configured, 0 when it is not,
 * -1 with err naming the variable that is wrong. No I/O. */
int creds_ecs_from_env(struct creds_ecs **out, char *err, size_t errlen);
/* One fetch (a GET, retried on transport errors, 429 and 5xx); 0 or -1 with
 * err holding only a status code or curl's error name. */
int creds_ecs_fetch(const struct creds_ecs *e, struct aws_credentials *out, char *err,
                    size_t errlen);
void creds_ecs_free(struct creds_ecs *e);

/* Parses the endpoint's JSON ({AccessKeyId, SecretAccessKey, Token,
 * Expiration: RFC 3339}). Returns 0 or -1 with err. */
int creds_parse_container_json(const char *json, size_t len, struct aws_credentials *out, char *err,
                               size_t errlen);

#endif
