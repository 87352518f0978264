/* worker_internal.h: the framework's parts, shared between its files only. */
#ifndef BCRM_WORKER_INTERNAL_H
#define BCRM_WORKER_INTERNAL_H

#include "bcrm/vault_client.h"
#include "bcrm/worker.h"

#include <curl/curl.h>
#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Answers larger than these are refused (CURLE_WRITE_ERROR): a send's answer is
 * a few KiB; a page of 1000 Slack members is a couple of MiB. */
#define WORKER_SEND_MAX_BODY (1u << 20)
#define WORKER_QUERY_MAX_BODY (32u << 20)

/* One transfer's I/O state: the body going out, the answer coming in. */
struct transfer_io {
    const struct worker_request *req; /* borrowed */
    size_t upload_pos;
    bool allow_replay;
    char *body; /* malloc'd, NUL-terminated answer */
    size_t len, cap, max;
    size_t expected; /* the answer's Content-Length when given (and within max), else 0 */
    int64_t retry_after_ms;
    char *captured; /* malloc'd value of req->capture_header, or NULL */
};

/* wipe_alloc.c: curl_global_init with an allocator that wipes every block libcurl
 * frees (its copies of URLs and headers hold tokens), and the same free for
 * jansson (parsed answers hold profiles). Before any other use of either. 0 or -1. */
int worker_wipe_alloc_init(void);

/* Sets every option of easy for req. allow_replay: whether libcurl may resend
 * the body (only for reads). 0 or -1. */
int transfer_io_setup(CURL *easy, struct transfer_io *io, const struct worker_request *req,
                      size_t max_body, bool allow_replay);
/* Describes the finished transfer; resp borrows io's body. */
void transfer_io_response(CURL *easy, CURLcode rc, const struct transfer_io *io,
                          struct worker_response *resp);
void transfer_io_free(struct transfer_io *io);

/* token_cache.c: released tokens per bot, in sodium_malloc'd memory, for at most
 * ttl_ms; shared by the send loop and the query threads (locked). */
enum token_status {
    TOKEN_OK,          /* *out holds a copy of the token */
    TOKEN_MISSING,     /* the vault has no token for this bot */
    TOKEN_UNAVAILABLE, /* the vault could not be asked or refused us */
    TOKEN_PENDING,     /* token_cache_try only: asked, or the bot's probe is out;
                        * notify() tells when to try again */
    TOKEN_INVALID,     /* token_cache_try only: the platform refused the bot's
                        * token a moment ago; *out holds its error code */
};
/* The vault stores tokens of at most 4096 bytes. */
#define WORKER_TOKEN_MAX 4096
#define TOKEN_FP_BYTES 16
/* A caller's copy of a token, usually on its stack: wipe it with token_copy_wipe()
 * as soon as the request that needs it is built. */
struct token_copy {
    char data[WORKER_TOKEN_MAX + 1]; /* NUL-terminated; TOKEN_INVALID: the error code */
    size_t len;
    /* A keyed hash of the token (a key of the cache's own, made at random): it
     * names the token in token_cache_verdict() without being a copy of it. */
    uint8_t fp[TOKEN_FP_BYTES];
    /* token_cache_try: the caller holds the bot's probe, the one request allowed
     * with a token the platform has not accepted yet; it must report a verdict
     * (TOKEN_NO_VERDICT if it made no request) with probe set. */
    bool probe;
};
void token_copy_wipe(struct token_copy *t);

/* What the platform made of a token. */
enum token_verdict {
    TOKEN_WORKS,      /* an answer that the token was accepted for */
    TOKEN_REFUSED,    /* revoked, invalid, the account gone */
    TOKEN_NO_VERDICT, /* no answer about it (a transport failure, a 5xx, a 429) */
};

struct token_cache;
/* fetch_threads ask the vault for token_cache_try's misses; invalid_ttl_ms is how
 * long a refused token holds its bot's sends back. NULL when out of memory. */
struct token_cache *token_cache_new(struct vault_client *vault, Bcrm__V1__Platform platform,
                                    int64_t ttl_ms, int64_t invalid_ttl_ms, int fetch_threads);
/* Stops the fetch threads (waiting for a vault call in progress) and wipes every
 * token. */
void token_cache_free(struct token_cache *cache);
/* notify(arg) runs on a fetch thread, with the cache locked, after each answer
 * (it should only wake the caller's loop); NULL stops the calls. */
void token_cache_set_notify(struct token_cache *cache, void (*notify)(void *arg), void *arg);
/* Changes whenever an answer from the vault is added, or a verdict changes what
 * token_cache_try answers. */
uint64_t token_cache_generation(struct token_cache *cache);
/* Blocking: on a miss, asks the vault on the calling thread (query threads).
 * A query is an explicit question (a reconnected bot's VerifyBot): it does not
 * wait for probes, and for a bot whose token was refused it asks the vault
 * afresh and gets the token to try. fresh: ask the vault even on a hit (VerifyBot
 * checks the token the vault holds now, not one cached before it was replaced). */
enum token_status token_cache_get(struct token_cache *cache, const char *org_id, const char *bot_id,
                                  bool fresh, struct token_copy *out);
/* Never blocks: on a miss, a fetch thread asks the vault, and TOKEN_PENDING says
 * to try again after the next notify (the send loop). A token the platform has
 * not accepted yet goes to one caller at a time (out->probe): the others get
 * TOKEN_PENDING until its verdict, so a revoked token costs one refused request,
 * not one per queued send. A bot held after a refusal is answered TOKEN_INVALID
 * only from a vault answer given since the refusal and newer than job_in_mono_ms
 * (when the caller's job came in): otherwise the send waits (TOKEN_PENDING) while
 * the vault is asked whether the token was stored again (a reconnect), which
 * ends the hold. */
enum token_status token_cache_try(struct token_cache *cache, const char *org_id, const char *bot_id,
                                  int64_t job_in_mono_ms, struct token_copy *out);
/* Reports the platform's verdict on the token fp names for bot_id. TOKEN_REFUSED
 * wipes the token and keeps a refused entry (with code, e.g. "token_revoked") for
 * invalid_ttl_ms, during which token_cache_try answers TOKEN_INVALID without the
 * vault or the platform; a newer token released meanwhile is left alone.
 * TOKEN_WORKS proves the token (or ends a refused entry of that same token: the
 * platform accepts it again). probe: the report of a caller that held the probe.
 * Takes the lock; safe on any thread. */
void token_cache_verdict(struct token_cache *cache, const char *org_id, const char *bot_id,
                         const uint8_t fp[TOKEN_FP_BYTES], enum token_verdict verdict, bool probe,
                         const char *code);
/* Wipes and frees expired entries; returns how many remain. */
size_t token_cache_sweep(struct token_cache *cache);

/* results.c: SendResults waiting to go back to the scheduler in batches. */
struct result_queue;
struct result_queue *result_queue_new(nng_socket push, const char *sender_id, size_t batch_size,
                                      int64_t flush_ms);
void result_queue_free(struct result_queue *q);
/* Queues the result of job. */
void result_queue_add(struct result_queue *q, const Bcrm__V1__SendJob *job,
                      const struct worker_outcome *out, int64_t now_mono_ms);
/* Sends what is due (a full batch, or anything older than flush_ms; everything
 * when force), waiting a few milliseconds at most. Returns the number still queued. */
size_t result_queue_flush(struct result_queue *q, bool force, int64_t now_mono_ms);
/* Milliseconds until the next flush is due, or -1 when nothing is queued. */
int64_t result_queue_next_ms(const struct result_queue *q, int64_t now_mono_ms);
size_t result_queue_len(const struct result_queue *q);

/* metrics of the framework, registered once. */
struct worker_metrics {
    struct metric *sends[5]; /* by Bcrm__V1__Outcome */
    struct metric *in_flight;
    struct metric *request_seconds;
    struct metric *queries[6]; /* by Bcrm__V1__QueryStatus */
};
void worker_metrics_init(struct worker_metrics *m);

/* query_pool.c: threads answering PlatformQuery on one REP socket. */
struct query_pool;
struct query_pool *query_pool_start(const struct worker_platform *platform, void *state,
                                    nng_socket rep, struct token_cache *tokens,
                                    struct worker_metrics *metrics, int threads);
/* Lets every thread finish its current query, then joins them. */
void query_pool_stop(struct query_pool *pool);

/* send_loop.c: the libcurl multi loop; returns when drained after shutdown. */
struct send_loop_config {
    const struct worker_platform *platform;
    void *state;
    nng_socket pull;
    struct result_queue *results;
    struct token_cache *tokens;
    struct worker_metrics *metrics;
    int max_in_flight;
};
int send_loop_run(const struct send_loop_config *cfg);

#endif
