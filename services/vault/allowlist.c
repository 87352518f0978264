/* allowlist.c: the vault's callers and their roles. */
#include "allowlist.h"

#include "bcrm/keys.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct allowlist_entry {
    uint8_t public_key[crypto_box_PUBLICKEYBYTES];
    enum vault_role role;
};

struct allowlist {
    struct allowlist_entry *entries;
    size_t count;
};

static const char *const role_names[] = {
    [VAULT_ROLE_API] = "api",
    [VAULT_ROLE_SENDER_SLACK] = "sender-slack",
    [VAULT_ROLE_SENDER_MESSENGER] = "sender-messenger",
    [VAULT_ROLE_OPS] = "ops",
};

const char *vault_role_name(enum vault_role role)
{
    if (role <= VAULT_ROLE_NONE || role > VAULT_ROLE_OPS) {
        return NULL;
    }
    return role_names[role];
}

static enum vault_role role_parse(const char *name)
{
    for (int r = VAULT_ROLE_API; r <= VAULT_ROLE_OPS; r++) {
        if (strcmp(name, role_names[r]) == 0) {
            return (enum vault_role)r;
        }
    }
    return VAULT_ROLE_NONE;
}

bool vault_role_allows(enum vault_role role, Bcrm__V1__VaultCall__OpCase op,
                       Bcrm__V1__Platform platform)
{
    switch (op) {
    case BCRM__V1__VAULT_CALL__OP_STORE:
    case BCRM__V1__VAULT_CALL__OP_STORE_SEALED:
    case BCRM__V1__VAULT_CALL__OP_PROMOTE:
    case BCRM__V1__VAULT_CALL__OP_DESTROY:
        return role == VAULT_ROLE_API;
    case BCRM__V1__VAULT_CALL__OP_RELEASE:
        /* A sender reads the tokens of its own platform only, so a compromised
         * Slack sender cannot reach Messenger pages. */
        return (role == VAULT_ROLE_SENDER_SLACK &&
                platform == BCRM__V1__PLATFORM__PLATFORM_SLACK) ||
               (role == VAULT_ROLE_SENDER_MESSENGER &&
                platform == BCRM__V1__PLATFORM__PLATFORM_MESSENGER);
    case BCRM__V1__VAULT_CALL__OP_STATUS:
    case BCRM__V1__VAULT_CALL__OP_ROTATE:
    case BCRM__V1__VAULT_CALL__OP_REWRAP:
    case BCRM__V1__VAULT_CALL__OP_CONFIG:
    case BCRM__V1__VAULT_CALL__OP_AUDIT:
        /* Key versions and the audit log are the operator's; no token ever leaves
         * the vault through them. */
        return role == VAULT_ROLE_OPS;
    default:
        return false;
    }
}

/* Splits line into its two words in place. 0, or -1 when there are not exactly two. */
static int split_words(char *line, char **first, char **second)
{
    char *save = NULL;
    *first = strtok_r(line, " \t\r\n", &save);
    *second = strtok_r(NULL, " \t\r\n", &save);
    char *third = strtok_r(NULL, " \t\r\n", &save);
    return (*first != NULL && *second != NULL && third == NULL) ? 0 : -1;
}

static int allowlist_add(struct allowlist *al, const char *path, int lineno, const char *role_name,
                         const char *hex, char *err, size_t errlen)
{
    struct allowlist_entry e;
    e.role = role_parse(role_name);
    if (e.role == VAULT_ROLE_NONE) {
        snprintf(err, errlen,
                 "allowlist %s line %d: unknown role \"%s\" (want api, sender-slack, "
                 "sender-messenger or ops)",
                 path, lineno, role_name);
        return -1;
    }
    if (hex_decode(e.public_key, sizeof(e.public_key), hex) != 0) {
        snprintf(err, errlen, "allowlist %s line %d: want a public key of %zu hex characters", path,
                 lineno, 2 * sizeof(e.public_key));
        return -1;
    }
    for (size_t i = 0; i < al->count; i++) {
        if (memcmp(al->entries[i].public_key, e.public_key, sizeof(e.public_key)) == 0) {
            snprintf(err, errlen, "allowlist %s line %d: key already listed as %s", path, lineno,
                     role_names[al->entries[i].role]);
            return -1;
        }
    }
    struct allowlist_entry *grown = realloc(al->entries, (al->count + 1) * sizeof(*grown));
    if (grown == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    al->entries = grown;
    al->entries[al->count++] = e;
    return 0;
}

struct allowlist *allowlist_load(const char *path, char *err, size_t errlen)
{
    struct allowlist *al = calloc(1, sizeof(*al));
    FILE *f = NULL;
    char line[512];
    int lineno = 0;
    if (al == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if ((f = fopen(path, "re")) == NULL) {
        snprintf(err, errlen, "allowlist %s: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "allowlist %s: not a regular file", path);
        goto fail;
    }
    if ((st.st_mode & 022) != 0) {
        snprintf(err, errlen, "allowlist %s: writable by group or others (mode %04o); chmod 644 it",
                 path, (unsigned)(st.st_mode & 07777));
        goto fail;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            snprintf(err, errlen, "allowlist %s line %d: line too long", path, lineno);
            goto fail;
        }
        char *p = line;
        while (isspace((unsigned char)*p)) {
            p++;
        }
        if (*p == '\0' || *p == '#') {
            continue;
        }
        char *role, *hex;
        if (split_words(p, &role, &hex) != 0) {
            snprintf(err, errlen, "allowlist %s line %d: want \"<role> <public key hex>\"", path,
                     lineno);
            goto fail;
        }
        if (allowlist_add(al, path, lineno, role, hex, err, errlen) != 0) {
            goto fail;
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "allowlist %s: read error", path);
        goto fail;
    }
    fclose(f);
    return al;
fail:
    if (f != NULL) {
        fclose(f);
    }
    allowlist_free(al);
    return NULL;
}

void allowlist_free(struct allowlist *al)
{
    if (al == NULL) {
        return;
    }
    free(al->entries);
    free(al);
}

size_t allowlist_count(const struct allowlist *al)
{
    return al->count;
}

enum vault_role allowlist_role(const struct allowlist *al,
                               const uint8_t public_key[crypto_box_PUBLICKEYBYTES])
{
    for (size_t i = 0; i < al->count; i++) {
        if (sodium_memcmp(al->entries[i].public_key, public_key, crypto_box_PUBLICKEYBYTES) == 0) {
            return al->entries[i].role;
        }
    }
    return VAULT_ROLE_NONE;
}
