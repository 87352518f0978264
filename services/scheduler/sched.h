/* sched.h: the scheduler's shared state and the entry points of its modules.
 *
 * The scheduler is one thread running one poll() loop (main.c). Each turn of the loop
 * calls the modules below in order; none of them blocks on anything but the database
 * (a platform query while an audience loads runs on NNG's threads and wakes the loop
 * when its answer is in). The database holds the truth: a crash at any point loses
 * nothing, because every state change is one transaction and every bus message names
 * rows under a lease.
 *
 *   leader.c         the LISTEN connection: leadership (advisory lock), notifications
 *   runs.c           campaign runs: creating them when due, reading audiences in passes
 *   audience_call.c  the asynchronous platform query behind runs.c
 *   audience.c       which platform users a campaign's audience filter takes
 *   member_set.c     the channel members of a members_of audience, while it loads
 *   claims.c         survey, plan and claim due deliveries; push SendBatch messages
 *   pacing.c         per-bot token buckets, 429 pauses, in-flight bounds, fair shares
 *   results.c        applying ResultBatch messages, fenced by lease
 *   lifecycle.c      lease expiry, completion, cancellation, gauges
 *   schedule.c       due-time computation (pure)
 *   window.c         send windows (pure)
 *
 * Decisions (issue 5):
 *   - Pacing: Slack 600 messages a minute per bot with a burst of 10 (platforms.md:
 *     "several hundred per minute" per workspace and app; about 1/s per channel, which
 *     a campaign never meets since it writes to each DM once), Messenger 300 a second
 *     per page; throttle_per_minute on top; a 429's Retry-After pauses the bot. See
 *     pacing.h.
 *   - Send windows: due_at stays the schedule's instant; a delivery due outside the
 *     recipient's window gets next_attempt_at = the opening, and lateness counts from
 *     there (deliveries.lateness_from); one whose window closes before it goes is held
 *     for the next opening. See window.h.
 *   - Staleness: a delivery later than max_lateness_minutes, or, for a campaign without
 *     one, later than BCRM_SCHEDULER_STALE_AFTER (24 h), is 'skipped' (last_error
 *     'max_lateness' or 'stale'), so a system back from a long outage does not fire
 *     stale campaigns.
 *   - Audience: read live in passes, nobody earlier than BCRM_SCHEDULER_LOAD_AHEAD (26 h)
 *     before their due time (runs.c).
 *   - High availability: senders dial every scheduler (comma-separated URL lists,
 *     bus_dial); only the leader claims, every scheduler applies the results it gets.
 *
 * Who does what with campaign status (agreed with the api):
 *   - schedule: the api sets 'scheduled' and NOTIFYs bcrm_campaigns; the scheduler
 *     creates and loads the run, then sets 'running'.
 *   - pause: the api sets 'paused' (and NOTIFYs); the scheduler claims only from
 *     'running' campaigns, so nothing new is handed out. Deliveries already handed
 *     out finish normally. Resume: the api sets 'running' again.
 *   - cancel: the api sets 'cancelled' and marks pending deliveries 'cancelled' in the
 *     same transaction. The scheduler closes the campaign's runs, sweeps any pending
 *     row that appeared since (a retry result, a page loaded concurrently), and turns
 *     retry results of a cancelled campaign into 'cancelled'.
 *   - completion, token invalid: the scheduler sets 'completed' / 'paused'.
 */
#ifndef BCRM_SCHEDULER_SCHED_H
#define BCRM_SCHEDULER_SCHED_H

#include "peers.h"

#include <libpq-fe.h>
#include <nng/nng.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum sched_platform { SCHED_SLACK = 0, SCHED_MESSENGER = 1, SCHED_PLATFORMS = 2 };

/* Platform names as stored in bots.platform. */
extern const char *const sched_platform_names[SCHED_PLATFORMS];
/* SCHED_SLACK, SCHED_MESSENGER, or -1 for an unknown name. */
int sched_platform_from_name(const char *name);

struct sched_config {
    const char *database_url;
    const char *work_url[SCHED_PLATFORMS];
    const char *query_url[SCHED_PLATFORMS];
    const char *results_url;
    const char *ops_addr;
    int batch;            /* deliveries claimed per statement */
    int jobs_per_message; /* SendJobs per SendBatch message */
    int max_in_flight;    /* deliveries in 'sending' at once */
    int max_attempts;     /* counted attempts before a retry becomes 'failed' */
    int page_limit;       /* users asked per ListUsers page */
    int members_max;      /* channel members one members_of run may hold (member_set.h) */
    int64_t lease_ms;
    int64_t load_ahead_ms;
    int64_t load_pass_ms; /* between audience passes of a local-time run */
    int64_t retry_base_ms, retry_cap_ms;
    int64_t query_timeout_ms;
    int64_t send_timeout_ms;
    int64_t drain_ms;
    int64_t stale_after_ms; /* lateness bound of campaigns without max_lateness_minutes */
    /* Per-bot platform limits (pacing.h); a rate of 0 is no limit. */
    double slack_per_minute, slack_burst;
    double messenger_per_second, messenger_burst;
    int64_t bot_in_flight_ms; /* in flight per bot: what it completes in this long */
    int bot_min_in_flight;    /* ... but at least this many */
};

struct run_holdoff;
struct pacer;
struct audience_call;
struct run_row;
struct members_load;

struct scheduler {
    struct sched_config cfg;

    PGconn *work;   /* claims, results, runs; statements prepared (sched_db_prepare) */
    PGconn *listen; /* LISTEN bcrm_campaigns and the leadership lock */
    bool work_prepared;

    nng_socket work_sock[SCHED_PLATFORMS];  /* PUSH, senders dial */
    nng_socket query_sock[SCHED_PLATFORMS]; /* REQ, senders dial with REP */
    nng_socket results_sock;                /* PULL, senders dial with PUSH */
    int results_fd;

    /* Senders connected to each work and query socket (peers.h). */
    struct peer_set senders[SCHED_PLATFORMS];
    struct peer_set queriers[SCHED_PLATFORMS];
    /* After a send found no taker, the platform rests until then (monotonic ms). */
    int64_t platform_rest_until[SCHED_PLATFORMS];
    unsigned open_platforms; /* bit per platform open at the last claim */

    bool leader;
    int64_t next_leader_try; /* monotonic ms */

    struct pacer *pacer;                 /* per-bot buckets and fair shares (pacing.h) */
    int in_flight;                       /* deliveries in 'sending' (resynchronised by lifecycle) */
    bool claim_waits_for_results;        /* due rows wait for in-flight room: a result re-plans */
    bool campaigns_dirty;                /* a notification came: look for runs to create at once */
    int64_t next_scan;                   /* monotonic ms: the next look for runs to create */
    int64_t next_tick;                   /* monotonic ms: the next lifecycle tick */
    int64_t next_gauges;                 /* monotonic ms: the next backlog count */
    int64_t next_due;                    /* monotonic ms: the next claim could give something */
    int64_t next_load;                   /* monotonic ms: the next audience page to load (runs.c) */
    struct run_holdoff *holdoffs;        /* runs.c: runs waiting after a failed page */
    struct audience_call *audience_call; /* runs.c: the ListUsers call in flight, if any */
    struct run_row *calling;             /* runs.c: the run that call is for */
    struct members_load *members;        /* runs.c: channel members of a members_of run */

    atomic_bool ready; /* read by the ops thread for /readyz */
    bool draining;
};

/* Monotonic "never": far enough in the future for any comparison. */
#define SCHED_NEVER INT64_MAX

/* main.c: a uuid in its text form, checked before it reaches a ::uuid cast (NULL: no). */
bool sched_looks_like_uuid(const char *text);

/* main.c: (re)connects the work connection if it dropped and prepares its
 * statements. False while the database cannot be reached. */
bool sched_db_ensure(struct scheduler *s);

/* leader.c */
int leader_connect(struct scheduler *s);
/* Consumes notifications and input; tries to become leader when it is time;
 * steps down at once if the connection (and with it the lock) is lost. */
void leader_poll(struct scheduler *s);
int leader_fd(const struct scheduler *s);

/* runs.c */
int runs_prepare(PGconn *conn);
/* Creates the runs that are due within the load-ahead window. */
void runs_scan(struct scheduler *s);
/* Takes the reply of a page call that completed, writes it, and starts the next call
 * (never waits for one). */
void runs_load_step(struct scheduler *s);
/* The fd that becomes readable when a page call completes (-1 before the first). */
int runs_wake_fd(const struct scheduler *s);
void runs_free(struct scheduler *s);

/* claims.c */
int claims_prepare(PGconn *conn);
/* Claims and pushes due deliveries, paced (pacing.h), until none may go now; sets
 * next_due to when the next one may. */
void claims_run(struct scheduler *s);
/* The platforms that can take work now (a sender connected, not resting), as an
 * array literal in *out (initialised here; free with pgarray_free). */
struct pgarray;
void claims_open_platforms(struct scheduler *s, int64_t now, struct pgarray *out);
/* Counts the senders connected to the work and query sockets (before they listen). */
void claims_watch_senders(struct scheduler *s);

/* results.c */
int results_prepare(PGconn *conn);
/* Receives every ResultBatch waiting on the socket and applies them. */
void results_drain(struct scheduler *s);

/* lifecycle.c */
int lifecycle_prepare(PGconn *conn);
/* Lease expiry, completion, in-flight resynchronisation, gauges. */
void lifecycle_tick(struct scheduler *s);
/* A campaign changed (NOTIFY payload): closes what a cancel leaves behind. */
void lifecycle_campaign_changed(struct scheduler *s, const char *campaign_id);
/* Marks these bots token_invalid and pauses their scheduled and running campaigns.
 * bot_ids_array: a PostgreSQL array literal of bot ids. */
void lifecycle_bots_token_invalid(struct scheduler *s, const char *bot_ids_array);
/* Completes the running campaigns that have nothing left to do. Recurring campaigns
 * complete only when listed in finished_recurring (an array literal of ids whose
 * rule has no further run), since their next run may not exist yet. */
void lifecycle_complete(struct scheduler *s, const char *finished_recurring);

#endif
