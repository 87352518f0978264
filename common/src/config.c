/* config.c: BCRM_* environment variables, fatal on bad values. */
#include "bcrm/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void config_fatal(const char *name, const char *value, const char *why)
{
    fprintf(stderr,
            "{\"level\":\"fatal\",\"msg\":\"invalid configuration\",\"variable\":\"%s\","
            "\"value\":\"%s\",\"error\":\"%s\"}\n",
            name, value, why);
    exit(2);
}

const char *config_str(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return (v != NULL && v[0] != '\0') ? v : fallback;
}

const char *config_str_required(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        config_fatal(name, "", "must be set");
    }
    return v;
}

int config_parse_int(const char *text, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

int config_parse_bool(const char *text, bool *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

int config_parse_duration_ms(const char *text, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || v < 0) {
        return -1;
    }
    int64_t scale;
    if (*end == '\0' || strcmp(end, "ms") == 0) {
        scale = 1;
    } else if (strcmp(end, "s") == 0) {
        scale = 1000;
    } else if (strcmp(end, "m") == 0) {
        scale = 60000;
    } else if (strcmp(end, "h") == 0) {
        scale = 3600000;
    } else {
        return -1;
    }
    if (v > INT64_MAX / scale) {
        return -1;
    }
    *out = v * scale;
    return 0;
}

int64_t config_int(const char *name, int64_t fallback, int64_t min, int64_t max)
{
    const char *v = getenv(name);
    int64_t out;
    if (v == NULL || v[0] == '\0') {
        return fallback;
    }
    if (config_parse_int(v, min, max, &out) != 0) {
        char why[96];
        snprintf(why, sizeof(why), "not an integer between %lld and %lld", (long long)min,
                 (long long)max);
        config_fatal(name, v, why);
    }
    return out;
}

bool config_bool(const char *name, bool fallback)
{
    const char *v = getenv(name);
    bool out;
    if (v == NULL || v[0] == '\0') {
        return fallback;
    }
    if (config_parse_bool(v, &out) != 0) {
        config_fatal(name, v, "not a boolean (true/false, 1/0, yes/no, on/off)");
    }
    return out;
}

int64_t config_duration_ms(const char *name, int64_t fallback)
{
    const char *v = getenv(name);
    int64_t out;
    if (v == NULL || v[0] == '\0') {
        return fallback;
    }
    if (config_parse_duration_ms(v, &out) != 0) {
        config_fatal(name, v, "not a duration (like 250ms, 5s, 2m, 1h)");
    }
    return out;
}
