/* peers.h: which senders are connected to a socket, from NNG pipe notifications.
 *
 * NNG calls the pipe callbacks on its own threads. A pipe can be removed without
 * having been reported as added (it closed while being added), so a plain counter
 * would drift; the set of pipe ids cannot. Nothing is claimed for a platform while
 * its set is empty, and no platform query is sent.
 */
#ifndef BCRM_SCHEDULER_PEERS_H
#define BCRM_SCHEDULER_PEERS_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdint.h>

#define PEERS_MAX 1024

struct peer_set {
    pthread_mutex_t lock;
    int count;
    uint32_t ids[PEERS_MAX];
};

void peers_init(struct peer_set *set);
/* Registers the callbacks on sock; call before the socket listens. 0 or an NNG error. */
int peers_watch(struct peer_set *set, nng_socket sock);
int peers_count(struct peer_set *set);
void peers_fini(struct peer_set *set);

#endif
