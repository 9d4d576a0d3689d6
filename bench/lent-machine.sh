#!/usr/bin/env bash
# The core benchmark (direct, nginx, sluice; pinned) on a quieter, larger machine than the 2-core
# one the project is built on: one that has no network and no nginx, to which a folder can be
# copied. Two steps:
#
#   bench/lent-machine.sh prepare     here: fills bench/.work/lent/ (git-ignored) with a stripped
#                                     release build and Debian's nginx with its libraries (~27 MB)
#   bench/lent-machine.sh run OUTDIR  there, from the repository's root, after copying the tree
#                                     and bench/.work/lent/: writes OUTDIR/RESULTS-lent.md and .json,
#                                     the bench log and a description of the machine
#
# `run` pins the gateway to core $GW (default 2: core 0 takes the machine's own interrupts) and the
# load generator and mock to the first other core that is not its hyperthread sibling. REPEATS
# (default 5), DURATION (default 5s) and BENCH_LIMIT (seconds, default 500; the report is written
# as PARTIAL if it is reached) size the run: the defaults take about 7 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
LENT=bench/.work/lent

prepare() {
    cargo build --release -p sluice
    command -v nginx >/dev/null || { echo "nginx is not installed: apt-get install nginx-light" >&2; exit 2; }
    rm -rf "$LENT" && mkdir -p "$LENT/bin" "$LENT/lib"
    objcopy --strip-debug target/release/sluice "$LENT/sluice"
    cp "$(command -v nginx)" "$LENT/bin/nginx.bin"
    # The libraries nginx links, so it runs where they are missing or of another version.
    ldd "$(command -v nginx)" | awk '/=> \// {print $3}' | grep -v -e libc.so -e ld-linux | xargs -I{} cp -L {} "$LENT/lib/"
    cat >"$LENT/bin/nginx" <<'EOF'
#!/bin/sh
here=$(dirname "$(readlink -f "$0")")
LD_LIBRARY_PATH="$here/../lib" exec "$here/nginx.bin" "$@"
EOF
    chmod +x "$LENT/bin/nginx"
    git log -1 --format='%h %cI' >"$LENT/built-from"
    du -sh "$LENT"
}

run() {
    local out=${1:?usage: bench/lent-machine.sh run OUTDIR}
    mkdir -p "$out"
    export PATH="$PWD/$LENT/bin:$PATH" PYTHONUNBUFFERED=1
    # nginx checks its compiled-in temp paths at start, whatever the config says.
    mkdir -p /var/lib/nginx /var/log/nginx 2>/dev/null || true
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    local gw=${GW:-2}
    local siblings
    siblings=$(cat "/sys/devices/system/cpu/cpu$gw/topology/thread_siblings_list" 2>/dev/null || echo "$gw")
    local load
    load=$(python3 - "$siblings" <<'PY'
import os, sys
sib = set()
for part in sys.argv[1].split(","):
    a, _, b = part.partition("-")
    sib |= set(range(int(a), int(b or a) + 1))
mine = sorted(os.sched_getaffinity(0))
free = [c for c in mine if c not in sib and (c != 0 or len(mine) <= 2)]
print(free[0])
PY
)
    {
        uname -a; nproc; lscpu | grep -v '^Flags'; cat /proc/loadavg; echo "nofile $(ulimit -n)"
        nginx -v; "$LENT/sluice" --version; echo "built from $(cat "$LENT/built-from" 2>/dev/null)"
        echo "gateway core $gw (siblings $siblings), load generator and mock core $load"
    } >"$out/machine.txt" 2>&1
    timeout "${BENCH_LIMIT:-500}" python3 bench/bench.py --sluice "$LENT/sluice" --contenders direct,nginx,sluice \
        --pinning pinned --cores "$gw,$load" --repeats "${REPEATS:-5}" --duration "${DURATION:-5s}" --warmup 1s \
        --out "$out/RESULTS-lent.md" --json-out "$out/RESULTS-lent.json" 2>&1 | tee "$out/bench.log"
}

case "${1:-}" in
    prepare) prepare ;;
    run) shift; run "$@" ;;
    *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
