/* shutdown.h: SIGTERM and SIGINT handling shared by every service.
 *
 * After shutdown_install(), the first SIGTERM or SIGINT sets a flag and makes
 * shutdown_fd() readable, so a poll() loop wakes at once and drains. A second
 * signal exits at once with status 1 (a stuck drain must not block an operator).
 */
#ifndef BCRM_SHUTDOWN_H
#define BCRM_SHUTDOWN_H

#include <stdbool.h>

void shutdown_install(void);
bool shutdown_requested(void);
/* An fd that becomes readable when shutdown is requested; never read it. */
int shutdown_fd(void);
/* Asks for shutdown from inside the process (a fatal error in a thread). */
void shutdown_request(void);

#endif
