/*
 * db.c - libpq connection handling and the migration runner.
 *
 * Migrations take a session advisory lock first, so replicas that start at the
 * same time apply each file exactly once: the second waits, then finds
 * nothing to do.
 */
#include "db.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Arbitrary constant naming the "schema migration" advisory lock. */
#define MIGRATION_LOCK_KEY "7212004"

int db_conninfo_check(const char *conninfo, char *err, size_t errlen)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        /* libpq's message quotes the string, password included: do not pass it on. */
        PQfreemem(perr);
        snprintf(err, errlen, "DATABASE_URL is not a valid libpq connection string or URI");
        return -1;
    }
    PQconninfoFree(opts);
    return 0;
}

void db_error(PGconn *conn, const PGresult *res, char *err, size_t errlen)
{
    const char *m = res ? PQresultErrorMessage(res) : NULL;
    if (!m || !*m)
        m = conn ? PQerrorMessage(conn) : "no connection";
    util_strlcpy(err, m, errlen);
    /* keep one line: libpq messages end with a newline and may add DETAIL lines */
    char *nl = strchr(err, '\n');
    if (nl)
        *nl = '\0';
}

/* libpq prints server NOTICEs on stderr by default: they are not ours to show. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *db_connect(const char *conninfo, const char *application_name, char *err, size_t errlen)
{
    if (db_conninfo_check(conninfo, err, errlen) != 0)
        return NULL;
    /* expand_dbname=1: conninfo may be a full URI. It comes last so that its
     * own settings win over these defaults. */
    const char *keys[] = {"application_name", "connect_timeout", "dbname", NULL};
    const char *vals[] = {application_name, "5", conninfo, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) {
        snprintf(err, errlen, "out of memory connecting to PostgreSQL");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        db_error(c, NULL, err, errlen);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, ignore_notice, NULL);
    return c;
}

int db_ensure(PGconn **conn, const char *conninfo, const char *application_name, char *err,
              size_t errlen)
{
    if (*conn && PQstatus(*conn) == CONNECTION_OK)
        return 0;
    if (*conn) {
        PQfinish(*conn);
        *conn = NULL;
    }
    *conn = db_connect(conninfo, application_name, err, errlen);
    return *conn ? 0 : -1;
}

bool db_is_connection_error(PGconn *conn, const PGresult *res)
{
    if (!conn || PQstatus(conn) != CONNECTION_OK)
        return true;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    /* Class 08: connection exception; 57P0x: admin/crash shutdown, cannot connect now. */
    return state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0);
}

int db_exec(PGconn *conn, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        db_error(conn, r, err, errlen);
    PQclear(r);
    return ok ? 0 : -1;
}

static int sql_file_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 4 && strcmp(d->d_name + n - 4, ".sql") == 0 && d->d_name[0] != '.';
}

static int migration_applied(PGconn *conn, const char *version, char *err, size_t errlen)
{
    const char *params[] = {version};
    PGresult *r = PQexecParams(conn, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, NULL,
                               params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(conn, r, err, errlen);
        PQclear(r);
        return -1;
    }
    int applied = PQntuples(r) > 0;
    PQclear(r);
    return applied;
}

static int migration_apply(PGconn *conn, const char *dir, const char *name, char *err,
                           size_t errlen)
{
    char path[4096];
    char dberr[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    char *sql = util_read_file(path, 16 * 1024 * 1024, NULL);
    if (!sql) {
        snprintf(err, errlen, "cannot read %s", path);
        return -1;
    }

    if (db_exec(conn, "BEGIN", dberr, sizeof(dberr)) != 0)
        goto fail;
    if (db_exec(conn, sql, dberr, sizeof(dberr)) != 0)
        goto fail_rollback;
    const char *params[] = {name};
    PGresult *r = PQexecParams(conn, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, NULL,
                               params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        db_error(conn, r, dberr, sizeof(dberr));
        PQclear(r);
        goto fail_rollback;
    }
    PQclear(r);
    if (db_exec(conn, "COMMIT", dberr, sizeof(dberr)) != 0)
        goto fail;
    free(sql);
    return 0;

fail_rollback:
    db_exec(conn, "ROLLBACK", err, errlen);
fail:
    snprintf(err, errlen, "migration %s failed: %s", name, dberr);
    free(sql);
    return -1;
}

int db_migrate(PGconn *conn, const char *dir, char *err, size_t errlen)
{
    struct dirent **files = NULL;
    int applied = 0;
    char dberr[512];

    int n = scandir(dir, &files, sql_file_filter, alphasort);
    if (n < 0) {
        snprintf(err, errlen, "cannot read migrations directory %s (set MIGRATIONS_DIR)", dir);
        return -1;
    }
    if (db_exec(conn, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", dberr, sizeof(dberr)) !=
            0 ||
        db_exec(conn,
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())",
                dberr, sizeof(dberr)) != 0) {
        snprintf(err, errlen, "migration setup failed: %s", dberr);
        applied = -1;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        int done = migration_applied(conn, files[i]->d_name, err, errlen);
        if (done < 0) {
            applied = -1;
            break;
        }
        if (done)
            continue;
        if (migration_apply(conn, dir, files[i]->d_name, err, errlen) != 0) {
            applied = -1;
            break;
        }
        applied++;
    }
out:
    db_exec(conn, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")", dberr, sizeof(dberr));
    for (int i = 0; i < n; i++)
        free(files[i]);
    free(files);
    return applied;
}

void db_array_init(struct buf *b)
{
    buf_init(b, 0);
    buf_append(b, "{", 1);
}

static void array_sep(struct buf *b)
{
    if (b->len > 1)
        buf_append(b, ",", 1);
}

void db_array_add(struct buf *b, const char *value)
{
    array_sep(b);
    if (!value) {
        buf_append(b, "NULL", 4);
        return;
    }
    buf_append(b, "\"", 1);
    for (const char *p = value; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf_append(b, "\\", 1);
        buf_append(b, p, 1);
    }
    buf_append(b, "\"", 1);
}

void db_array_add_int(struct buf *b, long long value)
{
    char n[32];
    array_sep(b);
    int len = snprintf(n, sizeof(n), "%lld", value);
    buf_append(b, n, (size_t)len);
}

const char *db_array_finish(struct buf *b)
{
    if (buf_append(b, "}", 1) != 0 || b->failed)
        return NULL;
    return b->data;
}
