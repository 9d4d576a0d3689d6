#!/usr/bin/env bash
# CPU time per request of two or more gateway builds, alternated: the quickest way to compare a
# change with the build before it on this noisy two-core machine. Each build in turn is started
# on core 0 with CONFIG (its one worker), warmed up for a second, then loaded by 64 closed-loop
# users (`sluice load` on core 1, beside `sluice mock`) for DURATION; its CPU ticks from /proc over
# the requests answered give the figure. Compare builds within a round, and the rounds' ratios.
#
#   bench/ab.sh CONFIG ROUNDS DURATION BIN...     (e.g. bench/ab.sh c.yaml 4 5s old/sluice new/sluice)
#
# CONFIG's api_base must point at 127.0.0.1:8090 (examples/seed-openai.yaml's); the gateway
# listens on 4100. The first BIN also runs the mock and the load generator.
set -euo pipefail
[ $# -ge 4 ] || { sed -n 2,11p "$0" >&2; exit 2; }
CONFIG=$1 ROUNDS=$2 DURATION=$3
shift 3
TOOLS=$1
cleanup() { kill "${GW:-}" "${MOCK:-}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
taskset -c 1 "$TOOLS" mock --port 8090 >/dev/null 2>&1 &
MOCK=$!
for round in $(seq "$ROUNDS"); do
  for BIN in "$@"; do
    taskset -c 0 "$BIN" --config "$CONFIG" --port 4100 --num_workers 1 >/dev/null 2>&1 &
    GW=$!
    for _ in $(seq 200); do curl -s -o /dev/null http://127.0.0.1:4100/health/liveliness && break; sleep 0.05; done
    taskset -c 1 "$TOOLS" load --host http://127.0.0.1:4100 -u 64 -t 1s -q >/dev/null 2>&1
    before=$(awk '{print $14 + $15}' "/proc/$GW/stat")
    answered=$(taskset -c 1 "$TOOLS" load --host http://127.0.0.1:4100 -u 64 -t "$DURATION" 2>&1 | awk '/Aggregated/ {print $2}')
    after=$(awk '{print $14 + $15}' "/proc/$GW/stat")
    ticks=$(getconf CLK_TCK)
    echo "round $round $BIN: $(awk -v t=$((after - before)) -v n="$answered" -v hz="$ticks" 'BEGIN {printf "%.2f", t * 1e6 / hz / n}') us/request ($answered requests)"
    kill "$GW"; wait "$GW" 2>/dev/null || true
  done
done
