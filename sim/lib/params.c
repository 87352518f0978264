/* params.c: reading Web API arguments (see params.h). */
#include "params.h"

#include "bcrm/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Percent-decodes [s, s+len) into a new string; NULL on a malformed escape. */
static char *form_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (out == NULL) {
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 1 < len ? hex_value(s[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

int params_parse_form(json_t *obj, const char *body, size_t len)
{
    const char *p = body;
    const char *end = body + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pair_end = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pair_end - p));
        const char *key_end = eq ? eq : pair_end;
        if (key_end > p) {
            char *key = form_decode(p, (size_t)(key_end - p));
            char *value = eq ? form_decode(eq + 1, (size_t)(pair_end - eq - 1)) : strdup("");
            int rc = 0;
            if (key == NULL || value == NULL) {
                rc = -1;
            } else {
                json_t *v = json_string(value);
                rc = v == NULL ? -1 : json_object_set_new(obj, key, v);
            }
            free(key);
            free(value);
            if (rc != 0) {
                return -1;
            }
        }
        p = pair_end + 1;
    }
    return 0;
}

/* Flattens a JSON body's values to strings, the way the form encoding sends them. */
static const char *params_from_json(struct params *p, const char *body, size_t len)
{
    json_t *dst = p->body;
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, 0, &jerr);
    if (doc == NULL) {
        return "invalid_json";
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        return "json_not_object";
    }
    const char *key;
    json_t *value;
    json_object_foreach(doc, key, value)
    {
        json_t *text = NULL;
        if (json_is_string(value)) {
            text = json_incref(value);
        } else if (json_is_true(value) || json_is_false(value)) {
            text = json_string(json_is_true(value) ? "true" : "false");
        } else if (json_is_integer(value)) {
            char num[32];
            snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(value));
            text = json_string(num);
        } else if (!json_is_null(value)) {
            char *dumped = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
            text = dumped ? json_string(dumped) : NULL;
            free(dumped);
        }
        if (text != NULL) {
            json_object_set_new(dst, key, text);
        }
    }
    p->json = doc;
    return NULL;
}

const char *params_parse(struct params *p, const struct http_request *req)
{
    p->req = req;
    p->json = NULL;
    p->body = json_object();
    if (p->body == NULL) {
        return "fatal_error";
    }
    if (req->body_len == 0) {
        return NULL;
    }
    const char *ctype = http_header(req, "Content-Type");
    if (ctype != NULL && strncasecmp(ctype, "application/json", 16) == 0) {
        return params_from_json(p, req->body, req->body_len);
    }
    if (params_parse_form(p->body, req->body, req->body_len) != 0) {
        return "invalid_form_data";
    }
    return NULL;
}

void params_free(struct params *p)
{
    json_decref(p->body);
    json_decref(p->json);
    p->body = NULL;
    p->json = NULL;
}

const char *params_get(const struct params *p, const char *key)
{
    const char *v = json_string_value(json_object_get(p->body, key));
    return v != NULL ? v : http_query(p->req, key);
}

const char *params_token(const struct params *p)
{
    const char *auth = http_header(p->req, "Authorization");
    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0) {
        auth += 7;
        while (*auth == ' ') {
            auth++;
        }
        if (*auth != '\0') {
            return auth;
        }
    }
    const char *t = params_get(p, "token");
    return t != NULL && t[0] != '\0' ? t : NULL;
}
