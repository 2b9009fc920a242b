/*
 * aws_env.h - an AWS client's settings from the environment, and the URL
 * check every URL setting goes through.
 *
 * Resolution follows the AWS SDKs: region AWS_REGION, else AWS_DEFAULT_REGION;
 * endpoint AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL, else
 * https://<prefix>.<region>.amazonaws.com; a variable set to "" counts as
 * unset. Every error names the variable, so a program can print it and exit 2.
 */
#ifndef ORDER_AWS_ENV_H
#define ORDER_AWS_ENV_H

#include <stdbool.h>
#include <stddef.h>

#include "aws.h"

/* Fills c for svc: region, endpoint, and (when svc->tuning_prefix is set)
 * <prefix>_MAX_ATTEMPTS (1-20, default 5), <prefix>_CONNECT_TIMEOUT_MS
 * (default 2000) and <prefix>_REQUEST_TIMEOUT_MS (default 30000). Returns 0,
 * or -1 with err naming the missing or invalid variable. */
int aws_config_from_env(struct aws_config *c, const struct aws_service *svc, char *err,
                        size_t errlen);

/* True for an absolute http or https URL made of printable ASCII, with a
 * non-empty host (a name, an IPv4 address or a bracketed IPv6 one), an
 * optional port 1-65535 and no user information. Otherwise false, with the
 * reason in why (which the caller prefixes with the variable's name). */
bool aws_url_valid(const char *url, char *why, size_t whylen);

/* True for a region name such as "eu-west-1" ([a-z0-9-]+). */
bool aws_region_valid(const char *region);

#endif
