/* server.h: the vault's REP socket and its workers.
 *
 * One REP socket listens on BCRM_VAULT_URL. Each worker thread owns an NNG
 * context on it and a database connection, and serves one call at a time: open
 * the envelope, handle the call, box the reply. Several workers let one slow
 * database call leave the others serving.
 */
#ifndef BCRM_VAULT_SERVER_H
#define BCRM_VAULT_SERVER_H

#include "vault.h"

#include <stdbool.h>
#include <stddef.h>

struct vault_server;

/* Borrows v, which must outlive the server. Connects each worker to db_url and
 * listens on url. NULL with err filled on failure. */
struct vault_server *vault_server_start(struct vault *v, const char *url, const char *db_url,
                                        int workers, char *err, size_t errlen);
/* Lets every worker finish the call in hand and answer it, then closes the socket
 * and the connections, and frees the server. */
void vault_server_stop(struct vault_server *srv);

#endif
