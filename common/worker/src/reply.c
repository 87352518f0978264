/* reply.c: PlatformReply messages built from malloc'd parts. */
#include "bcrm/worker_reply.h"

#include <stdlib.h>
#include <string.h>

void worker_reply_status(Bcrm__V1__PlatformReply *reply, Bcrm__V1__QueryStatus status,
                         const char *error)
{
    reply->status = status;
    free(reply->error);
    reply->error = error != NULL ? strdup(error) : NULL;
}

static void *append(void ***items, size_t *count, size_t size)
{
    void *item = calloc(1, size);
    if (item == NULL) {
        return NULL;
    }
    void **grown = realloc(*items, (*count + 1) * sizeof(**items));
    if (grown == NULL) {
        free(item);
        return NULL;
    }
    grown[*count] = item;
    *items = grown;
    (*count)++;
    return item;
}

Bcrm__V1__PlatformUser *worker_reply_add_user(Bcrm__V1__PlatformReply *reply)
{
    Bcrm__V1__PlatformUser *u = append((void ***)&reply->users, &reply->n_users, sizeof(*u));
    if (u != NULL) {
        bcrm__v1__platform_user__init(u);
    }
    return u;
}

Bcrm__V1__PlatformChannel *worker_reply_add_channel(Bcrm__V1__PlatformReply *reply)
{
    Bcrm__V1__PlatformChannel *c =
        append((void ***)&reply->channels, &reply->n_channels, sizeof(*c));
    if (c != NULL) {
        bcrm__v1__platform_channel__init(c);
    }
    return c;
}

int worker_reply_add_member_id(Bcrm__V1__PlatformReply *reply, const char *id)
{
    char *copy = strdup(id);
    char **grown = copy != NULL
                       ? realloc(reply->member_ids, (reply->n_member_ids + 1) * sizeof(*grown))
                       : NULL;
    if (grown == NULL) {
        free(copy);
        return -1;
    }
    grown[reply->n_member_ids++] = copy;
    reply->member_ids = grown;
    return 0;
}

Bcrm__V1__BotIdentity *worker_reply_identity(Bcrm__V1__PlatformReply *reply)
{
    if (reply->identity == NULL) {
        reply->identity = calloc(1, sizeof(*reply->identity));
        if (reply->identity != NULL) {
            bcrm__v1__bot_identity__init(reply->identity);
        }
    }
    return reply->identity;
}

char *worker_json_strdup(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL && *s != '\0' ? strdup(s) : NULL;
}

/* protobuf-c points unset optional strings at a shared default (NULL for proto2
 * strings without a default), so every non-NULL string here is one we malloc'd. */
void worker_reply_clear(Bcrm__V1__PlatformReply *reply)
{
    free(reply->request_id);
    free(reply->error);
    free(reply->next_cursor);
    if (reply->identity != NULL) {
        Bcrm__V1__BotIdentity *id = reply->identity;
        free(id->name);
        free(id->team_id);
        free(id->app_id);
        free(id->bot_user_id);
        free(id->page_id);
        free(id->bot_id);
        free(id->url);
        free(id->scopes);
        free(id);
    }
    for (size_t i = 0; i < reply->n_users; i++) {
        Bcrm__V1__PlatformUser *u = reply->users[i];
        free(u->id);
        free(u->name);
        free(u->real_name);
        free(u->first_name);
        free(u->tz);
        free(u->email);
        free(u->avatar);
        free(u);
    }
    free(reply->users);
    for (size_t i = 0; i < reply->n_channels; i++) {
        free(reply->channels[i]->id);
        free(reply->channels[i]->name);
        free(reply->channels[i]);
    }
    free(reply->channels);
    for (size_t i = 0; i < reply->n_member_ids; i++) {
        free(reply->member_ids[i]);
    }
    free(reply->member_ids);
    if (reply->has_sealed_token) {
        free(reply->sealed_token.data);
    }
    bcrm__v1__platform_reply__init(reply);
}
