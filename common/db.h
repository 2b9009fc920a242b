/*
 * db.h - PostgreSQL connections and schema migrations over libpq.
 *
 * Every statement that carries a value goes through PQexecParams or a
 * prepared statement; only migration files, which are ours, run as plain SQL.
 * Connections are never shared between threads: each thread owns its own.
 */
#ifndef ORDER_DB_H
#define ORDER_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* Opens a connection from a libpq connection string or URI (DATABASE_URL).
 * Returns NULL with err; err never repeats the connection string, which may
 * hold a password. */
PGconn *db_connect(const char *conninfo, const char *application_name, char *err, size_t errlen);
/* Checks that conninfo parses, without connecting. */
int db_conninfo_check(const char *conninfo, char *err, size_t errlen);
/* Makes *conn usable again after a lost connection (reconnects when needed). 0 or -1. */
int db_ensure(PGconn **conn, const char *conninfo, const char *application_name, char *err,
              size_t errlen);
/* True when the failure of res (or the connection) means the server is gone,
 * so the caller should answer 503 and reconnect rather than 500. */
bool db_is_connection_error(PGconn *conn, const PGresult *res);
/* Copies the server's error (first line) into err. */
void db_error(PGconn *conn, const PGresult *res, char *err, size_t errlen);

/* Runs BEGIN/COMMIT/ROLLBACK and similar; 0 or -1 with err. */
int db_exec(PGconn *conn, const char *sql, char *err, size_t errlen);

/* Applies the *.sql files of dir not yet in schema_migrations, in name order,
 * each in its own transaction, under an advisory lock. Returns the number
 * applied (0 when up to date), or -1 with err. */
int db_migrate(PGconn *conn, const char *dir, char *err, size_t errlen);

#endif

/* Builds a PostgreSQL array literal ('{"a","b"}') for passing many values in
 * one parameter ($1::uuid[] and unnest), which keeps batched statements
 * parameterized. Values are quoted and escaped; NULL adds a SQL NULL. */
void db_array_init(struct buf *b);
void db_array_add(struct buf *b, const char *value);
void db_array_add_int(struct buf *b, long long value);
/* Closes the literal and returns b->data (owned by b), or NULL when any
 * append failed (out of memory): the literal would be incomplete. */
const char *db_array_finish(struct buf *b);
