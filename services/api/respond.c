/* respond.c: answers shared by every handler: JSON bodies, RFC 9457 problems, and
 * the parsing of request bodies. */
#include "api.h"

#include "bcrm/log.h"

#include <ctype.h>
#include <sodium.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void api_json(struct api_req *r, int status, json_t *body)
{
    http_respond_json(r->resp, status, body);
}

void api_no_content(struct api_req *r)
{
    http_respond(r->resp, 204, NULL, NULL, 0);
}

static void problem_v(struct api_req *r, int status, const char *title, json_t *extra,
                      const char *detail_fmt, va_list ap)
{
    char detail[1024];
    vsnprintf(detail, sizeof(detail), detail_fmt, ap);
    json_t *p = json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title", title, "status",
                          status, "detail", detail);
    if (extra != NULL) {
        json_object_update(p, extra);
        json_decref(extra);
    }
    http_respond_json(r->resp, status, p);
    r->resp->content_type = "application/problem+json";
}

void api_problem(struct api_req *r, int status, const char *title, const char *field,
                 const char *detail_fmt, ...)
{
    json_t *extra = field ? json_pack("{s:s}", "field", field) : NULL;
    va_list ap;
    va_start(ap, detail_fmt);
    problem_v(r, status, title, extra, detail_fmt, ap);
    va_end(ap);
}

void api_problem_ext(struct api_req *r, int status, const char *title, json_t *extra,
                     const char *detail_fmt, ...)
{
    va_list ap;
    va_start(ap, detail_fmt);
    problem_v(r, status, title, extra, detail_fmt, ap);
    va_end(ap);
}

void api_internal_error(struct api_req *r)
{
    api_problem(r, 500, "Internal Server Error", NULL,
                "the request failed inside the server; it has been logged");
}

void api_not_implemented(struct api_req *r)
{
    api_problem(r, 501, "Not Implemented", NULL, "%s %s is not implemented yet", r->http->method,
                r->http->path);
}

json_t *api_body_object(struct api_req *r)
{
    json_error_t err;
    if (r->http->body_len == 0) {
        api_problem(r, 400, "Malformed JSON", NULL,
                    "the request body is empty; a JSON object "
                    "is expected");
        return NULL;
    }
    /* Duplicate keys are refused: which of two values a client meant is a guess. */
    json_t *body = json_loadb(r->http->body, r->http->body_len, JSON_REJECT_DUPLICATES, &err);
    if (body == NULL) {
        json_t *extra = json_pack("{s:i, s:i, s:i}", "line", err.line, "column", err.column,
                                  "position", err.position);
        api_problem_ext(r, 400, "Malformed JSON", extra,
                        "invalid JSON at line %d, column %d (position %d): %s", err.line,
                        err.column, err.position, err.text);
        return NULL;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        api_problem(r, 422, "Invalid body", "", "the request body must be a JSON object");
        return NULL;
    }
    return body;
}

bool api_is_uuid(const char *text)
{
    if (text == NULL || strlen(text) != 36) {
        return false;
    }
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-') {
                return false;
            }
        } else if (!isxdigit((unsigned char)text[i])) {
            return false;
        }
    }
    return true;
}

bool api_query_limit(struct api_req *r, int fallback, int max, int *out)
{
    const char *text = http_query(r->http, "limit");
    if (text == NULL) {
        *out = fallback;
        return true;
    }
    char *end = NULL;
    long n = strtol(text, &end, 10);
    if (end == text || *end != '\0' || n < 1 || n > max) {
        api_problem(r, 422, "Invalid parameter", "limit", "limit must be an integer from 1 to %d",
                    max);
        return false;
    }
    *out = (int)n;
    return true;
}

char *api_cursor_encode(const char *position)
{
    size_t len = strlen(position);
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(cap);
    if (out != NULL) {
        sodium_bin2base64(out, cap, (const unsigned char *)position, len,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    }
    return out;
}

bool api_cursor_decode(const char *cursor, char *out, size_t outlen)
{
    size_t len = 0;
    if (sodium_base642bin((unsigned char *)out, outlen - 1, cursor, strlen(cursor), NULL, &len,
                          NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
        return false;
    }
    out[len] = '\0';
    return strlen(out) == len;
}

bool api_wipe_secret_fields(json_t *body, bool remove)
{
    static const char *const secret_fields[] = {"token", "page_token"};
    bool any = false;
    for (size_t i = 0; body != NULL && i < sizeof(secret_fields) / sizeof(secret_fields[0]); i++) {
        json_t *value = json_object_get(body, secret_fields[i]);
        if (value == NULL) {
            continue;
        }
        any = true;
        if (json_is_string(value)) {
            sodium_memzero((char *)json_string_value(value), json_string_length(value));
        }
        if (remove) {
            json_object_del(body, secret_fields[i]);
        }
    }
    return any;
}
