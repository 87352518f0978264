/* schedule.h: when a campaign's runs happen and when each recipient is due.
 *
 * Pure computation, no database and no sockets, so that it can be tested with the
 * expected instants written out (tests/unit/test_schedule.c). Time zones come from
 * libical and the system tzdata; libical's zone cache is not thread-safe, which is
 * fine in the single-threaded scheduler.
 *
 * A campaign's schedule (spec/api.md) is one of:
 *   {"mode":"now"}                               one run, due when it was scheduled
 *   {"mode":"at","at":"2026-12-10T09:00:00Z"}    one run, due at that instant
 *   {"mode":"local","date":"2026-12-10","time":"09:00","fallback_tz":"...","if_passed":"..."}
 *                                                one run; each recipient is due at that
 *                                                wall time in their own zone
 *   {"mode":"recurring","rrule":"FREQ=WEEKLY;BYDAY=MO","time":"09:00","local":true,
 *    "fallback_tz":"UTC","start_date":"2026-12-07","until":"2027-03-01"}
 *                                                one run per date of the rule, each run
 *                                                like a local run of that date (or in
 *                                                fallback_tz for everyone when local is
 *                                                false)
 *
 * Times are milliseconds since the Unix epoch (UTC) throughout.
 */
#ifndef BCRM_SCHEDULER_SCHEDULE_H
#define BCRM_SCHEDULER_SCHEDULE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum schedule_mode { SCHEDULE_NOW, SCHEDULE_AT, SCHEDULE_LOCAL, SCHEDULE_RECURRING };

/* What a local run does for a recipient whose wall time has already passed when the
 * run is loaded. */
enum schedule_if_passed { IF_PASSED_NEXT_DAY, IF_PASSED_SEND_NOW, IF_PASSED_SKIP };

/* A calendar date. */
struct schedule_date {
    int year, month, day;
};

struct schedule {
    enum schedule_mode mode;
    int64_t at_ms;             /* at */
    struct schedule_date date; /* local: the date; recurring: start_date */
    int minute_of_day;         /* local, recurring: "HH:MM" as minutes after midnight */
    char fallback_tz[64];      /* local, recurring; "UTC" when not given */
    enum schedule_if_passed if_passed;
    char rrule[256];            /* recurring */
    bool local;                 /* recurring: each recipient's own zone */
    bool has_until;             /* recurring */
    struct schedule_date until; /* recurring: last date that may have a run */
};

/* One run of a schedule. occurrence_ms is what campaign_runs.occurrence stores: the
 * instant for now/at, midnight UTC of the run's date for local and recurring.
 * Every recipient of the run is due between earliest_due_ms and latest_due_ms
 * (local times span the zones from UTC+14 to UTC-12, plus a day for next_day). */
struct schedule_run {
    int64_t occurrence_ms;
    struct schedule_date date; /* local and recurring */
    int64_t earliest_due_ms;
    int64_t latest_due_ms;
};

/* A recipient's zone as the platform reports it: an IANA name (Slack's tz), or a
 * fixed offset (Messenger's timezone, in seconds here), or nothing. tzid may be
 * NULL or "". */
struct recipient_zone {
    const char *tzid;
    bool has_offset;
    int offset_s;
};

/* Parses a schedule object (borrowed). Returns 0, or -1 with err naming the field
 * ("schedule.at: not an RFC 3339 time"). */
int schedule_parse(const json_t *obj, struct schedule *out, char *err, size_t errlen);

/* The first run after the run whose occurrence is after_occurrence_ms (-1: the first
 * run of all), skipping recurring dates whose every recipient would already be late at
 * now_ms. scheduled_at_ms is when the campaign was scheduled (the due time of "now").
 * Returns 1 with *run filled, 0 when the schedule has no further run, -1 if the rule
 * cannot be evaluated. */
int schedule_next_run(const struct schedule *s, int64_t scheduled_at_ms,
                      int64_t after_occurrence_ms, int64_t now_ms, struct schedule_run *run);

/* The run whose occurrence is occurrence_ms (as stored in campaign_runs), rebuilt for
 * loading it. Returns 0, or -1 if the schedule cannot place it. */
int schedule_run_at(const struct schedule *s, int64_t occurrence_ms, struct schedule_run *run);

/* When a recipient of a run is due. Returns 1 with *due_ms set (send), 0 when the
 * recipient is skipped (if_passed "skip" and the time has passed; *due_ms is then the
 * instant that passed), -1 when neither
 * the recipient's zone nor the fallback zone is known. For now/at every recipient is
 * due at the run's occurrence. */
int schedule_recipient_due(const struct schedule *s, const struct schedule_run *run,
                           const struct recipient_zone *zone, int64_t now_ms, int64_t *due_ms);

/* The UTC instant of a wall time in an IANA zone. A wall time that does not exist
 * (the spring-forward gap) is read with the offset in force before the change, so
 * 02:30 becomes 03:30 summer time; a wall time that happens twice (fall back) is its
 * first occurrence (RFC 5545, 3.3.5; docs/architecture.md, "Local times across DST
 * changes"). Returns 0, or -1 for an unknown zone. */
int schedule_local_to_utc(const char *tzid, struct schedule_date date, int minute_of_day,
                          int64_t *out_ms);

/* A zone to compute in: an IANA name, or a fixed offset east of UTC. */
struct schedule_zone {
    const char *tzid; /* used when fixed is false */
    bool fixed;
    int offset_s;
};

/* The zone a recipient's times are computed in: their IANA zone when the tz database
 * knows it, else their fixed offset (Messenger), else the fallback zone. */
struct schedule_zone schedule_recipient_zone(const struct recipient_zone *zone,
                                             const char *fallback_tz);
/* The wall time of date in zone, as UTC (gaps and overlaps as schedule_local_to_utc).
 * 0, or -1 for an unknown zone. */
int schedule_zone_to_utc(const struct schedule_zone *zone, struct schedule_date date,
                         int minute_of_day, int64_t *out_ms);
/* The zone's offset east of UTC at an instant, in seconds. 0, or -1 for an unknown zone. */
int schedule_zone_offset(const struct schedule_zone *zone, int64_t utc_ms, int *offset_s);
/* The calendar date of days since 1970-01-01 (the inverse of schedule_days_from_civil). */
struct schedule_date schedule_civil_from_days(int64_t days);

/* True when libical knows the zone ("UTC" included). */
bool schedule_zone_known(const char *tzid);

/* Parsers shared with the rest of the scheduler. 0 or -1. */
int schedule_parse_rfc3339(const char *text, int64_t *out_ms);
int schedule_parse_date(const char *text, struct schedule_date *out);
/* Days since 1970-01-01 of a proleptic Gregorian date (may be negative). */
int64_t schedule_days_from_civil(struct schedule_date date);

#endif
