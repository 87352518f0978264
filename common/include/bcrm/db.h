/* db.h: PostgreSQL access shared by the services that hold database credentials
 * (api, scheduler, vault; never the senders).
 *
 * Migrations are compiled into the binary from db/migrations/NNNN_name.sql and applied
 * in order, each in its own transaction, under a session advisory lock, so that
 * several processes starting at once apply each migration exactly once.
 */
#ifndef BCRM_DB_H
#define BCRM_DB_H

#include <libpq-fe.h>
#include <stdbool.h>

/* Connects with conninfo (a libpq URL or key=value string), retrying for up to
 * wait_ms while the server starts. Returns NULL after logging why. The error
 * message never contains the password. */
PGconn *db_connect(const char *conninfo, int wait_ms);

/* Applies every migration not yet recorded in schema_migrations. 0 or -1. */
int db_migrate(PGconn *conn);

/* Runs sql with text parameters. Returns the result when its status is
 * COMMAND_OK or TUPLES_OK; otherwise logs the error with the statement's name
 * (what) and returns NULL. Free a result with PQclear(). */
PGresult *db_query(PGconn *conn, const char *what, const char *sql, int nparams,
                   const char *const *params);
/* The same for statements whose rows are not needed. 0 or -1. */
int db_exec(PGconn *conn, const char *what, const char *sql, int nparams,
            const char *const *params);

/* Prepared statements, for hot paths (no parse or plan per call). A statement is
 * prepared once per connection under name; after a reconnect (db_ensure) it must be
 * prepared again. db_prepare returns 0 or -1; db_query_prepared behaves like
 * db_query, the statement's name standing in for "what" in the log. */
int db_prepare(PGconn *conn, const char *name, const char *sql, int nparams);
PGresult *db_query_prepared(PGconn *conn, const char *name, int nparams, const char *const *params);

/* BEGIN / COMMIT / ROLLBACK. 0 or -1. */
int db_begin(PGconn *conn);
int db_commit(PGconn *conn);
void db_rollback(PGconn *conn);

/* The SQLSTATE of a failed result ("23505" for a unique violation), or "". */
const char *db_sqlstate(const PGresult *res);

/* True when the connection is up; reconnects once if it dropped. */
bool db_ensure(PGconn *conn);

/* The compiled-in migrations, for tests. */
struct db_migration {
    int version;
    const char *name;
    const char *sql;
};
extern const struct db_migration db_migrations[];
extern const int db_migration_count;

#endif
