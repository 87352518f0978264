/* bcrmctl: the operator's command line for keys and the vault.
 *
 *   bcrmctl keygen FILE      new identity key pair; the secret key goes to FILE
 *   bcrmctl pubkey FILE      the public key of an identity key file
 *   bcrmctl masterkey FILE   new vault root key
 *   bcrmctl vault status     the vault's state, asked as the ops identity
 *
 * Exit status: 0 done, 1 the operation failed, 2 the command line or the
 * configuration is wrong. Results go to stdout, errors to stderr.
 */
#include "bcrm/config.h"
#include "bcrm/keys.h"
#include "bcrm/vault_client.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: bcrmctl keygen FILE      write a new identity secret key to FILE (mode 0600)\n"
    "                                and print its public key (hex)\n"
    "       bcrmctl pubkey FILE      print the public key of the secret key in FILE\n"
    "       bcrmctl masterkey FILE   write a new vault root key to FILE (mode 0600)\n"
    "       bcrmctl vault status     print the vault's status, calling as the ops identity\n"
    "\n"
    "vault commands read BCRM_IDENTITY_KEY_FILE (the ops secret key), BCRM_VAULT_PUBLIC_KEY,\n"
    "BCRM_VAULT_URL (default tcp://127.0.0.1:7100) and BCRM_VAULT_TIMEOUT (default 5s).\n";

static int usage_error(const char *fmt, const char *arg)
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

static int cmd_vault_status(void)
{
    struct identity id;
    struct vault_client *vc = NULL;
    char err[512];
    int rv = EXIT_FAILURE;
    const char *key_file = config_str("BCRM_IDENTITY_KEY_FILE", NULL);
    if (key_file == NULL) {
        fprintf(stderr, "bcrmctl: BCRM_IDENTITY_KEY_FILE is not set (the ops identity key)\n");
        return EXIT_USAGE;
    }
    if (config_str("BCRM_VAULT_PUBLIC_KEY", NULL) == NULL) {
        fprintf(stderr, "bcrmctl: BCRM_VAULT_PUBLIC_KEY is not set (the vault's public key)\n");
        return EXIT_USAGE;
    }
    if (identity_load(key_file, &id, err, sizeof(err)) != 0) {
        fprintf(stderr, "bcrmctl: %s\n", err);
        return EXIT_USAGE;
    }
    if ((vc = vault_client_from_env(&id, err, sizeof(err))) == NULL) {
        fprintf(stderr, "bcrmctl: %s\n", err);
        rv = EXIT_USAGE;
        goto out;
    }
    int64_t tokens = 0;
    int32_t version = 0;
    int code = vault_status(vc, &tokens, &version, err, sizeof(err));
    if (code != BCRM__V1__VAULT_CODE__VAULT_OK) {
        fprintf(stderr, "bcrmctl: %s\n", err);
        goto out;
    }
    printf("vault: ok\nurl: %s\ntokens: %lld\nkey version: %d\n",
           config_str("BCRM_VAULT_URL", "tcp://127.0.0.1:7100"), (long long)tokens, (int)version);
    rv = EXIT_SUCCESS;
out:
    vault_client_close(vc);
    identity_free(&id);
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
    if (strcmp(cmd, "vault") == 0) {
        if (argc != 3 || strcmp(argv[2], "status") != 0) {
            return usage_error("%s", "vault takes one command: status");
        }
        return cmd_vault_status();
    }
    return usage_error("unknown command \"%s\"", cmd);
}
