/* ops.h: the ops port every service serves: /healthz, /readyz and /metrics.
 *
 * /healthz answers 200 while the process runs; /readyz answers 200 only while
 * ready() says the service can do its job (database reached, sockets bound) and
 * 503 once shutdown has begun, so a load balancer stops sending work first.
 */
#ifndef BCRM_OPS_H
#define BCRM_OPS_H

#include <stdbool.h>

struct http_server;

typedef bool (*ops_ready_fn)(void *ctx);

/* addr: host:port. ready may be NULL (always ready). Returns NULL on failure,
 * after logging why. */
struct http_server *ops_start(const char *addr, ops_ready_fn ready, void *ctx);
void ops_stop(struct http_server *srv);

#endif
