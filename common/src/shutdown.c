/* shutdown.c: a self-pipe that turns signals into a pollable event. */
#include "bcrm/shutdown.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_bool shutdown_flag;
static int shutdown_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    (void)sig;
    if (atomic_exchange(&shutdown_flag, true)) {
        _exit(1);
    }
    if (shutdown_pipe[1] >= 0) {
        ssize_t w = write(shutdown_pipe[1], "x", 1);
        (void)w;
    }
}

void shutdown_install(void)
{
    if (shutdown_pipe[0] < 0 && pipe(shutdown_pipe) != 0) {
        abort();
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

bool shutdown_requested(void)
{
    return atomic_load(&shutdown_flag);
}

int shutdown_fd(void)
{
    return shutdown_pipe[0];
}

void shutdown_request(void)
{
    if (!atomic_exchange(&shutdown_flag, true) && shutdown_pipe[1] >= 0) {
        ssize_t w = write(shutdown_pipe[1], "x", 1);
        (void)w;
    }
}
