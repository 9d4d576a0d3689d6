#!/usr/bin/env python3
"""What open client connections cost the gateway in memory: RSS before and after N connections
that send nothing, then after one small request on each (all at once), and once they are idle
again.

    python3 bench/idle_conns.py --sluice BIN [--conns 1000] [--repeats 3] [--smoke]

Starts `sluice mock` and the gateway on the seed config (one worker, pinned to core 0 where
there are two), opens the connections from this process, and prints each step's RssAnon and
RssFile (kB) and what the connections added per connection. Medians over the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from keys import MASTER, REPO, start  # noqa: E402


def memory_kb(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("RssAnon", "RssFile", "VmRSS"):
                out[key] = int(line.split()[1])
    return out


def request(body: bytes) -> bytes:
    return (b"POST /chat/completions HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer " + MASTER.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def read_answer(s: socket.socket) -> None:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("the gateway closed a connection")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    while len(rest) < length:
        rest += s.recv(65536)


def one_run(args, tmp: Path, mock_url: str, cpu: int | None) -> dict[str, dict[str, int]]:
    config = tmp / "config.yaml"
    config.write_text((REPO / "examples" / "seed-openai.yaml").read_text()
                      .replace("http://127.0.0.1:8090/", mock_url + "/"))
    os.environ["DATABASE_URL"] = f"sqlite://{tmp / 'gw.db'}"
    gw, base = start([args.sluice, "--config", str(config), "--host", "127.0.0.1", "--port", "0",
                      "--num_workers", "1"], cpu, tmp / "gateway.log")
    port = int(base.rsplit(":", 1)[1].strip("/"))
    steps = {}
    try:
        time.sleep(0.5)
        steps["ready"] = memory_kb(gw.pid)
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(args.conns)]
        time.sleep(1.0)
        steps["idle"] = memory_kb(gw.pid)
        payload = request(json.dumps({"model": "fake-openai-endpoint",
                                      "messages": [{"role": "user", "content": "hi"}]}).encode())
        for s in socks:
            s.sendall(payload)
        for s in socks:
            read_answer(s)
        time.sleep(0.2)
        steps["one request each"] = memory_kb(gw.pid)
        time.sleep(1.5)
        steps["idle again"] = memory_kb(gw.pid)
        for s in socks:
            s.close()
    finally:
        gw.terminate()
        gw.wait(timeout=20)
    return steps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sluice", default=str(REPO / "target" / "release" / "sluice"))
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="100 connections, one repeat (CI)")
    args = ap.parse_args()
    if args.smoke:
        args.conns, args.repeats = 100, 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * args.conns + 256)), hard))
    pinned = len(os.sched_getaffinity(0)) > 1
    runs = []
    with tempfile.TemporaryDirectory(prefix="sluice-idle-bench-") as tmp:
        tmp = Path(tmp)
        mock, mock_url = start([args.sluice, "mock", "--host", "127.0.0.1", "--port", "0"],
                               1 if pinned else None, tmp / "mock.log")
        try:
            for i in range(args.repeats):
                run_dir = tmp / f"run-{i}"
                run_dir.mkdir()
                runs.append(one_run(args, run_dir, mock_url, 0 if pinned else None))
        finally:
            mock.terminate()
            mock.wait(timeout=20)
    print(f"{args.conns} connections, medians of {args.repeats} (kB; per connection: what the step added over ready)")
    for step in runs[0]:
        anon = statistics.median(r[step]["RssAnon"] for r in runs)
        file = statistics.median(r[step]["RssFile"] for r in runs)
        added = statistics.median((r[step]["RssAnon"] - r["ready"]["RssAnon"]) * 1024 / args.conns for r in runs)
        print(f"  {step:18s} RssAnon {anon:8.0f}  RssFile {file:8.0f}  +{added:6.0f} B of anon a connection")
    return 0


if __name__ == "__main__":
    sys.exit(main())
