/* leader.c: leadership and campaign notifications, on a connection of their own.
 *
 * Only one scheduler at a time creates runs, loads audiences and claims: the one
 * holding a session advisory lock. The lock lives exactly as long as the connection
 * that took it, so a leader that dies or loses its connection frees it for a standby
 * at once, and a leader that sees its connection fail steps down before doing
 * anything else. Even two leaders overlapping for a moment could not send a delivery
 * twice: claims lock rows with SKIP LOCKED and change their status in the same
 * statement, and loading is idempotent (ON CONFLICT DO NOTHING).
 *
 * The same connection LISTENs on bcrm_campaigns, where the api announces a campaign
 * id whenever it schedules, pauses, resumes or cancels one; its socket is in the
 * poll set, so a notification wakes the loop at once.
 */
#include "sched.h"
#include "sched_metrics.h"

#include "bcrm/clock.h"
#include "bcrm/db.h"
#include "bcrm/log.h"

/* An arbitrary constant naming the scheduler's leadership lock in pg_locks. */
#define LEADER_LOCK_KEY "7240591736"
#define LEADER_RETRY_MS 1000

int leader_connect(struct scheduler *s)
{
    s->listen = db_connect(s->cfg.database_url, 0);
    if (s->listen == NULL) {
        return -1;
    }
    if (db_exec(s->listen, "listen", "LISTEN bcrm_campaigns", 0, NULL) != 0) {
        PQfinish(s->listen);
        s->listen = NULL;
        return -1;
    }
    return 0;
}

int leader_fd(const struct scheduler *s)
{
    return s->listen != NULL ? PQsocket(s->listen) : -1;
}

static void step_down(struct scheduler *s, const char *why)
{
    if (s->leader) {
        log_warn("leadership lost", "{s:s}", "reason", why);
    }
    s->leader = false;
    metric_set(sched_metrics.is_leader, 0);
}

static void drop_connection(struct scheduler *s, const char *why)
{
    step_down(s, why);
    if (s->listen != NULL) {
        PQfinish(s->listen);
        s->listen = NULL;
    }
    s->next_leader_try = clock_mono_ms() + LEADER_RETRY_MS;
}

static void try_lead(struct scheduler *s)
{
    s->next_leader_try = clock_mono_ms() + LEADER_RETRY_MS;
    PGresult *res = db_query(s->listen, "leader lock",
                             "SELECT pg_try_advisory_lock(" LEADER_LOCK_KEY ")", 0, NULL);
    if (res == NULL) {
        if (PQstatus(s->listen) != CONNECTION_OK) {
            drop_connection(s, "connection lost");
        }
        return;
    }
    bool got = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!got) {
        return;
    }
    s->leader = true;
    metric_set(sched_metrics.is_leader, 1);
    /* A new leader knows nothing of what the last one was doing: look at everything. */
    s->campaigns_dirty = true;
    s->next_tick = 0;
    s->next_due = 0;
    log_info("leadership acquired", NULL);
}

void leader_poll(struct scheduler *s)
{
    if (s->listen == NULL) {
        if (clock_mono_ms() < s->next_leader_try) {
            return;
        }
        if (leader_connect(s) != 0) {
            s->next_leader_try = clock_mono_ms() + LEADER_RETRY_MS;
            return;
        }
        /* Notifications sent while disconnected are lost: look at every campaign. */
        s->campaigns_dirty = true;
    }
    if (!PQconsumeInput(s->listen) || PQstatus(s->listen) != CONNECTION_OK) {
        log_error("listen connection lost", NULL);
        drop_connection(s, "connection lost");
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(s->listen)) != NULL) {
        s->campaigns_dirty = true;
        if (s->leader && n->extra != NULL && n->extra[0] != '\0') {
            lifecycle_campaign_changed(s, n->extra);
        }
        PQfreemem(n);
    }
    if (!s->leader && !s->draining && clock_mono_ms() >= s->next_leader_try) {
        try_lead(s);
    }
}
