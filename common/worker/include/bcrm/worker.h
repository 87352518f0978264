/* worker.h: the sender worker framework shared by sender-slack and
 * sender-messenger.
 *
 * The framework owns everything that is not about one platform: the bus sockets
 * (jobs in, results out, queries), the libcurl multi loop with its in-flight
 * bound, the short-lived token cache fed by the vault, the query threads, metrics
 * and the SIGTERM drain. A platform is a module: a const struct worker_platform
 * of data and function pointers. Adding a platform means writing one module and a
 * main() that calls worker_main(&module).
 *
 * A send may take several requests (a profile lookup, then the message): the
 * framework calls build_send, performs the request, and calls classify_send,
 * which either gives the final outcome or asks for the next request. A send may
 * also wait (WORKER_WAIT) for something the module is fetching on behalf of many
 * sends at once (a page of profiles) before it makes a request of its own.
 */
#ifndef BCRM_WORKER_H
#define BCRM_WORKER_H

#include "bcrm/v1/query.pb-c.h"
#include "bcrm/v1/send.pb-c.h"
#include "bcrm/worker_http.h"
#include "bcrm/worker_outcome.h"
#include "bcrm/worker_profile.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#define WORKER_SEND_SCRATCH 128

/* One send in progress. The framework owns it; modules read the job and keep
 * their per-send progress in step, profile and scratch. */
struct worker_send {
    const Bcrm__V1__SendJob *job;  /* borrowed; valid until the outcome is final */
    int step;                      /* module-defined; 0 before the first request */
    struct worker_profile profile; /* filled by a module's profile step */
    bool have_profile;
    /* Set by build_send on a request that other sends wait for (WORKER_WAIT):
     * once its answer is classified, the framework builds every waiting send of
     * the same bot again. The framework clears it after each request. */
    bool wakes_waiters;
    /* Module-defined: when the send began to wait, 0 while it does not. */
    int64_t wait_started_mono_ms;
    /* Module-defined per-send state, zeroed when the send starts. */
    _Alignas(8) unsigned char scratch[WORKER_SEND_SCRATCH];
};

enum worker_next {
    WORKER_FINAL,   /* out holds the final outcome */
    WORKER_REQUEST, /* perform the request (build_send) / build the next one (classify) */
    /* build_send only: the send cannot go on until data the module is fetching
     * for many sends arrives (another send's request with wakes_waiters). The
     * framework sets it aside, holding no request and no token, and calls
     * build_send again when that request is answered, or at the latest after a
     * second. A send may wait only while nothing it sent can have delivered a
     * message, so that a sender shutting down may answer it RETRY. */
    WORKER_WAIT,
};

/* Ends a send's profile read, in a module's classify_send on the answer to its
 * profile request (users.info, GET /{psid}). read: the answer held the profile,
 * which the module put in send->profile; a copy goes into cache (borrowed) for the
 * job's bot and recipient. Otherwise would is the outcome the post's own answer
 * would have had: when it would stop the post too (a refused token, a rate limit,
 * a retry or an unknown) it becomes the send's outcome, as a retry whatever it was
 * because a read sent nothing; any other failure lets the post go ahead with the
 * placeholders' defaults. Either way the send's profile step is behind it
 * (have_profile). Returns WORKER_FINAL with out filled, or WORKER_REQUEST. */
enum worker_next worker_profile_read_done(struct worker_send *send, struct profile_cache *cache,
                                          bool read, const struct worker_outcome *would,
                                          struct worker_outcome *out);

struct worker_platform {
    const char *name;    /* "slack": metric labels and logs */
    const char *service; /* "sender-slack": the log's svc */
    Bcrm__V1__Platform platform;
    /* Bus URLs (environment variable and default) and the ops port default. */
    const char *work_url_var, *work_url_default;
    const char *api_query_url_var, *api_query_url_default;
    const char *scheduler_query_url_var, *scheduler_query_url_default;
    const char *ops_addr_default;

    /* Reads the module's configuration; returns its state or NULL after logging
     * why. The state is shared by the send loop and the query threads: anything
     * mutable in it belongs to the send loop alone unless locked. */
    void *(*init)(void);
    void (*fini)(void *state);
    /* Optional: refuses a job before any token or request is needed (Messenger's
     * 24 h window). Returns true with out filled when refused. */
    bool (*precheck)(void *state, const Bcrm__V1__SendJob *job, int64_t now_wall_ms,
                     struct worker_outcome *out);
    /* Builds the next request of a send into req (token borrowed for the call).
     * Returns WORKER_REQUEST, or WORKER_FINAL with out filled when the job can be
     * decided without asking the platform (bad blocks, text too long). */
    enum worker_next (*build_send)(void *state, struct worker_send *send, const char *token,
                                   struct worker_request *req, struct worker_outcome *out);
    /* Classifies the answer to the request build_send made. Runs on the send loop. */
    enum worker_next (*classify_send)(void *state, struct worker_send *send,
                                      const struct worker_response *resp,
                                      struct worker_outcome *out);
    /* Answers one query synchronously on a query thread, with its own easy handle
     * and the bot's token (borrowed). Fills reply's status and payload with
     * malloc'd data (worker_reply.h); the framework sets request_id and frees it. */
    void (*query)(void *state, CURL *easy, const char *token, const Bcrm__V1__PlatformQuery *query,
                  Bcrm__V1__PlatformReply *reply);
    /* Optional: false for a query that is answered without the bot's token (the
     * OAuth code exchange, made before the bot has one); query() then gets a NULL
     * token and no token is released for it. NULL: every query needs the token. */
    bool (*query_needs_token)(const Bcrm__V1__PlatformQuery *query);
    /* Optional: called on the send loop about once a second, to sweep what the
     * module keeps for a limited time (profiles). */
    void (*tick)(void *state, int64_t now_mono_ms);
};

/* Runs a sender for platform until SIGTERM; returns the process exit status. */
int worker_main(const struct worker_platform *platform);

#endif
