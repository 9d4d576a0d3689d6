#!/usr/bin/env python3
"""One replica with its deployment's window in Redis against the same in process (issue #19).

Side by side, alternating, on the release build: the seed's first config with `access_log: false`
and the deployment given `rpm: 100000000` so that every request takes from its window; the "redis"
side adds `router_settings: {redis_host: 127.0.0.1, redis_port: 6379}` under a key prefix of its
own. The gateway runs pinned on one core (`--num_workers 1`), `sluice mock` and `sluice load` on
the other. Each run: 3 s warm-up, then an open-loop run at --rate req/s (latency from the intended
send time) and a closed-loop run at 64 connections. Reported per run: p50/p99 of the open-loop
run, the gateway's CPU per request (utime+stime from /proc/PID/stat over the measured runs), and
redis-server's CPU per request over the same time.

    python3 bench/redis_ab.py [--sluice target/release/sluice] [--rounds 3] [--rate 1000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from procs import cpu_seconds, free_port, stop, wait_port

REPO = Path(__file__).resolve().parents[1]


def redis_pid() -> int | None:
    r = subprocess.run(["pgrep", "-f", "redis-server .*:6379"], capture_output=True, text=True)
    pids = [int(p) for p in r.stdout.split()]
    return pids[0] if pids else None


def config(mock_port: int, redis: bool) -> str:
    src = (REPO / "examples" / "seed-openai.yaml").read_text()
    out = src.replace("http://127.0.0.1:8090/", f"http://127.0.0.1:{mock_port}/")
    out = out.replace("      api_base:", "      rpm: 100000000\n      api_base:", 1)
    out += "\nsluice_settings:\n  access_log: false\n"
    if redis:
        out += f"  redis_key_prefix: 'bench-ab:{uuid.uuid4().hex[:8]}:'\n"
        out += "router_settings:\n  redis_host: 127.0.0.1\n  redis_port: 6379\n"
    return out


def load(sluice: str, port: int, args: list[str], out: Path) -> dict:
    subprocess.run(["taskset", "-c", "1", sluice, "load", "-H", f"http://127.0.0.1:{port}", "-q", "--threads", "1",
                    "--json", str(out), *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads(out.read_text())


def one_run(sluice: str, redis: bool, rate: int, seconds: int, tmp: Path) -> dict:
    mock_port, port = free_port(), free_port()
    mock = subprocess.Popen(["taskset", "-c", "1", sluice, "mock", "--host", "127.0.0.1", "--port", str(mock_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cfg = tmp / f"gw-{redis}.yaml"
    cfg.write_text(config(mock_port, redis))
    gw = subprocess.Popen(["taskset", "-c", "0", sluice, "--config", str(cfg), "--host", "127.0.0.1", "--port",
                           str(port), "--num_workers", "1"], stdout=subprocess.DEVNULL,
                          stderr=open(tmp / f"gw-{redis}.log", "w"))
    try:
        wait_port(mock_port, mock, "mock")
        wait_port(port, gw, "gateway")
        load(sluice, port, ["-u", "64", "-t", "3s"], tmp / "warm.json")
        rpid = redis_pid()
        c0, r0 = cpu_seconds(gw.pid), cpu_seconds(rpid) if rpid else 0.0
        open_loop = load(sluice, port, ["--rate", str(rate), "-t", f"{seconds}s"], tmp / "open.json")
        closed = load(sluice, port, ["-u", "64", "-t", f"{seconds}s"], tmp / "closed.json")
        c1, r1 = cpu_seconds(gw.pid), cpu_seconds(rpid) if rpid else 0.0
        o, c = open_loop["aggregated"], closed["aggregated"]
        n = o["requests"] + c["requests"]
        return {
            "redis": redis,
            "requests": n,
            "failures": o["failures"] + c["failures"],
            "open_p50_ms": o["latency_ms"]["p50"],
            "open_p99_ms": o["latency_ms"]["p99"],
            "closed_rps": round(c["rps"]),
            "closed_p99_ms": c["latency_ms"]["p99"],
            "cpu_us_per_request": round((c1 - c0) / n * 1e6, 2) if n else None,
            "redis_cpu_us_per_request": round((r1 - r0) / n * 1e6, 3) if n else None,
        }
    finally:
        stop(gw, mock)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", default=str(REPO / "target" / "release" / "sluice"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for i in range(args.rounds):
            for redis in ((False, True) if i % 2 == 0 else (True, False)):
                row = one_run(args.sluice, redis, args.rate, args.seconds, Path(d))
                rows.append(row)
                print(json.dumps(row), flush=True)
    for side in (False, True):
        mine = [r for r in rows if r["redis"] == side]
        med = lambda k: sorted(r[k] for r in mine if r[k] is not None)[len(mine) // 2] if mine else None
        print(f"{'redis' if side else 'in process'}: median p50 {med('open_p50_ms')} ms, p99 {med('open_p99_ms')} ms, "
              f"CPU {med('cpu_us_per_request')} us/request, redis-server {med('redis_cpu_us_per_request')} us/request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
