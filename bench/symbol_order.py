#!/usr/bin/env python3
"""Rebuilds `crates/sluice/symbol-order.txt`, the order the release link lays out the gateway's
functions in (see `crates/sluice/build.rs`): every function of the binary that runs while a
gateway starts, serves the seed's load and writes its spend logs, the most instructions first.

    python3 bench/symbol_order.py [--sluice target/release/sluice] [--out crates/sluice/symbol-order.txt]
    python3 bench/symbol_order.py --check [--sluice BIN]   # how much of the list BIN holds

Runs the gateway under valgrind's callgrind (names left mangled, as the linker reads them) with
the seed config and the embedded SQLite store: readiness, 500 requests from 16 users, the seed's
pace for 12 s from 200 users (a few spend-log writes and reloads), `/metrics`, a virtual key
made and used, the UI's routes; then a graceful stop. Prints how much code the list covers.
Rebuild the release binary afterwards (`cargo build --release -p sluice`); a list left stale
orders less, never wrongly: the linker skips names it does not find.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from seed_memory import free_port  # noqa: E402
from bench import SYMBOL_ORDER, layout_coverage, seed_config  # noqa: E402

MASTER = "sk-1234"


def call(url: str, path: str, body: dict | None = None, key: str = MASTER) -> bytes:
    req = urllib.request.Request(url + path, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        return e.read()


def ran_functions(profile: Path, binary: str) -> dict[str, int]:
    """Self instructions of each function of `binary` in a callgrind profile: cost lines after a
    `calls=` line are the call's inclusive cost and are skipped; names are defined at first use
    (`fn=(id) name`, also in `cfn=`), objects likewise (`ob=`, `cob=`)."""
    names: dict[str, str] = {}
    objects: dict[str, str] = {}
    cost: dict[str, int] = defaultdict(int)
    current_object = None
    current = None
    skip_next = False
    define = re.compile(r"^(c?ob|c?fn)=\((\d+)\)(?: (.*))?")
    with open(profile, errors="replace") as f:
        for line in f:
            first = line[:1]
            if first.isdigit() or first in "+-*":
                if skip_next:
                    skip_next = False
                elif current is not None:
                    parts = line.split()
                    if len(parts) >= 2:
                        cost[current] += int(parts[1])
                continue
            if line.startswith("calls="):
                skip_next = True
                continue
            m = define.match(line)
            if not m:
                continue
            kind, ident, name = m.groups()
            table = objects if kind.endswith("ob") else names
            if name:
                table[ident] = name.strip()
            if kind == "ob":
                current_object = objects.get(ident)
            elif kind == "fn":
                current = names.get(ident) if current_object == binary else None
    merged: dict[str, int] = defaultdict(int)
    for name, n in cost.items():
        # callgrind marks a recursion level with a suffix ('2): the symbol is the same.
        # Addresses without a symbol and callgrind's own entries such as "(below main)" are not
        # names the linker knows.
        if not name.startswith("0x") and " " not in name and "(" not in name:
            merged[re.sub(r"'\d+$", "", name)] += n
    return merged


def symbol_sizes(binary: Path) -> dict[str, int]:
    out = subprocess.run(["nm", "-S", "--defined-only", str(binary)], capture_output=True, text=True, check=True)
    sizes = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4:
            sizes[parts[3]] = int(parts[1], 16)
    return sizes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", default=str(REPO / "target" / "release" / "sluice"))
    ap.add_argument("--out", default=str(SYMBOL_ORDER))
    ap.add_argument("--check", action="store_true",
                    help="only say how many of the listed functions the binary holds (under 90 %%: stale)")
    args = ap.parse_args()
    if args.check:
        found, listed = layout_coverage(Path(args.sluice))
        print(f"{args.sluice} holds {found} of the {listed} functions {SYMBOL_ORDER.name} lists")
        return 0 if listed and found >= 0.9 * listed else 1
    if not shutil.which("valgrind"):
        print("valgrind is not installed: apt-get install valgrind", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        binary = tmp / "sluice"
        shutil.copyfile(args.sluice, binary)
        binary.chmod(0o755)
        mock_port, port = free_port(), free_port()
        cfg = tmp / "sluice.yaml"
        cfg.write_text(seed_config(mock_port) + "\nsluice_settings:\n  access_log: false\n")
        mock = subprocess.Popen([str(binary), "mock", "--host", "127.0.0.1", "--port", str(mock_port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        profile = tmp / "callgrind.out"
        gw = subprocess.Popen(["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={profile}",
                               str(binary), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port),
                               "--num_workers", "1"],
                              cwd=tmp, stdout=subprocess.DEVNULL, stderr=open(tmp / "gateway.log", "wb"))
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(f"{url}/health/liveliness", timeout=5).read()
                    break
                except OSError:
                    if time.monotonic() > deadline or gw.poll() is not None:
                        raise RuntimeError(f"the gateway did not start: {(tmp / 'gateway.log').read_text()[-500:]}")
                    time.sleep(0.1)

            def load(*extra: str) -> None:
                subprocess.run([str(binary), "load", "--host", url, "-q", "--threads", "1", *extra],
                               check=True, stdout=subprocess.DEVNULL)

            load("-u", "16", "-n", "500")
            load("-u", "200", "-r", "200", "--wait", "0.5..1", "-t", "12s")
            call(url, "/metrics")
            call(url, "/v1/models")
            key = json.loads(call(url, "/key/generate", {"max_budget": 10, "rpm_limit": 1000})).get("key", "")
            load("-u", "4", "-n", "50", "--header", f"Authorization: Bearer {key}")
            call(url, "/key/info?key=" + key)
            call(url, "/spend/logs")
            call(url, "/ui/")
            call(url, "/health/readiness")
        finally:
            gw.send_signal(signal.SIGINT)
            try:
                gw.wait(timeout=60)
            except subprocess.TimeoutExpired:
                gw.kill()
                gw.wait()
            mock.kill()
            mock.wait()
        cost = ran_functions(profile, str(binary))
    if not cost:
        print("the profile names no function of the binary", file=sys.stderr)
        return 1
    ordered = sorted(cost, key=lambda n: (-cost[n], n))
    Path(args.out).write_text("".join(n + "\n" for n in ordered))
    sizes = symbol_sizes(Path(args.sluice))
    listed = sum(sizes.get(n, 0) for n in ordered)
    text = sum(sizes.values())
    print(f"{args.out}: {len(ordered)} functions, {listed / 1e6:.1f} MB of the binary's {text / 1e6:.1f} MB of "
          f"symbols ({sum(1 for n in ordered if n not in sizes)} names not in {args.sluice})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
