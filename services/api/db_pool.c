/* db_pool.c: a mutex, a condition variable and a stack of idle connections. */
#include "db_pool.h"

#include "bcrm/db.h"
#include "bcrm/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct db_pool {
    pthread_mutex_t lock;
    pthread_cond_t available;
    int size;
    int idle_count;
    PGconn **all;  /* every connection, for closing */
    PGconn **idle; /* the free ones, used as a stack */
};

struct db_pool *db_pool_open(const char *conninfo, int size, int wait_ms)
{
    struct db_pool *pool = calloc(1, sizeof(*pool));
    if (pool == NULL) {
        return NULL;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->available, NULL);
    pool->all = calloc((size_t)size, sizeof(PGconn *));
    pool->idle = calloc((size_t)size, sizeof(PGconn *));
    if (pool->all == NULL || pool->idle == NULL) {
        db_pool_close(pool);
        return NULL;
    }
    for (int i = 0; i < size; i++) {
        PGconn *conn = db_connect(conninfo, wait_ms);
        if (conn == NULL) {
            db_pool_close(pool);
            return NULL;
        }
        pool->all[pool->size++] = conn;
        pool->idle[pool->idle_count++] = conn;
    }
    return pool;
}

void db_pool_close(struct db_pool *pool)
{
    if (pool == NULL) {
        return;
    }
    for (int i = 0; i < pool->size; i++) {
        PQfinish(pool->all[i]);
    }
    free(pool->all);
    free(pool->idle);
    pthread_cond_destroy(&pool->available);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

PGconn *db_pool_acquire(struct db_pool *pool, int wait_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    PGconn *conn = NULL;
    pthread_mutex_lock(&pool->lock);
    while (pool->idle_count == 0) {
        if (pthread_cond_timedwait(&pool->available, &pool->lock, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    if (pool->idle_count > 0) {
        conn = pool->idle[--pool->idle_count];
    }
    pthread_mutex_unlock(&pool->lock);
    if (conn == NULL) {
        log_warn("no database connection free", "{s:i}", "wait_ms", wait_ms);
        return NULL;
    }
    if (!db_ensure(conn)) {
        log_error("database connection lost", NULL);
        db_pool_release(pool, conn);
        return NULL;
    }
    return conn;
}

void db_pool_release(struct db_pool *pool, PGconn *conn)
{
    if (conn == NULL) {
        return;
    }
    if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE) {
        db_rollback(conn);
    }
    pthread_mutex_lock(&pool->lock);
    pool->idle[pool->idle_count++] = conn;
    pthread_cond_signal(&pool->available);
    pthread_mutex_unlock(&pool->lock);
}
