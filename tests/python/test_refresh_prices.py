"""scripts/refresh-prices.sh on a wheel made here (no network): it keeps the fields and models
sluice prices with, in LiteLLM's shape, and records the release and the sha256 of the file it
read; and the files in the repository are what it writes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "refresh-prices.sh"
MAP = "litellm/model_prices_and_context_window_backup.json"


def refresh(tmp_path: Path, table: dict, version: str = "9.8.7") -> tuple[dict, str, bytes]:
    raw = json.dumps(table).encode()
    wheel = tmp_path / f"litellm-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(MAP, raw)
    out = tmp_path / "out"
    out.mkdir()
    env = {"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "LITELLM_WHEEL": str(wheel), "PRICES_OUT": str(out)}
    done = subprocess.run(["bash", str(SCRIPT), version], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads((out / "prices.json").read_text()), (out / "prices.version").read_text(), raw


def test_the_refresh_keeps_what_sluice_prices_with_and_records_the_source(tmp_path):
    table = {
        "sample_spec": {"litellm_provider": "one of …", "input_cost_per_token": 0.0, "mode": "chat"},
        "gpt-x": {
            "litellm_provider": "openai",
            "mode": "chat",
            "input_cost_per_token": 1e-06,
            "output_cost_per_token": 2,
            "cache_read_input_token_cost": 5e-07,
            "output_cost_per_reasoning_token": 3e-06,
            "max_tokens": 128000,
            "supports_vision": True,
        },
        "gemini/big": {
            "litellm_provider": "gemini",
            "mode": "chat",
            "input_cost_per_token": 1e-06,
            "output_cost_per_token": 2e-06,
            "input_cost_per_token_above_200k_tokens": 2e-06,
            "cache_read_input_token_cost_above_200k_tokens": 4e-07,
            "cache_creation_input_token_cost_above_1hr": 9e-06,
        },
        "dall-e-x": {"litellm_provider": "openai", "mode": "image_generation", "output_cost_per_image": 0.04},
        # A rerank model billed per search unit keeps its price per query; a search tool priced
        # only per query is no model sluice serves.
        "rerank-x": {
            "litellm_provider": "cohere",
            "mode": "rerank",
            "input_cost_per_query": 0.002,
            "input_cost_per_token": 0.0,
            "output_cost_per_token": 0.0,
            "max_query_tokens": 2048,
        },
        "web/search": {"litellm_provider": "web", "mode": "search", "input_cost_per_query": 0.005},
    }
    kept, version, raw = refresh(tmp_path, table)
    assert list(kept) == ["gemini/big", "gpt-x", "rerank-x"]
    assert kept["rerank-x"] == {
        "litellm_provider": "cohere",
        "mode": "rerank",
        "input_cost_per_query": 0.002,
        "input_cost_per_token": 0.0,
        "output_cost_per_token": 0.0,
    }
    assert kept["gpt-x"] == {
        "litellm_provider": "openai",
        "mode": "chat",
        "input_cost_per_token": 1e-06,
        "output_cost_per_token": 2.0,
        "cache_read_input_token_cost": 5e-07,
        "output_cost_per_reasoning_token": 3e-06,
    }
    assert "input_cost_per_token_above_200k_tokens" in kept["gemini/big"]
    assert "cache_read_input_token_cost_above_200k_tokens" in kept["gemini/big"]
    assert "cache_creation_input_token_cost_above_1hr" not in kept["gemini/big"]
    assert "litellm 9.8.7\n" in version
    assert f"sha256 {hashlib.sha256(raw).hexdigest()}\n" in version


def test_a_bad_version_is_refused_before_anything_runs(tmp_path):
    done = subprocess.run(["bash", str(SCRIPT), "1.0; rm -rf /"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "usage:" in done.stderr


def test_the_bundled_files_are_the_scripts_output_shape():
    """The committed table reads as the script writes it: sorted, one model a line, only the
    fields the script keeps, and a version file naming a release and a sha256."""
    text = (ROOT / "crates/providers/src/prices.json").read_text()
    table = json.loads(text)
    assert list(table) == sorted(table)
    assert len(text.splitlines()) == len(table) + 2
    version = (ROOT / "crates/providers/src/prices.version").read_text().splitlines()
    release = [line.split(" ", 1)[1] for line in version if line.startswith("litellm ")]
    sha = [line.split(" ", 1)[1] for line in version if line.startswith("sha256 ")]
    assert len(release) == 1 and all(p.isdigit() for p in release[0].split("."))
    assert len(sha) == 1 and len(sha[0]) == 64
