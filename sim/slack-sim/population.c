/* population.c: generating the workspaces (see population.h). */
#include "population.h"

#include "buf.h"
#include "rng.h"
#include "strmap.h"

#include "bcrm/log.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const first_names[] = {
    "Ada",    "Grace",    "Alan",    "Edsger",  "Barbara", "Ken",       "Dennis", "Margaret",
    "Linus",  "Radia",    "Frances", "John",    "Hedy",    "Katherine", "Claude", "Donald",
    "Leslie", "Tim",      "Shafi",   "Niklaus", "Sophie",  "Anita",     "Guido",  "Bjarne",
    "Karen",  "Fernando", "Jean",    "Mary",    "Annie",   "Evelyn",    "Carl",   "Yukihiro",
    "Amara",  "Chidi",    "Priya",   "Ravi",    "Mei",     "Hiroshi",   "Lucia",  "Mateo",
};

static const char *const last_names[] = {
    "Lovelace", "Hopper",  "Turing",     "Dijkstra", "Liskov", "Thompson", "Ritchie", "Hamilton",
    "Torvalds", "Perlman", "Allen",      "McCarthy", "Lamarr", "Johnson",  "Shannon", "Knuth",
    "Lamport",  "Berners", "Goldwasser", "Wirth",    "Wilson", "Borg",     "Rossum",  "Stroustrup",
    "Jones",    "Corbato", "Sammet",     "Keller",   "Easley", "Boyd",     "Hewitt",  "Matsumoto",
    "Okafor",   "Nwosu",   "Raman",      "Iyer",     "Chen",   "Tanaka",   "Garcia",  "Silva",
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Salts that keep the hashes of different attributes independent. */
enum {
    SALT_TEAM = 0x7e01,
    SALT_PERSON = 0x7e02,
    SALT_MARKER = 0x7e03,
    SALT_DM = 0x7e04,
    SALT_CHANNEL = 0x7e05,
    SALT_TOKEN = 0x7e06,
    SALT_ZONES = 0x7e07,
    SALT_MEMBERS = 0x7e08,
};

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0) {
        out = NULL;
    }
    va_end(ap);
    return out;
}

static void lower_ascii(char *s)
{
    for (; *s; s++) {
        if (*s >= 'A' && *s <= 'Z') {
            *s = (char)(*s - 'A' + 'a');
        }
    }
}

/* Picks an id with prefix not yet in map, re-hashing on the (rare) collision. */
static void unique_id(char *out, char prefix, uint64_t h, const struct strmap *map)
{
    for (uint64_t salt = 0;; salt++) {
        rng_slack_id(out, prefix, rng_mix64(h + salt), 10);
        if (map == NULL || strmap_get(map, out) == NULL) {
            return;
        }
    }
}

bool population_user_is_bot(const struct sim_user *u)
{
    return u->kind == SIM_USER_BOT || u->kind == SIM_USER_APP_BOT;
}

static void render_image_urls(struct buf *b, uint64_t h)
{
    static const int sizes[] = {24, 32, 48, 72, 192, 512};
    for (size_t i = 0; i < COUNT_OF(sizes); i++) {
        buf_printf(b, ",\"image_%d\":\"https://avatars.slack-sim.example/%016" PRIx64 "_%d.png\"",
                   sizes[i], h, sizes[i]);
    }
}

static int render_user_head(struct sim_user *u)
{
    uint64_t h = u->look_hash;
    const struct sim_workspace *ws = u->ws;
    struct buf b;
    buf_init(&b, 1024);
    buf_puts(&b, "{\"id\":");
    buf_json_str(&b, u->id);
    buf_printf(&b, ",\"team_id\":\"%s\",\"name\":", ws->team_id);
    buf_json_str(&b, u->name);
    buf_printf(&b, ",\"deleted\":%s,\"color\":\"%06" PRIx64 "\",\"real_name\":",
               u->deleted ? "true" : "false", h & 0xffffff);
    buf_json_str(&b, u->real_name);
    buf_printf(&b,
               ",\"is_admin\":%s,\"is_owner\":%s,\"is_primary_owner\":%s,\"is_restricted\":%s"
               ",\"is_ultra_restricted\":false,\"is_bot\":%s,\"is_app_user\":false"
               ",\"updated\":%" PRId64,
               u->is_admin ? "true" : "false", u->is_owner ? "true" : "false",
               u->is_primary_owner ? "true" : "false", u->is_restricted ? "true" : "false",
               population_user_is_bot(u) ? "true" : "false", u->updated);
    buf_puts(&b, ",\"profile\":{\"title\":\"\",\"phone\":\"\",\"skype\":\"\",\"real_name\":");
    buf_json_str(&b, u->real_name);
    buf_puts(&b, ",\"real_name_normalized\":");
    buf_json_str(&b, u->real_name);
    buf_puts(&b, ",\"display_name\":");
    buf_json_str(&b, u->display_name);
    buf_puts(&b, ",\"display_name_normalized\":");
    buf_json_str(&b, u->display_name);
    buf_printf(&b,
               ",\"fields\":null,\"status_text\":\"\",\"status_emoji\":\"\""
               ",\"status_expiration\":0,\"avatar_hash\":\"g%011" PRIx64 "\"",
               (uint64_t)((h >> 20) & 0xfffffffffffULL));
    u->email_at = b.len;
    if (u->email != NULL) {
        buf_puts(&b, ",\"email\":");
        buf_json_str(&b, u->email);
    }
    u->email_len = b.len - u->email_at;
    buf_puts(&b, ",\"first_name\":");
    buf_json_str(&b, u->first_name);
    buf_puts(&b, ",\"last_name\":");
    buf_json_str(&b, u->last_name);
    render_image_urls(&b, h);
    buf_printf(&b, ",\"team\":\"%s\"", ws->team_id);
    if (population_user_is_bot(u)) {
        buf_printf(&b, ",\"bot_id\":\"%s\",\"api_app_id\":\"%s\",\"always_active\":true", u->bot_id,
                   u->kind == SIM_USER_APP_BOT ? ws->app_id : "");
    } else if (u->kind == SIM_USER_SLACKBOT) {
        buf_puts(&b, ",\"always_active\":true");
    }
    buf_puts(&b, "}");
    u->json_head = buf_take(&b, &u->json_head_len);
    return u->json_head ? 0 : -1;
}

/* Fills one generated person or bot (index g among the generated users). */
static int make_generated_user(struct sim_workspace *ws, struct sim_user *u, uint64_t seed,
                               uint32_t g, const uint32_t *zone_perm, size_t *zoned)
{
    uint64_t h = rng_hash4(seed, ws->index, g, SALT_PERSON);
    u->look_hash = h;
    rng_token_lower(u->marker, rng_hash4(seed, ws->index, g, SALT_MARKER), 8);
    const char *first = first_names[h % COUNT_OF(first_names)];
    const char *last = last_names[(h >> 20) % COUNT_OF(last_names)];

    u->deleted = g % 30 == 11;
    u->kind = g % 40 == 7 ? SIM_USER_BOT : SIM_USER_PERSON;
    u->is_primary_owner = g == 0;
    u->is_owner = g == 0 || g % 60 == 2;
    u->is_admin = g == 0 || g % 25 == 1 || u->is_owner;
    u->is_restricted = g % 45 == 13 && !u->is_admin;
    u->updated = 1600000000 + (int64_t)(h % 100000000);

    if (u->kind == SIM_USER_BOT) {
        u->first_name = str_printf("%s Bot", last);
        u->last_name = str_printf("%s", u->marker);
        u->real_name = str_printf("%s Bot %s", last, u->marker);
        u->name = str_printf("%sbot.%s", last, u->marker);
        u->display_name = str_printf("%sbot-%s", last, u->marker);
        unique_id(u->bot_id, 'B', h ^ 0xb07, NULL);
        u->zone = zones_find("America/Los_Angeles");
    } else {
        u->first_name = str_printf("%s", first);
        u->last_name = str_printf("%s-%s", last, u->marker);
        u->real_name = str_printf("%s %s-%s", first, last, u->marker);
        u->name = str_printf("%s.%s.%s", first, last, u->marker);
        u->display_name = str_printf("%s-%s", first, u->marker);
        if (u->name != NULL) {
            lower_ascii(u->name);
            u->email = str_printf("%s@%s.slack-sim.example", u->name, ws->domain);
        }
        if (!u->deleted && g % 12 == 5) {
            u->zone = NULL; /* never set a zone: half say null, half say nothing */
            u->tz_null = (g / 12) % 2 == 0;
        } else if (!u->deleted) {
            u->zone = zones_get(zone_perm[(*zoned)++ % zones_count()]);
        }
    }
    if (u->name == NULL || u->real_name == NULL || u->first_name == NULL || u->last_name == NULL ||
        u->display_name == NULL || (u->kind == SIM_USER_PERSON && u->email == NULL)) {
        return -1;
    }
    return 0;
}

static int make_special_user(struct sim_workspace *ws, struct sim_user *u, uint64_t seed,
                             enum sim_user_kind kind)
{
    u->look_hash = rng_hash4(seed, ws->index, kind, SALT_PERSON);
    u->kind = kind;
    u->zone = zones_find("America/Los_Angeles");
    if (kind == SIM_USER_SLACKBOT) {
        strcpy(u->id, "USLACKBOT");
        u->name = strdup("slackbot");
        u->real_name = strdup("Slackbot");
        u->first_name = strdup("slackbot");
        u->last_name = strdup("");
        u->display_name = strdup("Slackbot");
        u->updated = 0;
    } else {
        u->name = strdup("bcrm-sim-bot");
        u->real_name = strdup("bcrm Sim Bot");
        u->first_name = strdup("bcrm Sim Bot");
        u->last_name = strdup("");
        u->display_name = strdup("");
        u->updated = 1600000000;
    }
    if (u->name == NULL || u->real_name == NULL || u->first_name == NULL || u->last_name == NULL ||
        u->display_name == NULL) {
        return -1;
    }
    return 0;
}

/* Which generated users belong to which channel: a fixed rule per channel, so a
 * test can recompute it, applied to people who are neither deleted nor bots. */
struct channel_spec {
    const char *name;
    bool is_private;
    bool is_archived;
    bool is_general;
    bool bot_member;
    unsigned every; /* a person is a member when hash % every == 0 */
};

static const struct channel_spec channel_specs[] = {
    {"general", false, false, true, true, 1},
    {"random", false, false, false, false, 2},
    {"announcements", false, false, false, true, 3},
    {"sim-private", true, false, false, true, 10},
    {"secret-elsewhere", true, false, false, false, 7},
    {"old-archived", false, true, false, true, 5},
};

static int make_channels(struct sim_workspace *ws, uint64_t seed)
{
    ws->channel_count = COUNT_OF(channel_specs);
    ws->channels = calloc(ws->channel_count, sizeof(*ws->channels));
    ws->channel_by_id = strmap_new(ws->channel_count);
    if (ws->channels == NULL || ws->channel_by_id == NULL) {
        return -1;
    }
    for (size_t c = 0; c < ws->channel_count; c++) {
        const struct channel_spec *spec = &channel_specs[c];
        struct sim_channel *ch = &ws->channels[c];
        unique_id(ch->id, 'C', rng_hash4(seed, ws->index, c, SALT_CHANNEL), ws->channel_by_id);
        ch->name = strdup(spec->name);
        ch->is_private = spec->is_private;
        ch->is_archived = spec->is_archived;
        ch->is_general = spec->is_general;
        ch->bot_member = spec->bot_member;
        ch->created = 1500000000 + (int64_t)c * 86400;
        ch->creator = &ws->users[1 < ws->user_count - 1 ? 1 : 0];
        ch->members = calloc(ws->user_count, sizeof(*ch->members));
        if (ch->name == NULL || ch->members == NULL ||
            strmap_put(ws->channel_by_id, ch->id, ch) != 0) {
            return -1;
        }
        for (size_t i = 0; i < ws->user_count; i++) {
            const struct sim_user *u = &ws->users[i];
            bool member;
            if (u->kind == SIM_USER_APP_BOT) {
                member = spec->bot_member;
            } else if (u == ch->creator) {
                member = true;
            } else {
                member = u->kind == SIM_USER_PERSON && !u->deleted &&
                         rng_hash4(seed, ws->index, i, SALT_MEMBERS + c) % spec->every == 0;
            }
            if (member) {
                ch->members[ch->member_count++] = (uint32_t)i;
            }
        }
    }
    return 0;
}

static int index_user(struct sim_workspace *ws, struct sim_user *u, uint64_t seed)
{
    if (u->id[0] == '\0') {
        unique_id(u->id, 'U', rng_hash4(seed, ws->index, u->index, SALT_PERSON + 100),
                  ws->user_by_id);
    }
    unique_id(u->dm_id, 'D', rng_hash4(seed, ws->index, u->index, SALT_DM), ws->user_by_dm);
    if (strmap_put(ws->user_by_id, u->id, u) != 0 || strmap_put(ws->user_by_dm, u->dm_id, u) != 0) {
        return -1;
    }
    return 0;
}

static int make_workspace(struct sim_population *pop, struct sim_workspace *ws, uint64_t seed,
                          size_t users)
{
    uint64_t h = rng_hash4(seed, ws->index, 0, SALT_TEAM);
    unique_id(ws->team_id, 'T', h, pop->workspace_by_team);
    unique_id(ws->app_id, 'A', h ^ 0xa99, NULL);
    char tok[32];
    rng_token_lower(tok, rng_hash4(seed, ws->index, 1, SALT_TOKEN), 24);
    uint64_t th = rng_hash4(seed, ws->index, 2, SALT_TOKEN);
    ws->token =
        str_printf("xoxb-%012" PRIu64 "-%013" PRIu64 "-%s", (uint64_t)(th % 1000000000000ULL),
                   (uint64_t)((th >> 8) % 10000000000000ULL), tok);
    ws->name = str_printf("Sim Workspace %u", ws->index + 1);
    ws->domain = str_printf("sim-workspace-%u", ws->index + 1);
    ws->user_count = users + 2;
    ws->users = calloc(ws->user_count, sizeof(*ws->users));
    ws->user_by_id = strmap_new(ws->user_count);
    ws->user_by_dm = strmap_new(ws->user_count);
    uint32_t *zone_perm = calloc(zones_count(), sizeof(*zone_perm));
    int rc = -1;
    if (ws->token == NULL || ws->name == NULL || ws->domain == NULL || ws->users == NULL ||
        ws->user_by_id == NULL || ws->user_by_dm == NULL || zone_perm == NULL) {
        goto out;
    }
    /* A seeded shuffle of the zones, so every zone is used once the workspace has
     * as many zoned people as there are zones, yet neighbours differ by seed. */
    struct rng r = {rng_hash4(seed, ws->index, 0, SALT_ZONES)};
    for (size_t i = 0; i < zones_count(); i++) {
        zone_perm[i] = (uint32_t)i;
    }
    for (size_t i = zones_count(); i > 1; i--) {
        size_t j = rng_next(&r) % i;
        uint32_t t = zone_perm[i - 1];
        zone_perm[i - 1] = zone_perm[j];
        zone_perm[j] = t;
    }
    /* Three passes: attributes, then ids (which need the maps to stay unique),
     * then the pre-rendered JSON (which needs the ids). */
    size_t zoned = 0;
    for (size_t i = 0; i < ws->user_count; i++) {
        struct sim_user *u = &ws->users[i];
        u->ws = ws;
        u->index = (uint32_t)i;
        int made;
        if (i == 0) {
            made = make_special_user(ws, u, seed, SIM_USER_SLACKBOT);
        } else if (i == ws->user_count - 1) {
            unique_id(u->bot_id, 'B', h ^ 0xb0b, NULL);
            made = make_special_user(ws, u, seed, SIM_USER_APP_BOT);
            ws->bot_user = u;
        } else {
            made = make_generated_user(ws, u, seed, (uint32_t)(i - 1), zone_perm, &zoned);
        }
        if (made != 0) {
            goto out;
        }
    }
    for (size_t i = 0; i < ws->user_count; i++) {
        if (index_user(ws, &ws->users[i], seed) != 0 || render_user_head(&ws->users[i]) != 0) {
            goto out;
        }
    }
    rc = make_channels(ws, seed);
out:
    free(zone_perm);
    return rc;
}

struct sim_population *population_build(uint64_t seed, size_t workspaces, size_t users)
{
    struct sim_population *pop = calloc(1, sizeof(*pop));
    if (pop == NULL) {
        goto fail;
    }
    pop->workspace_count = workspaces;
    pop->workspaces = calloc(workspaces, sizeof(*pop->workspaces));
    pop->workspace_by_token = strmap_new(workspaces);
    pop->workspace_by_team = strmap_new(workspaces);
    if (pop->workspaces == NULL || pop->workspace_by_token == NULL ||
        pop->workspace_by_team == NULL) {
        goto fail;
    }
    for (size_t w = 0; w < workspaces; w++) {
        struct sim_workspace *ws = &pop->workspaces[w];
        ws->index = (uint32_t)w;
        if (make_workspace(pop, ws, seed, users) != 0 ||
            strmap_put(pop->workspace_by_token, ws->token, ws) != 0 ||
            strmap_put(pop->workspace_by_team, ws->team_id, ws) != 0) {
            goto fail;
        }
    }
    return pop;
fail:
    log_error("cannot build the population: out of memory", "{s:I, s:I}", "workspaces",
              (json_int_t)workspaces, "users", (json_int_t)users);
    population_free(pop);
    return NULL;
}

static void free_user(struct sim_user *u)
{
    free(u->name);
    free(u->real_name);
    free(u->first_name);
    free(u->last_name);
    free(u->display_name);
    free(u->email);
    free(u->json_head);
}

void population_free(struct sim_population *pop)
{
    if (pop == NULL) {
        return;
    }
    for (size_t w = 0; pop->workspaces != NULL && w < pop->workspace_count; w++) {
        struct sim_workspace *ws = &pop->workspaces[w];
        for (size_t i = 0; ws->users != NULL && i < ws->user_count; i++) {
            free_user(&ws->users[i]);
        }
        for (size_t c = 0; ws->channels != NULL && c < ws->channel_count; c++) {
            free(ws->channels[c].name);
            free(ws->channels[c].members);
        }
        free(ws->users);
        free(ws->channels);
        strmap_free(ws->user_by_id);
        strmap_free(ws->user_by_dm);
        strmap_free(ws->channel_by_id);
        free(ws->token);
        free(ws->name);
        free(ws->domain);
    }
    free(pop->workspaces);
    strmap_free(pop->workspace_by_token);
    strmap_free(pop->workspace_by_team);
    free(pop);
}

const struct sim_user *population_user(const struct sim_workspace *ws, const char *user_id)
{
    return strmap_get(ws->user_by_id, user_id);
}

const struct sim_user *population_user_by_dm(const struct sim_workspace *ws, const char *dm_id)
{
    return strmap_get(ws->user_by_dm, dm_id);
}

const struct sim_channel *population_channel(const struct sim_workspace *ws, const char *id)
{
    return strmap_get(ws->channel_by_id, id);
}

static const char *const revocation_errors[SIM_REVOCATION_COUNT] = {
    [SIM_REVOKED_TOKEN_REVOKED] = "token_revoked",
    [SIM_REVOKED_INVALID_AUTH] = "invalid_auth",
    [SIM_REVOKED_ACCOUNT_INACTIVE] = "account_inactive",
};

const char *population_revocation_error(const struct sim_workspace *ws)
{
    int how = atomic_load(&ws->revoked_as);
    return how >= 0 && how < SIM_REVOCATION_COUNT ? revocation_errors[how] : "token_revoked";
}

int population_revocation_parse(const char *error)
{
    for (int i = 0; i < SIM_REVOCATION_COUNT; i++) {
        if (strcmp(error, revocation_errors[i]) == 0) {
            return i;
        }
    }
    return -1;
}
