/* webhook.c: see webhook.h. */
#include "webhook.h"

#include "buf.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Answers larger than this are cut: a test only needs to see what came back. */
#define ANSWER_MAX (64 * 1024)

static size_t collect(char *data, size_t size, size_t n, void *ctx)
{
    struct buf *b = ctx;
    size_t len = size * n;
    if (b->len + len <= ANSWER_MAX) {
        buf_append(b, data, len);
    }
    return len;
}

static int perform(CURL *curl, const char *url, long timeout_ms, struct sim_webhook_result *r)
{
    struct buf answer;
    buf_init(&answer, 512);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(curl);
    r->body = buf_take(&answer, NULL);
    if (rc != CURLE_OK) {
        snprintf(r->error, sizeof(r->error), "%s", curl_easy_strerror(rc));
        r->status = 0;
        return -1;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    return 0;
}

struct sim_webhook_client {
    CURL *curl;
};

struct sim_webhook_client *sim_webhook_client_new(void)
{
    struct sim_webhook_client *c = calloc(1, sizeof(*c));
    if (c != NULL && (c->curl = curl_easy_init()) == NULL) {
        free(c);
        c = NULL;
    }
    return c;
}

void sim_webhook_client_free(struct sim_webhook_client *client)
{
    if (client != NULL) {
        curl_easy_cleanup(client->curl);
        free(client);
    }
}

int sim_webhook_client_post(struct sim_webhook_client *client, const char *url, const char *body,
                            const char *const *headers, size_t header_count, long timeout_ms,
                            struct sim_webhook_result *result)
{
    memset(result, 0, sizeof(*result));
    struct curl_slist *list = curl_slist_append(NULL, "Content-Type: application/json");
    for (size_t i = 0; i < header_count && list != NULL; i++) {
        list = curl_slist_append(list, headers[i]);
    }
    int rc = -1;
    if (list == NULL) {
        snprintf(result->error, sizeof(result->error), "out of memory");
        goto out;
    }
    /* Reset keeps the connection cache: the next post reuses the connection. */
    curl_easy_reset(client->curl);
    curl_easy_setopt(client->curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(client->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(client->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    rc = perform(client->curl, url, timeout_ms, result);
out:
    curl_slist_free_all(list);
    return rc;
}

int sim_webhook_post(const char *url, const char *body, const char *const *headers,
                     size_t header_count, long timeout_ms, struct sim_webhook_result *result)
{
    struct sim_webhook_client *client = sim_webhook_client_new();
    if (client == NULL) {
        memset(result, 0, sizeof(*result));
        snprintf(result->error, sizeof(result->error), "out of memory");
        return -1;
    }
    int rc = sim_webhook_client_post(client, url, body, headers, header_count, timeout_ms, result);
    sim_webhook_client_free(client);
    return rc;
}

int sim_webhook_get(const char *url, long timeout_ms, struct sim_webhook_result *result)
{
    memset(result, 0, sizeof(*result));
    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        snprintf(result->error, sizeof(result->error), "out of memory");
        return -1;
    }
    int rc = perform(curl, url, timeout_ms, result);
    curl_easy_cleanup(curl);
    return rc;
}

void sim_webhook_result_free(struct sim_webhook_result *result)
{
    free(result->body);
    result->body = NULL;
}

void sim_hmac_sha256_hex(const char *key, const void *msg, size_t len, char out[65])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, msg, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(out, 65, mac, sizeof(mac));
}
