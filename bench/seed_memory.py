#!/usr/bin/env python3
"""Where the seed run's memory goes: the gateway's RssAnon and RssFile through `bench.py`'s
warm-up and seed-pace run, sampled every 50 ms, for one or more builds alternated.

    python3 bench/seed_memory.py --sluice A [--sluice B ...] [--repeats 3] [--seed-duration 10s]
                                 [--general 'disable_spend_logs: true'] [--smoke]

Each repeat runs every build in turn from a fresh copy of its binary (on this kernel a fault in
the binary maps the whole large folio of the page cache it falls in, so a copy whose page cache
has aged shows less RssFile than a fresh one: compare fresh copies only). As `bench.py` does:
the seed config (access log off, one worker on core 0, mock and load generator on core 1), a
2 s closed loop of 16 users, a wait until the gateway is idle, then `VmHWM` reset (`clear_refs`
5) and 1,000 users at the seed's pace. Printed for each run: RssAnon after the warm-up, at the
seed run's median and peak (after its first second), RssFile, and the seed run's VmHWM (the
figure `bench.py` reports); then the medians of each build.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import seed_config  # noqa: E402

FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile")


def status_kb(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in FIELDS:
                out[key] = int(line.split()[1])
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if len(os.sched_getaffinity(0)) > 1 else []


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def one_run(binary: Path, tools: Path, args, tmp: Path) -> dict[str, int]:
    mock_port, port = free_port(), free_port()
    mock = subprocess.Popen([*pinned(1), str(tools), "mock", "--host", "127.0.0.1", "--port", str(mock_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cfg = tmp / "sluice.yaml"
    general = "".join(f"  {line}\n" for line in args.general)
    cfg.write_text(seed_config(mock_port, general) + "\nsluice_settings:\n  access_log: false\n")
    gw = subprocess.Popen([*pinned(0), str(binary), "--config", str(cfg), "--host", "127.0.0.1",
                           "--port", str(port), "--num_workers", "1"],
                          cwd=tmp, stdout=subprocess.DEVNULL, stderr=open(tmp / "gateway.log", "wb"))
    url = f"http://127.0.0.1:{port}"

    def load(extra: list[str], duration: str) -> None:
        subprocess.run([*pinned(1), str(tools), "load", "--host", url, "-t", duration, "-q", "--threads", "1",
                        "--json", str(tmp / "load.json"), *extra], check=True, stdout=subprocess.DEVNULL)

    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{url}/health/liveliness", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or gw.poll() is not None:
                    raise RuntimeError(f"the gateway did not start: {(tmp / 'gateway.log').read_text()[-500:]}")
                time.sleep(0.02)
        load(["-u", "16"], args.warmup)
        # As bench.py's settle: idle (under 5 % of a core over half a second).
        clk = os.sysconf("SC_CLK_TCK")
        for _ in range(240):
            before = cpu_ticks(gw.pid)
            time.sleep(0.5)
            if cpu_ticks(gw.pid) - before <= 0.05 * 0.5 * clk:
                break
        after_warmup = status_kb(gw.pid)
        with open(f"/proc/{gw.pid}/clear_refs", "w") as f:
            f.write("5")
        samples: list[tuple[float, dict[str, int]]] = []
        done = threading.Event()

        def sample() -> None:
            t0 = time.monotonic()
            while not done.is_set():
                samples.append((time.monotonic() - t0, status_kb(gw.pid)))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            load(["-u", str(args.users), "-r", str(args.users), "--wait", "0.5..1"], args.seed_duration)
        finally:
            done.set()
            sampler.join()
        end = status_kb(gw.pid)
        late = sorted(s["RssAnon"] for t, s in samples if t > 1.0) or [end["RssAnon"]]
        return {
            "warmup_anon": after_warmup["RssAnon"],
            "seed_anon_median": late[len(late) // 2],
            "seed_anon_peak": late[-1],
            "file": end["RssFile"],
            "seed_hwm": end["VmHWM"],
        }
    finally:
        gw.kill()
        mock.kill()
        gw.wait()
        mock.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", action="append", required=True, help="a build; give several to alternate them")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed-duration", default="10s")
    ap.add_argument("--warmup", default="2s")
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--general", action="append", default=[],
                    help="a line added under general_settings (e.g. 'disable_spend_logs: true')")
    ap.add_argument("--smoke", action="store_true", help="one repeat, 100 users for 1 s")
    args = ap.parse_args()
    if args.smoke:
        args.repeats, args.seed_duration, args.warmup, args.users = 1, "1s", "500ms", 100
    builds = [Path(b).resolve() for b in args.sluice]
    results: dict[Path, list[dict[str, int]]] = {b: [] for b in builds}
    for rep in range(1, args.repeats + 1):
        for b in builds:
            with tempfile.TemporaryDirectory() as d:
                tmp = Path(d)
                fresh = tmp / "sluice"
                shutil.copyfile(b, fresh)
                fresh.chmod(0o755)
                r = one_run(fresh, builds[0], args, tmp)
            results[b].append(r)
            print(f"{b} rep {rep}: RssAnon after the warm-up {r['warmup_anon']} kB, in the seed run median "
                  f"{r['seed_anon_median']} peak {r['seed_anon_peak']} kB; RssFile {r['file']} kB; "
                  f"seed VmHWM {r['seed_hwm'] / 1024:.1f} MB", flush=True)
    print("\nmedians (kB; VmHWM in MB):")
    print("| build | RssAnon after the warm-up | seed run, median | seed run, peak | RssFile | seed VmHWM |")
    print("|---|---:|---:|---:|---:|---:|")
    for b, rs in results.items():
        m = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        print(f"| {b} | {m['warmup_anon']:.0f} | {m['seed_anon_median']:.0f} | {m['seed_anon_peak']:.0f} | "
              f"{m['file']:.0f} | {m['seed_hwm'] / 1024:.1f} |")
        if any(r["seed_anon_peak"] <= 0 for r in rs):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
