#!/usr/bin/env bash
# A private PostgreSQL cluster (Debian's postgresql, 15) for tests and CI:
# its own data directory and port on 127.0.0.1, run as user postgres,
# trust authentication for the test role on loopback only.
#
#   scripts/pg-loopback.sh start   # initdb (once) + pg_ctl start, waits until ready
#   scripts/pg-loopback.sh env     # prints `export PG_LOOPBACK_URL=…` for the tests
#   scripts/pg-loopback.sh stop    # pg_ctl stop (the postmaster's PID from its pid file), removes the data
#
# Settings: PG_LOOPBACK_DIR (default /tmp/chunked-backup-pg), PG_LOOPBACK_PORT
# (default 55432), PG_LOOPBACK_LISTEN (extra listen addresses, comma-separated,
# e.g. a veth address for the fleet test's network namespaces).
set -euo pipefail

DIR=${PG_LOOPBACK_DIR:-/tmp/chunked-backup-pg}
PORT=${PG_LOOPBACK_PORT:-55432}
LISTEN=127.0.0.1${PG_LOOPBACK_LISTEN:+,$PG_LOOPBACK_LISTEN}
BIN=${PG_LOOPBACK_BIN:-/usr/lib/postgresql/15/bin}
ROLE=chunked
# A second role that must give a password (scram), for the PGPASSWORD/.pgpass tests (a fixture, not a secret).
PW_ROLE=chunked_pw
PW_PASSWORD=loopback-pw
log() { echo "pg-loopback: $*" >&2; }
as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }

start() {
  [ -x "$BIN/initdb" ] || { log "no PostgreSQL under $BIN (apt-get install postgresql)"; exit 1; }
  mkdir -p "$DIR"
  chown postgres: "$DIR"
  if [ ! -s "$DIR/data/PG_VERSION" ]; then
    as_pg "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log"
    # Sockets in the state directory, not /run/postgresql (which may be absent).
    cat >>"$DIR/data/postgresql.conf" <<CONF
unix_socket_directories = '$DIR'
fsync = off
synchronous_commit = off
max_connections = 200
CONF
    # Hosts of the fleet test connect from veth addresses in 10.231.0.0/24 (namespaces made by the test).
    echo "host all all 10.231.0.0/24 trust" >>"$DIR/data/pg_hba.conf"
    # First match wins: the password role is checked before the trust lines.
    sed -i "1i host all $PW_ROLE 127.0.0.1/32 scram-sha-256" "$DIR/data/pg_hba.conf"
  fi
  if as_pg "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then log "already running"; return 0; fi
  as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 30 \
    -o "-p $PORT -c listen_addresses='$LISTEN'" start >/dev/null
  as_pg "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -qAt -c \
    "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN CREATE ROLE $ROLE LOGIN CREATEDB; END IF; END\$\$" >/dev/null
  as_pg "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -qAt -c \
    "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PW_ROLE') THEN CREATE ROLE $PW_ROLE LOGIN PASSWORD '$PW_PASSWORD'; END IF; END\$\$" >/dev/null
  as_pg "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -qAt -c "SELECT 1 FROM pg_database WHERE datname = '$ROLE'" | grep -q 1 ||
    as_pg "$BIN/createdb" -h "$DIR" -p "$PORT" -U postgres -O "$ROLE" "$ROLE"
  as_pg "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -qAt -c "GRANT ALL ON DATABASE $ROLE TO $PW_ROLE" >/dev/null
  log "running on 127.0.0.1:$PORT (data in $DIR/data)"
}

stop() {
  [ -s "$DIR/data/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null || true
  rm -rf "$DIR"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env)
    echo "export PG_LOOPBACK_URL=postgres://$ROLE@127.0.0.1:$PORT/$ROLE"
    echo "export PG_LOOPBACK_DIR=$DIR"
    echo "export PG_LOOPBACK_PORT=$PORT"
    echo "export PG_LOOPBACK_PW_USER=$PW_ROLE"
    echo "export PG_LOOPBACK_PW_PASSWORD=$PW_PASSWORD" ;;
  status) as_pg "$BIN/pg_ctl" -D "$DIR/data" status ;;
  *) echo "usage: $0 start|env|status|stop" >&2; exit 2 ;;
esac
