#!/usr/bin/env bash
# A real OpenStack Swift (Debian 12's packages, Swift 2.30) on 127.0.0.1, for
# tests, CI and benchmarks: one replica, the Swift API with tempauth, the S3
# API (s3api) on one proxy, and optionally a real Keystone (Debian's
# python3-keystone) with a second proxy, over the same storage servers, that
# accepts Keystone tokens (authtoken + keystoneauth). Two proxies keep the
# tempauth/S3 path free of token validations against Keystone.
#
#   scripts/swift-loopback.sh start   # installs what is missing, starts, waits until ready
#   scripts/swift-loopback.sh env     # prints `export VAR=…` lines for the tests
#   scripts/swift-loopback.sh status
#   scripts/swift-loopback.sh stop    # stops every server by its process group, removes the data
#   scripts/swift-loopback.sh crash NAME   # SIGKILLs one server's process group, as a crash would
#   scripts/swift-loopback.sh revive NAME  # starts that server again on its old config and data, waits until it answers
#     (NAME: object, container, account, proxy, proxy-keystone, keystone, memcached)
#
# Settings (environment): SWIFT_LOOPBACK_DIR (state, default
# /tmp/chunked-backup-swift), SWIFT_LOOPBACK_PORT (proxy, default 8080; the
# object/container/account servers use 6200-6202, memcached 11311, Keystone
# 5000 and the proxy that takes Keystone tokens 8081:
# SWIFT_LOOPBACK_{OBJECT,CONTAINER,ACCOUNT,MEMCACHED,KEYSTONE,KEYSTONE_PROXY}_PORT),
# SWIFT_LOOPBACK_KEYSTONE=0 to skip Keystone, SWIFT_LOOPBACK_WORKERS (worker
# processes per Swift server, default 2), SWIFT_LOOPBACK_ERROR_LIMIT_SECONDS (how long a proxy shuns a storage server
# after 10 errors, Swift's error_suppression_interval, default 60: with one
# replica there is no other server to go to, so a crashed and revived server
# stays unreachable through the proxy that long).
#
# Each server runs under its own `setsid`, so that it and its children form
# one process group; `stop` signals those groups (by the PIDs saved at start),
# never processes by name.
set -euo pipefail

DIR=${SWIFT_LOOPBACK_DIR:-/tmp/chunked-backup-swift}
PROXY_PORT=${SWIFT_LOOPBACK_PORT:-8080}
OBJECT_PORT=${SWIFT_LOOPBACK_OBJECT_PORT:-6200}
CONTAINER_PORT=${SWIFT_LOOPBACK_CONTAINER_PORT:-6201}
ACCOUNT_PORT=${SWIFT_LOOPBACK_ACCOUNT_PORT:-6202}
MEMCACHED_PORT=${SWIFT_LOOPBACK_MEMCACHED_PORT:-11311}
KEYSTONE_PORT=${SWIFT_LOOPBACK_KEYSTONE_PORT:-5000}
KEYSTONE_PROXY_PORT=${SWIFT_LOOPBACK_KEYSTONE_PROXY_PORT:-8081}
WITH_KEYSTONE=${SWIFT_LOOPBACK_KEYSTONE:-1}
ERROR_LIMIT_SECONDS=${SWIFT_LOOPBACK_ERROR_LIMIT_SECONDS:-60}
# Worker processes per server (0 = the server's own process only).
WORKERS=${SWIFT_LOOPBACK_WORKERS:-2}
HOST=127.0.0.1
PY=/usr/bin/python3 # Debian's interpreter (Swift and Keystone live in its dist-packages)

SWIFT_PACKAGES="swift swift-proxy swift-account swift-container swift-object memcached"
KEYSTONE_PACKAGES="python3-keystone python3-keystonemiddleware"

# Credentials of the loopback instance (test fixtures, not secrets).
V1_USER=test:tester
V1_KEY=testing
KS_ADMIN_PASSWORD=loopback-admin
KS_USER=swiftuser
KS_PASSWORD=loopback-swift
KS_PROJECT=backups

log() { echo "swift-loopback: $*" >&2; }

# ---- install ----------------------------------------------------------------
install_packages() {
  local missing=()
  command -v swift-proxy-server >/dev/null && command -v memcached >/dev/null || missing+=($SWIFT_PACKAGES)
  if [ "$WITH_KEYSTONE" = 1 ] && ! [ -x /usr/bin/keystone-manage ]; then missing+=($KEYSTONE_PACKAGES); fi
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  # Keep apt's maintainer scripts from starting Debian's own daemons (on 0.0.0.0).
  local policy=/usr/sbin/policy-rc.d restore=""
  if [ -e "$policy" ]; then restore=$(mktemp) && cp -p "$policy" "$restore"; fi
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
  local status=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-upgrade "${missing[@]}" >/dev/null || status=$?
  if [ -n "$restore" ]; then mv "$restore" "$policy"; else rm -f "$policy"; fi
  return $status
}

# ---- configuration ------------------------------------------------------------
write_configs() {
  mkdir -p "$DIR/etc" "$DIR/srv/d1" "$DIR/run" "$DIR/log" "$DIR/cache"
  local common="[DEFAULT]
bind_ip = $HOST
workers = $WORKERS
user = root
swift_dir = $DIR/etc
devices = $DIR/srv
mount_check = false
log_address = $DIR/run/log.sock
log_level = INFO
"
  for kind in account container object; do
    local port_var=${kind^^}_PORT
    cat >"$DIR/etc/$kind-server.conf" <<EOF
$common
bind_port = ${!port_var}

[pipeline:main]
pipeline = healthcheck $kind-server

[app:$kind-server]
use = egg:swift#$kind
log_requests = false

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  done

  # The Swift API and the S3 API (s3api) with tempauth. Only the middleware
  # that backups use (plus copy/slo/dlo that s3api builds on): each filter
  # costs CPU on every request, and a 2-core machine notices.
  cat >"$DIR/etc/proxy-server.conf" <<EOF
$common
bind_port = $PROXY_PORT

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
error_suppression_interval = $ERROR_LIMIT_SECONDS

[filter:tempauth]
use = egg:swift#tempauth
reseller_prefix = AUTH_
user_admin_admin = admin .admin .reseller_admin
user_test_tester = $V1_KEY .admin
user_test2_tester2 = testing2 .admin

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
storage_domain = s3.localhost

[filter:cache]
use = egg:swift#memcache
memcache_servers = $HOST:$MEMCACHED_PORT

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
EOF

  # A second proxy over the same servers whose auth is Keystone: authtoken
  # validates the token, keystoneauth maps its project to account KEY_<project id>.
  if [ "$WITH_KEYSTONE" = 1 ]; then
    cat >"$DIR/etc/proxy-keystone.conf" <<EOF
$common
bind_port = $KEYSTONE_PROXY_PORT

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats authtoken keystoneauth proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
error_suppression_interval = $ERROR_LIMIT_SECONDS

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = http://$HOST:$KEYSTONE_PORT/v3
auth_url = http://$HOST:$KEYSTONE_PORT/v3
interface = public
auth_type = password
username = admin
password = $KS_ADMIN_PASSWORD
project_name = admin
user_domain_name = Default
project_domain_name = Default
delay_auth_decision = true
service_token_roles_required = true
cache = swift.cache
include_service_catalog = false

[filter:keystoneauth]
use = egg:swift#keystoneauth
reseller_prefix = KEY_
operator_roles = admin, member

[filter:cache]
use = egg:swift#memcache
memcache_servers = $HOST:$MEMCACHED_PORT
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
EOF
  fi
}

build_rings() {
  local kind port_var pids=()
  for kind in account container object; do
    port_var=${kind^^}_PORT
    (
      cd "$DIR/etc"
      swift-ring-builder "$kind.builder" create 10 1 1 >/dev/null
      swift-ring-builder "$kind.builder" add --region 1 --zone 1 --ip "$HOST" --port "${!port_var}" --device d1 --weight 100 >/dev/null
      swift-ring-builder "$kind.builder" rebalance >/dev/null || [ $? -eq 1 ] # 1 is a warning
    ) &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
}

# ---- processes ------------------------------------------------------------------
# start NAME COMMAND...: run under setsid in its own process group, remember its PID.
# The pid file holds the PID and its start time, so that a stale file (a
# reboot, a reused PID) never leads to signalling somebody else's processes.
starttime() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }

spawn() {
  local name=$1
  shift
  setsid "$@" </dev/null >>"$DIR/log/$name.log" 2>&1 &
  echo "$! $(starttime $!)" >"$DIR/run/$name.pid"
}

# Prints the PID of NAME if it is still the process this script started.
ours() {
  local pid start
  [ -f "$DIR/run/$1.pid" ] && read -r pid start <"$DIR/run/$1.pid" || return 1
  [ -n "${start:-}" ] && [ "$(starttime "$pid")" = "$start" ] && echo "$pid"
}

alive() { ours "$1" >/dev/null; }

# Swift logs through syslog; there is no syslog daemon here, so read the
# datagram socket ourselves (else Swift falls back to UDP port 514).
start_log_reader() {
  rm -f "$DIR/run/log.sock"
  spawn syslog "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
out = open(sys.argv[2], "ab", buffering=0)
while True:
    out.write(s.recv(65536).rstrip(b"\0") + b"\n")
' "$DIR/run/log.sock" "$DIR/log/swift.log"
  for _ in $(seq 1 50); do [ -S "$DIR/run/log.sock" ] && return 0; sleep 0.05; done
  log "the log socket did not appear"
  return 1
}

wait_http() { # URL, seconds
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then log "no answer from $1"; return 1; fi
    sleep 0.1
  done
}

keystone_setup() {
  local conf="$DIR/keystone/keystone.conf"
  mkdir -p "$DIR/keystone/fernet" "$DIR/keystone/credential"
  cat >"$conf" <<EOF
[DEFAULT]
log_file = $DIR/log/keystone-app.log
use_stderr = false
[database]
connection = sqlite:///$DIR/keystone/keystone.db
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = $DIR/keystone/fernet
[fernet_receipts]
key_repository = $DIR/keystone/fernet
[credential]
key_repository = $DIR/keystone/credential
EOF
  # Fernet keys are 32 random bytes, urlsafe base64: 0 is staged, 1 primary.
  for k in 0 1; do head -c 32 /dev/urandom | base64 | tr '+/' '-_' >"$DIR/keystone/fernet/$k"; done
  chmod 700 "$DIR/keystone/fernet"
  keystone-manage --config-file "$conf" db_sync >>"$DIR/log/keystone-manage.log" 2>&1
  # The admin (bootstrap), the object-store service and endpoints, a project and a user.
  "$PY" "$(dirname "$0")/keystone-loopback-setup.py" "$conf" "http://$HOST:$KEYSTONE_PORT/v3" "$KS_ADMIN_PASSWORD" \
    "http://$HOST:$KEYSTONE_PROXY_PORT/v1/KEY_%(project_id)s" "$KS_PROJECT" "$KS_USER" "$KS_PASSWORD" >>"$DIR/log/keystone-manage.log" 2>&1
  spawn_keystone
  wait_http "http://$HOST:$KEYSTONE_PORT/v3" 30
}

spawn_keystone() {
  OS_KEYSTONE_CONFIG_FILES=$DIR/keystone/keystone.conf spawn keystone keystone-wsgi-public --host "$HOST" --port "$KEYSTONE_PORT"
}

start() {
  if alive proxy; then log "already running (proxy pid $(ours proxy))"; return 0; fi
  local t0=$SECONDS
  install_packages
  stop_servers quiet
  rm -rf "$DIR"
  write_configs
  start_log_reader
  spawn memcached memcached -l "$HOST" -p "$MEMCACHED_PORT" -U 0 -m 64 -u root
  local ks_pid=""
  if [ "$WITH_KEYSTONE" = 1 ]; then keystone_setup & ks_pid=$!; fi
  build_rings
  for kind in account container object; do spawn "$kind" "swift-$kind-server" "$DIR/etc/$kind-server.conf"; done
  spawn proxy swift-proxy-server "$DIR/etc/proxy-server.conf"
  local ports="$ACCOUNT_PORT $CONTAINER_PORT $OBJECT_PORT $PROXY_PORT"
  if [ "$WITH_KEYSTONE" = 1 ]; then
    spawn proxy-keystone swift-proxy-server "$DIR/etc/proxy-keystone.conf"
    ports="$ports $KEYSTONE_PROXY_PORT"
  fi
  for port in $ports; do wait_http "http://$HOST:$port/healthcheck" 40; done
  if [ -n "$ks_pid" ]; then
    wait "$ks_pid" || { log "Keystone setup failed; see $DIR/log/keystone*.log"; return 1; }
  fi
  # Ready means: tempauth answers with a token and the account can be read.
  local headers token url
  headers=$(curl -fsS -D - -o /dev/null -H "X-Auth-User: $V1_USER" -H "X-Auth-Key: $V1_KEY" "http://$HOST:$PROXY_PORT/auth/v1.0")
  token=$(echo "$headers" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-auth-token"{print $2}')
  url=$(echo "$headers" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-storage-url"{print $2}')
  curl -fsS -o /dev/null -I -H "X-Auth-Token: $token" "$url"
  log "ready in $((SECONDS - t0)) s: proxy http://$HOST:$PROXY_PORT (Swift API + S3 API)$([ "$WITH_KEYSTONE" = 1 ] && echo ", Keystone http://$HOST:$KEYSTONE_PORT/v3 with its Swift proxy on port $KEYSTONE_PROXY_PORT")"
}

stop_servers() {
  local name pid stopping=()
  for name in proxy proxy-keystone object container account keystone memcached syslog; do
    if pid=$(ours "$name"); then
      kill -TERM -- "-$pid" 2>/dev/null || true
      stopping+=("$pid")
    fi
    rm -f "$DIR/run/$name.pid"
  done
  for pid in "${stopping[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  [ "${1:-}" = quiet ] || log "stopped"
}

stop() {
  stop_servers
  # Keep the logs for a post-mortem; drop the data.
  rm -rf "$DIR/srv" "$DIR/keystone" "$DIR/cache"
}

# crash NAME: SIGKILL the server's process group (workers too), no chance to clean up.
crash() {
  local pid
  pid=$(ours "$1") || { log "$1 is not running"; return 1; }
  kill -KILL -- "-$pid" 2>/dev/null || true
  # Gone, or a zombie its new parent has not reaped yet: either way it serves nothing.
  for _ in $(seq 1 50); do
    if ! kill -0 "$pid" 2>/dev/null || [ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $1}')" = Z ]; then break; fi
    sleep 0.05
  done
  rm -f "$DIR/run/$1.pid"
}

# revive NAME: start a crashed server again, as its supervisor would, and wait until it answers.
revive() {
  if alive "$1"; then log "$1 is already running"; return 0; fi
  case "$1" in
    account | container | object)
      spawn "$1" "swift-$1-server" "$DIR/etc/$1-server.conf"
      local port_var=${1^^}_PORT
      wait_http "http://$HOST:${!port_var}/healthcheck" 40
      ;;
    proxy) spawn proxy swift-proxy-server "$DIR/etc/proxy-server.conf" && wait_http "http://$HOST:$PROXY_PORT/healthcheck" 40 ;;
    proxy-keystone)
      spawn proxy-keystone swift-proxy-server "$DIR/etc/proxy-keystone.conf"
      wait_http "http://$HOST:$KEYSTONE_PROXY_PORT/healthcheck" 40
      ;;
    keystone) spawn_keystone && wait_http "http://$HOST:$KEYSTONE_PORT/v3" 40 ;;
    memcached) spawn memcached memcached -l "$HOST" -p "$MEMCACHED_PORT" -U 0 -m 64 -u root ;;
    *) log "revive: unknown server $1"; return 2 ;;
  esac
}

env_lines() {
  cat <<EOF
export SWIFT_LOOPBACK_AUTH_URL=http://$HOST:$PROXY_PORT/auth/v1.0
export SWIFT_LOOPBACK_USER=$V1_USER
export SWIFT_LOOPBACK_KEY=$V1_KEY
export SWIFT_LOOPBACK_S3_ENDPOINT=http://$HOST:$PROXY_PORT
export SWIFT_LOOPBACK_S3_REGION=us-east-1
export SWIFT_LOOPBACK_S3_ACCESS_KEY=$V1_USER
export SWIFT_LOOPBACK_S3_SECRET_KEY=$V1_KEY
export SWIFT_LOOPBACK_S3_DOMAIN=s3.localhost
export SWIFT_LOOPBACK_MEMCACHED=$HOST:$MEMCACHED_PORT
EOF
  if [ "$WITH_KEYSTONE" = 1 ]; then
    cat <<EOF
export SWIFT_LOOPBACK_KEYSTONE_URL=http://$HOST:$KEYSTONE_PORT/v3
export SWIFT_LOOPBACK_KEYSTONE_USER=$KS_USER
export SWIFT_LOOPBACK_KEYSTONE_PASSWORD=$KS_PASSWORD
export SWIFT_LOOPBACK_KEYSTONE_PROJECT=$KS_PROJECT
EOF
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) env_lines ;;
  crash | revive)
    [ -n "${2:-}" ] || { echo "usage: $0 $1 NAME" >&2; exit 2; }
    "$1" "$2"
    ;;
  status)
    for name in syslog memcached account container object proxy proxy-keystone keystone; do
      if pid=$(ours "$name"); then echo "$name: running (pid $pid)"; else echo "$name: stopped"; fi
    done
    ;;
  *) echo "usage: $0 start|stop|env|status|crash NAME|revive NAME" >&2; exit 2 ;;
esac
