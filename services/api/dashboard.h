/* dashboard.h: the web dashboard (services/api/dashboard/), served by bcrm-api at
 * "/" next to the REST API.
 *
 * The files are embedded into the binary at build time (embed_dashboard.cmake
 * generates dashboard_files.c), each with its Content-Type and an ETag taken from
 * its SHA-256, so the api needs no path at run time and a rebuilt binary never
 * serves a stale file under an old ETag. Every answer carries the security
 * headers (a Content-Security-Policy allowing nothing but this origin, nosniff, no
 * referrer, no framing) and "Cache-Control: no-cache", so that browsers revalidate
 * each load and get 304 while the file is unchanged.
 */
#ifndef BCRM_API_DASHBOARD_H
#define BCRM_API_DASHBOARD_H

#include "bcrm/http.h"

#include <stdbool.h>
#include <stddef.h>

struct dashboard_file {
    const char *path;         /* "/app.js" */
    const char *content_type; /* "text/javascript; charset=utf-8" */
    const char *etag;         /* a strong entity tag, quotes included */
    size_t size;
    const char *data; /* size bytes (and a NUL after them) */
};

/* Generated at build time; static storage, read-only. */
extern const struct dashboard_file dashboard_files[];
extern const int dashboard_file_count;

#define DASHBOARD_CSP                                                                              \
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

/* The file served at path ("/" is "/index.html"), or NULL. */
const struct dashboard_file *dashboard_find(const char *path);

/* True when an If-None-Match header value (NULL: absent) names etag: "*", or a
 * list of entity tags compared weakly (RFC 9110 13.1.2). */
bool dashboard_etag_matches(const char *if_none_match, const char *etag);

/* Answers file into resp: 200 with the body, or 304 without one when
 * if_none_match names its ETag; both with the caching and security headers. */
void dashboard_respond(const struct dashboard_file *file, const char *if_none_match,
                       struct http_response *resp);

/* Serves req when it is a GET or HEAD of a dashboard file; returns false (resp
 * untouched) for anything else, which the router then handles as before. */
bool dashboard_handle(const struct http_request *req, struct http_response *resp);

#endif
