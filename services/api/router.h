/* router.h: the table of routes the api serves, and the dispatcher that matches a
 * request against it and applies each route's authentication, org access, CSRF
 * and idempotency rules before calling the handler.
 *
 * The same table feeds the OpenAPI document (openapi.c), so a route that is served
 * is always described.
 */
#ifndef BCRM_API_ROUTER_H
#define BCRM_API_ROUTER_H

#include "api.h"

enum route_auth {
    ROUTE_PUBLIC,  /* no credential needed */
    ROUTE_SESSION, /* a session cookie or an API key */
    ROUTE_ORG,     /* a credential with access to the {org} of the path */
};

struct route {
    const char *method;
    const char *pattern; /* "/v1/orgs/{org}/bots/{bot}" */
    api_handler_fn handler;
    enum route_auth auth;
    enum api_role min_role; /* for ROUTE_ORG */
    bool idempotent;        /* honours Idempotency-Key */
    const char *summary;
    const char *request_schema;  /* components/schemas name of the body, or NULL */
    int success_status;          /* for the document: 200, 201, 204, 302 */
    const char *response_schema; /* components/schemas name of the answer, or NULL */
};

extern const struct route api_routes[];
extern const int api_route_count;

/* Registers the request metrics; call once before serving. */
void router_init(void);

/* The http_handler_fn of the api server; ctx is the struct api_ctx. */
void router_handle(void *ctx, const struct http_request *req, struct http_response *resp);

/* Matches path against pattern, filling r's params. True on a match. Exposed for
 * the unit tests. */
bool router_match(const char *pattern, const char *path, struct api_req *r);

#endif
