/* msim.h: the Messenger Platform simulator's state.
 *
 * One struct msim lives for the whole process (main.c owns it). Pages and their
 * people are generated from MESSENGER_SIM_SEED and then only read, except each
 * person's last-message time, which /_sim/inbound moves (a person writing to the
 * page opens the 24-hour window again).
 */
#ifndef MSIM_H
#define MSIM_H

#include "bucket.h"
#include "record.h"
#include "reqlog.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct http_request;
struct http_response;
struct http_server;
struct metric;
struct msim_receipts;
struct strmap;

struct msim_page;

struct msim_person {
    char psid[20]; /* page-scoped id: 16 digits */
    char conversation_id[24];
    char marker[12]; /* in the name and last name, for the "nothing stored" test */
    struct msim_page *page;
    uint32_t index;
    char *first_name;
    char *last_name;
    char *name;
    char *profile_pic;
    const char *locale;
    bool has_timezone;
    double timezone;  /* hours east of UTC, as the Graph API gives it */
    bool unavailable; /* answers (#551) This person isn't available right now */
    /* Drawn once from the seed, in [0, 1): the person reads what the page sends
     * when it is below the receipts' read_fraction (receipts.h). */
    double read_draw;
    int64_t initial_last_message_ms;
    atomic_int_fast64_t last_message_ms; /* when the person last wrote to the page */
};

struct msim_page {
    uint32_t index;
    char id[20];
    char *name;
    char *token;
    struct msim_person *people;
    size_t person_count;
    /* Conversation order: most recently active first, fixed at start-up so that
     * paging is stable (Graph orders by updated_time). */
    uint32_t *conversation_order;
    struct strmap *person_by_psid;
    atomic_bool revoked;
    atomic_int revoked_subcode; /* 460 password changed, 463 expired, 467 invalid session */
    pthread_mutex_t limit_lock;
    struct bucket send_bucket;
    struct bucket conversations_bucket;
};

enum msim_call {
    MSIM_C_ME,
    MSIM_C_SEND,
    MSIM_C_PROFILE,
    MSIM_C_CONVERSATIONS,
    MSIM_C_UNKNOWN,
    MSIM_CALL_COUNT
};

struct msim_faults {
    int latency_ms;
    int jitter_ms;
    double error_rate; /* a temporary error (error_code) with error_status */
    int error_status;
    int error_code;         /* 2 (temporary) or 1200 (temporary send error) */
    double drop_rate;       /* sends: record, then close without answering */
    int64_t storm_until_ms; /* every call is rate limited (ratelimit_code) until then */
    int ratelimit_code;     /* 613 (calls), 4 (application) or 80006 (Messenger thread) */
    bool short_pages;       /* conversations pages shorter than asked for */
    double empty_page_rate; /* conversations pages with nothing in them (not at the end) */
    bool limits;
    double send_per_second;          /* per page */
    double conversations_per_second; /* per page */
};

struct msim {
    struct msim_page *pages;
    size_t page_count;
    struct strmap *page_by_token;
    struct strmap *page_by_id;
    struct record *record;
    struct reqlog *request_log; /* every Graph call as received (GET /_sim/requests) */
    int64_t started_ms;
    pthread_rwlock_t faults_lock;
    struct msim_faults faults;
    struct msim_faults default_faults;
    atomic_int_fast64_t requests;
    atomic_int_fast64_t ratelimited;
    atomic_int_fast64_t injected_errors;
    atomic_int_fast64_t dropped;
    atomic_int_fast64_t policy_refusals; /* sends refused by the 24-hour rule */
    atomic_int_fast64_t by_call[MSIM_CALL_COUNT];
    atomic_uint_fast64_t next_mid;
    /* The main port's server, set once it listens: /_sim/stats reports the answers
     * the latency fault holds (http_server_held). */
    _Atomic(struct http_server *) http;
    struct msim_receipts *receipts; /* automatic delivery and read events (receipts.h) */
    struct metric *m_requests;
    struct metric *m_messages;
};

/* population.c. Returns 0, or -1 (after logging) when out of memory. */
int msim_population_build(struct msim *m, uint64_t seed, size_t pages, size_t people);
void msim_population_free(struct msim *m);
const struct msim_person *msim_person(const struct msim_page *p, const char *psid);

/* graph.c: the main port's router. */
void msim_handle(void *ctx, const struct http_request *req, struct http_response *resp);
const char *msim_call_name(enum msim_call c);

/* control.c: /_sim/ (path after the prefix). */
void msim_control(struct msim *m, const struct http_request *req, struct http_response *resp,
                  const char *path);

void msim_faults_get(struct msim *m, struct msim_faults *out);

/* Graph's time format: "2024-05-01T12:00:00+0000" into out[32]. */
void msim_format_time(int64_t wall_ms, char out[32]);

#endif
