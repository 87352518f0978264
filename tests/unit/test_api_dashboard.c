/* test_api_dashboard.c: the embedded dashboard files and how they are answered
 * (services/api/dashboard.c): lookup, Content-Types, ETags and 304s, the
 * security headers, and that the pages hold nothing the CSP would refuse. */
#include "check.h"
#include "dashboard.h"

#include <stdlib.h>
#include <string.h>

static const char *header(const struct http_response *resp, const char *name)
{
    for (int i = 0; i < resp->header_count; i++) {
        if (strcmp(resp->header_names[i], name) == 0) {
            return resp->header_values[i];
        }
    }
    return NULL;
}

static void response_free(struct http_response *resp)
{
    free(resp->body);
    for (int i = 0; i < resp->header_count; i++) {
        free(resp->header_names[i]);
        free(resp->header_values[i]);
    }
    memset(resp, 0, sizeof(*resp));
}

static void test_lookup(void)
{
    const struct dashboard_file *index = dashboard_find("/");
    CHECK(index != NULL);
    CHECK(index == dashboard_find("/index.html"));
    CHECK_STR(index->content_type, "text/html; charset=utf-8");
    CHECK_STR(dashboard_find("/app.js")->content_type, "text/javascript; charset=utf-8");
    CHECK_STR(dashboard_find("/app.css")->content_type, "text/css; charset=utf-8");
    CHECK_STR(dashboard_find("/favicon.svg")->content_type, "image/svg+xml");
    CHECK(dashboard_find("/missing.js") == NULL);
    CHECK(dashboard_find("") == NULL);
    CHECK(dashboard_find("/../index.html") == NULL);
    CHECK(dashboard_find("/app.js/") == NULL);
    CHECK(dashboard_find("/v1/me") == NULL);
    for (int i = 0; i < dashboard_file_count; i++) {
        const struct dashboard_file *f = &dashboard_files[i];
        CHECK(f->size > 0 && strlen(f->data) == f->size); /* text files, whole */
        CHECK(strlen(f->etag) == 26 && f->etag[0] == '"' && f->etag[25] == '"');
        CHECK(strncmp(f->path, "/v1/", 4) != 0);
    }
}

static void test_etag_matching(void)
{
    const char *etag = "\"0123456789abcdef01234567\"";
    CHECK(!dashboard_etag_matches(NULL, etag));
    CHECK(!dashboard_etag_matches("", etag));
    CHECK(dashboard_etag_matches(etag, etag));
    CHECK(dashboard_etag_matches("*", etag));
    CHECK(dashboard_etag_matches("W/\"0123456789abcdef01234567\"", etag));
    CHECK(dashboard_etag_matches("\"x\", \"0123456789abcdef01234567\"", etag));
    CHECK(dashboard_etag_matches("\"x\",W/\"0123456789abcdef01234567\" ", etag));
    CHECK(!dashboard_etag_matches("\"x\", \"y\"", etag));
    CHECK(!dashboard_etag_matches("\"0123456789abcdef0123456\"", etag));
    CHECK(!dashboard_etag_matches("0123456789abcdef01234567", etag));
    CHECK(!dashboard_etag_matches("\"0123456789abcdef01234567\"x", etag));
}

static void test_respond(void)
{
    const struct dashboard_file *js = dashboard_find("/app.js");
    struct http_response resp = {0};
    dashboard_respond(js, NULL, &resp);
    CHECK(resp.status == 200);
    CHECK(resp.body_len == js->size && memcmp(resp.body, js->data, js->size) == 0);
    CHECK_STR(resp.content_type, js->content_type);
    CHECK_STR(header(&resp, "ETag"), js->etag);
    CHECK_STR(header(&resp, "Cache-Control"), "no-cache");
    CHECK_STR(header(&resp, "Content-Security-Policy"), DASHBOARD_CSP);
    CHECK(strstr(DASHBOARD_CSP, "default-src 'self'") != NULL);
    CHECK(strstr(DASHBOARD_CSP, "frame-ancestors 'none'") != NULL);
    CHECK_STR(header(&resp, "X-Content-Type-Options"), "nosniff");
    CHECK_STR(header(&resp, "Referrer-Policy"), "no-referrer");
    CHECK(resp.header_count <= HTTP_MAX_RESPONSE_HEADERS);
    response_free(&resp);

    dashboard_respond(js, js->etag, &resp);
    CHECK(resp.status == 304);
    CHECK(resp.body == NULL && resp.body_len == 0);
    CHECK_STR(header(&resp, "ETag"), js->etag);
    CHECK_STR(header(&resp, "Content-Security-Policy"), DASHBOARD_CSP);
    response_free(&resp);

    dashboard_respond(js, "\"stale\"", &resp);
    CHECK(resp.status == 200);
    response_free(&resp);
}

/* The page loads its script and style from files: under the CSP an inline script,
 * style or handler would not run, and the dashboard would be silently broken. */
static void test_index_has_nothing_inline(void)
{
    const char *html = dashboard_find("/")->data;
    CHECK(strstr(html, "<script type=\"module\" src=\"/app.js\"></script>") != NULL);
    CHECK(strstr(html, "<link rel=\"stylesheet\" href=\"/app.css\">") != NULL);
    const char *p = html;
    while ((p = strstr(p, "<script")) != NULL) {
        const char *end = strchr(p, '>');
        CHECK(end != NULL && memmem(p, (size_t)(end - p), "src=", 4) != NULL);
        CHECK(end != NULL && strncmp(end + 1, "</script>", 9) == 0);
        p = end ? end : p + 1;
    }
    CHECK(strstr(html, "<style") == NULL);
    CHECK(strstr(html, " style=") == NULL);
    CHECK(strstr(html, " onclick=") == NULL && strstr(html, " onload=") == NULL);
}

int main(void)
{
    test_lookup();
    test_etag_matching();
    test_respond();
    test_index_has_nothing_inline();
    CHECK_DONE();
}
