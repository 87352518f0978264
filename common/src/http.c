/* http.c: the libmicrohttpd wrapper behind http.h. */
#include "bcrm/http.h"

#include "http_delay.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct http_server {
    struct MHD_Daemon *daemon;
    http_handler_fn handler;
    void *ctx;
    size_t max_body;
    int port;
    struct http_delay *delays; /* NULL without delayed_answers */
    /* Connections parked with an answer, from the suspend until the answer is
     * sent (or the connection ends): the stop waits for none to be left, since
     * libmicrohttpd must not stop with a suspended connection. */
    atomic_int held;
    atomic_int held_max; /* the most at once, since the start or the last reset */
};

/* Per-request state kept by MHD between the calls that deliver the body. */
struct http_pending {
    char *body;
    size_t len;
    size_t cap;
    bool too_large;
    /* A delayed answer, kept while the connection is suspended; owned. */
    bool held;
    struct http_response answer;
};

int http_parse_addr(const char *addr, char *host, size_t hostlen, int *port)
{
    const char *colon;
    size_t hlen;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (close == NULL || close[1] != ':') {
            return -1;
        }
        hlen = (size_t)(close - addr - 1);
        addr++;
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL) {
            return -1;
        }
        hlen = (size_t)(colon - addr);
    }
    if (hlen == 0 || hlen >= hostlen) {
        return -1;
    }
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || p < 0 || p > 65535) {
        return -1;
    }
    *port = (int)p;
    return 0;
}

static void response_clear_body(struct http_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}

void http_respond(struct http_response *resp, int status, const char *content_type,
                  const char *body, size_t len)
{
    response_clear_body(resp);
    resp->status = status;
    resp->content_type = content_type;
    if (body != NULL) {
        resp->body = malloc(len + 1);
        if (resp->body != NULL) {
            memcpy(resp->body, body, len);
            resp->body[len] = '\0';
            resp->body_len = len;
        }
    }
}

void http_respond_json(struct http_response *resp, int status, json_t *body)
{
    response_clear_body(resp);
    resp->status = status;
    resp->content_type = "application/json";
    if (body != NULL) {
        resp->body = json_dumps(body, JSON_COMPACT);
        resp->body_len = resp->body ? strlen(resp->body) : 0;
        json_decref(body);
    }
}

void http_respond_problem(struct http_response *resp, int status, const char *title,
                          const char *detail_fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, detail_fmt);
    vsnprintf(detail, sizeof(detail), detail_fmt, ap);
    va_end(ap);
    json_t *p = json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title", title, "status",
                          status, "detail", detail);
    http_respond_json(resp, status, p);
    resp->content_type = "application/problem+json";
}

void http_add_header(struct http_response *resp, const char *name, const char *value)
{
    if (resp->header_count >= HTTP_MAX_RESPONSE_HEADERS) {
        return;
    }
    resp->header_names[resp->header_count] = strdup(name);
    resp->header_values[resp->header_count] = strdup(value);
    resp->header_count++;
}

const char *http_query(const struct http_request *req, const char *key)
{
    return MHD_lookup_connection_value(req->impl, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(const struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->impl, MHD_HEADER_KIND, name);
}

const char *http_cookie(const struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->impl, MHD_COOKIE_KIND, name);
}

void http_peer(const struct http_request *req, char *out, size_t outlen)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->impl, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (ci == NULL || ci->client_addr == NULL) {
        return;
    }
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outlen);
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)outlen);
    }
}

static enum MHD_Result queue_response(struct MHD_Connection *conn, struct http_response *r)
{
    struct MHD_Response *mr =
        MHD_create_response_from_buffer(r->body_len, r->body ? r->body : (char *)"",
                                        r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    r->body = NULL; /* now owned by MHD */
    if (mr == NULL) {
        return MHD_NO;
    }
    if (r->body_len > 0 || r->status != 204) {
        MHD_add_response_header(mr, "Content-Type",
                                r->content_type ? r->content_type : "application/json");
    }
    for (int i = 0; i < r->header_count; i++) {
        MHD_add_response_header(mr, r->header_names[i], r->header_values[i]);
        free(r->header_names[i]);
        free(r->header_values[i]);
    }
    r->header_count = 0;
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, mr);
    MHD_destroy_response(mr);
    return ret;
}

static void response_free(struct http_response *r)
{
    free(r->body);
    r->body = NULL;
    for (int i = 0; i < r->header_count; i++) {
        free(r->header_names[i]);
        free(r->header_values[i]);
    }
    r->header_count = 0;
}

/* Queues the handler's answer, or closes the connection for a dropped one; the
 * answer's parts are freed either way. */
static enum MHD_Result send_answer(struct MHD_Connection *conn, struct http_response *r)
{
    if (r->drop) {
        response_free(r);
        return MHD_NO; /* MHD closes the connection without a response */
    }
    enum MHD_Result ret = queue_response(conn, r);
    response_free(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct http_server *srv = cls;
    struct http_pending *p = *con_cls;

    if (p == NULL) {
        p = calloc(1, sizeof(*p));
        if (p == NULL) {
            return MHD_NO;
        }
        *con_cls = p;
        /* Refuse early when the client announces a body we will not take. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl != NULL && strtoull(cl, NULL, 10) > srv->max_body) {
            p->too_large = true;
        }
        return MHD_YES;
    }
    if (p->held) {
        /* The timer resumed a parked connection: its time is up. */
        p->held = false;
        atomic_fetch_sub(&srv->held, 1);
        return send_answer(conn, &p->answer);
    }
    if (*upload_size > 0) {
        if (!p->too_large) {
            if (p->len + *upload_size > srv->max_body) {
                p->too_large = true;
                free(p->body);
                p->body = NULL;
                p->len = 0;
            } else {
                if (p->len + *upload_size + 1 > p->cap) {
                    size_t cap = p->cap ? p->cap : 1024;
                    while (cap < p->len + *upload_size + 1) {
                        cap *= 2;
                    }
                    char *nb = realloc(p->body, cap);
                    if (nb == NULL) {
                        return MHD_NO;
                    }
                    p->body = nb;
                    p->cap = cap;
                }
                memcpy(p->body + p->len, upload, *upload_size);
                p->len += *upload_size;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }

    struct http_response resp = {.status = 500};
    if (p->too_large) {
        http_respond_problem(&resp, 413, "Payload Too Large",
                             "request body exceeds the limit of %zu bytes", srv->max_body);
    } else {
        if (p->body == NULL) {
            p->body = calloc(1, 1);
        } else {
            p->body[p->len] = '\0';
        }
        struct http_request req = {
            .method = method, .path = url, .body = p->body, .body_len = p->len, .impl = conn};
        srv->handler(srv->ctx, &req, &resp);
    }
    if (resp.delay_ms > 0 && srv->delays != NULL) {
        /* Parked: MHD calls on_request again once the timer resumes the
         * connection, and the answer kept here goes out then (above). */
        p->answer = resp;
        p->held = true;
        int now = atomic_fetch_add(&srv->held, 1) + 1;
        int max = atomic_load(&srv->held_max);
        while (now > max && !atomic_compare_exchange_weak(&srv->held_max, &max, now)) {
        }
        MHD_suspend_connection(conn);
        if (http_delay_add(srv->delays, conn, resp.delay_ms) != 0) {
            MHD_resume_connection(conn); /* stopping, or out of memory: answer now */
        }
        return MHD_YES;
    }
    return send_answer(conn, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_server *srv = cls;
    (void)conn;
    (void)toe;
    struct http_pending *p = *con_cls;
    if (p != NULL) {
        if (p->held) {
            /* Ended while parked, without its answer (the stop closing it). */
            response_free(&p->answer);
            atomic_fetch_sub(&srv->held, 1);
        }
        free(p->body);
        free(p);
        *con_cls = NULL;
    }
}

struct http_server *http_server_start(const struct http_server_opts *opts, http_handler_fn handler,
                                      void *ctx, char *err, size_t errlen)
{
    char host[256];
    int port;
    if (http_parse_addr(opts->addr, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "invalid listen address \"%s\" (want host:port)", opts->addr);
        return NULL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%d", port);
    if (getaddrinfo(host, portstr, &hints, &ai) != 0 || ai == NULL) {
        snprintf(err, errlen, "cannot resolve listen host \"%s\"", host);
        return NULL;
    }
    struct http_server *srv = calloc(1, sizeof(*srv));
    srv->handler = handler;
    srv->ctx = ctx;
    srv->max_body = opts->max_body;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY | MHD_USE_TURBO | MHD_USE_ITC;
    if (ai->ai_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    if (opts->delayed_answers) {
        flags |= MHD_ALLOW_SUSPEND_RESUME;
        srv->delays = http_delay_new();
        if (srv->delays == NULL) {
            snprintf(err, errlen, "out of memory");
            freeaddrinfo(ai);
            free(srv);
            return NULL;
        }
    }
    unsigned max_connections = opts->max_connections ? opts->max_connections : 4096u;
    unsigned threads = opts->threads > 0 ? opts->threads : 1;
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(opts->timeout_s ? opts->timeout_s : 30),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, max_connections, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (srv->daemon == NULL) {
        snprintf(err, errlen, "cannot listen on %s (address in use?)", opts->addr);
        http_delay_free(srv->delays);
        free(srv);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : port;
    return srv;
}

int http_server_port(const struct http_server *srv)
{
    return srv->port;
}

void http_server_held(struct http_server *srv, int *now, int *max, bool reset_max)
{
    *now = atomic_load(&srv->held);
    *max = reset_max ? atomic_exchange(&srv->held_max, *now) : atomic_load(&srv->held_max);
}

void http_server_stop(struct http_server *srv, int drain_ms)
{
    if (srv == NULL) {
        return;
    }
    MHD_quiesce_daemon(srv->daemon);
    /* Delayed answers go now; then wait for every parked connection to have been
     * resumed and answered (it takes a pass of its thread), however short the
     * drain. */
    http_delay_flush(srv->delays);
    for (int waited = 0; atomic_load(&srv->held) > 0 && waited < 10000; waited += 5) {
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    for (int waited = 0; waited < drain_ms; waited += 20) {
        const union MHD_DaemonInfo *di =
            MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (di == NULL || di->num_connections == 0) {
            break;
        }
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(srv->daemon);
    http_delay_free(srv->delays);
    free(srv);
}
