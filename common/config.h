/*
 * config.h - reading configuration from environment variables.
 *
 * Every program loads its whole configuration once at start through these
 * helpers; a missing or malformed variable is reported by name in err and the
 * program exits with status 2 before doing any work.
 */
#ifndef ORDER_CONFIG_H
#define ORDER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* Value of name, or def when unset or empty. */
const char *config_str(const char *name, const char *def);
/* Integer in [min, max]; def when unset. Returns 0, or -1 with err naming the variable. */
int config_int(const char *name, int64_t def, int64_t min, int64_t max, int64_t *out, char *err,
               size_t errlen);
/* Required non-empty string; -1 with err naming the variable when missing. */
int config_required(const char *name, const char **out, char *err, size_t errlen);

#endif
