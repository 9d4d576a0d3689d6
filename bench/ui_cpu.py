#!/usr/bin/env python3
"""Whether an open admin dashboard costs proxied requests anything: sluice's CPU time per proxied
request (from /proc) under `sluice load`, with no dashboard and with one polling, alternated.

    bench/ui_cpu.py [--sluice target/release/sluice] [--duration 10s] [--repeats 4] [--every 1.0]

One gateway (master key, one deployment on `sluice mock`, the embedded SQLite, spend written
every second) and the mock; `sluice load` sends 32 closed-loop users of the seed payload. In the
"dashboard" runs a thread plays the dashboard: every `--every` seconds (the page polls every 5 s;
1 s makes any cost five times easier to see) it fetches what the admin's dashboard fetches —
`/ui/api/live`, the last 200 spend-log rows, today's daily activity and `/v1/model/info` — with
the master key. The runs alternate ABBA; the medians are printed. The CPU of the dashboard's own
requests is counted in, so this is an upper bound on what polling adds per proxied request.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import tempfile
import threading
import urllib.request
from pathlib import Path

from procs import cpu_seconds, free_port, stop, wait_port

REPO = Path(__file__).resolve().parents[1]
MASTER = "sk-1234"


def poll(base: str, every: float, done: threading.Event) -> int:
    today = datetime.date.today().isoformat()
    paths = [
        "/ui/api/live",
        "/spend/logs?summarize=false&page=1&page_size=200",
        f"/user/daily/activity?start_date={today}&end_date={today}&page_size=1000",
        "/v1/model/info",
    ]
    polls = 0
    while not done.wait(every):
        for p in paths:
            req = urllib.request.Request(base + p, headers={"Authorization": f"Bearer {MASTER}"})
            with urllib.request.urlopen(req, timeout=30) as r:
                r.read()
        polls += 1
    return polls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sluice", default=str(REPO / "target" / "release" / "sluice"))
    ap.add_argument("--duration", default="10s")
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--every", type=float, default=1.0)
    ap.add_argument("--users", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mock_port, gw_port = free_port(), free_port()
        mock = subprocess.Popen([args.sluice, "mock", "--port", str(mock_port)], stdout=subprocess.DEVNULL)
        wait_port(mock_port, mock, "sluice mock")
        (tmp / "config.yaml").write_text(
            "model_list:\n"
            "  - model_name: fake-openai-endpoint\n"
            f"    litellm_params: {{model: openai/any, api_base: 'http://127.0.0.1:{mock_port}/', api_key: x}}\n"
            f"general_settings:\n  master_key: {MASTER}\n  database_url: sqlite://{tmp / 'sluice.db'}\n"
            "  proxy_batch_write_at: 1\n"
        )
        gw = subprocess.Popen(
            [args.sluice, "--config", str(tmp / "config.yaml"), "--port", str(gw_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{gw_port}"
        try:
            wait_port(gw_port, gw, "sluice")
            per = {"no dashboard": [], "dashboard": []}
            for rep in range(args.repeats):
                order = ["no dashboard", "dashboard"] if rep % 2 == 0 else ["dashboard", "no dashboard"]
                for label in order:
                    done = threading.Event()
                    polls = [0]
                    poller = threading.Thread(target=lambda: polls.__setitem__(0, poll(base, args.every, done)))
                    if label == "dashboard":
                        poller.start()
                    out = tmp / f"{rep}-{label.replace(' ', '_')}.json"
                    c0 = cpu_seconds(gw.pid)
                    subprocess.run(
                        [args.sluice, "load", "--host", base, "-u", str(args.users), "-t", args.duration, "-q",
                         "--json", str(out), "--api-key", MASTER],
                        check=True, stdout=subprocess.DEVNULL, timeout=600,
                    )
                    c1 = cpu_seconds(gw.pid)
                    done.set()
                    if label == "dashboard":
                        poller.join()
                    total = json.loads(out.read_text())["aggregated"]
                    us = (c1 - c0) / max(total["requests"], 1) * 1e6
                    per[label].append(us)
                    extra = f", {polls[0]} dashboard polls" if label == "dashboard" else ""
                    print(f"run {rep + 1} {label}: {total['requests']} requests, {total['rps']:.0f} req/s, "
                          f"{total['failures']} failures, {us:.1f} µs CPU/request{extra}", flush=True)
            for label, runs in per.items():
                print(f"median {label}: {statistics.median(runs):.1f} µs CPU/request")
        finally:
            stop(gw, mock)


if __name__ == "__main__":
    main()
