/* population.c: the simulated pages and the people who wrote to them.
 *
 * Each person's last message to the page sets what the Send API allows: within
 * 24 hours anything goes; from 1 to 7 days only the HUMAN_AGENT tag; later only
 * the other message tags. The people are spread over those three ranges (60%,
 * 20%, 20%), and over numeric time zones with half- and quarter-hour offsets, with
 * some giving none (the Graph API omits timezone for many).
 */
#include "msim.h"

#include "rng.h"
#include "strmap.h"

#include "bcrm/clock.h"
#include "bcrm/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const first_names[] = {
    "Amelia", "Bruno",  "Chiara", "Dmitri", "Elena", "Farid",  "Greta", "Hugo",  "Ines",   "Jonas",
    "Keiko",  "Luca",   "Maya",   "Nikos",  "Olga",  "Pablo",  "Quinn", "Rosa",  "Sven",   "Tariq",
    "Uma",    "Viktor", "Wanda",  "Xavi",   "Yara",  "Zoltan", "Aiko",  "Bilal", "Carmen", "Dara",
};

static const char *const last_names[] = {
    "Moreau",    "Kowalski", "Rossi",   "Novak",    "Haddad", "Sato",    "Okoye",
    "Lindqvist", "Ferreira", "Petrov",  "Nakamura", "Dubois", "Schmidt", "Kaur",
    "Mensah",    "Alvarez",  "Ivanova", "Brennan",  "Costa",  "Yilmaz",
};

/* Hours east of UTC, as the User Profile API reports timezone. */
static const double timezones[] = {-10,  -9.5, -8,  -7, -6,   -5, -4,  -3.5,  -3, -1,  0, 1,
                                   2,    3,    3.5, 4,  4.5,  5,  5.5, 5.75,  6,  6.5, 7, 8,
                                   8.75, 9,    9.5, 10, 10.5, 11, 12,  12.75, 13, 14};

static const char *const locales[] = {"en_US", "en_GB", "fr_FR", "de_DE",
                                      "es_ES", "pt_BR", "ja_JP", "hi_IN"};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))
#define HOUR_MS (3600LL * 1000)
#define DAY_MS (24 * HOUR_MS)

enum {
    SALT_PAGE = 0x6d01,
    SALT_PERSON = 0x6d02,
    SALT_MARKER = 0x6d03,
    SALT_TOKEN = 0x6d04,
    SALT_READ = 0x6d05
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

/* n decimal digits from h, the first not zero. */
static void digits(char *out, uint64_t h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i % 15 == 0) {
            h = rng_mix64(h + i);
        }
        out[i] = (char)('0' + (i == 0 ? 1 + h % 9 : h % 10));
        h /= 10;
    }
    out[n] = '\0';
}

void msim_format_time(int64_t wall_ms, char out[32])
{
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S+0000", &tm);
}

static int make_person(struct msim_page *p, struct msim_person *u, uint64_t seed, uint32_t i,
                       int64_t now_ms)
{
    uint64_t h = rng_hash4(seed, p->index, i, SALT_PERSON);
    u->page = p;
    u->index = i;
    rng_token_lower(u->marker, rng_hash4(seed, p->index, i, SALT_MARKER), 8);
    digits(u->psid, h ^ 0x5151, 16);
    digits(u->conversation_id + 2, h ^ 0xc0c0, 15);
    memcpy(u->conversation_id, "t_", 2);
    const char *first = first_names[h % COUNT_OF(first_names)];
    const char *last = last_names[(h >> 16) % COUNT_OF(last_names)];
    u->first_name = strdup(first);
    u->last_name = str_printf("%s-%s", last, u->marker);
    u->name = str_printf("%s %s-%s", first, last, u->marker);
    u->profile_pic =
        str_printf("https://platform-lookaside.messenger-sim.example/%016" PRIx64 ".jpg", h);
    u->locale = locales[(h >> 24) % COUNT_OF(locales)];
    u->has_timezone = i % 10 != 3;
    /* Stepping through the table by a number prime to its size uses every offset
     * once per 34 people, so even a small page has the unusual ones. */
    u->timezone = timezones[(i * 7 + seed) % COUNT_OF(timezones)];
    u->unavailable = i % 50 == 17;
    u->read_draw = (double)(rng_hash4(seed, p->index, i, SALT_READ) >> 11) * 0x1.0p-53;

    /* When the person last wrote: 60% within the day, 20% within the week
     * (HUMAN_AGENT only), 20% longer ago (message tags only). */
    uint64_t r = (h >> 40) % 1000;
    int64_t ago;
    switch (i % 10) {
    case 6:
    case 7:
        ago = DAY_MS + 2 * HOUR_MS + (int64_t)(r * (uint64_t)(4 * DAY_MS) / 1000);
        break;
    case 8:
    case 9:
        ago = 8 * DAY_MS + (int64_t)(r * (uint64_t)(50 * DAY_MS) / 1000);
        break;
    default:
        ago = 10 * 60 * 1000 + (int64_t)(r * (uint64_t)(20 * HOUR_MS) / 1000);
    }
    u->initial_last_message_ms = now_ms - ago;
    atomic_store(&u->last_message_ms, u->initial_last_message_ms);
    if (u->last_name == NULL || u->name == NULL || u->profile_pic == NULL ||
        u->first_name == NULL) {
        return -1;
    }
    return strmap_put(p->person_by_psid, u->psid, u);
}

static struct msim_person *order_people;

static int by_recent_message(const void *a, const void *b)
{
    int64_t x = order_people[*(const uint32_t *)a].initial_last_message_ms;
    int64_t y = order_people[*(const uint32_t *)b].initial_last_message_ms;
    return x > y ? -1 : x < y;
}

static int make_page(struct msim *m, struct msim_page *p, uint64_t seed, size_t people,
                     int64_t now_ms)
{
    uint64_t h = rng_hash4(seed, p->index, 0, SALT_PAGE);
    digits(p->id, h, 15);
    char tok[48];
    rng_token_lower(tok, rng_hash4(seed, p->index, 0, SALT_TOKEN), 40);
    for (size_t i = 0; i < 40; i += 3) {
        if (tok[i] >= 'a' && tok[i] <= 'z') {
            tok[i] = (char)(tok[i] - 'a' + 'A'); /* Graph tokens are mixed case */
        }
    }
    p->token = str_printf("EAAG%s", tok);
    p->name = str_printf("Sim Page %u", p->index + 1);
    p->person_count = people;
    p->people = calloc(people ? people : 1, sizeof(*p->people));
    p->conversation_order = calloc(people ? people : 1, sizeof(*p->conversation_order));
    p->person_by_psid = strmap_new(people);
    pthread_mutex_init(&p->limit_lock, NULL);
    atomic_store(&p->revoked_subcode, 460);
    if (p->token == NULL || p->name == NULL || p->people == NULL || p->conversation_order == NULL ||
        p->person_by_psid == NULL) {
        return -1;
    }
    for (size_t i = 0; i < people; i++) {
        if (make_person(p, &p->people[i], seed, (uint32_t)i, now_ms) != 0) {
            return -1;
        }
        p->conversation_order[i] = (uint32_t)i;
    }
    order_people = p->people; /* start-up runs on one thread */
    qsort(p->conversation_order, people, sizeof(*p->conversation_order), by_recent_message);
    if (strmap_put(m->page_by_token, p->token, p) != 0 ||
        strmap_put(m->page_by_id, p->id, p) != 0) {
        return -1;
    }
    return 0;
}

int msim_population_build(struct msim *m, uint64_t seed, size_t pages, size_t people)
{
    int64_t now_ms = clock_wall_ms();
    m->page_count = pages;
    m->pages = calloc(pages, sizeof(*m->pages));
    m->page_by_token = strmap_new(pages);
    m->page_by_id = strmap_new(pages);
    if (m->pages == NULL || m->page_by_token == NULL || m->page_by_id == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < pages; i++) {
        m->pages[i].index = (uint32_t)i;
        if (make_page(m, &m->pages[i], seed, people, now_ms) != 0) {
            goto fail;
        }
    }
    return 0;
fail:
    log_error("cannot build the population: out of memory", "{s:I, s:I}", "pages",
              (json_int_t)pages, "people", (json_int_t)people);
    return -1;
}

void msim_population_free(struct msim *m)
{
    for (size_t i = 0; m->pages != NULL && i < m->page_count; i++) {
        struct msim_page *p = &m->pages[i];
        for (size_t j = 0; p->people != NULL && j < p->person_count; j++) {
            free(p->people[j].first_name);
            free(p->people[j].last_name);
            free(p->people[j].name);
            free(p->people[j].profile_pic);
        }
        free(p->people);
        free(p->conversation_order);
        strmap_free(p->person_by_psid);
        free(p->token);
        free(p->name);
        pthread_mutex_destroy(&p->limit_lock);
    }
    free(m->pages);
    strmap_free(m->page_by_token);
    strmap_free(m->page_by_id);
    m->pages = NULL;
}

const struct msim_person *msim_person(const struct msim_page *p, const char *psid)
{
    return strmap_get(p->person_by_psid, psid);
}
