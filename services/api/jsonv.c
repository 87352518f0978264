/* jsonv.c: field validators for request bodies (see jsonv.h). */
#include "jsonv.h"

#include <ctype.h>
#include <libical/ical.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* libical's built-in zone cache and its error number are process-wide; the api
 * validates from several HTTP threads at once. */
static pthread_mutex_t ical_lock = PTHREAD_MUTEX_INITIALIZER;

bool jv_fail(struct jv *v, const char *field, const char *fmt, ...)
{
    if (v->failed) {
        return false;
    }
    v->failed = true;
    snprintf(v->field, sizeof(v->field), "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->message, sizeof(v->message), fmt, ap);
    va_end(ap);
    return false;
}

static void field_join(char *out, size_t outlen, const char *prefix, const char *key)
{
    if (prefix == NULL || prefix[0] == '\0') {
        snprintf(out, outlen, "%s", key);
    } else {
        snprintf(out, outlen, "%s.%s", prefix, key);
    }
}

bool jv_only_keys(struct jv *v, json_t *obj, const char *prefix, const char *const *allowed)
{
    const char *key;
    json_t *value;
    if (v->failed) {
        return false;
    }
    json_object_foreach(obj, key, value)
    {
        (void)value;
        bool known = false;
        for (int i = 0; allowed[i] != NULL; i++) {
            if (strcmp(allowed[i], key) == 0) {
                known = true;
                break;
            }
        }
        if (!known) {
            char field[128];
            field_join(field, sizeof(field), prefix, key);
            return jv_fail(v, field, "unknown field");
        }
    }
    return true;
}

size_t jv_utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            n++;
        }
    }
    return n;
}

const char *jv_string(struct jv *v, json_t *obj, const char *key, const char *field, bool required,
                      size_t min_chars, size_t max_chars)
{
    if (v->failed) {
        return NULL;
    }
    json_t *value = json_object_get(obj, key);
    if (value == NULL || json_is_null(value)) {
        if (required) {
            jv_fail(v, field, "is required");
        }
        return NULL;
    }
    if (!json_is_string(value)) {
        jv_fail(v, field, "must be a string");
        return NULL;
    }
    size_t chars = jv_utf8_chars(json_string_value(value), json_string_length(value));
    if (strlen(json_string_value(value)) != json_string_length(value)) {
        jv_fail(v, field, "must not contain NUL characters");
        return NULL;
    }
    if (chars < min_chars) {
        jv_fail(v, field,
                min_chars == 1 ? "must not be empty" : "must have at least %zu characters",
                min_chars);
        return NULL;
    }
    if (chars > max_chars) {
        jv_fail(v, field, "must have at most %zu characters (has %zu)", max_chars, chars);
        return NULL;
    }
    return json_string_value(value);
}

json_t *jv_object(struct jv *v, json_t *obj, const char *key, const char *field, bool required)
{
    if (v->failed) {
        return NULL;
    }
    json_t *value = json_object_get(obj, key);
    if (value == NULL || json_is_null(value)) {
        if (required) {
            jv_fail(v, field, "is required");
        }
        return NULL;
    }
    if (!json_is_object(value)) {
        jv_fail(v, field, "must be an object");
        return NULL;
    }
    return value;
}

bool jv_int(struct jv *v, json_t *obj, const char *key, const char *field, int64_t min, int64_t max,
            int64_t *out, bool *present)
{
    *present = false;
    if (v->failed) {
        return false;
    }
    json_t *value = json_object_get(obj, key);
    if (value == NULL || json_is_null(value)) {
        return true;
    }
    if (!json_is_integer(value)) {
        return jv_fail(v, field, "must be an integer");
    }
    int64_t n = (int64_t)json_integer_value(value);
    if (n < min || n > max) {
        return jv_fail(v, field, "must be between %lld and %lld", (long long)min, (long long)max);
    }
    *out = n;
    *present = true;
    return true;
}

const char *jv_enum(struct jv *v, json_t *obj, const char *key, const char *field, bool required,
                    const char *const *choices)
{
    const char *s = jv_string(v, obj, key, field, required, 0, 64);
    if (s == NULL) {
        return NULL;
    }
    for (int i = 0; choices[i] != NULL; i++) {
        if (strcmp(choices[i], s) == 0) {
            return s;
        }
    }
    char list[256] = "";
    for (int i = 0; choices[i] != NULL; i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", choices[i]);
    }
    jv_fail(v, field, "must be one of: %s", list);
    return NULL;
}

static bool digits(const char *s, int n)
{
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

static int num(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static bool valid_ymd(int y, int m, int d)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1) {
        return false;
    }
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int max = days[m - 1] + (m == 2 && leap ? 1 : 0);
    return d <= max;
}

bool jv_is_date(const char *s)
{
    if (strlen(s) != 10 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
        !digits(s + 8, 2)) {
        return false;
    }
    return valid_ymd(num(s, 4), num(s + 5, 2), num(s + 8, 2));
}

bool jv_is_hhmm(const char *s)
{
    if (strlen(s) != 5 || !digits(s, 2) || s[2] != ':' || !digits(s + 3, 2)) {
        return false;
    }
    return num(s, 2) < 24 && num(s + 3, 2) < 60;
}

bool jv_parse_rfc3339(const char *s, int64_t *epoch_s)
{
    /* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */
    char date[11];
    if (strlen(s) < 20) {
        return false;
    }
    memcpy(date, s, 10);
    date[10] = '\0';
    if (!jv_is_date(date)) {
        return false;
    }
    if ((s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2) || s[13] != ':' ||
        !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2)) {
        return false;
    }
    int hour = num(s + 11, 2), minute = num(s + 14, 2), second = num(s + 17, 2);
    if (hour > 23 || minute > 59 || second > 60) {
        return false;
    }
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) {
            return false;
        }
        while (isdigit((unsigned char)*p)) {
            p++;
        }
    }
    int offset_s = 0;
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        offset_s = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && digits(p + 1, 2) && p[3] == ':' &&
               digits(p + 4, 2)) {
        int oh = num(p + 1, 2), om = num(p + 4, 2);
        if (oh > 23 || om > 59) {
            return false;
        }
        offset_s = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
    } else {
        return false;
    }
    struct tm tm = {.tm_year = num(s, 4) - 1900,
                    .tm_mon = num(s + 5, 2) - 1,
                    .tm_mday = num(s + 8, 2),
                    .tm_hour = hour,
                    .tm_min = minute,
                    .tm_sec = second > 59 ? 59 : second};
    *epoch_s = (int64_t)timegm(&tm) - offset_s;
    return true;
}

bool jv_is_timezone(const char *name)
{
    /* Zone names are ASCII words joined by '/'; anything else is not worth a lookup. */
    size_t len = strlen(name);
    if (len == 0 || len > 64 || name[0] == '/' || strstr(name, "..") != NULL) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '/' && c != '_' && c != '-' && c != '+') {
            return false;
        }
    }
    pthread_mutex_lock(&ical_lock);
    icaltimezone *zone = icaltimezone_get_builtin_timezone(name);
    pthread_mutex_unlock(&ical_lock);
    return zone != NULL;
}

bool jv_check_rrule(const char *rrule, char *why, size_t whylen)
{
    if (strlen(rrule) > 512) {
        snprintf(why, whylen, "is longer than 512 characters");
        return false;
    }
    if (strncmp(rrule, "RRULE:", 6) == 0) {
        snprintf(why, whylen, "must be the rule itself, without the \"RRULE:\" prefix");
        return false;
    }
    pthread_mutex_lock(&ical_lock);
    icalerror_clear_errno();
    struct icalrecurrencetype rec = icalrecurrencetype_from_string(rrule);
    icalerrorenum err = icalerrno;
    icalerror_clear_errno();
    pthread_mutex_unlock(&ical_lock);
    if (err != ICAL_NO_ERROR || rec.freq == ICAL_NO_RECURRENCE) {
        snprintf(why, whylen, "is not a valid RFC 5545 recurrence rule");
        return false;
    }
    /* A marketing message more often than daily is a mistake, not a campaign. */
    if (rec.freq == ICAL_SECONDLY_RECURRENCE || rec.freq == ICAL_MINUTELY_RECURRENCE ||
        rec.freq == ICAL_HOURLY_RECURRENCE) {
        snprintf(why, whylen, "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY");
        return false;
    }
    return true;
}
