#!/usr/bin/env python3
"""The p99 at 64 connections against how the spend-log thread is scheduled (issue #18's lead).

    python3 bench/spendlog_sched.py --sluice target/release/sluice --rounds 4 \\
        --variants default,slice0.5,slice0.1,nice5,nice10,off

Each round starts one gateway per variant, in turn: `taskset -c 0 sluice --config SEED
--num_workers 1` with a fresh SQLite file (the seed config of examples/seed-openai.yaml; `off`
adds `disable_spend_logs: true`), `sluice mock` and `sluice load -u 64 --threads 1` on core 1.
Once the gateway answers, the variant is applied from outside to its `sluice-spendlog` thread:
`sliceMS` sets an EEVDF slice of MS milliseconds (`sched_setattr`'s `sched_runtime`, Linux 6.12
and later), `niceN` its nice value. Then a 3 s warm-up and a measured closed loop (`--duration`);
p50/p90/p99 from the load generator, CPU per request from /proc (the whole gateway, its runtime
thread and the writer), and the rows the database holds afterwards. Medians per variant at the
end. Needs two cores; compare variants within a run, not across runs.
"""
import argparse
import ctypes
import json
import os
import statistics
import struct
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "examples" / "seed-openai.yaml"
PORT = 4391
SYS_SCHED_SETATTR = 314  # x86-64
LIBC = ctypes.CDLL(None, use_errno=True)


def set_slice(tid: int, ms: float) -> None:
    # struct sched_attr (56 bytes): size, policy, flags, nice, priority, runtime, deadline,
    # period, util_min, util_max. SCHED_OTHER with a runtime is EEVDF's custom slice.
    attr = ctypes.create_string_buffer(struct.pack("IIQiIQQQII", 56, 0, 0, 0, 0, int(ms * 1e6), 0, 0, 0, 0), 56)
    if LIBC.syscall(SYS_SCHED_SETATTR, tid, attr, 0) != 0:
        raise OSError(ctypes.get_errno(), "sched_setattr of the spend-log thread")


def threads(pid: int) -> dict[str, list[int]]:
    by_name: dict[str, list[int]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
        by_name.setdefault(name, []).append(int(tid))
    return by_name


def ticks(path: str) -> int:
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def thread_ticks(pid: int) -> dict[str, int]:
    return {name: sum(ticks(f"/proc/{pid}/task/{t}/stat") for t in tids) for name, tids in threads(pid).items()}


def config(variant: str, into: Path) -> Path:
    text = SEED.read_text()
    if variant == "off":
        text = text.replace("master_key: sk-1234", "master_key: sk-1234\n  disable_spend_logs: true")
    path = into / f"{variant}.yaml"
    path.write_text(text)
    return path


def wait_ready(timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health/liveliness", timeout=1)
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("the gateway did not answer within 10 s")


def load(sluice: str, duration: str, out: Path | None) -> None:
    argv = ["taskset", "-c", "1", sluice, "load", "--host", f"http://127.0.0.1:{PORT}", "-u", "64",
            "-t", duration, "-q", "--threads", "1"]
    if out:
        argv += ["--json", str(out)]
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


def run_one(args, variant: str, work: Path, round_no: int) -> dict:
    db = work / f"{variant}-{round_no}.db"
    env = dict(os.environ, DATABASE_URL=f"sqlite://{db}")
    gw = subprocess.Popen(["taskset", "-c", "0", args.sluice, "--config", str(config(variant, work)),
                           "--port", str(PORT), "--num_workers", "1"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_ready()
        writer = threads(gw.pid).get("sluice-spendlog", [None])[0]
        if variant.startswith("slice") and writer:
            set_slice(writer, float(variant[len("slice"):]))
        elif variant.startswith("nice") and writer:
            os.setpriority(os.PRIO_PROCESS, writer, int(variant[len("nice"):]))
        load(args.sluice, "3s", None)
        before, whole = thread_ticks(gw.pid), ticks(f"/proc/{gw.pid}/stat")
        out = work / "load.json"
        load(args.sluice, args.duration, out)
        after, whole_after = thread_ticks(gw.pid), ticks(f"/proc/{gw.pid}/stat")
        report = json.loads(out.read_text())
        agg = report["aggregated"]
        n = max(agg["requests"], 1)
        us = 1e6 / os.sysconf("SC_CLK_TCK") / n
        per_thread = {k: round((after[k] - before.get(k, 0)) * us, 2) for k in after if after[k] > before.get(k, 0)}
        time.sleep(1.0)
    finally:
        gw.terminate()
        gw.wait()
    rows = subprocess.run(["sqlite3", str(db), "select count(*) from sluice_spend_logs"],
                          capture_output=True, text=True).stdout.strip() if variant != "off" else "0"
    lat = agg["latency_ms"]
    return {"rps": round(agg["requests"] / report["duration_s"]), "p50": lat["p50"], "p90": lat["p90"],
            "p99": lat["p99"], "fails": agg["failures"], "cpu_us": round((whole_after - whole) * us, 2),
            "threads_us": per_thread, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sluice", default=str(REPO / "target" / "release" / "sluice"))
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--duration", default="5s")
    ap.add_argument("--variants", default="default,slice0.5,nice5,off")
    args = ap.parse_args()
    variants = args.variants.split(",")
    results: dict[str, list[dict]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        mock = subprocess.Popen(["taskset", "-c", "1", args.sluice, "mock", "--port", "8090"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for round_no in range(args.rounds):
                for variant in variants:
                    row = run_one(args, variant, work, round_no)
                    results[variant].append(row)
                    print(round_no, variant, row, flush=True)
        finally:
            mock.terminate()
            mock.wait()
    print("\n| variant | p99 per round (ms) | median p99 | median p90 | median req/s | median CPU µs/req |")
    print("|---|---|---:|---:|---:|---:|")
    for v, rows in results.items():
        def med(key: str) -> float:
            return statistics.median(r[key] for r in rows)
        per_round = ", ".join("%.2f" % r["p99"] for r in rows)
        print(f"| {v} | {per_round} | {med('p99'):.2f} | {med('p90'):.2f} | {med('rps'):,.0f} | {med('cpu_us'):.1f} |")


if __name__ == "__main__":
    main()
