/* member_set.h: a bounded set of platform user ids, for the audience condition
 * members_of ("users who are members of these channels").
 *
 * Slack lists a channel's members as bare user ids (conversations.members) and a
 * workspace's users with their profiles (users.list), in no common order, so a
 * members_of audience is read in two steps: the members of the listed channels into
 * one of these sets, then the users page by page, each kept only if the set has it.
 * The set holds ids and nothing else (never a name or a zone), copied into one arena
 * with an open-addressing table of offsets: about 20 bytes per member for Slack's
 * 11-character ids, so the default bound of 200,000 members stays near 4 MB.
 *
 * Pure code, no locking: one owner at a time.
 */
#ifndef BCRM_SCHEDULER_MEMBER_SET_H
#define BCRM_SCHEDULER_MEMBER_SET_H

#include <stdbool.h>
#include <stddef.h>

/* Ids longer than this are not platform ids: member_set_add refuses them. */
#define MEMBER_ID_MAX 64

enum member_add {
    MEMBER_ADDED = 1,
    MEMBER_PRESENT = 0,
    MEMBER_FULL = -1, /* max_members reached: the id was not added */
    MEMBER_NO_MEMORY = -2,
    MEMBER_BAD_ID = -3, /* NULL, empty or longer than MEMBER_ID_MAX */
};

struct member_set;

/* An empty set that takes at most max_members ids (at least 1). NULL when out of
 * memory. Free with member_set_free(). */
struct member_set *member_set_new(size_t max_members);
void member_set_free(struct member_set *set);

/* Copies id (borrowed) into the set. */
enum member_add member_set_add(struct member_set *set, const char *id);
bool member_set_has(const struct member_set *set, const char *id);
size_t member_set_count(const struct member_set *set);
size_t member_set_max(const struct member_set *set);

#endif
