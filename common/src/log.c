/* log.c: JSON-line logging to stderr. A whole line is written with one write()
 * so lines from several threads never interleave. */
#include "bcrm/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_service = "bcrm";
static enum log_level log_min_level = LOG_INFO;
static const char *level_names[] = {"debug", "info", "warn", "error", "fatal"};

void log_init(const char *service)
{
    log_service = service;
    const char *lvl = getenv("BCRM_LOG_LEVEL");
    if (lvl != NULL) {
        for (int i = 0; i <= LOG_FATAL; i++) {
            if (strcmp(lvl, level_names[i]) == 0) {
                log_min_level = (enum log_level)i;
            }
        }
    }
}

void log_emit(enum log_level level, const char *msg, const char *fmt, ...)
{
    if (level < log_min_level) {
        return;
    }
    json_t *obj = NULL;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        json_error_t err;
        obj = json_vpack_ex(&err, 0, fmt, ap);
        va_end(ap);
    }
    if (obj == NULL || !json_is_object(obj)) {
        json_decref(obj);
        obj = json_object();
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof(when) - n, ".%03ldZ", ts.tv_nsec / 1000000);

    /* Fixed keys first, so lines read well by eye too. */
    json_t *line = json_object();
    json_object_set_new(line, "ts", json_string(when));
    json_object_set_new(line, "level", json_string(level_names[level]));
    json_object_set_new(line, "svc", json_string(log_service));
    json_object_set_new(line, "msg", json_string(msg));
    json_object_update_missing(line, obj);
    json_decref(obj);
    char *text = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    if (text != NULL) {
        size_t len = strlen(text);
        text[len] = '\n'; /* replaces the terminator: we write len + 1 bytes */
        ssize_t w = write(STDERR_FILENO, text, len + 1);
        (void)w;
        free(text);
    }
}
