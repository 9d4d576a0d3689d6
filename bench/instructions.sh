#!/usr/bin/env bash
# Instructions per request of the gateway, counted by valgrind's callgrind: deterministic where
# CPU time on a shared 2-core machine is not, so it shows a change of a few percent that wall-clock
# runs cannot. Counts user-space instructions of every thread (the spend-log writer's SQLite thread
# included), not kernel time.
#
#   bench/instructions.sh [CONFIG] [REQUESTS]     (defaults: the seed config, 3000)
#
# Starts `sluice mock` and the gateway (under callgrind) on free ports, warms up with 500 requests,
# counts the next REQUESTS at 16 connections, and prints the figure and the costliest functions.
# Needs valgrind (`apt-get install valgrind`) and a release build (`cargo build --release -p sluice`).
# The config's api_base 127.0.0.1:8090 (examples/seed-openai.yaml's) is pointed at the mock, which
# runs on $MOCK_PORT (default 8190). Add `proxy_batch_write_at: 1` under general_settings to count
# the spend-log writes inside the window.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SLUICE_BIN:-target/release/sluice}
CONFIG=$(realpath "${1:-examples/seed-openai.yaml}")
N=${2:-3000}
PORT=${PORT:-4100}
MOCK_PORT=${MOCK_PORT:-8190}
command -v valgrind >/dev/null || { echo "valgrind is not installed: apt-get install valgrind" >&2; exit 2; }
[ -x "$BIN" ] || { echo "no $BIN: cargo build --release -p sluice" >&2; exit 2; }
BIN=$(realpath "$BIN")
WORK=$(mktemp -d)
sed "s#127.0.0.1:8090#127.0.0.1:$MOCK_PORT#" "$CONFIG" >"$WORK/config.yaml"
cleanup() { kill "${GW:-}" "${MOCK:-}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

(cd "$WORK" && exec "$BIN" mock --port "$MOCK_PORT") >"$WORK/mock.log" 2>&1 &
MOCK=$!
(cd "$WORK" && exec valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p" \
    "$BIN" --config "$WORK/config.yaml" --port "$PORT" --num_workers 1) >"$WORK/gateway.log" 2>&1 &
GW=$!
for _ in $(seq 300); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/health/liveliness" && break
    sleep 0.1
done
"$BIN" load --host "http://127.0.0.1:$PORT" -u 16 -n 500 -q >/dev/null
callgrind_control -z "$GW" >/dev/null 2>&1
"$BIN" load --host "http://127.0.0.1:$PORT" -u 16 -n "$N" -q --fail-on-error >/dev/null
callgrind_control -d "$GW" >/dev/null 2>&1
sleep 0.5
OUT=$(ls "$WORK"/cg.*.1 2>/dev/null | head -1)
# awk reads to the end: quitting early would end the annotator by SIGPIPE, which pipefail turns
# into a silent exit of this script.
TOTAL=$(callgrind_annotate "$OUT" | awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done = 1}')
echo "$(basename "$CONFIG"): $((TOTAL / N)) instructions per request ($N requests; profile kept in $OUT)"
callgrind_annotate --inclusive=yes "$OUT" | grep -E '^ *[0-9,]+ ' | grep -E 'sluice_|hyper|sqlite3_step|serde_json' |
    sed -E 's/\( *[0-9.]+%\)//; s#/root/.cargo/registry/src/[^/]+/##' | sed -n 1,25p |
    awk -v n="$N" '{c=$1; gsub(",", "", c); $1=""; printf "%9.0f %s\n", c / n, substr($0, 1, 150)}'
trap - EXIT
cleanup
