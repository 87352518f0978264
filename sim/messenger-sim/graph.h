/* graph.h: one Graph API call as the handlers see it, and Graph's error shape.
 *
 * graph.c has counted the call, applied latency, storms and injected errors,
 * parsed the arguments and found the page the token belongs to before a handler
 * runs. Errors are {"error":{"message","type","code","error_subcode","fbtrace_id"}}.
 */
#ifndef MSIM_GRAPH_H
#define MSIM_GRAPH_H

#include "msim.h"
#include "params.h"

struct graph_call {
    struct msim *m;
    const struct http_request *req;
    struct http_response *resp;
    struct params params;
    struct msim_page *page; /* the token's page */
    struct msim_faults faults;
    int64_t now_ms;
    const char *version; /* "v19.0", or "" when the path had no version */
    enum msim_call kind;
    int error_code;     /* the Graph error code answered; 0 on success */
    int64_t arrived_ms; /* before the latency fault, for the request log */
};

/* Takes ownership of body. */
void graph_reply(struct graph_call *c, int status, json_t *body);
/* subcode 0 leaves error_subcode out. */
void graph_error(struct graph_call *c, int status, int code, int subcode, const char *type,
                 const char *message);
/* A rate-limit error with code (613, 4 or 80006): counted as rate limited. */
void graph_ratelimited(struct graph_call *c, int code);

void graph_send(struct graph_call *c);
void graph_me(struct graph_call *c);
void graph_profile(struct graph_call *c, const struct msim_person *p);
void graph_conversations(struct graph_call *c);

#endif
