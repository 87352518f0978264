/* secret_config.c: secrets from NAME or NAME_FILE (see secret_config.h). */
#include "secret_config.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_MAX_BYTES 4096

static void fatal(const char *name, const char *why)
{
    fprintf(stderr, "%s: %s\n", name, why);
    exit(2);
}

static char *secret_copy(const char *name, const char *value, size_t len)
{
    if (len == 0) {
        fatal(name, "is empty");
    }
    char *out = sodium_malloc(len + 1);
    if (out == NULL) {
        fatal(name, "out of memory");
    }
    memcpy(out, value, len);
    out[len] = '\0';
    return out;
}

static char *secret_from_file(const char *file_var, const char *path)
{
    char buf[SECRET_MAX_BYTES + 2], why[512];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, sizeof(why), "cannot open %s: %s", path, strerror(errno));
        fatal(file_var, why);
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(why, sizeof(why), "%s is not a regular file", path);
        fatal(file_var, why);
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        close(fd);
        snprintf(why, sizeof(why), "%s is readable by group or others (mode %04o)", path,
                 (unsigned)(st.st_mode & 07777));
        fatal(file_var, why);
    }
    ssize_t got = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (got < 0 || got > SECRET_MAX_BYTES) {
        sodium_memzero(buf, sizeof(buf));
        snprintf(why, sizeof(why), "%s: unreadable or longer than %d bytes", path,
                 SECRET_MAX_BYTES);
        fatal(file_var, why);
    }
    size_t len = (size_t)got;
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
    }
    if (len > 0 && buf[len - 1] == '\r') {
        len--;
    }
    char *out = secret_copy(file_var, buf, len);
    sodium_memzero(buf, sizeof(buf));
    return out;
}

char *secret_config(const char *name)
{
    char file_var[128];
    snprintf(file_var, sizeof(file_var), "%s_FILE", name);
    const char *value = getenv(name);
    const char *path = getenv(file_var);
    bool has_value = value != NULL && value[0] != '\0';
    bool has_path = path != NULL && path[0] != '\0';
    if (has_value && has_path) {
        fatal(name, "is set both directly and through _FILE; set one");
    }
    if (has_path) {
        return secret_from_file(file_var, path);
    }
    if (has_value) {
        return secret_copy(name, value, strlen(value));
    }
    return NULL;
}
