#!/usr/bin/env bash
# N sluice replicas on one machine, as the seed deploys LiteLLM: behind nginx (round robin,
# keep-alive upstream), one fresh PostgreSQL database on 127.0.0.1:5432, Redis on 127.0.0.1:6379
# under a key prefix of their own, and `sluice mock` limiting each `gemini-vision` deployment to
# its quota (answering 429 beyond, as the seed's fake endpoint does).
#
# Usage:
#   scripts/replicas.sh start [--replicas 4] [--rpm 10000] [--run-dir DIR] [--no-share]
#                             [--num-workers N] [--mock-threads N] [--config FILE]
#       prints the state (nginx URL, replica URLs, database, Redis prefix, run dir) as JSON;
#       the processes keep running in the background, logs in the run dir.
#   scripts/replicas.sh status RUN_DIR     liveness of each process and replica
#   scripts/replicas.sh stop RUN_DIR       stops nginx, the replicas and the mock; drops the
#                                          database; deletes the Redis keys under the prefix
#
#   SLUICE_BIN  the sluice binary (default target/debug/sluice; `cargo build -p sluice`)
#   PGUSER      the PostgreSQL role that creates the database (default root)
#
# The work is done by tests/python/replicas.py (standard library only), which the CI tests
# (tests/python/test_replicas.py) import too.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for tool in psql redis-cli; do
    command -v "$tool" >/dev/null || { echo "replicas: $tool is missing (apt-get install -y postgresql-client redis-tools)" >&2; exit 2; }
done
[[ -x /usr/sbin/nginx ]] || { echo "replicas: /usr/sbin/nginx is missing: apt-get install -y nginx-light" >&2; exit 2; }
export SLUICE_BIN="${SLUICE_BIN:-$ROOT/target/debug/sluice}"
exec python3 "$ROOT/tests/python/replicas.py" "$@"
