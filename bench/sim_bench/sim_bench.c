/* sim_bench: a small HTTP/1.1 load generator for the simulators' benchmarks.
 *
 * It keeps a fixed number of keep-alive connections busy, each with one request
 * in flight at a time (a closed loop, as a sender's workers are), and counts the
 * answers over a measured interval after a warm-up. Requests are built once, up
 * front, from a file of bodies (one per line, cycled), so the client spends its
 * time on sockets, not on formatting. Each thread runs its own epoll loop over its
 * share of the connections; nothing is shared between threads but the start and
 * stop flags.
 *
 * Usage:
 *   sim_bench --url http://127.0.0.1:8090/api/chat.postMessage \
 *             --header 'Authorization: Bearer xoxb-...' \
 *             --content-type application/json --bodies bodies.txt \
 *             [--connections 32] [--threads 1] [--duration 5] [--warmup 1]
 *
 * It prints one JSON line: {"requests", "seconds", "rps", "ok", "non_2xx",
 * "errors", "mean_us", "p50_us", "p90_us", "p99_us", "inflight_mean",
 * "inflight_min", "inflight_max", "connections", "threads"}. The in-flight
 * figures are sampled every millisecond over the measured interval: how many
 * requests had been sent and not yet answered, which against a simulator with a
 * latency fault shows how many it held at once. Exit status 0 when every answer
 * in the interval was 2xx, 1 otherwise, 2 on bad usage.
 *
 * Responses must carry Content-Length (chunked answers are counted as errors):
 * both simulators answer that way.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADERS 16
#define RECV_BUF (256 * 1024)
/* The latency histogram: 10 us buckets up to 40.96 ms, then 1 ms buckets up to
 * about 10 s (a latency fault's answers), then one overflow bucket. */
#define HIST_FINE 4096
#define HIST_FINE_US 10
#define HIST_COARSE 10000
#define HIST_COARSE_US 1000
#define HIST_BUCKETS (HIST_FINE + HIST_COARSE)

struct bench_config {
    char host[256];
    char port[16];
    char path[1024];
    const char *headers[MAX_HEADERS];
    int header_count;
    const char *content_type;
    const char *bodies_path;
    int connections;
    int threads;
    double duration_s;
    double warmup_s;
};

/* One prepared request: the whole text to write. */
struct request_text {
    char *data;
    size_t len;
};

struct conn {
    int fd;
    const struct request_text *req;
    size_t sent;
    char *buf;
    size_t have;
    uint64_t started_ns;
    bool waiting; /* a request sent, its answer not yet read */
};

struct worker {
    pthread_t thread;
    const struct bench_config *cfg;
    const struct request_text *requests;
    size_t request_count;
    size_t next_request;
    int first_conn;
    int conn_count;
    /* Counted only while measuring. */
    uint64_t ok;
    uint64_t non_2xx;
    uint64_t errors;
    uint64_t latency_sum_us;
    uint64_t hist[HIST_BUCKETS + 1];
    atomic_int in_flight; /* connections waiting for an answer; sampled by main */
};

static atomic_bool bench_measuring;
static atomic_bool bench_stopping;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
    fprintf(stderr, "usage: sim_bench --url http://HOST:PORT/PATH --bodies FILE\n"
                    "       [--header 'Name: value']... [--content-type TYPE]\n"
                    "       [--connections N] [--threads N] [--duration S] [--warmup S]\n");
}

static int parse_url(struct bench_config *cfg, const char *url)
{
    if (strncmp(url, "http://", 7) != 0) {
        return -1;
    }
    const char *host = url + 7;
    const char *slash = strchr(host, '/');
    const char *colon = memchr(host, ':', slash ? (size_t)(slash - host) : strlen(host));
    const char *host_end = colon ? colon : slash ? slash : host + strlen(host);
    if (host_end == host || (size_t)(host_end - host) >= sizeof(cfg->host)) {
        return -1;
    }
    memcpy(cfg->host, host, (size_t)(host_end - host));
    cfg->host[host_end - host] = '\0';
    if (colon != NULL) {
        size_t plen = slash ? (size_t)(slash - colon - 1) : strlen(colon + 1);
        if (plen == 0 || plen >= sizeof(cfg->port)) {
            return -1;
        }
        memcpy(cfg->port, colon + 1, plen);
        cfg->port[plen] = '\0';
    } else {
        strcpy(cfg->port, "80");
    }
    snprintf(cfg->path, sizeof(cfg->path), "%s", slash ? slash : "/");
    return 0;
}

static int parse_args(struct bench_config *cfg, int argc, char **argv)
{
    *cfg = (struct bench_config){.connections = 32,
                                 .threads = 1,
                                 .duration_s = 5,
                                 .warmup_s = 1,
                                 .content_type = "application/json"};
    bool have_url = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (val == NULL) {
            return -1;
        }
        i++;
        if (strcmp(arg, "--url") == 0) {
            if (parse_url(cfg, val) != 0) {
                fprintf(stderr, "sim_bench: bad url %s (want http://host:port/path)\n", val);
                return -1;
            }
            have_url = true;
        } else if (strcmp(arg, "--header") == 0 && cfg->header_count < MAX_HEADERS) {
            cfg->headers[cfg->header_count++] = val;
        } else if (strcmp(arg, "--content-type") == 0) {
            cfg->content_type = val;
        } else if (strcmp(arg, "--bodies") == 0) {
            cfg->bodies_path = val;
        } else if (strcmp(arg, "--connections") == 0) {
            cfg->connections = atoi(val);
        } else if (strcmp(arg, "--threads") == 0) {
            cfg->threads = atoi(val);
        } else if (strcmp(arg, "--duration") == 0) {
            cfg->duration_s = atof(val);
        } else if (strcmp(arg, "--warmup") == 0) {
            cfg->warmup_s = atof(val);
        } else {
            return -1;
        }
    }
    if (!have_url || cfg->bodies_path == NULL || cfg->connections < 1 || cfg->threads < 1 ||
        cfg->threads > cfg->connections || cfg->duration_s <= 0 || cfg->warmup_s < 0) {
        return -1;
    }
    return 0;
}

/* Builds one request per line of the bodies file. Returns the count, 0 on error. */
static size_t load_requests(const struct bench_config *cfg, struct request_text **out)
{
    FILE *f = fopen(cfg->bodies_path, "r");
    if (f == NULL) {
        fprintf(stderr, "sim_bench: cannot open %s: %s\n", cfg->bodies_path, strerror(errno));
        return 0;
    }
    size_t count = 0;
    size_t cap = 0;
    struct request_text *reqs = NULL;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t n;
    while ((n = getline(&line, &line_cap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
            line[--n] = '\0';
        }
        if (n == 0) {
            continue;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            struct request_text *grown = realloc(reqs, cap * sizeof(*reqs));
            if (grown == NULL) {
                break;
            }
            reqs = grown;
        }
        char headers[4096] = "";
        size_t used = 0;
        for (int h = 0; h < cfg->header_count && used < sizeof(headers); h++) {
            used +=
                (size_t)snprintf(headers + used, sizeof(headers) - used, "%s\r\n", cfg->headers[h]);
        }
        struct request_text *r = &reqs[count];
        int len = asprintf(&r->data,
                           "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: %s\r\n"
                           "Content-Length: %zd\r\n%s\r\n%s",
                           cfg->path, cfg->host, cfg->port, cfg->content_type, n, headers, line);
        if (len < 0) {
            break;
        }
        r->len = (size_t)len;
        count++;
    }
    free(line);
    fclose(f);
    if (count == 0) {
        fprintf(stderr, "sim_bench: no request bodies in %s\n", cfg->bodies_path);
        free(reqs);
        return 0;
    }
    *out = reqs;
    return count;
}

static int connect_to(const struct bench_config *cfg)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(cfg->host, cfg->port, &hints, &ai) != 0 || ai == NULL) {
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    return fd;
}

static void record_latency(struct worker *w, uint64_t ns)
{
    uint64_t us = ns / 1000;
    uint64_t bucket = us / HIST_FINE_US;
    if (bucket >= HIST_FINE) {
        bucket = HIST_FINE + (us - HIST_FINE * HIST_FINE_US) / HIST_COARSE_US;
    }
    w->hist[bucket < HIST_BUCKETS ? bucket : HIST_BUCKETS]++;
    w->latency_sum_us += us;
}

/* The upper edge of a histogram bucket, in microseconds. */
static uint64_t bucket_top_us(int b)
{
    if (b < HIST_FINE) {
        return (uint64_t)(b + 1) * HIST_FINE_US;
    }
    return (uint64_t)HIST_FINE * HIST_FINE_US + (uint64_t)(b - HIST_FINE + 1) * HIST_COARSE_US;
}

static void set_waiting(struct worker *w, struct conn *c, bool waiting)
{
    if (c->waiting != waiting) {
        c->waiting = waiting;
        atomic_fetch_add(&w->in_flight, waiting ? 1 : -1);
    }
}

/* Writes what is left of the connection's request. 0, or -1 on error. */
static int conn_send(struct conn *c)
{
    while (c->sent < c->req->len) {
        ssize_t n = send(c->fd, c->req->data + c->sent, c->req->len - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        c->sent += (size_t)n;
    }
    return 0;
}

static void conn_start(struct worker *w, struct conn *c)
{
    c->req = &w->requests[w->next_request++ % w->request_count];
    c->sent = 0;
    c->have = 0;
    c->started_ns = now_ns();
    set_waiting(w, c, true);
}

/* Parses a complete response at the start of the buffer: its length in *total
 * and status in *status. 1 when complete, 0 when more is needed, -1 on error. */
static int parse_response(const char *buf, size_t have, size_t *total, int *status, bool *closes)
{
    const char *end = memmem(buf, have, "\r\n\r\n", 4);
    if (end == NULL) {
        return have > 64 * 1024 ? -1 : 0;
    }
    if (have < 12 || strncmp(buf, "HTTP/1.", 7) != 0) {
        return -1;
    }
    *status = atoi(buf + 9);
    long length = -1;
    *closes = false;
    for (const char *p = memchr(buf, '\n', (size_t)(end - buf)); p != NULL && p < end;
         p = memchr(p + 1, '\n', (size_t)(end - p))) {
        const char *line = p + 1;
        if (strncasecmp(line, "Content-Length:", 15) == 0) {
            length = strtol(line + 15, NULL, 10);
        } else if (strncasecmp(line, "Connection: close", 17) == 0) {
            *closes = true;
        } else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0) {
            return -1;
        }
    }
    if (length < 0) {
        return -1;
    }
    size_t need = (size_t)(end - buf) + 4 + (size_t)length;
    if (have < need) {
        return 0;
    }
    *total = need;
    return 1;
}

static int conn_open(struct worker *w, int epfd, struct conn *c)
{
    c->fd = connect_to(w->cfg);
    if (c->fd < 0) {
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    conn_start(w, c);
    return conn_send(c);
}

static void conn_reopen(struct worker *w, int epfd, struct conn *c)
{
    set_waiting(w, c, false);
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    while (!atomic_load(&bench_stopping) && conn_open(w, epfd, c) != 0) {
        if (atomic_load(&bench_measuring)) {
            w->errors++;
        }
        usleep(1000);
    }
}

/* Reads what the socket has; answers every complete response. */
static void conn_readable(struct worker *w, int epfd, struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->have, RECV_BUF - c->have, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            if (atomic_load(&bench_measuring)) {
                w->errors++;
            }
            conn_reopen(w, epfd, c);
            return;
        }
        if (n < 0) {
            return;
        }
        c->have += (size_t)n;
        size_t total = 0;
        int status = 0;
        bool closes = false;
        int rc = parse_response(c->buf, c->have, &total, &status, &closes);
        if (rc < 0 || (rc == 0 && c->have == RECV_BUF)) {
            if (atomic_load(&bench_measuring)) {
                w->errors++;
            }
            conn_reopen(w, epfd, c);
            return;
        }
        if (rc == 0) {
            continue;
        }
        set_waiting(w, c, false);
        if (atomic_load(&bench_measuring)) {
            if (status >= 200 && status < 300) {
                w->ok++;
            } else {
                w->non_2xx++;
            }
            record_latency(w, now_ns() - c->started_ns);
        }
        if (closes || total != c->have) {
            /* A closing server, or bytes past the answer we never asked for. */
            conn_reopen(w, epfd, c);
            return;
        }
        conn_start(w, c);
        if (conn_send(c) != 0) {
            conn_reopen(w, epfd, c);
        }
        return;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct conn *conns = calloc((size_t)w->conn_count, sizeof(*conns));
    struct epoll_event *events = calloc((size_t)w->conn_count, sizeof(*events));
    if (epfd < 0 || conns == NULL || events == NULL) {
        fprintf(stderr, "sim_bench: out of resources\n");
        exit(2);
    }
    for (int i = 0; i < w->conn_count; i++) {
        conns[i].fd = -1;
        conns[i].buf = malloc(RECV_BUF);
        if (conns[i].buf == NULL) {
            exit(2);
        }
        w->next_request = (size_t)(w->first_conn + i);
        conn_reopen(w, epfd, &conns[i]);
    }
    while (!atomic_load(&bench_stopping)) {
        int n = epoll_wait(epfd, events, w->conn_count, 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (events[i].events & (EPOLLERR | EPOLLHUP)) {
                if (atomic_load(&bench_measuring)) {
                    w->errors++;
                }
                conn_reopen(w, epfd, c);
                continue;
            }
            if ((events[i].events & EPOLLOUT) && c->sent < c->req->len && conn_send(c) != 0) {
                conn_reopen(w, epfd, c);
                continue;
            }
            if (events[i].events & EPOLLIN) {
                conn_readable(w, epfd, c);
            }
        }
    }
    for (int i = 0; i < w->conn_count; i++) {
        if (conns[i].fd >= 0) {
            close(conns[i].fd);
        }
        free(conns[i].buf);
    }
    free(conns);
    free(events);
    close(epfd);
    return NULL;
}

static void sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The latency below which a share q of the answers came, in microseconds. */
static uint64_t percentile(const uint64_t *hist, uint64_t total, double q)
{
    uint64_t want = (uint64_t)((double)total * q);
    uint64_t seen = 0;
    for (int b = 0; b <= HIST_BUCKETS; b++) {
        seen += hist[b];
        if (seen > want) {
            return bucket_top_us(b);
        }
    }
    return bucket_top_us(HIST_BUCKETS);
}

struct inflight_samples {
    uint64_t count;
    uint64_t sum;
    int min;
    int max;
};

/* Samples the requests in flight every millisecond for s seconds. */
static void sample_in_flight(struct worker *workers, int threads, double s,
                             struct inflight_samples *out)
{
    *out = (struct inflight_samples){.min = -1};
    uint64_t until = now_ns() + (uint64_t)(s * 1e9);
    while (now_ns() < until) {
        int n = 0;
        for (int t = 0; t < threads; t++) {
            n += atomic_load(&workers[t].in_flight);
        }
        out->count++;
        out->sum += (uint64_t)n;
        out->min = out->min < 0 || n < out->min ? n : out->min;
        out->max = n > out->max ? n : out->max;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Room for every connection's descriptor: the soft limit up to the hard one. */
static void raise_fd_limit(int connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < (rlim_t)connections + 32) {
        fprintf(stderr, "sim_bench: %d connections need more open files than the limit %llu\n",
                connections, (unsigned long long)rl.rlim_cur);
    }
}

int main(int argc, char **argv)
{
    struct bench_config cfg;
    if (parse_args(&cfg, argc, argv) != 0) {
        usage();
        return 2;
    }
    raise_fd_limit(cfg.connections);
    struct request_text *requests = NULL;
    size_t request_count = load_requests(&cfg, &requests);
    if (request_count == 0) {
        return 2;
    }
    struct worker *workers = calloc((size_t)cfg.threads, sizeof(*workers));
    if (workers == NULL) {
        return 2;
    }
    int first = 0;
    for (int t = 0; t < cfg.threads; t++) {
        struct worker *w = &workers[t];
        w->cfg = &cfg;
        w->requests = requests;
        w->request_count = request_count;
        w->first_conn = first;
        w->conn_count = cfg.connections / cfg.threads + (t < cfg.connections % cfg.threads);
        first += w->conn_count;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            fprintf(stderr, "sim_bench: cannot start a thread\n");
            return 2;
        }
    }
    sleep_s(cfg.warmup_s);
    uint64_t started = now_ns();
    atomic_store(&bench_measuring, true);
    struct inflight_samples inflight;
    sample_in_flight(workers, cfg.threads, cfg.duration_s, &inflight);
    atomic_store(&bench_measuring, false);
    double seconds = (double)(now_ns() - started) / 1e9;
    atomic_store(&bench_stopping, true);

    uint64_t ok = 0, non_2xx = 0, errors = 0, latency_sum_us = 0;
    static uint64_t hist[HIST_BUCKETS + 1];
    for (int t = 0; t < cfg.threads; t++) {
        pthread_join(workers[t].thread, NULL);
        ok += workers[t].ok;
        non_2xx += workers[t].non_2xx;
        errors += workers[t].errors;
        latency_sum_us += workers[t].latency_sum_us;
        for (int b = 0; b <= HIST_BUCKETS; b++) {
            hist[b] += workers[t].hist[b];
        }
    }
    uint64_t answered = ok + non_2xx;
    printf("{\"requests\":%llu,\"seconds\":%.3f,\"rps\":%.0f,\"ok\":%llu,\"non_2xx\":%llu,"
           "\"errors\":%llu,\"mean_us\":%llu,\"p50_us\":%llu,\"p90_us\":%llu,\"p99_us\":%llu,"
           "\"inflight_mean\":%.1f,\"inflight_min\":%d,\"inflight_max\":%d,"
           "\"connections\":%d,\"threads\":%d}\n",
           (unsigned long long)answered, seconds, (double)answered / seconds,
           (unsigned long long)ok, (unsigned long long)non_2xx, (unsigned long long)errors,
           (unsigned long long)(answered ? latency_sum_us / answered : 0),
           (unsigned long long)percentile(hist, answered, 0.50),
           (unsigned long long)percentile(hist, answered, 0.90),
           (unsigned long long)percentile(hist, answered, 0.99),
           inflight.count ? (double)inflight.sum / (double)inflight.count : 0.0,
           inflight.min < 0 ? 0 : inflight.min, inflight.max, cfg.connections, cfg.threads);
    for (size_t i = 0; i < request_count; i++) {
        free(requests[i].data);
    }
    free(requests);
    free(workers);
    return non_2xx == 0 && errors == 0 && answered > 0 ? 0 : 1;
}
