#!/usr/bin/env python3
"""What virtual keys cost: the seed benchmark with N keys in the database, master key vs a
virtual key on every request, sluice's CPU time per request from /proc.

    bench/keys.py [--sluice target/release/sluice] [--keys 10000] [--duration 10s] [--repeats 3]

sluice runs with the seed's config (`examples/seed-openai.yaml`) and its embedded SQLite database,
pinned to core 0 with one worker; `sluice mock` and `sluice load` (64 closed-loop users, the seed
payload) share core 1. The keys are created through `/key/generate` (each with a budget, an rpm
limit and a model list, so every check runs), then the runs alternate master key / virtual key and
the medians are compared (in ABBA order: every run adds rows to the spend-log table, which makes
later runs a little dearer). `--smoke` makes it a few seconds long for CI.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MASTER = "sk-1234"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start(argv: list[str], cpu: int | None, log: Path) -> tuple[subprocess.Popen, str]:
    if cpu is not None and len(os.sched_getaffinity(0)) > 1:
        argv = ["taskset", "-c", str(cpu), *argv]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(log, "wb"), text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if "listening on http://" in line:
            return p, line.split("listening on ")[1].strip()
        if not line and p.poll() is not None:
            break
    raise RuntimeError(f"{argv} did not start: {log.read_text()[-500:]}")


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {MASTER}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def make_keys(base: str, n: int) -> list[str]:
    def one(i: int) -> str:
        return post(
            base + "/key/generate",
            {"models": ["fake-openai-endpoint"], "max_budget": 1000.0, "rpm_limit": 10_000_000, "key_alias": f"bench-{i}"},
        )["key"]

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def load(sluice: str, base: str, key: str, duration: str, users: int, cpu: int | None, out: Path) -> dict:
    argv = [sluice, "load", "--host", base, "-u", str(users), "-t", duration, "-q", "--json", str(out),
            "--api-key", key, "--error-file", str(out.with_suffix(".errors.txt"))]
    if cpu is not None and len(os.sched_getaffinity(0)) > 1:
        argv = ["taskset", "-c", str(cpu), *argv]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=600)
    return json.loads(out.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sluice", default=str(REPO / "target" / "release" / "sluice"))
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--duration", default="10s")
    ap.add_argument("--users", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="100 keys, 1 s runs, one repeat (CI)")
    ap.add_argument("--no-spend-logs", action="store_true",
                    help="general_settings.disable_spend_logs: what the per-request log rows cost")
    args = ap.parse_args()
    if args.smoke:
        args.keys, args.duration, args.repeats = 100, "1s", 1
    pinned = len(os.sched_getaffinity(0)) > 1
    gw_cpu, other_cpu = (0, 1) if pinned else (None, None)

    with tempfile.TemporaryDirectory(prefix="sluice-keys-bench-") as tmp:
        tmp = Path(tmp)
        mock, mock_url = start([args.sluice, "mock", "--host", "127.0.0.1", "--port", "0"], other_cpu, tmp / "mock.log")
        cfg = (REPO / "examples" / "seed-openai.yaml").read_text().replace("http://127.0.0.1:8090/", mock_url + "/")
        if args.no_spend_logs:
            cfg = cfg.replace("general_settings:\n", "general_settings:\n  disable_spend_logs: true\n", 1)
        (tmp / "config.yaml").write_text(cfg)
        env_db = f"sqlite://{tmp / 'bench.db'}"
        os.environ["DATABASE_URL"] = env_db
        gw, base = start([args.sluice, "--config", str(tmp / "config.yaml"), "--host", "127.0.0.1", "--port", "0",
                          "--num_workers", "1"], gw_cpu, tmp / "gateway.log")
        try:
            t0 = time.monotonic()
            keys = make_keys(base, args.keys)
            print(f"created {len(keys)} keys through /key/generate in {time.monotonic() - t0:.1f} s; "
                  f"gateway RSS {rss_mb(gw.pid):.1f} MB", flush=True)
            load(args.sluice, base, MASTER, "1s", args.users, other_cpu, tmp / "warm.json")
            per = {"master key": [], "virtual key": []}
            for rep in range(args.repeats):
                order = (("master key", MASTER), ("virtual key", keys[len(keys) // 2]))
                # ABBA: the spend-log table grows run by run, so neither side always runs second.
                for label, key in order if rep % 2 == 0 else order[::-1]:
                    c0 = cpu_seconds(gw.pid)
                    j = load(args.sluice, base, key, args.duration, args.users, other_cpu, tmp / f"{rep}-{label}.json")
                    c1 = cpu_seconds(gw.pid)
                    total = j["aggregated"]
                    n, failures = total["requests"], total["failures"]
                    if failures:
                        print(f"{label}: {failures} failures; see {tmp}", file=sys.stderr)
                    us = (c1 - c0) / max(n, 1) * 1e6
                    per[label].append(us)
                    print(f"run {rep + 1} {label}: {n} requests, {total['rps']:.0f} req/s, "
                          f"{us:.1f} µs CPU/request", flush=True)
            m, v = statistics.median(per["master key"]), statistics.median(per["virtual key"])
            print(f"\nmedian CPU per request: master key {m:.1f} µs, virtual key {v:.1f} µs "
                  f"({(v / m - 1) * 100:+.1f}%) with {len(keys)} keys; gateway RSS {rss_mb(gw.pid):.1f} MB")
        finally:
            for p in (gw, mock):
                p.terminate()
                p.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
