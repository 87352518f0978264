/* test_http_delay.c: delayed answers of the common HTTP server (http.h's
 * delay_ms): many parked at once on two threads, each answered after its delay
 * and with its own answer, dropped ones closed after theirs, the server still
 * answering at once meanwhile, and a stop sending what is parked. */
#include "check.h"

#include "bcrm/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* GET /delay/<ms>/<id> answers <id> after ms; /drop/<ms> closes after ms; /now
 * answers "now" at once. */
static void handler(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    int ms = 0;
    char id[32] = "";
    if (sscanf(req->path, "/delay/%d/%31s", &ms, id) == 2) {
        http_respond(resp, 200, "text/plain", id, strlen(id));
        resp->delay_ms = ms;
    } else if (sscanf(req->path, "/drop/%d", &ms) == 1) {
        http_respond(resp, 200, "text/plain", "lost", 4);
        resp->drop = true;
        resp->delay_ms = ms;
    } else {
        http_respond(resp, 200, "text/plain", "now", 3);
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct http_server *start(bool delayed)
{
    struct http_server_opts opts = {.addr = "127.0.0.1:0",
                                    .max_body = 4096,
                                    .timeout_s = 30,
                                    .threads = 2,
                                    .delayed_answers = delayed};
    char err[128];
    struct http_server *srv = http_server_start(&opts, handler, NULL, err, sizeof(err));
    if (srv == NULL) {
        fprintf(stderr, "cannot start the server: %s\n", err);
    }
    return srv;
}

/* A connection that has sent "GET path"; -1 on failure. */
static int send_get(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    char req[128];
    int len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    if (send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
        close(fd);
        return -1;
    }
    return fd;
}

struct client {
    int fd;
    char buf[1024];
    size_t have;
    int64_t done_ms; /* 0 while waiting */
    bool closed;     /* the server closed without a complete answer */
};

/* Whether buf holds a whole answer (headers and Content-Length bytes). */
static bool complete(const struct client *c)
{
    const char *end = memmem(c->buf, c->have, "\r\n\r\n", 4);
    const char *cl = end ? strcasestr(c->buf, "Content-Length:") : NULL;
    if (cl == NULL || cl > end) {
        return false;
    }
    return c->have >= (size_t)(end + 4 - c->buf) + strtoul(cl + 15, NULL, 10);
}

static const char *body_of(const struct client *c)
{
    const char *end = memmem(c->buf, c->have, "\r\n\r\n", 4);
    return end ? end + 4 : "";
}

/* Reads every client until each has an answer or a close, or until deadline. */
static void wait_all(struct client *cs, size_t n, int64_t deadline_ms)
{
    struct pollfd *pfds = calloc(n, sizeof(*pfds));
    size_t open = n;
    while (open > 0 && now_ms() < deadline_ms) {
        for (size_t i = 0; i < n; i++) {
            pfds[i] = (struct pollfd){.fd = cs[i].done_ms ? -1 : cs[i].fd, .events = POLLIN};
        }
        if (poll(pfds, (nfds_t)n, 100) < 0 && errno != EINTR) {
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (pfds[i].fd < 0 || !(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                continue;
            }
            struct client *c = &cs[i];
            ssize_t got = recv(c->fd, c->buf + c->have, sizeof(c->buf) - 1 - c->have, 0);
            if (got > 0) {
                c->have += (size_t)got;
                c->buf[c->have] = '\0';
            }
            if (got <= 0 || complete(c)) {
                c->closed = got <= 0 && !complete(c);
                c->done_ms = now_ms();
                open--;
            }
        }
    }
    free(pfds);
}

/* As many connections as the descriptor limit allows (client and server ends
 * are both in this process), up to want. */
static size_t connection_budget(size_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    size_t room = rl.rlim_cur > 200 ? (size_t)(rl.rlim_cur - 100) / 2 : 50;
    return room < want ? room : want;
}

static void test_many_parked_on_two_threads(void)
{
    struct http_server *srv = start(true);
    CHECK(srv != NULL);
    if (srv == NULL) {
        return;
    }
    int port = http_server_port(srv);
    size_t n = connection_budget(1000);
    struct client *cs = calloc(n, sizeof(*cs));
    int64_t started = now_ms();
    size_t opened = 0;
    for (size_t i = 0; i < n; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/delay/300/id%zu", i);
        cs[i].fd = send_get(port, path);
        opened += cs[i].fd >= 0;
    }
    CHECK(opened == n);
    /* Two threads, n answers parked: the server still answers at once. */
    struct client quick = {.fd = send_get(port, "/now")};
    int64_t asked = now_ms();
    wait_all(&quick, 1, asked + 5000);
    CHECK(quick.done_ms > 0 && quick.done_ms - asked < 200);
    CHECK_STR(body_of(&quick), "now");
    close(quick.fd);

    wait_all(cs, n, started + 10000);
    int64_t last = 0;
    size_t right = 0, early = 0;
    for (size_t i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof(want), "id%zu", i);
        right += cs[i].done_ms > 0 && !cs[i].closed && strcmp(body_of(&cs[i]), want) == 0;
        /* Each waited its 300 ms: it was sent after started, answered after. */
        early += cs[i].done_ms > 0 && cs[i].done_ms - started < 300;
        last = cs[i].done_ms > last ? cs[i].done_ms : last;
        close(cs[i].fd);
    }
    fprintf(stderr, "%zu parked answers on 2 threads: all in %lld ms\n", n,
            (long long)(last - started));
    CHECK(right == n);
    CHECK(early == 0);
    /* Sleeping threads would need n * 0.3 s / 2: 150 s for 1000. */
    CHECK(last - started < 3000);
    free(cs);
    http_server_stop(srv, 1000);
}

static void test_drop_after_the_delay(void)
{
    struct http_server *srv = start(true);
    CHECK(srv != NULL);
    if (srv == NULL) {
        return;
    }
    struct client c = {.fd = send_get(http_server_port(srv), "/drop/200")};
    int64_t started = now_ms();
    wait_all(&c, 1, started + 5000);
    CHECK(c.closed && c.have == 0);
    CHECK(c.done_ms - started >= 200);
    close(c.fd);
    http_server_stop(srv, 1000);
}

static void test_stop_sends_parked_answers(void)
{
    struct http_server *srv = start(true);
    CHECK(srv != NULL);
    if (srv == NULL) {
        return;
    }
    int port = http_server_port(srv);
    struct client cs[20];
    memset(cs, 0, sizeof(cs));
    for (int i = 0; i < 20; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/delay/60000/s%d", i);
        cs[i].fd = send_get(port, path);
    }
    /* Let the requests arrive and park before stopping. */
    struct timespec ts = {0, 200 * 1000000};
    nanosleep(&ts, NULL);
    int64_t started = now_ms();
    http_server_stop(srv, 500);
    CHECK(now_ms() - started < 3000);
    wait_all(cs, 20, now_ms() + 2000);
    int answered = 0;
    for (int i = 0; i < 20; i++) {
        char want[16];
        snprintf(want, sizeof(want), "s%d", i);
        answered += !cs[i].closed && strcmp(body_of(&cs[i]), want) == 0;
        close(cs[i].fd);
    }
    CHECK(answered == 20);
}

static void test_without_the_option_answers_at_once(void)
{
    struct http_server *srv = start(false);
    CHECK(srv != NULL);
    if (srv == NULL) {
        return;
    }
    struct client c = {.fd = send_get(http_server_port(srv), "/delay/2000/x")};
    int64_t started = now_ms();
    wait_all(&c, 1, started + 5000);
    CHECK(c.done_ms - started < 1000);
    CHECK_STR(body_of(&c), "x");
    close(c.fd);
    http_server_stop(srv, 1000);
}

int main(void)
{
    test_many_parked_on_two_threads();
    test_drop_after_the_delay();
    test_stop_sends_parked_answers();
    test_without_the_option_answers_at_once();
    CHECK_DONE();
}
