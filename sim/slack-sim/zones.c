/* zones.c: the zone table and its offsets (see zones.h). */
#include "zones.h"

#include "bcrm/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Spread over every UTC offset in use, with the unusual ones a scheduler gets
 * wrong first: half-hour (Kolkata, Tehran, St Johns, Adelaide, Marquesas),
 * 45-minute (Kathmandu, Chatham, Eucla), half-hour daylight saving (Lord Howe),
 * southern-hemisphere daylight saving (Santiago, Sydney, Auckland) and +13/+14. */
static struct sim_zone zone_table[] = {
    {"Pacific/Pago_Pago", "Samoa Standard Time", "Samoa Standard Time", 0, 0},
    {"Pacific/Honolulu", "Hawaii-Aleutian Standard Time", "Hawaii-Aleutian Daylight Time", 0, 0},
    {"Pacific/Marquesas", "Marquesas Time", "Marquesas Time", 0, 0},
    {"America/Anchorage", "Alaska Standard Time", "Alaska Daylight Time", 0, 0},
    {"America/Los_Angeles", "Pacific Standard Time", "Pacific Daylight Time", 0, 0},
    {"America/Denver", "Mountain Standard Time", "Mountain Daylight Time", 0, 0},
    {"America/Phoenix", "Mountain Standard Time", "Mountain Standard Time", 0, 0},
    {"America/Chicago", "Central Standard Time", "Central Daylight Time", 0, 0},
    {"America/Mexico_City", "Central Standard Time", "Central Daylight Time", 0, 0},
    {"America/New_York", "Eastern Standard Time", "Eastern Daylight Time", 0, 0},
    {"America/Toronto", "Eastern Standard Time", "Eastern Daylight Time", 0, 0},
    {"America/Bogota", "Colombia Standard Time", "Colombia Summer Time", 0, 0},
    {"America/Caracas", "Venezuela Time", "Venezuela Time", 0, 0},
    {"America/Halifax", "Atlantic Standard Time", "Atlantic Daylight Time", 0, 0},
    {"America/St_Johns", "Newfoundland Standard Time", "Newfoundland Daylight Time", 0, 0},
    {"America/Sao_Paulo", "Brasilia Standard Time", "Brasilia Summer Time", 0, 0},
    {"America/Argentina/Buenos_Aires", "Argentina Standard Time", "Argentina Summer Time", 0, 0},
    {"America/Santiago", "Chile Standard Time", "Chile Summer Time", 0, 0},
    {"Atlantic/Azores", "Azores Standard Time", "Azores Summer Time", 0, 0},
    {"Atlantic/Reykjavik", "Greenwich Mean Time", "Greenwich Mean Time", 0, 0},
    {"Europe/London", "Greenwich Mean Time", "British Summer Time", 0, 0},
    {"Europe/Dublin", "Greenwich Mean Time", "Irish Standard Time", 0, 0},
    {"Europe/Lisbon", "Western European Time", "Western European Summer Time", 0, 0},
    {"Africa/Lagos", "West Africa Time", "West Africa Time", 0, 0},
    {"Europe/Berlin", "Central European Time", "Central European Summer Time", 0, 0},
    {"Europe/Paris", "Central European Time", "Central European Summer Time", 0, 0},
    {"Europe/Madrid", "Central European Time", "Central European Summer Time", 0, 0},
    {"Africa/Cairo", "Eastern European Time", "Eastern European Summer Time", 0, 0},
    {"Europe/Athens", "Eastern European Time", "Eastern European Summer Time", 0, 0},
    {"Europe/Helsinki", "Eastern European Time", "Eastern European Summer Time", 0, 0},
    {"Africa/Johannesburg", "South Africa Standard Time", "South Africa Standard Time", 0, 0},
    {"Africa/Nairobi", "East Africa Time", "East Africa Time", 0, 0},
    {"Europe/Moscow", "Moscow Standard Time", "Moscow Standard Time", 0, 0},
    {"Europe/Istanbul", "Turkey Time", "Turkey Time", 0, 0},
    {"Asia/Tehran", "Iran Standard Time", "Iran Daylight Time", 0, 0},
    {"Asia/Dubai", "Gulf Standard Time", "Gulf Standard Time", 0, 0},
    {"Asia/Kabul", "Afghanistan Time", "Afghanistan Time", 0, 0},
    {"Asia/Karachi", "Pakistan Standard Time", "Pakistan Summer Time", 0, 0},
    {"Asia/Kolkata", "India Standard Time", "India Standard Time", 0, 0},
    {"Asia/Kathmandu", "Nepal Time", "Nepal Time", 0, 0},
    {"Asia/Dhaka", "Bangladesh Standard Time", "Bangladesh Summer Time", 0, 0},
    {"Asia/Yangon", "Myanmar Time", "Myanmar Time", 0, 0},
    {"Asia/Bangkok", "Indochina Time", "Indochina Time", 0, 0},
    {"Asia/Jakarta", "Western Indonesia Time", "Western Indonesia Time", 0, 0},
    {"Asia/Shanghai", "China Standard Time", "China Daylight Time", 0, 0},
    {"Asia/Singapore", "Singapore Standard Time", "Singapore Standard Time", 0, 0},
    {"Australia/Perth", "Australian Western Standard Time", "Australian Western Daylight Time", 0,
     0},
    {"Australia/Eucla", "Australian Central Western Standard Time",
     "Australian Central Western Daylight Time", 0, 0},
    {"Asia/Tokyo", "Japan Standard Time", "Japan Daylight Time", 0, 0},
    {"Asia/Seoul", "Korean Standard Time", "Korean Daylight Time", 0, 0},
    {"Australia/Darwin", "Australian Central Standard Time", "Australian Central Daylight Time", 0,
     0},
    {"Australia/Adelaide", "Australian Central Standard Time", "Australian Central Daylight Time",
     0, 0},
    {"Australia/Brisbane", "Australian Eastern Standard Time", "Australian Eastern Daylight Time",
     0, 0},
    {"Australia/Sydney", "Australian Eastern Standard Time", "Australian Eastern Daylight Time", 0,
     0},
    {"Australia/Lord_Howe", "Lord Howe Standard Time", "Lord Howe Daylight Time", 0, 0},
    {"Pacific/Noumea", "New Caledonia Standard Time", "New Caledonia Summer Time", 0, 0},
    {"Pacific/Auckland", "New Zealand Standard Time", "New Zealand Daylight Time", 0, 0},
    {"Pacific/Chatham", "Chatham Standard Time", "Chatham Daylight Time", 0, 0},
    {"Pacific/Tongatapu", "Tonga Standard Time", "Tonga Summer Time", 0, 0},
    {"Pacific/Kiritimati", "Line Islands Time", "Line Islands Time", 0, 0},
};

#define ZONE_TABLE_SIZE (sizeof(zone_table) / sizeof(zone_table[0]))

static struct sim_zone *zones_usable[ZONE_TABLE_SIZE];
static size_t zones_usable_count;
static pthread_mutex_t zones_tz_lock = PTHREAD_MUTEX_INITIALIZER;

static bool zone_known(const char *name)
{
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir && dir[0] ? dir : "/usr/share/zoneinfo", name);
    return access(path, R_OK) == 0;
}

size_t zones_init(void)
{
    zones_usable_count = 0;
    for (size_t i = 0; i < ZONE_TABLE_SIZE; i++) {
        if (zone_known(zone_table[i].name)) {
            zones_usable[zones_usable_count++] = &zone_table[i];
        } else {
            log_warn("time zone missing from the tz database, skipped", "{s:s}", "zone",
                     zone_table[i].name);
        }
    }
    zones_refresh();
    return zones_usable_count;
}

size_t zones_count(void)
{
    return zones_usable_count;
}

struct sim_zone *zones_get(size_t i)
{
    return i < zones_usable_count ? zones_usable[i] : NULL;
}

const struct sim_zone *zones_find(const char *name)
{
    for (size_t i = 0; i < zones_usable_count; i++) {
        if (strcmp(zones_usable[i]->name, name) == 0) {
            return zones_usable[i];
        }
    }
    return NULL;
}

void zones_refresh(void)
{
    pthread_mutex_lock(&zones_tz_lock);
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    time_t now = time(NULL);
    for (size_t i = 0; i < zones_usable_count; i++) {
        struct sim_zone *z = zones_usable[i];
        struct tm tm;
        setenv("TZ", z->name, 1);
        tzset();
        if (localtime_r(&now, &tm) != NULL) {
            atomic_store(&z->offset_s, (int)tm.tm_gmtoff);
            atomic_store(&z->is_dst, tm.tm_isdst > 0);
        }
    }
    if (saved != NULL) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }
    tzset();
    pthread_mutex_unlock(&zones_tz_lock);
}

const char *zone_label(const struct sim_zone *z)
{
    return atomic_load(&z->is_dst) ? z->dst_label : z->std_label;
}
