#!/usr/bin/env bash
# Refreshes sluice's bundled price table from the copy of LiteLLM's model price map that a LiteLLM
# release ships in its Python package (`litellm/model_prices_and_context_window_backup.json`).
#
#   scripts/refresh-prices.sh VERSION     e.g. scripts/refresh-prices.sh 1.81.13
#
# Downloads that one release's wheel from PyPI with pip (no dependencies, nothing installed),
# keeps the fields sluice prices with (below) and writes
#   crates/providers/src/prices.json     LiteLLM's shape, one model a line, sorted by name
#   crates/providers/src/prices.version  the release and the sha256 of the file it came from
# `cargo build` turns them into the compact table in the binary (crates/providers/build.rs), and
# `sluice check` prints the version. Commit both files together.
#
# PYTHON (default python3) runs pip and the trimming; PIP_INDEX_URL etc. are pip's own.
# LITELLM_WHEEL=path uses a wheel already downloaded (no network); PRICES_OUT=dir writes there
# instead of crates/providers/src.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${PRICES_OUT:-$ROOT/crates/providers/src}"
VERSION="${1:-}"
if [[ ! "$VERSION" =~ ^[0-9]+(\.[0-9]+)*([a-z0-9.+-]*)$ ]]; then
    echo "usage: scripts/refresh-prices.sh VERSION   (a LiteLLM release, e.g. 1.81.13)" >&2
    exit 2
fi
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if [[ -n "${LITELLM_WHEEL:-}" ]]; then
    WHEEL="$LITELLM_WHEEL"
else
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: -d "$WORK" "litellm==$VERSION"
    WHEEL="$(ls "$WORK"/litellm-*.whl)"
fi

"$PYTHON" - "$WHEEL" "$VERSION" "$OUT" <<'EOF'
import hashlib, json, re, sys, zipfile

wheel, version, out = sys.argv[1:4]
raw = zipfile.ZipFile(wheel).read("litellm/model_prices_and_context_window_backup.json")
table = json.loads(raw)

# The fields sluice's cost formula reads (crates/providers/src/pricing.rs); the rest of LiteLLM's
# map (capabilities, limits, per-image and per-second prices of other modes) stays out, so the
# table stays small in the binary.
KEEP = {
    "litellm_provider", "mode",
    "input_cost_per_token", "output_cost_per_token",
    "cache_read_input_token_cost", "cache_creation_input_token_cost",
    "output_cost_per_reasoning_token",
    "input_cost_per_token_batches", "output_cost_per_token_batches",
    # Rerank models (Cohere's, Bedrock's, Azure AI's) are billed per search unit.
    "input_cost_per_query",
}
TIERED = re.compile(
    r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|"
    r"cache_creation_input_token_cost)_above_\d+k?_tokens$"
)
PRICED = ("input_cost_per_token", "output_cost_per_token")

kept = {}
for name, entry in sorted(table.items()):
    if name == "sample_spec" or not isinstance(entry, dict):
        continue
    # Only models priced per token: the rest cost 0 whichever way sluice looked them up. (The
    # rerank models LiteLLM bills per query list a per-token price of 0 too, so they stay.)
    if not isinstance(entry.get("litellm_provider"), str) or not any(k in entry for k in PRICED):
        continue
    row = {}
    for k, v in entry.items():
        if k in KEEP or TIERED.match(k):
            if k not in ("litellm_provider", "mode"):
                v = float(v)
            row[k] = v
    kept[name] = row

with open(f"{out}/prices.json", "w") as f:
    f.write("{\n")
    lines = [f"  {json.dumps(n)}: {json.dumps(r)}" for n, r in kept.items()]
    f.write(",\n".join(lines))
    f.write("\n}\n")
with open(f"{out}/prices.version", "w") as f:
    f.write("# Written by scripts/refresh-prices.sh; read by crates/providers/build.rs.\n")
    f.write(f"litellm {version}\n")
    f.write(f"sha256 {hashlib.sha256(raw).hexdigest()}\n")
print(f"prices: {len(kept)} of {len(table)} entries of LiteLLM {version}'s map kept")
EOF
