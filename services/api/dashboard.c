/* dashboard.c: serves the embedded dashboard files (see dashboard.h). */
#include "dashboard.h"

#include <string.h>

const struct dashboard_file *dashboard_find(const char *path)
{
    if (strcmp(path, "/") == 0) {
        path = "/index.html";
    }
    for (int i = 0; i < dashboard_file_count; i++) {
        if (strcmp(dashboard_files[i].path, path) == 0) {
            return &dashboard_files[i];
        }
    }
    return NULL;
}

bool dashboard_etag_matches(const char *if_none_match, const char *etag)
{
    if (if_none_match == NULL) {
        return false;
    }
    size_t etag_len = strlen(etag);
    const char *p = if_none_match;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
        }
        size_t len = strcspn(p, ",");
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
            len--;
        }
        if (len == 1 && p[0] == '*') {
            return true;
        }
        /* Weak comparison: a W/ prefix does not matter for If-None-Match. */
        const char *tag = p;
        size_t tag_len = len;
        if (tag_len >= 2 && tag[0] == 'W' && tag[1] == '/') {
            tag += 2;
            tag_len -= 2;
        }
        if (tag_len == etag_len && memcmp(tag, etag, etag_len) == 0) {
            return true;
        }
        p += strcspn(p, ",");
    }
    return false;
}

void dashboard_respond(const struct dashboard_file *file, const char *if_none_match,
                       struct http_response *resp)
{
    if (dashboard_etag_matches(if_none_match, file->etag)) {
        http_respond(resp, 304, file->content_type, NULL, 0);
    } else {
        http_respond(resp, 200, file->content_type, file->data, file->size);
    }
    http_add_header(resp, "ETag", file->etag);
    /* The names carry no hash, so browsers must ask each time; the ETag makes the
     * answer a 304 while the file is unchanged. */
    http_add_header(resp, "Cache-Control", "no-cache");
    http_add_header(resp, "Content-Security-Policy", DASHBOARD_CSP);
    http_add_header(resp, "X-Content-Type-Options", "nosniff");
    http_add_header(resp, "Referrer-Policy", "no-referrer");
    /* For browsers that predate CSP's frame-ancestors. */
    http_add_header(resp, "X-Frame-Options", "DENY");
}

bool dashboard_handle(const struct http_request *req, struct http_response *resp)
{
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        return false;
    }
    const struct dashboard_file *file = dashboard_find(req->path);
    if (file == NULL) {
        return false;
    }
    dashboard_respond(file, http_header(req, "If-None-Match"), resp);
    return true;
}
