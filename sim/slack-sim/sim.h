/* sim.h: the simulator's state, shared by the request handlers.
 *
 * One struct sim lives for the whole process (main.c owns it). The population is
 * read-only; the record, the rate limiter and the faults have their own locks;
 * the counters are atomics. So a request thread never waits for another except
 * briefly on a record shard or a rate-limit bucket.
 */
#ifndef SIM_SIM_H
#define SIM_SIM_H

#include "population.h"
#include "ratelimit.h"
#include "record.h"
#include "reqlog.h"

#include <stdatomic.h>
#include <stdint.h>

struct http_request;
struct http_response;
struct http_server;
struct metric;

/* The Web API methods the simulator knows, in the order of api_methods[]. */
enum sim_method {
    SIM_M_AUTH_TEST,
    SIM_M_USERS_LIST,
    SIM_M_USERS_INFO,
    SIM_M_CONVERSATIONS_OPEN,
    SIM_M_CONVERSATIONS_LIST,
    SIM_M_CONVERSATIONS_MEMBERS,
    SIM_M_CHAT_POST_MESSAGE,
    SIM_M_OAUTH_V2_ACCESS,
    SIM_M_UNKNOWN, /* counted, answered unknown_method */
    SIM_METHOD_COUNT
};

struct sim_counters {
    atomic_int_fast64_t requests; /* Web API calls, all outcomes */
    atomic_int_fast64_t ratelimited;
    atomic_int_fast64_t injected_errors;
    atomic_int_fast64_t dropped;
    atomic_int_fast64_t by_method[SIM_METHOD_COUNT];
};

struct sim {
    struct sim_population *pop;
    struct record *record;
    struct reqlog *requests; /* every Web API call as received (GET /_sim/requests) */
    struct ratelimit *limits;
    uint64_t default_scopes; /* every workspace's grant at start-up and after a reset */
    struct sim_counters counters;
    atomic_int_fast64_t last_ts_us; /* message timestamps are unique and increasing */
    /* The main port's server, set once it listens: /_sim/stats reports the answers
     * the latency fault holds (http_server_held). */
    _Atomic(struct http_server *) http;
    struct metric *m_requests;
    struct metric *m_messages;
    struct metric *m_ratelimited;
};

/* Routes one request on the main port (api.c). */
void sim_handle(void *ctx, const struct http_request *req, struct http_response *resp);
/* The /_sim/ control endpoints (control.c); path starts after "/_sim/". */
void control_handle(struct sim *sim, const struct http_request *req, struct http_response *resp,
                    const char *path);
/* Zeroes the counters (control.c uses it for /_sim/reset). */
void sim_counters_reset(struct sim *sim);
/* The method's name, for stats. */
const char *sim_method_name(enum sim_method m);

#endif
