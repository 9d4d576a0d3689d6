#!/usr/bin/env bash
# Real-client tests: the official openai Python SDK and locust (with the seed's
# locustfile) against a sluice gateway and `sluice mock`, started by the tests.
#
# Usage: scripts/python-tests.sh [pytest args...]
#   SLUICE_BIN  the sluice binary to test (default target/debug/sluice; build it first:
#               `cargo build -p sluice`)
#   PYTHON      the interpreter that makes the virtualenv (default python3, >= 3.10)
#
# The virtualenv lives in .venv at the repo root. It is made when missing and
# reinstalled when tests/python/requirements.txt changes (a sha256 stamp in .venv).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

REQ="tests/python/requirements.txt"
VENV="$ROOT/.venv"
STAMP="$VENV/.requirements.sha256"
PYTHON="${PYTHON:-python3}"

SLUICE_BIN="${SLUICE_BIN:-target/debug/sluice}"
case "$SLUICE_BIN" in /*) ;; *) SLUICE_BIN="$ROOT/$SLUICE_BIN" ;; esac
if [[ ! -x "$SLUICE_BIN" ]]; then
    echo "python-tests: sluice binary not found or not executable: $SLUICE_BIN" >&2
    echo "python-tests: build it first with 'cargo build -p sluice', or set SLUICE_BIN" >&2
    exit 2
fi
export SLUICE_BIN

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "python-tests: $PYTHON not found; install python3 (>= 3.10)" >&2
    exit 2
fi

# The admin UI's browser tests drive Debian's Chromium (Playwright downloads no browser here).
if [[ ! -x /usr/bin/chromium ]] && command -v apt-get >/dev/null 2>&1; then
    echo "python-tests: installing chromium for the UI's browser tests" >&2
    SUDO=""
    [[ "$(id -u)" -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium
fi

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"

if [[ ! -x "$VENV/bin/python" || "$want" != "$have" ]]; then
    if [[ ! -x "$VENV/bin/python" ]]; then
        rm -rf "$VENV"
        if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
            # Debian/Ubuntu ship venv's ensurepip separately.
            echo "python-tests: '$PYTHON -m venv' failed; installing python3-venv" >&2
            rm -rf "$VENV"
            if command -v apt-get >/dev/null 2>&1; then
                SUDO=""
                [[ "$(id -u)" -ne 0 ]] && SUDO="sudo"
                pyver="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
                $SUDO apt-get update
                DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y python3-venv \
                    || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "python${pyver}-venv"
            fi
            "$PYTHON" -m venv "$VENV"
        fi
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
    echo "$want" >"$STAMP"
fi

# Files or node ids given run alone; otherwise (no arguments, or only options such as `-k`)
# the whole suite.
for arg in "$@"; do
    case "$arg" in tests/*) exec "$VENV/bin/python" -m pytest -q "$@" ;; esac
done

# The whole suite: most files side by side in SLUICE_TEST_WORKERS processes (pytest-xdist, a
# file's tests kept in one process so its gateways and fixtures are made once), since a test
# mostly waits on the gateways it starts; then, alone, the files that time the gateway or load
# the machine (the seed's scaled load tests, replicas behind nginx, database outages), whose
# figures mean nothing with other tests beside them, and the answer cache's, which give a miss's
# background Redis write a fixed 0.3 s before looking for it (a CI run with the cache's file
# beside others once saw a write land later).
SERIAL=(tests/python/test_replicas.py tests/python/test_locust.py tests/python/test_db_outage.py
    tests/python/test_cache.py)
ignores=()
for f in "${SERIAL[@]}"; do ignores+=("--ignore=$f"); done
status=0
"$VENV/bin/python" -m pytest -q -n "${SLUICE_TEST_WORKERS:-3}" --dist loadfile --durations=10 \
    "${ignores[@]}" tests/python "$@" || status=$?
"$VENV/bin/python" -m pytest -q --durations=5 "${SERIAL[@]}" "$@" || status=$?
exit "$status"
