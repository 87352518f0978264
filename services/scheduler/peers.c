/* peers.c: connected pipes per socket (see peers.h). */
#include "peers.h"

void peers_init(struct peer_set *set)
{
    pthread_mutex_init(&set->lock, NULL);
    set->count = 0;
}

static void on_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    struct peer_set *set = arg;
    uint32_t id = (uint32_t)nng_pipe_id(pipe);
    pthread_mutex_lock(&set->lock);
    int at = -1;
    for (int i = 0; i < set->count && at < 0; i++) {
        if (set->ids[i] == id) {
            at = i;
        }
    }
    if (ev == NNG_PIPE_EV_ADD_POST && at < 0 && set->count < PEERS_MAX) {
        set->ids[set->count++] = id;
    } else if (ev == NNG_PIPE_EV_REM_POST && at >= 0) {
        set->ids[at] = set->ids[--set->count];
    }
    pthread_mutex_unlock(&set->lock);
}

int peers_watch(struct peer_set *set, nng_socket sock)
{
    int rv;
    if ((rv = nng_pipe_notify(sock, NNG_PIPE_EV_ADD_POST, on_pipe_event, set)) != 0) {
        return rv;
    }
    return nng_pipe_notify(sock, NNG_PIPE_EV_REM_POST, on_pipe_event, set);
}

int peers_count(struct peer_set *set)
{
    pthread_mutex_lock(&set->lock);
    int n = set->count;
    pthread_mutex_unlock(&set->lock);
    return n;
}

void peers_fini(struct peer_set *set)
{
    pthread_mutex_destroy(&set->lock);
}
