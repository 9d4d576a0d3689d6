#!/usr/bin/env bash
# Makes sure the services the tests use are up: PostgreSQL on 127.0.0.1:5432 (trust auth, user
# root) and Redis on 127.0.0.1:6379. Starts them if they are installed but stopped; installs
# PostgreSQL's client and server, and nginx (for the replica tests), from Debian's packages when
# missing.
set -euo pipefail

SUDO=""
[[ "$(id -u)" -ne 0 ]] && SUDO="sudo"

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "services: installing PostgreSQL" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql postgresql-client >/dev/null
fi
if ! pg_up; then
  echo "services: starting PostgreSQL" >&2
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up || { echo "services: PostgreSQL is not accepting connections on 127.0.0.1:5432" >&2; exit 1; }
# The tests connect as `root` without a password (trust auth on loopback).
if ! psql -h 127.0.0.1 -U root -d postgres -Atc 'select 1' >/dev/null 2>&1; then
  echo "services: creating the root role" >&2
  $SUDO -u postgres psql -qc "CREATE ROLE root SUPERUSER LOGIN" 2>/dev/null \
    || su postgres -c "psql -qc 'CREATE ROLE root SUPERUSER LOGIN'"
fi

if command -v redis-server >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  echo "services: starting Redis" >&2
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi

# The replica tests (tests/python/test_replicas.py, scripts/replicas.sh) put nginx in front of
# the replicas, as the seed's deployment has a load balancer.
if [[ ! -x /usr/sbin/nginx ]]; then
  echo "services: installing nginx-light" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx-light >/dev/null \
    || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx >/dev/null
fi
