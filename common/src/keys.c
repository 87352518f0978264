/* keys.c: identity keys from files with strict permissions. */
#include "bcrm/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void hex_encode(char *out, const uint8_t *in, size_t n)
{
    sodium_bin2hex(out, 2 * n + 1, in, n);
}

int hex_decode(uint8_t *out, size_t n, const char *hex)
{
    size_t got = 0;
    const char *end = NULL;
    if (strlen(hex) != 2 * n) {
        return -1;
    }
    if (sodium_hex2bin(out, n, hex, 2 * n, NULL, &got, &end) != 0 || got != n) {
        return -1;
    }
    return 0;
}

int secret_file_read(const char *path, uint8_t *out, size_t n, char *err, size_t errlen)
{
    int rv = -1;
    char buf[260];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "key file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "key file %s: not a regular file", path);
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, errlen, "key file %s: readable by group or others (mode %04o); chmod 600 it",
                 path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (2 * n + 2 > sizeof(buf)) {
        snprintf(err, errlen, "key file %s: key too long", path);
        goto out;
    }
    ssize_t len = read(fd, buf, sizeof(buf) - 1);
    if (len < 0) {
        snprintf(err, errlen, "key file %s: %s", path, strerror(errno));
        goto out;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ')) {
        len--;
    }
    buf[len] = '\0';
    if (hex_decode(out, n, buf) != 0) {
        snprintf(err, errlen, "key file %s: want %zu hex characters", path, 2 * n);
        goto out;
    }
    rv = 0;
out:
    sodium_memzero(buf, sizeof(buf));
    close(fd);
    return rv;
}

/* Gives id locked, guarded memory for its secret key. */
static int identity_alloc(struct identity *id, char *err, size_t errlen)
{
    /* sodium_malloc aborts before sodium_init; it is idempotent and thread-safe. */
    id->secret_key = NULL;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    id->secret_key = sodium_malloc(crypto_box_SECRETKEYBYTES);
    if (id->secret_key == NULL) {
        snprintf(err, errlen, "out of secure memory");
        return -1;
    }
    return 0;
}

int identity_load(const char *path, struct identity *id, char *err, size_t errlen)
{
    if (identity_alloc(id, err, errlen) != 0) {
        return -1;
    }
    if (secret_file_read(path, id->secret_key, crypto_box_SECRETKEYBYTES, err, errlen) != 0) {
        identity_free(id);
        return -1;
    }
    crypto_scalarmult_base(id->public_key, id->secret_key);
    return 0;
}

int identity_generate(const char *path, struct identity *id, char *err, size_t errlen)
{
    if (identity_alloc(id, err, errlen) != 0) {
        return -1;
    }
    crypto_box_keypair(id->public_key, id->secret_key);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "key file %s: %s", path, strerror(errno));
        identity_free(id);
        return -1;
    }
    char hex[2 * crypto_box_SECRETKEYBYTES + 2];
    hex_encode(hex, id->secret_key, crypto_box_SECRETKEYBYTES);
    size_t len = strlen(hex);
    hex[len++] = '\n';
    ssize_t w = write(fd, hex, len);
    sodium_memzero(hex, sizeof(hex));
    close(fd);
    if (w != (ssize_t)len) {
        snprintf(err, errlen, "key file %s: short write", path);
        identity_free(id);
        return -1;
    }
    return 0;
}

void identity_free(struct identity *id)
{
    sodium_free(id->secret_key);
    id->secret_key = NULL;
}
