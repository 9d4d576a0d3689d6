"""The seed's load test, unchanged: its locustfile (tests/python/locustfile.py, copied
verbatim from shared/seed/litellm-load-test.md) and its first config, with only
`api_base` pointed at a local `sluice mock` and the locustfile's default key set as
master key. A short headless run must see no failures.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from conftest import MASTER_KEY, REPO_ROOT, start_gateway, start_mock, tail

SEED_DOC = REPO_ROOT.parent / "shared" / "seed" / "litellm-load-test.md"
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
SEED_API_BASE = "https://exampleopenaiendpoint-production.up.railway.app/"
RUN_SECONDS = 8


def seed_first_config() -> str:
    """The first `model_list` config in the seed doc, as written there."""
    candidates = [REPO_ROOT / "shared" / "seed" / "litellm-load-test.md", SEED_DOC]
    for path in candidates:
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
                if "model_list:" in block:
                    return block
    # Fallback when shared/ is not beside the checkout: the same block, inlined.
    return (
        "model_list:\n"
        '  - model_name: "fake-openai-endpoint"\n'
        "    litellm_params:\n"
        "      model: openai/any\n"
        f"      api_base: {SEED_API_BASE}  # or your self-hosted endpoint\n"
        '      api_key: "test"\n'
    )


def mock_chat_count(mock_url: str) -> int:
    with urllib.request.urlopen(f"{mock_url}/mock/stats", timeout=10) as r:
        return int(json.load(r)["by_route"]["chat"])


@pytest.fixture(scope="module")
def seed_stack(log_dir):
    mock = start_mock(log_dir, "locust-mock")
    config = seed_first_config()
    assert SEED_API_BASE in config, "seed config changed shape; update this test"
    config = config.replace(SEED_API_BASE, mock.url + "/")
    config += f"\ngeneral_settings:\n  master_key: {MASTER_KEY}\n"
    gw = start_gateway(log_dir, "locust-gateway", config)
    yield mock, gw
    gw.stop()
    mock.stop()


def locust_cmd() -> list[str]:
    script = Path(sys.executable).parent / "locust"
    return [str(script)] if script.exists() else [sys.executable, "-m", "locust"]


def test_seed_locustfile_against_seed_config(seed_stack, tmp_path):
    mock, gw = seed_stack
    before = mock_chat_count(mock.url)
    env = {k: v for k, v in os.environ.items() if k != "API_KEY"}  # locustfile default: sk-1234
    # The host keeps its trailing slash: locust's HttpSession builds URLs as
    # f"{base_url}{path}" with no separator, and the locustfile posts to the
    # relative path "chat/completions". Checked with locust 2.47.0: without the
    # slash every request fails before it is sent ("Failed to parse:
    # '127.0.0.1:PORTchat' is not a valid host or port").
    cmd = [
        *locust_cmd(),
        "-f", str(LOCUSTFILE),
        "--headless",
        "-u", "20",
        "-r", "20",
        "-t", f"{RUN_SECONDS}s",
        "--host", f"{gw.url}/",
        "--csv", str(tmp_path / "run"),
        "--only-summary",
    ]
    proc = subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_SECONDS + 50
    )
    out = (proc.stdout + proc.stderr)[-4000:]

    stats_path = tmp_path / "run_stats.csv"
    assert stats_path.is_file(), f"locust wrote no stats (exit {proc.returncode}):\n{out}"
    with open(stats_path, newline="") as f:
        rows = list(csv.DictReader(f))
    agg = next(r for r in rows if r["Name"] == "Aggregated")
    requests_n = int(agg["Request Count"])
    failures_n = int(agg["Failure Count"])

    error_txt = tmp_path / "error.txt"
    errors = error_txt.read_text(errors="replace") if error_txt.exists() else ""
    assert errors.strip() == "", f"error.txt not empty:\n{errors[:2000]}"
    assert failures_n == 0, f"{failures_n} failures of {requests_n}:\n{out}"
    assert requests_n > 50, f"only {requests_n} requests in {RUN_SECONDS}s:\n{out}"

    # The requests really went to the gateway's /chat/completions and on upstream
    # (locust names a request by the path of the URL it sent).
    names = {r["Name"] for r in rows} - {"Aggregated"}
    assert names == {"/chat/completions"}, names
    forwarded = mock_chat_count(mock.url) - before
    assert forwarded >= requests_n, (
        f"mock saw {forwarded} chat calls for {requests_n} locust requests; gateway stderr:\n"
        + tail(gw.stderr_path)
    )
    assert proc.returncode == 0, f"locust exit {proc.returncode}:\n{out}"
