#!/usr/bin/env python3
"""What the answer cache costs and saves (issue #25's speed points), on the seed payload, three
gateways side by side: caching off (the seed's config); a local cache with every request a miss
(the seed's own bodies: a fresh UUID in each); and the same local cache with every request a hit
(one fixed body, the seed's prompt with one UUID for all).

    bench/cache.py [--sluice target/release/sluice] [--duration 10s] [--rate 500] [--repeats 3]
                   [--sentences N]

Each gateway is pinned to core 0 with one worker; `sluice mock` and `sluice load` share core 1.
Per repeat and gateway (in ABBA order across repeats): a closed loop of 64 users for
`--duration` gives the gateway's CPU time per request (from /proc), then an open loop at `--rate`
requests per second gives the latency (p50, p99). The issue's bounds: a hit's CPU per request
below a proxied miss's; a local hit adds under 0.1 ms at p50 (the hit's p50 is all gateway: no
upstream is waited on); with every request a miss, CPU per request at most x1.1 caching off.
The mock's request count shows the hits never reached it. `--sentences N` makes every prompt the
seed's UUID-and-sentence N times instead of 150 (the seed's ~16 KB): the same three gateways at a
smaller prompt, where the key's hash is a smaller share of a request. `--smoke` makes it a few seconds long
for CI. `--perf DIR` then records each gateway with `perf record -g` through one more closed
loop, to `DIR/<variant>.data` (read with `perf report -i ... --no-children`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from keys import MASTER, REPO, rss_mb, start  # noqa: E402
from procs import measure, perf_record, sluice_load  # noqa: E402

# The seed locustfile's sentence and repeats (crates/load/src/template.rs).
SEED_SENTENCE = " This is a test there will be no cache hits and we'll fill up the context"
CACHE = "\n  cache: true\n  cache_params:\n    type: local\n    max_size_in_memory: 100000\n"



def mock_requests(url: str) -> int:
    with urllib.request.urlopen(url + "/mock/stats", timeout=10) as r:
        return json.loads(r.read())["requests"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sluice", default=str(REPO / "target" / "release" / "sluice"))
    ap.add_argument("--duration", default="10s")
    ap.add_argument("--rate", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sentences", type=int, default=None,
                    help="the prompt's UUID-and-sentence repeats (default: the seed's own bodies, 150)")
    ap.add_argument("--smoke", action="store_true", help="1 s runs, one repeat (CI)")
    ap.add_argument("--perf", type=Path, help="record each gateway with perf into this folder")
    args = ap.parse_args()
    if args.smoke:
        args.duration, args.repeats, args.rate = "1s", 1, 100
    pinned = len(os.sched_getaffinity(0)) > 1
    gw_cpu, other_cpu = (0, 1) if pinned else (None, None)
    with tempfile.TemporaryDirectory(prefix="sluice-cache-bench-") as tmp:
        tmp = Path(tmp)
        mock, mock_url = start([args.sluice, "mock", "--host", "127.0.0.1", "--port", "0"], other_cpu, tmp / "mock.log")
        seed = (REPO / "examples" / "seed-openai.yaml").read_text().replace("http://127.0.0.1:8090/", mock_url + "/")
        cached = seed.replace('callbacks: ["prometheus"]', 'callbacks: ["prometheus"]' + CACHE, 1)
        assert cached != seed, "the seed config's litellm_settings line moved"
        def body(one_uuid: str, sentences: int) -> str:
            return json.dumps({
                "model": "fake-openai-endpoint",
                "messages": [{"role": "user", "content": f"{one_uuid}{SEED_SENTENCE}" * sentences}],
                "user": "my-new-end-user-1",
            })

        # Every hit the same body: the prompt around one UUID.
        fixed = tmp / "fixed.json"
        fixed.write_text(body(str(uuid.uuid4()), args.sentences or 150))
        # Misses: the seed's own bodies (`sluice load`'s template), or a template with a fresh UUID
        # in each at the asked size.
        fresh = None
        if args.sentences is not None:
            fresh = tmp / "fresh.json"
            fresh.write_text(body("{{uuid}}", args.sentences))
        variants = {
            "caching off": (seed, fresh),
            "local cache, every request a miss": (cached, fresh),
            "local cache, every request a hit": (cached, fixed),
        }
        procs, gws = [mock], {}
        try:
            for i, (label, (cfg, body)) in enumerate(variants.items()):
                path = tmp / f"config-{i}.yaml"
                path.write_text(cfg)
                os.environ["DATABASE_URL"] = f"sqlite://{tmp / f'gw-{i}.db'}"
                gw, base = start([args.sluice, "--config", str(path), "--host", "127.0.0.1", "--port", "0",
                                  "--num_workers", "1"], gw_cpu, tmp / f"gateway-{i}.log")
                procs.append(gw)
                gws[label] = (gw, base, body)
            for label, (gw, base, body) in gws.items():
                sluice_load(args.sluice, base, other_cpu, tmp / f"warm-{gw.pid}.json", "1s", None, MASTER, body)
            cpu = {label: [] for label in gws}
            cpu_open = {label: [] for label in gws}
            p50 = {label: [] for label in gws}
            p99 = {label: [] for label in gws}
            upstream = {label: 0 for label in gws}
            sent = {label: 0 for label in gws}
            for rep in range(args.repeats):
                order = list(gws.items())
                for label, (gw, base, body) in order if rep % 2 == 0 else order[::-1]:
                    m0 = mock_requests(mock_url)
                    r = measure(args.sluice, gw.pid, base, other_cpu, tmp / f"{rep}-{gw.pid}", args.duration,
                                args.rate, MASTER, body)
                    n, fails = r["requests"], r["failures"]
                    upstream[label] += mock_requests(mock_url) - m0
                    sent[label] += n + r["open_requests"]
                    cpu[label].append(r["cpu_us"])
                    cpu_open[label].append(r["cpu_open_us"])
                    p50[label].append(r["p50"])
                    p99[label].append(r["p99"])
                    print(f"run {rep + 1} {label}: {n} requests closed-loop, {cpu[label][-1]:.1f} µs CPU/request; "
                          f"open loop {args.rate}/s {cpu_open[label][-1]:.1f} µs CPU/request, p50 {p50[label][-1]:.3f} ms p99 {p99[label][-1]:.3f} ms"
                          + (f"; {fails} failures" if fails else ""), flush=True)
            base_cpu = statistics.median(cpu["caching off"])
            base_p50 = statistics.median(p50["caching off"])
            miss_cpu = statistics.median(cpu["local cache, every request a miss"])
            base_open = statistics.median(cpu_open["caching off"])
            print()
            for label in gws:
                c, l50, l99, o = (statistics.median(v[label]) for v in (cpu, p50, p99, cpu_open))
                print(f"{label}: {c:.1f} µs CPU/request (x{c / base_cpu:.3f} caching off, x{c / miss_cpu:.3f} a miss), "
                      f"at {args.rate}/s {o:.1f} µs (x{o / base_open:.3f} caching off), "
                      f"p50 {l50:.3f} ms ({l50 - base_p50:+.3f} ms), p99 {l99:.3f} ms, "
                      f"RSS {rss_mb(gws[label][0].pid):.1f} MB; upstream saw {upstream[label]} of {sent[label]} measured")
            if args.perf:
                for label, (gw, base, body) in gws.items():
                    data = args.perf / (label.split(",")[-1].strip().replace(" ", "-") + ".data")
                    perf_record(args.sluice, gw.pid, base, other_cpu, tmp / f"perf-{gw.pid}.json", data,
                                args.duration, MASTER, body)
                    print(f"perf of {label}: {data}")
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
