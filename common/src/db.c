/* db.c: libpq helpers and the migration runner. */
#include "bcrm/db.h"

#include "bcrm/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* An arbitrary constant that names the migration lock in pg_locks. */
#define DB_MIGRATION_LOCK_KEY "8231597401"

PGconn *db_connect(const char *conninfo, int wait_ms)
{
    for (int waited = 0;; waited += 200) {
        PGconn *conn = PQconnectdb(conninfo);
        if (PQstatus(conn) == CONNECTION_OK) {
            return conn;
        }
        if (waited >= wait_ms) {
            /* PQerrorMessage names host and reason, never the password. */
            char msg[512];
            snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
            msg[strcspn(msg, "\n")] = '\0';
            log_error("cannot connect to PostgreSQL", "{s:s}", "error", msg);
            PQfinish(conn);
            return NULL;
        }
        PQfinish(conn);
        struct timespec ts = {0, 200 * 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Passes a successful result through; logs a failed one, naming the statement, and
 * returns NULL. */
static PGresult *db_checked(PGresult *res, const char *what)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        return res;
    }
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
    msg[strcspn(msg, "\n")] = '\0';
    log_error("query failed", "{s:s, s:s, s:s}", "query", what, "sqlstate", db_sqlstate(res),
              "error", msg);
    PQclear(res);
    return NULL;
}

PGresult *db_query(PGconn *conn, const char *what, const char *sql, int nparams,
                   const char *const *params)
{
    return db_checked(PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0), what);
}

int db_exec(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = db_query(conn, what, sql, nparams, params);
    if (res == NULL) {
        return -1;
    }
    PQclear(res);
    return 0;
}

int db_prepare(PGconn *conn, const char *name, const char *sql, int nparams)
{
    PGresult *res = db_checked(PQprepare(conn, name, sql, nparams, NULL), name);
    if (res == NULL) {
        return -1;
    }
    PQclear(res);
    return 0;
}

PGresult *db_query_prepared(PGconn *conn, const char *name, int nparams, const char *const *params)
{
    return db_checked(PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0), name);
}

const char *db_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

int db_begin(PGconn *conn)
{
    return db_exec(conn, "begin", "BEGIN", 0, NULL);
}

int db_commit(PGconn *conn)
{
    return db_exec(conn, "commit", "COMMIT", 0, NULL);
}

void db_rollback(PGconn *conn)
{
    PGresult *res = PQexec(conn, "ROLLBACK");
    PQclear(res);
}

bool db_ensure(PGconn *conn)
{
    if (PQstatus(conn) == CONNECTION_OK) {
        return true;
    }
    PQreset(conn);
    return PQstatus(conn) == CONNECTION_OK;
}

/* 1 when every compiled-in migration is recorded in schema_migrations, 0 when
 * some are not (or the table does not exist yet), -1 on error. Needs nothing but
 * SELECT on schema_migrations, so a service connected as its own role
 * (db/migrations/0004_db_roles.sql) can check the schema without rights to
 * change it. */
static int db_schema_current(PGconn *conn, bool *table_exists)
{
    PGresult *res = db_query(conn, "migration status",
                             "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL);
    if (res == NULL) {
        return -1;
    }
    bool exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    *table_exists = exists;
    if (!exists) {
        return 0;
    }
    res = db_query(conn, "migration status", "SELECT version FROM schema_migrations", 0, NULL);
    if (res == NULL) {
        return -1;
    }
    int current = 1;
    for (int i = 0; i < db_migration_count && current; i++) {
        bool found = false;
        for (int r = 0; r < PQntuples(res) && !found; r++) {
            found = atoi(PQgetvalue(res, r, 0)) == db_migrations[i].version;
        }
        current = found;
    }
    PQclear(res);
    return current;
}

int db_migrate(PGconn *conn)
{
    int rv = -1;
    bool table_exists = false;
    int current = db_schema_current(conn, &table_exists);
    if (current != 0) {
        return current == 1 ? 0 : -1;
    }
    if (db_exec(conn, "migration lock", "SELECT pg_advisory_lock(" DB_MIGRATION_LOCK_KEY ")", 0,
                NULL) != 0) {
        return -1;
    }
    /* IF NOT EXISTS still wants CREATE on the schema, which a service's role
     * lacks; skip it when the table is there, so the error names a migration. */
    if (!table_exists && db_exec(conn, "create schema_migrations",
                                 "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                 " version integer PRIMARY KEY, name text NOT NULL,"
                                 " applied_at timestamptz NOT NULL DEFAULT now())",
                                 0, NULL) != 0) {
        goto out;
    }
    for (int i = 0; i < db_migration_count; i++) {
        const struct db_migration *m = &db_migrations[i];
        char version[16];
        snprintf(version, sizeof(version), "%d", m->version);
        const char *p[] = {version, m->name};
        PGresult *res = db_query(conn, "migration check",
                                 "SELECT 1 FROM schema_migrations WHERE version = $1", 1, p);
        if (res == NULL) {
            goto out;
        }
        bool applied = PQntuples(res) > 0;
        PQclear(res);
        if (applied) {
            continue;
        }
        if (db_begin(conn) != 0) {
            goto out;
        }
        /* PQexec (not PQexecParams) so a migration may hold several statements. */
        PGresult *mr = PQexec(conn, m->sql);
        if (PQresultStatus(mr) != PGRES_COMMAND_OK && PQresultStatus(mr) != PGRES_TUPLES_OK) {
            char msg[512];
            snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(mr));
            msg[strcspn(msg, "\n")] = '\0';
            /* A service's own role may not change the schema (42501): say who may. */
            log_error("migration failed", "{s:i, s:s, s:s, s:s?}", "version", m->version, "name",
                      m->name, "error", msg, "hint",
                      strcmp(db_sqlstate(mr), "42501") == 0
                          ? "apply migrations as the database owner: bcrmctl migrate"
                          : NULL);
            PQclear(mr);
            db_rollback(conn);
            goto out;
        }
        PQclear(mr);
        if (db_exec(conn, "migration record",
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, p) != 0 ||
            db_commit(conn) != 0) {
            db_rollback(conn);
            goto out;
        }
        log_info("migration applied", "{s:i, s:s}", "version", m->version, "name", m->name);
    }
    rv = 0;
out:
    db_exec(conn, "migration unlock", "SELECT pg_advisory_unlock(" DB_MIGRATION_LOCK_KEY ")", 0,
            NULL);
    return rv;
}
