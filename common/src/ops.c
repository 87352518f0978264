/* ops.c: health, readiness and metrics endpoints. */
#include "bcrm/ops.h"

#include "bcrm/http.h"
#include "bcrm/log.h"
#include "bcrm/metrics.h"
#include "bcrm/shutdown.h"

#include <stdlib.h>
#include <string.h>

struct ops_ctx {
    ops_ready_fn ready;
    void *ctx;
};

static struct ops_ctx ops_state;

static void ops_handle(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct ops_ctx *o = ctx;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        http_respond_problem(resp, 405, "Method Not Allowed", "ops endpoints accept GET only");
        return;
    }
    if (strcmp(req->path, "/healthz") == 0) {
        http_respond(resp, 200, "text/plain", "ok\n", 3);
    } else if (strcmp(req->path, "/readyz") == 0) {
        bool ready = !shutdown_requested() && (o->ready == NULL || o->ready(o->ctx));
        if (ready) {
            http_respond(resp, 200, "text/plain", "ready\n", 6);
        } else {
            http_respond(resp, 503, "text/plain", "not ready\n", 10);
        }
    } else if (strcmp(req->path, "/metrics") == 0) {
        size_t len;
        char *text = metrics_render(&len);
        resp->status = 200;
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        resp->body = text;
        resp->body_len = len;
    } else {
        http_respond_problem(resp, 404, "Not Found", "no ops endpoint %s", req->path);
    }
}

struct http_server *ops_start(const char *addr, ops_ready_fn ready, void *ctx)
{
    ops_state.ready = ready;
    ops_state.ctx = ctx;
    struct http_server_opts opts = {.addr = addr, .max_body = 1024, .timeout_s = 10, .threads = 1};
    char err[256];
    struct http_server *srv = http_server_start(&opts, ops_handle, &ops_state, err, sizeof(err));
    if (srv == NULL) {
        log_error("ops server failed", "{s:s, s:s}", "addr", addr, "error", err);
    }
    return srv;
}

void ops_stop(struct http_server *srv)
{
    http_server_stop(srv, 1000);
}
