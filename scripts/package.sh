#!/usr/bin/env bash
# Builds sluice as the container image ships it, without a container engine: the Dockerfile's
# build stage runs exactly this script.
#
#   scripts/package.sh                          release build (--locked) into dist/: sluice, and
#                                               config.yaml (examples/container.yaml)
#   scripts/package.sh --check [--sluice BIN]   no release build: checks that the Dockerfile copies
#                                               paths that exist and runs this script, that the
#                                               configs the image and the Kubernetes example ship
#                                               pass `sluice check`, and validates the Kubernetes
#                                               manifests against the Kubernetes API's schemas
#                                               (kubernetes-validate, from .venv, offline)
#
# --check uses BIN (default target/debug/sluice, built with `cargo build -p sluice`) and the
# virtualenv that scripts/python-tests.sh makes (.venv, from tests/python/requirements.txt).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The Kubernetes version the manifests are validated against.
KUBERNETES_VERSION=1.30.0

build() {
    cargo build --release --locked -p sluice
    rm -rf dist
    mkdir -p dist
    cp target/release/sluice dist/sluice
    cp examples/container.yaml dist/config.yaml
    echo "package: dist/sluice ($(du -h dist/sluice | cut -f1)), dist/config.yaml"
    layout dist/sluice
}

# How much of the code layout the release link was given (crates/sluice/build.rs) the binary
# holds: a list gone stale (a dependency updated) costs ~9 MB of RSS, not correctness, so this
# warns rather than fails.
layout() {
    command -v nm >/dev/null || return 0
    local list=crates/sluice/symbol-order.txt listed held
    listed=$(LC_ALL=C sort -u "$list" | wc -l)
    held=$(LC_ALL=C comm -12 <(LC_ALL=C sort -u "$list") \
        <(nm --defined-only "$1" | awk '{print $3}' | LC_ALL=C sort -u) | wc -l)
    echo "package: $1 holds $held of the $listed functions $list lists"
    if (( held * 10 < listed * 9 )); then
        echo "package: warning: $list is stale; rebuild it (python3 bench/symbol_order.py, needs valgrind), then the binary" >&2
    fi
}

fail() {
    echo "package --check: $*" >&2
    exit 1
}

check() {
    local sluice="$1"
    [[ -x "$sluice" ]] || fail "sluice binary not found at $sluice: run 'cargo build -p sluice' or pass --sluice BIN"
    local venv="$ROOT/.venv"
    [[ -x "$venv/bin/kubernetes-validate" ]] \
        || fail "kubernetes-validate not in .venv: run scripts/python-tests.sh once (it installs tests/python/requirements.txt)"

    # Every path the build stage copies from the context exists, and it builds with this script.
    local copies=0
    while read -r src; do
        [[ -e "$src" ]] || fail "Dockerfile copies $src, which does not exist"
        copies=$((copies + 1))
    done < <(awk '$1 == "COPY" && $2 !~ /^--from=/ { for (i = 2; i < NF; i++) print $i }' Dockerfile)
    ((copies > 0)) || fail "found no COPY line in the Dockerfile"
    grep -q '^RUN bash scripts/package.sh$' Dockerfile || fail "the Dockerfile's build stage must run 'bash scripts/package.sh'"
    # What the runtime stage takes from the build stage is what build() lays out.
    while read -r path; do
        case "$path" in
            /src/dist/sluice | /src/dist/config.yaml | /data) ;;
            *) fail "the Dockerfile copies $path from the build stage, which scripts/package.sh does not make" ;;
        esac
    done < <(awk '$1 == "COPY" && ($2 ~ /^--from=build/ || $3 ~ /^--from=build/) { print $(NF-1) }' Dockerfile)
    grep -q 'HEALTHCHECK .*' Dockerfile || fail "the Dockerfile has no HEALTHCHECK"
    # The runtime image (distroless cc) has glibc and libgcc and nothing else: a new shared
    # library (libssl, say) would start in CI and fail in the container.
    if command -v ldd >/dev/null 2>&1; then
        local extra
        extra="$(ldd "$sluice" | awk '{print $1}' | grep -Ev '^(linux-vdso\.so|/lib64/ld-linux|ld-linux|libc\.so|libm\.so|libgcc_s\.so|libpthread\.so|libdl\.so|librt\.so)' || true)"
        [[ -z "$extra" ]] || fail "sluice links libraries the distroless runtime image lacks: $extra"
    fi
    "$sluice" health --help >/dev/null || fail "the HEALTHCHECK's 'sluice health' subcommand is missing"
    LITELLM_MASTER_KEY=sk-check "$sluice" check --strict --config examples/container.yaml >/dev/null \
        || fail "examples/container.yaml (the image's config) does not pass sluice check --strict (nothing ignored or refused)"
    grep -q 'master_key: os.environ/LITELLM_MASTER_KEY' examples/container.yaml \
        || fail "the image's config must take its master key from LITELLM_MASTER_KEY, not ship one"

    # The ConfigMap's config.yaml passes `sluice check` with the Secret's variable set.
    local tmp
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' RETURN
    "$venv/bin/python" - deploy/kubernetes/configmap.yaml "$tmp/config.yaml" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
open(sys.argv[2], "w").write(doc["data"]["config.yaml"])
PY
    LITELLM_MASTER_KEY=sk-check "$sluice" check --strict --config "$tmp/config.yaml" >/dev/null \
        || fail "the ConfigMap's config.yaml (deploy/kubernetes/configmap.yaml) does not pass sluice check --strict (nothing ignored or refused)"

    "$venv/bin/kubernetes-validate" --strict --quiet -k "$KUBERNETES_VERSION" deploy/kubernetes/*.yaml \
        || fail "the Kubernetes manifests do not validate"
    echo "package --check: Dockerfile ($copies copied paths), image config, ConfigMap config and $(ls deploy/kubernetes/*.yaml | wc -l) manifests OK"
}

case "${1:-}" in
    "") build ;;
    --check)
        sluice="$ROOT/target/debug/sluice"
        if [[ "${2:-}" == "--sluice" ]]; then
            [[ -n "${3:-}" ]] || fail "--sluice needs a path"
            sluice="$3"
        fi
        check "$sluice"
        ;;
    *)
        echo "usage: scripts/package.sh [--check [--sluice BIN]]" >&2
        exit 2
        ;;
esac
