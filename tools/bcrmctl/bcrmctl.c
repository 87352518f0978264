/* bcrmctl: the operator's command line for keys, the schema and the vault.
 *
 *   bcrmctl keygen FILE      new identity key pair; the secret key goes to FILE
 *   bcrmctl pubkey FILE      the public key of an identity key file
 *   bcrmctl masterkey FILE   new vault root key
 *   bcrmctl migrate          apply the database migrations, as the database owner
 *   bcrmctl vault ...        the vault's ops operations (vault_cmds.c)
 *
 * Exit status: 0 done, 1 the operation failed, 2 the command line or the
 * configuration is wrong. Results go to stdout, errors to stderr.
 */
#include "bcrmctl.h"

#include "bcrm/config.h"
#include "bcrm/db.h"
#include "bcrm/keys.h"
#include "bcrm/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: bcrmctl keygen FILE      write a new identity secret key to FILE (mode 0600)\n"
    "                                and print its public key (hex)\n"
    "       bcrmctl pubkey FILE      print the public key of the secret key in FILE\n"
    "       bcrmctl masterkey FILE   write a new vault root key to FILE (mode 0600)\n"
    "       bcrmctl migrate          apply the database migrations to BCRM_DATABASE_URL\n"
    "                                (connect as the database owner, not a service's role)\n"
    "       bcrmctl vault status     the vault's key versions and token counts\n"
    "       bcrmctl vault rotate     add a key version and make it current\n"
    "       bcrmctl vault rewrap [--batch N]\n"
    "                                seal every token again under the current version\n"
    "       bcrmctl vault config [min_decryption_version=N] [--force]\n"
    "                                show or set the oldest version that still decrypts\n"
    "       bcrmctl vault audit [--limit N] [--before ID]\n"
    "                                the newest audit records, newest first\n"
    "\n"
    "vault commands call as the ops identity: they read BCRM_IDENTITY_KEY_FILE (the ops\n"
    "secret key), BCRM_VAULT_PUBLIC_KEY, BCRM_VAULT_URL (default tcp://127.0.0.1:7100) and\n"
    "BCRM_VAULT_TIMEOUT (default 5s).\n";

int usage_error(const char *fmt, const char *arg)
{
    fputs("bcrmctl: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n\n", stderr);
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

static void print_public_key(const struct identity *id)
{
    char hex[2 * crypto_box_PUBLICKEYBYTES + 1];
    hex_encode(hex, id->public_key, crypto_box_PUBLICKEYBYTES);
    printf("%s\n", hex);
}

static int cmd_keygen(const char *path)
{
    struct identity id;
    char err[256];
    if (identity_generate(path, &id, err, sizeof(err)) != 0) {
        fprintf(stderr, "bcrmctl: %s\n", err);
        return EXIT_FAILURE;
    }
    print_public_key(&id);
    identity_free(&id);
    return EXIT_SUCCESS;
}

static int cmd_pubkey(const char *path)
{
    struct identity id;
    char err[256];
    if (identity_load(path, &id, err, sizeof(err)) != 0) {
        fprintf(stderr, "bcrmctl: %s\n", err);
        return EXIT_FAILURE;
    }
    print_public_key(&id);
    identity_free(&id);
    return EXIT_SUCCESS;
}

static int cmd_masterkey(const char *path)
{
    enum { ROOT_BYTES = 32 };
    int rv = EXIT_FAILURE;
    uint8_t *key = sodium_malloc(ROOT_BYTES);
    char *hex = sodium_malloc(2 * ROOT_BYTES + 2);
    int fd = -1;
    if (key == NULL || hex == NULL) {
        fprintf(stderr, "bcrmctl: out of secure memory\n");
        goto out;
    }
    /* O_EXCL: overwriting a root key would make every stored token unreadable. */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "bcrmctl: key file %s: %s\n", path, strerror(errno));
        goto out;
    }
    randombytes_buf(key, ROOT_BYTES);
    hex_encode(hex, key, ROOT_BYTES);
    hex[2 * ROOT_BYTES] = '\n';
    if (write(fd, hex, 2 * ROOT_BYTES + 1) != 2 * ROOT_BYTES + 1 || fsync(fd) != 0) {
        fprintf(stderr, "bcrmctl: key file %s: %s\n", path, strerror(errno));
        unlink(path);
        goto out;
    }
    rv = EXIT_SUCCESS;
out:
    if (fd >= 0) {
        close(fd);
    }
    sodium_free(key);
    sodium_free(hex);
    return rv;
}

/* Applies the compiled-in migrations. Services connect as their own roles,
 * which may not change the schema (db/migrations/0004_db_roles.sql), so this runs
 * first, as the owner. */
static int cmd_migrate(void)
{
    const char *url = config_str("BCRM_DATABASE_URL", "postgresql:///bcrm");
    log_init("bcrmctl");
    PGconn *db = db_connect(url, 10000);
    if (db == NULL) {
        fprintf(stderr, "bcrmctl: cannot connect to BCRM_DATABASE_URL\n");
        return EXIT_FAILURE;
    }
    int rv = db_migrate(db) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
    if (rv != EXIT_SUCCESS) {
        fprintf(stderr, "bcrmctl: migrations failed (see the log line above)\n");
    } else {
        printf("schema: up to date (%d migrations)\n", db_migration_count);
    }
    PQfinish(db);
    return rv;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "bcrmctl: libsodium failed to initialise\n");
        return EXIT_FAILURE;
    }
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(cmd, "keygen") == 0 || strcmp(cmd, "pubkey") == 0 || strcmp(cmd, "masterkey") == 0) {
        if (argc != 3) {
            return usage_error("%s takes one argument, the key file", cmd);
        }
        if (strcmp(cmd, "keygen") == 0) {
            return cmd_keygen(argv[2]);
        }
        if (strcmp(cmd, "pubkey") == 0) {
            return cmd_pubkey(argv[2]);
        }
        return cmd_masterkey(argv[2]);
    }
    if (strcmp(cmd, "migrate") == 0) {
        if (argc != 2) {
            return usage_error("%s", "migrate takes no argument");
        }
        return cmd_migrate();
    }
    if (strcmp(cmd, "vault") == 0) {
        if (argc < 3) {
            return usage_error("%s",
                               "vault needs a command: status, rotate, rewrap, config, audit");
        }
        return cmd_vault(argc - 2, argv + 2);
    }
    return usage_error("unknown command \"%s\"", cmd);
}
