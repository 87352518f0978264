/* params.h: the arguments of a Web API call.
 *
 * Slack takes arguments from the query string, a form-urlencoded body or a JSON
 * body (application/json). All three end up here as strings: a JSON body's arrays
 * and objects (blocks, metadata) become their compact JSON text, as if they had
 * been sent form-encoded.
 */
#ifndef SIM_PARAMS_H
#define SIM_PARAMS_H

#include <jansson.h>

struct http_request;

struct params {
    json_t *body;                   /* owned: object of strings from the body */
    json_t *json;                   /* owned: a JSON body's object as sent; NULL otherwise */
    const struct http_request *req; /* borrowed, for the query string and headers */
};

/* Returns NULL on success, or the Slack error code for a body that cannot be read
 * ("invalid_json", "json_not_object", "invalid_form_data"). Free with
 * params_free() in both cases. */
const char *params_parse(struct params *p, const struct http_request *req);
void params_free(struct params *p);
/* The value of key from the body, else from the query string; NULL when absent.
 * Borrowed from p. */
const char *params_get(const struct params *p, const char *key);
/* The token from "Authorization: Bearer", else from a token argument. */
const char *params_token(const struct params *p);

/* Decodes a form-urlencoded body into obj (string values). Returns 0 or -1. */
int params_parse_form(json_t *obj, const char *body, size_t len);

#endif
