/* scopes.c: see scopes.h. */
#include "scopes.h"

#include <stdio.h>
#include <string.h>

/* Indexed by enum sim_scope for the first entries; at most 64. */
static const char *const scope_names[] = {
    [SCOPE_CHANNELS_READ] = "channels:read",
    [SCOPE_CHAT_WRITE] = "chat:write",
    [SCOPE_CHAT_WRITE_PUBLIC] = "chat:write.public",
    [SCOPE_GROUPS_READ] = "groups:read",
    [SCOPE_IM_READ] = "im:read",
    [SCOPE_IM_WRITE] = "im:write",
    [SCOPE_MPIM_READ] = "mpim:read",
    [SCOPE_MPIM_WRITE] = "mpim:write",
    [SCOPE_USERS_READ] = "users:read",
    [SCOPE_USERS_READ_EMAIL] = "users:read.email",
    "app_mentions:read",
    "channels:history",
    "channels:join",
    "channels:manage",
    "chat:write.customize",
    "commands",
    "emoji:read",
    "files:read",
    "files:write",
    "groups:history",
    "groups:write",
    "im:history",
    "links:read",
    "links:write",
    "metadata.message:read",
    "mpim:history",
    "pins:read",
    "pins:write",
    "reactions:read",
    "reactions:write",
    "team:read",
    "usergroups:read",
    "usergroups:write",
    "users.profile:read",
    "users:write",
};

#define SCOPE_COUNT (sizeof(scope_names) / sizeof(scope_names[0]))
_Static_assert(SCOPE_COUNT <= 64, "a scope set is a 64-bit mask");

const char *scope_name(enum sim_scope s)
{
    return (size_t)s < SCOPE_COUNT ? scope_names[s] : "";
}

static int scope_lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < SCOPE_COUNT; i++) {
        if (strlen(scope_names[i]) == len && strncmp(scope_names[i], name, len) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int add_name(const char *name, size_t len, uint64_t *set, char *err, size_t errlen)
{
    int s = scope_lookup(name, len);
    if (s < 0) {
        snprintf(err, errlen, "unknown scope \"%.*s\" (GET /_sim/scopes lists the known ones)",
                 (int)(len > 80 ? 80 : len), name);
        return -1;
    }
    *set |= SIM_SCOPE(s);
    return 0;
}

int scopes_parse(const char *list, uint64_t *out, char *err, size_t errlen)
{
    uint64_t set = 0;
    for (const char *p = list; *p != '\0';) {
        size_t skip = strspn(p, ", ");
        p += skip;
        size_t len = strcspn(p, ", ");
        if (len > 0 && add_name(p, len, &set, err, errlen) != 0) {
            return -1;
        }
        p += len;
    }
    *out = set;
    return 0;
}

int scopes_from_json(const json_t *v, uint64_t *out, char *err, size_t errlen)
{
    if (json_is_string(v)) {
        return scopes_parse(json_string_value(v), out, err, errlen);
    }
    if (!json_is_array(v)) {
        snprintf(err, errlen, "scopes: want a list of scope names or a comma-separated string");
        return -1;
    }
    uint64_t set = 0;
    size_t i;
    json_t *name;
    json_array_foreach(v, i, name)
    {
        if (!json_is_string(name)) {
            snprintf(err, errlen, "scopes: entry %zu is not a string", i);
            return -1;
        }
        if (add_name(json_string_value(name), strlen(json_string_value(name)), &set, err, errlen) !=
            0) {
            return -1;
        }
    }
    *out = set;
    return 0;
}

void scopes_format(uint64_t set, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < SCOPE_COUNT && used < outlen; i++) {
        if (set & SIM_SCOPE(i)) {
            used += (size_t)snprintf(out + used, outlen - used, "%s%s", used ? "," : "",
                                     scope_names[i]);
        }
    }
}

json_t *scopes_to_json(uint64_t set)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < SCOPE_COUNT; i++) {
        if (set & SIM_SCOPE(i)) {
            json_array_append_new(arr, json_string(scope_names[i]));
        }
    }
    return arr;
}

json_t *scopes_known_json(void)
{
    return scopes_to_json(UINT64_MAX);
}
