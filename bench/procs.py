"""What the small benchmark scripts share: free ports, a process's CPU time, waiting for a port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def wait_port(port: int, proc: subprocess.Popen, what: str, seconds: float = 20) -> None:
    """Returns once something listens on `port`; exits if `proc` died or the time ran out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on {port}")


def stop(*procs: subprocess.Popen) -> None:
    """Terminates each process, killing it if it has not ended within 5 s."""
    for p in procs:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()


def sluice_load(sluice: str, base: str, cpu: int | None, out: Path, duration: str, rate: int | None,
                api_key: str, body: Path | None = None, users: int = 64) -> dict:
    """One `sluice load` run on core `cpu`: `users` closed-loop users, or an open loop at `rate`
    requests per second; its JSON summary. `body`: a fixed request body instead of the seed's."""
    argv = [sluice, "load", "--host", base, "-t", duration, "-q", "--json", str(out), "--api-key", api_key,
            "--error-file", str(out.with_suffix(".errors.txt"))]
    argv += ["--rate", str(rate)] if rate else ["-u", str(users)]
    if body is not None:
        argv += ["--body", str(body)]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=600)
    return json.loads(out.read_text())


def measure(sluice: str, pid: int, base: str, cpu: int | None, out: Path, duration: str, rate: int,
            api_key: str, body: Path | None = None) -> dict:
    """One side-by-side step on gateway `pid`: a closed loop for its CPU time per request (from
    /proc), then an open loop at `rate` for its latency and its CPU time per request at that
    fixed rate. `out` names the runs' JSON files."""
    c0 = cpu_seconds(pid)
    closed = sluice_load(sluice, base, cpu, out.with_suffix(".closed.json"), duration, None, api_key, body)
    c1 = cpu_seconds(pid)
    n = closed["aggregated"]["requests"]
    opened = sluice_load(sluice, base, cpu, out.with_suffix(".open.json"), duration, rate, api_key, body)
    c2 = cpu_seconds(pid)
    lat = opened["aggregated"].get("latency_ms") or {}
    return {
        "requests": n,
        "open_requests": opened["aggregated"]["requests"],
        "cpu_us": (c1 - c0) / max(n, 1) * 1e6,
        # The same gateway at the open loop's fixed rate: every contender at the same load, so
        # none pays more for waking peers that its own slowness left idle.
        "cpu_open_us": (c2 - c1) / max(opened["aggregated"]["requests"], 1) * 1e6,
        "p50": lat.get("p50") or 0.0,
        "p99": lat.get("p99") or 0.0,
        "failures": closed["aggregated"]["failures"] + opened["aggregated"]["failures"],
    }


def perf_record(sluice: str, pid: int, base: str, cpu: int | None, out: Path, data: Path, duration: str,
                api_key: str, body: Path | None = None) -> None:
    """Records gateway `pid` with `perf record -g` into `data` through one more closed loop of
    `sluice load` (read it with `perf report -i DATA --no-children`)."""
    data.parent.mkdir(parents=True, exist_ok=True)
    rec = subprocess.Popen(["perf", "record", "-q", "-g", "-o", str(data), "-p", str(pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sluice_load(sluice, base, cpu, out, duration, None, api_key, body)
    rec.send_signal(2)  # SIGINT: perf writes its data and stops
    rec.wait(timeout=60)
