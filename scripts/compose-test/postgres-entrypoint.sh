#!/bin/bash
# The official image's contract, in short: on an empty PGDATA create the cluster with POSTGRES_USER as superuser
# and POSTGRES_PASSWORD (any characters; passed through a file, never a command line), password (SCRAM) auth for
# every TCP client, and POSTGRES_DB; then run the server as the postgres user, listening on all interfaces.
set -euo pipefail
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  pwfile=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA" > /dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  if [ "$db" != postgres ]; then
    # A private socket while initialising, so that a healthcheck cannot report ready before the real start.
    sock=$(mktemp -d)
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=$sock" -w start > /dev/null
    echo 'CREATE DATABASE :"db"' | psql -v ON_ERROR_STOP=1 -h "$sock" -U "$user" -d postgres -v db="$db" > /dev/null
    pg_ctl -D "$PGDATA" -m fast -w stop > /dev/null
    rmdir "$sock"
  fi
  echo "initialised $PGDATA (user $user, database $db)"
fi
exec "$@"
