/* slack_oauth.c: the second half of a Slack OAuth install (docs/architecture.md,
 * "Slack OAuth install"): the code of the authorize redirect is exchanged with
 * oauth.v2.access for the bot's token, which leaves this process sealed to the
 * vault's public key (crypto_box_seal): the api forwards the seal to the vault
 * without being able to open it. The client secret is ours alone; every copy of
 * it and of the token is wiped. */
#include "slack.h"

#include "bcrm/worker_reply.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Builds the POST with HTTP Basic client authentication, as Slack prefers. 0 or -1. */
static int oauth_request(const struct slack_state *s, const Bcrm__V1__ExchangeOAuthCode *q,
                         struct worker_request *req)
{
    char *form = NULL;
    int rv = -1;
    size_t id_len = strlen(s->client_id), secret_len = strlen(s->client_secret);
    size_t pair_len = id_len + 1 + secret_len;
    size_t b64_len = sodium_base64_ENCODED_LEN(pair_len, sodium_base64_VARIANT_ORIGINAL);
    char *pair = sodium_malloc(pair_len + 1);
    char *b64 = sodium_malloc(b64_len);
    if (pair == NULL || b64 == NULL) {
        goto out;
    }
    snprintf(pair, pair_len + 1, "%s:%s", s->client_id, s->client_secret);
    sodium_bin2base64(b64, b64_len, (const unsigned char *)pair, pair_len,
                      sodium_base64_VARIANT_ORIGINAL);
    req->method = "POST";
    if (asprintf(&req->url, "%s/oauth.v2.access", s->api_url) < 0) {
        req->url = NULL;
        goto out;
    }
    if (worker_request_header(req, "Authorization: Basic %s", b64) != 0 ||
        worker_request_header(req, "Expect:") != 0 ||
        worker_form_add(&form, "code", q->code) != 0 ||
        worker_form_add(&form, "redirect_uri", q->redirect_uri) != 0) {
        goto out;
    }
    rv = slack_request_form(req, form);
    form = NULL;
out:
    if (form != NULL) {
        sodium_memzero(form, strlen(form)); /* it holds the code */
        free(form);
    }
    sodium_free(pair);
    sodium_free(b64);
    return rv;
}

/* Overwrites a JSON string's bytes in place: jansson frees without wiping. */
static void json_string_wipe(json_t *value)
{
    if (json_is_string(value)) {
        sodium_memzero((char *)json_string_value(value), json_string_length(value));
    }
}

void slack_oauth_exchange(const struct slack_state *s, CURL *easy,
                          const Bcrm__V1__ExchangeOAuthCode *q, Bcrm__V1__PlatformReply *reply)
{
    if (!s->oauth_configured) {
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_BAD_REQUEST,
                            "oauth_not_configured");
        return;
    }
    if (q->code == NULL || q->code[0] == '\0' || q->redirect_uri == NULL) {
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_BAD_REQUEST, "invalid_code");
        return;
    }
    struct worker_request req = {0};
    if (oauth_request(s, q, &req) != 0) {
        worker_request_free(&req);
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_UNAVAILABLE, "out_of_memory");
        return;
    }
    json_t *body = slack_query_perform(easy, &req, reply, NULL);
    if (body == NULL) {
        return;
    }
    json_t *token = json_object_get(body, "access_token");
    const char *type = json_string_value(json_object_get(body, "token_type"));
    json_t *team = json_object_get(body, "team");
    size_t len = json_string_length(token);
    if (!json_is_string(token) || len == 0 || len > 4096 ||
        (type != NULL && strcmp(type, "bot") != 0)) {
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_UNAVAILABLE, "bad_response");
        goto out;
    }
    uint8_t *sealed = malloc(crypto_box_SEALBYTES + len);
    Bcrm__V1__BotIdentity *id = worker_reply_identity(reply);
    if (sealed == NULL || id == NULL) {
        free(sealed);
        worker_reply_status(reply, BCRM__V1__QUERY_STATUS__QUERY_UNAVAILABLE, "out_of_memory");
        goto out;
    }
    crypto_box_seal(sealed, (const unsigned char *)json_string_value(token), len,
                    s->vault_public_key);
    reply->has_sealed_token = true;
    reply->sealed_token.data = sealed;
    reply->sealed_token.len = crypto_box_SEALBYTES + len;
    id->team_id = worker_json_strdup(team, "id");
    id->name = worker_json_strdup(team, "name");
    id->app_id = worker_json_strdup(body, "app_id");
    id->bot_user_id = worker_json_strdup(body, "bot_user_id");
    id->scopes = worker_json_strdup(body, "scope");
out:
    json_string_wipe(token);
    json_string_wipe(json_object_get(json_object_get(body, "authed_user"), "access_token"));
    json_string_wipe(json_object_get(body, "refresh_token"));
    json_decref(body);
}

bool slack_query_needs_token(const Bcrm__V1__PlatformQuery *query)
{
    return query->query_case != BCRM__V1__PLATFORM_QUERY__QUERY_EXCHANGE_OAUTH_CODE;
}
