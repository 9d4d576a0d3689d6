#!/usr/bin/env python3
"""CPU per request of the API surface beyond chat against chat itself (issue #20's speed point).

One gateway (release build, the seed's first config with `access_log: false`, pinned on one core
with `--num_workers 1`) in front of `sluice mock` (on the other core, with the load generator),
and three routes, side by side in the same gateway, alternating rounds:

- `chat`: `POST /v1/chat/completions` with the seed locustfile's payload;
- `responses`: `POST /v1/responses` to the same OpenAI deployment, the same text as `input`;
- `passthrough`: `POST /openai/v1/chat/completions` (LiteLLM's OpenAI pass-through route, the
  upstream from `OPENAI_API_BASE`), the seed payload with the upstream's own model name.

Each run: `sluice load -u 64 -t <seconds>` closed loop; the gateway's CPU (utime + stime from
/proc/PID/stat) over the run divided by the requests answered. Prints each run, then the median
per route and its ratio to chat's.

    python3 bench/surface.py [--sluice target/release/sluice] [--rounds 3] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from procs import cpu_seconds, free_port, stop, wait_port

REPO = Path(__file__).resolve().parents[1]
SENTENCE = " This is a test there will be no cache hits and we'll fill up the context"
TEXT = ("{{uuid}}" + SENTENCE) * 150


def bodies(tmp: Path) -> dict[str, tuple[str, Path]]:
    chat = {"model": "fake-openai-endpoint", "messages": [{"role": "user", "content": TEXT}],
            "user": "my-new-end-user-1"}
    responses = {"model": "fake-openai-endpoint", "input": TEXT, "user": "my-new-end-user-1"}
    passthrough = dict(chat, model="fake")
    out = {}
    for name, path, body in (("chat", "v1/chat/completions", chat), ("responses", "v1/responses", responses),
                             ("passthrough", "openai/v1/chat/completions", passthrough)):
        f = tmp / f"{name}.json"
        f.write_text(json.dumps(body))
        out[name] = (path, f)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", default=str(REPO / "target" / "release" / "sluice"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--routes", default="chat,responses,passthrough")
    args = ap.parse_args()
    routes = args.routes.split(",")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        mock_port, port = free_port(), free_port()
        mock = subprocess.Popen(["taskset", "-c", "1", args.sluice, "mock", "--host", "127.0.0.1", "--port",
                                 str(mock_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cfg = tmp / "gw.yaml"
        src = (REPO / "examples" / "seed-openai.yaml").read_text()
        cfg.write_text(src.replace("http://127.0.0.1:8090/", f"http://127.0.0.1:{mock_port}/")
                       + "\nsluice_settings:\n  access_log: false\n")
        env = dict(os.environ, OPENAI_API_BASE=f"http://127.0.0.1:{mock_port}", OPENAI_API_KEY="fake-key")
        gw = subprocess.Popen(["taskset", "-c", "0", args.sluice, "--config", str(cfg), "--host", "127.0.0.1",
                               "--port", str(port), "--num_workers", "1"], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(tmp / "gw.log", "w"))
        try:
            wait_port(mock_port, mock, "mock")
            wait_port(port, gw, "gateway")
            paths = bodies(tmp)
            results: dict[str, list[float]] = {r: [] for r in routes}

            def run(route: str, seconds: int) -> dict:
                path, body = paths[route]
                out = tmp / "load.json"
                subprocess.run(["taskset", "-c", "1", args.sluice, "load", "-H", f"http://127.0.0.1:{port}", "-q",
                                "--threads", "1", "-u", "64", "-t", f"{seconds}s", "--json", str(out),
                                "--endpoint", f"1:POST:{path}:{body}"], check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                return json.loads(out.read_text())["aggregated"]

            for r in routes:  # warm-up, and a check that each route answers
                agg = run(r, 2)
                if agg["failures"]:
                    raise SystemExit(f"{r}: {agg['failures']} of {agg['requests']} failed; see {tmp}/gw.log")
            for i in range(args.rounds):
                order = routes if i % 2 == 0 else routes[::-1]
                for r in order:
                    c0 = cpu_seconds(gw.pid)
                    agg = run(r, args.seconds)
                    c1 = cpu_seconds(gw.pid)
                    ok = agg["requests"] - agg["failures"]
                    us = (c1 - c0) / max(ok, 1) * 1e6
                    results[r].append(us)
                    print(json.dumps({"route": r, "requests": agg["requests"], "failures": agg["failures"],
                                      "rps": round(agg["rps"]), "p99_ms": agg["latency_ms"]["p99"],
                                      "cpu_us_per_request": round(us, 2)}), flush=True)
            med = {r: sorted(v)[len(v) // 2] for r, v in results.items()}
            for r in routes:
                print(f"{r}: median {med[r]:.1f} us/request, {med[r] / med['chat']:.2f}x chat" if "chat" in med
                      else f"{r}: median {med[r]:.1f} us/request")
        finally:
            stop(gw, mock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
