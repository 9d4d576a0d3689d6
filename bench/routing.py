#!/usr/bin/env python3
"""Router benchmarks: the seed's 2 x 10K-RPM test at full scale, and adaptive-p2c against
simple-shuffle on deployments of unequal health.

Usage: bench/routing.py [--bin target/release/sluice] [--scenario seed|strategies|all]
       [--duration 60] [--rate 1170] [--out bench/ROUTING.md]

Everything runs on loopback: `sluice mock` as the providers, `sluice` as the gateway and
`sluice load` (open loop, latency from intended send times) as the client.
"""
import argparse, datetime, json, os, platform, re, signal, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Proc:
    """A child started in its own process group, waited for on its 'listening on' line."""

    def __init__(self, args, log):
        self.log = open(log, "w")
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True, start_new_session=True)
        deadline = time.time() + 20
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError(f"{args[1]} exited; see {log}")
            m = re.search(r"listening on http://([\d.]+):(\d+)", line)
            if m:
                self.url = f"http://127.0.0.1:{m.group(2)}"
                return
            if time.time() > deadline:
                raise RuntimeError(f"{args} did not start")

    def stop(self):
        try:
            os.killpg(self.p.pid, signal.SIGTERM)
            self.p.wait(5)
        except Exception:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except Exception:
                pass


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


def load(binary, host, model, rate, duration, work, name):
    out = os.path.join(work, f"{name}.json")
    cmd = [binary, "load", "--host", host, "--model", model, "--rate", str(rate), "-t", f"{duration}s",
           "--connections", "2000", "-q", "--error-file", os.path.join(work, f"{name}-errors.txt"), "--json", out]
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)
    with open(out) as f:
        return json.load(f), " ".join(cmd)


def seed(binary, work, duration, rate, rpm):
    """Two deployments of one group, each behind a route limited to 10,000 per minute."""
    mock = Proc([binary, "mock", "--port", "0", "--no-default-rate-limit",
                 "--rate-limit", "/openai/deployments/crow-a=10000/60s",
                 "--rate-limit", "/openai/deployments/crow-b=10000/60s"], os.path.join(work, "mock.log"))
    rpm_line = f"\n      rpm: {rpm}" if rpm else ""
    cfg = os.path.join(work, f"seed-{rpm or 'none'}.yaml")
    with open(cfg, "w") as f:
        f.write(f"""model_list:
  - model_name: gemini-vision
    litellm_params:
      model: openai/gemini-1.0-pro-vision-001
      api_base: {mock.url}/openai/deployments/crow-a{rpm_line}
  - model_name: gemini-vision
    litellm_params:
      model: openai/gemini-1.0-pro-vision-001
      api_base: {mock.url}/openai/deployments/crow-b{rpm_line}
litellm_settings:
  callbacks: ["prometheus"]
general_settings:
  master_key: sk-1234
""")
    gw = Proc([binary, "--config", cfg, "--host", "127.0.0.1", "--port", "0"], os.path.join(work, "gw.log"))
    try:
        summary, cmd = load(binary, gw.url, "gemini-vision", rate, duration, work, f"seed-{rpm or 'none'}")
        stats = get_json(mock.url + "/mock/stats")
        with urllib.request.urlopen(gw.url + "/metrics", timeout=5) as r:
            metrics = r.read().decode()
    finally:
        gw.stop()
        mock.stop()
    agg = summary["aggregated"]
    cooled = sum(float(l.rsplit(" ", 1)[1]) for l in metrics.splitlines() if l.startswith("litellm_deployment_cooled_down_total{"))
    return {
        "rpm": rpm,
        "requests": agg["requests"],
        "successes": agg["requests"] - agg["failures"],
        "p50_ms": agg["latency_ms"]["p50"],
        "avg_ms": agg["latency_ms"]["avg"],
        "upstream_calls": stats["by_route"]["chat"],
        "upstream_429": stats["rate_limited"],
        "cooldowns": cooled,
        "command": cmd,
    }


def strategies(binary, work, duration, rate):
    """One fast, one slow and one flaky deployment: what each strategy makes of them."""
    fast = Proc([binary, "mock", "--port", "0", "--latency", "20ms"], os.path.join(work, "fast.log"))
    slow = Proc([binary, "mock", "--port", "0", "--latency", "normal:250ms,50ms"], os.path.join(work, "slow.log"))
    flaky = Proc([binary, "mock", "--port", "0", "--latency", "20ms", "--fail-percent", "30"], os.path.join(work, "flaky.log"))
    rows = []
    try:
        for strategy in ["simple-shuffle", "least-busy", "latency-based-routing", "adaptive-p2c"]:
            cfg = os.path.join(work, f"strategy-{strategy}.yaml")
            with open(cfg, "w") as f:
                f.write("model_list:\n")
                for m in (fast, slow, flaky):
                    f.write(f"  - model_name: mixed\n    litellm_params: {{model: openai/fake, api_base: '{m.url}/'}}\n")
                f.write(f"router_settings:\n  routing_strategy: {strategy}\n  num_retries: 0\n  disable_cooldowns: true\ngeneral_settings:\n  master_key: sk-1234\n")
            gw = Proc([binary, "--config", cfg, "--host", "127.0.0.1", "--port", "0"], os.path.join(work, f"gw-{strategy}.log"))
            try:
                summary, cmd = load(binary, gw.url, "mixed", rate, duration, work, f"strategy-{strategy}")
            finally:
                gw.stop()
            agg = summary["aggregated"]
            rows.append({"strategy": strategy, "requests": agg["requests"], "failures": agg["failures"],
                         "p50_ms": agg["latency_ms"]["p50"], "p99_ms": agg["latency_ms"]["p99"],
                         "avg_ms": agg["latency_ms"]["avg"], "command": cmd})
    finally:
        for m in (fast, slow, flaky):
            m.stop()
    return rows


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "sluice"))
    ap.add_argument("--scenario", choices=["seed", "strategies", "all"], default="all")
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--rate", type=int, default=1170, help="offered requests/s for the seed scenario (the seed's ~1170)")
    ap.add_argument("--strategy-rate", type=int, default=200)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "ROUTING.md"))
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit(f"{a.bin} not found: build it with `cargo build --release -p sluice`")
    work = tempfile.mkdtemp(prefix="sluice-routing-")
    version = subprocess.run([a.bin, "--version"], capture_output=True, text=True).stdout.strip()
    lines = [f"# Router benchmarks", "", f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
             f"- {version}; CPU: {cpu_model()} ({os.cpu_count()} cores)", f"- command: `bench/routing.py {' '.join(sys.argv[1:])}`", ""]
    if a.scenario in ("seed", "all"):
        lines += ["## The seed's 2 x 10K-RPM test, full scale", "",
                  f"Two deployments of `gemini-vision`, each behind a mock route limited to 10,000 requests per 60 s "
                  f"fixed window (the fake's 429 body, no Retry-After); {a.rate} requests/s offered for {a.duration} s. "
                  "LiteLLM's published result: 19,800 successes, median 70 ms, average 640 ms.", "",
                  "| rpm set | requests | successes | median ms | average ms | upstream calls | upstream 429s | share of calls answered 429 | cooldowns |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for rpm in (None, 10000):
            r = seed(a.bin, work, a.duration, a.rate, rpm)
            share = 100.0 * r["upstream_429"] / max(1, r["upstream_calls"])
            lines.append(f"| {rpm or 'no'} | {r['requests']} | {r['successes']} | {r['p50_ms']:.2f} | {r['avg_ms']:.2f} | "
                         f"{r['upstream_calls']} | {r['upstream_429']} | {share:.2f}% | {r['cooldowns']:.0f} |")
            print(lines[-1], flush=True)
        lines += ["", f"Load command (per row): `{r['command']}`", ""]
    if a.scenario in ("strategies", "all"):
        lines += ["## adaptive-p2c against LiteLLM's strategies", "",
                  "Three deployments of one group: fast (20 ms), slow (~250 ms), flaky (20 ms, 30% answered 500). "
                  f"No retries, no cooldowns, so the strategy alone decides; {a.strategy_rate} requests/s for {a.duration // 2} s.", "",
                  "| strategy | requests | failures | failure % | p50 ms | p99 ms | average ms |", "|---|---|---|---|---|---|---|"]
        for r in strategies(a.bin, work, a.duration // 2, a.strategy_rate):
            lines.append(f"| {r['strategy']} | {r['requests']} | {r['failures']} | {100.0 * r['failures'] / max(1, r['requests']):.1f}% | "
                         f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['avg_ms']:.1f} |")
            print(lines[-1], flush=True)
        lines.append("")
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
