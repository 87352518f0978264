/* config.h: configuration from BCRM_* environment variables.
 *
 * Every getter takes the variable's name and its default. A value that is set
 * but wrong (not a number, out of range, a missing file) is fatal: the process
 * prints one clear line naming the variable and exits with status 2, because a
 * service that starts on half-understood configuration does more harm than one
 * that refuses to start. Returned strings are owned by the environment or are
 * the default literal; do not free them.
 */
#ifndef BCRM_CONFIG_H
#define BCRM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

const char *config_str(const char *name, const char *fallback);
/* Like config_str, but an unset or empty variable is fatal. */
const char *config_str_required(const char *name);
int64_t config_int(const char *name, int64_t fallback, int64_t min, int64_t max);
bool config_bool(const char *name, bool fallback);
/* Milliseconds; accepts "250ms", "5s", "2m" or a bare number of milliseconds. */
int64_t config_duration_ms(const char *name, int64_t fallback);

/* Parsers behind the getters, for tests and for values that come from elsewhere.
 * Return 0 on success, -1 if text is not a valid value. */
int config_parse_int(const char *text, int64_t min, int64_t max, int64_t *out);
int config_parse_bool(const char *text, bool *out);
int config_parse_duration_ms(const char *text, int64_t *out);

#endif
