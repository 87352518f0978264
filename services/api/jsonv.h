/* jsonv.h: validation of request bodies, field by field.
 *
 * A validator remembers the first failure only: the field's full name
 * ("schedule.fallback_tz") and why. Each check returns false once anything has
 * failed, so a handler can chain checks and answer one clear 422 at the end.
 * Strings returned are borrowed from the JSON object being validated.
 */
#ifndef BCRM_API_JSONV_H
#define BCRM_API_JSONV_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jv {
    bool failed;
    char field[128];
    char message[384];
};

bool jv_fail(struct jv *v, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fails on any key of obj not in allowed (NULL-terminated); prefix names obj
 * ("schedule" gives "schedule.foo"; "" for the body itself). */
bool jv_only_keys(struct jv *v, json_t *obj, const char *prefix, const char *const *allowed);

/* A string of min..max characters (UTF-8 code points). Missing: NULL, and a
 * failure when required. */
const char *jv_string(struct jv *v, json_t *obj, const char *key, const char *field, bool required,
                      size_t min_chars, size_t max_chars);
/* An object member that must be an object (NULL when missing and not required). */
json_t *jv_object(struct jv *v, json_t *obj, const char *key, const char *field, bool required);
/* An integer in min..max; *present tells whether it was given (null counts as absent). */
bool jv_int(struct jv *v, json_t *obj, const char *key, const char *field, int64_t min, int64_t max,
            int64_t *out, bool *present);
/* One of the choices (NULL-terminated). */
const char *jv_enum(struct jv *v, json_t *obj, const char *key, const char *field, bool required,
                    const char *const *choices);

/* Number of UTF-8 code points in s (jansson strings are valid UTF-8). */
size_t jv_utf8_chars(const char *s, size_t len);

/* Format checks on text, for values and for query parameters. */
bool jv_is_date(const char *s);                         /* YYYY-MM-DD, a real calendar date */
bool jv_is_hhmm(const char *s);                         /* HH:MM, 00:00 to 23:59 */
bool jv_parse_rfc3339(const char *s, int64_t *epoch_s); /* with Z or an offset */
bool jv_is_timezone(const char *name);                  /* an IANA zone libical knows */
/* Parses an RFC 5545 RRULE with libical; on failure fills why. */
bool jv_check_rrule(const char *rrule, char *why, size_t whylen);

#endif
