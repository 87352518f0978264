/* db_pool.h: a few PostgreSQL connections shared by the api's HTTP threads.
 *
 * A thread takes a connection for the length of one request and gives it back;
 * when all are taken it waits (up to a timeout) on a condition variable. The pool
 * owns the connections; callers borrow them between acquire and release.
 */
#ifndef BCRM_API_DB_POOL_H
#define BCRM_API_DB_POOL_H

#include <libpq-fe.h>

struct db_pool;

/* Opens size connections to conninfo, waiting up to wait_ms for the server.
 * NULL (after logging why) if any connection fails. */
struct db_pool *db_pool_open(const char *conninfo, int size, int wait_ms);
void db_pool_close(struct db_pool *pool);

/* A connection that is up (reconnected if it had dropped), or NULL when none is
 * free within wait_ms or the server cannot be reached. */
PGconn *db_pool_acquire(struct db_pool *pool, int wait_ms);
/* Gives conn back; a transaction left open is rolled back first. */
void db_pool_release(struct db_pool *pool, PGconn *conn);

#endif
