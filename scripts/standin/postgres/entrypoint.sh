#!/bin/bash
# TEST DEVICE: entrypoint of the postgres:15 stand-in (see Containerfile).
# First start on an empty PGDATA: initdb with POSTGRES_USER as superuser and
# POSTGRES_PASSWORD as its password, then POSTGRES_DB (default: the user's
# name) in single-user mode, then listen on every address with password
# authentication, as the official image does. Then runs `postgres` as the
# postgres OS user (PID 1, so `docker stop` reaches the server directly).
set -euo pipefail

if [[ "${1:-postgres}" != postgres ]]; then
  exec "$@"
fi
shift || true

: "${PGDATA:=/var/lib/postgresql/data}"
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

install -d -o postgres -g postgres -m 0700 "$PGDATA"
install -d -o postgres -g postgres -m 2775 /var/run/postgresql
chown postgres:postgres "$PGDATA"

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  if [[ -z "${POSTGRES_PASSWORD:-}" ]]; then
    echo "postgres stand-in: POSTGRES_PASSWORD is not set (the official image refuses too)" >&2
    exit 1
  fi
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  chown postgres "$pwfile"
  as_pg initdb --username="$user" --pwfile="$pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
  if [[ "$db" != postgres ]]; then
    printf 'CREATE DATABASE "%s" OWNER "%s";\n' "$db" "$user" |
      as_pg postgres --single -j -D "$PGDATA" postgres >/dev/null
  fi
  printf "listen_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
  printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  echo "postgres stand-in: initialized $PGDATA (user $user, database $db)"
fi

exec setpriv --reuid=postgres --regid=postgres --init-groups -- postgres -D "$PGDATA" "$@"
