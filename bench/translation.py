#!/usr/bin/env python3
"""What translating a chat costs, per provider (issue #24's speed point): the seed benchmark on one
gateway per provider side by side, each with one deployment of that provider pointed at
`sluice mock` (which answers every provider's own wire format), against the `openai/` passthrough.

    bench/translation.py [--sluice target/release/sluice] [--duration 10s] [--repeats 3]
                         [--providers vertex_ai,anthropic,...]

Each gateway is pinned to core 0 with one worker; `sluice mock` and `sluice load` share core 1.
Every gateway serves the seed's model name (`fake-openai-endpoint`) from one deployment of its
provider, so `sluice load` sends each the same seed payload (~16 KB, a fresh UUID per request).
Per repeat and gateway, in ABBA order (forward, then backward, the starting gateway moving on
every pair of repeats), a closed loop of `--users` users for `--duration` gives the gateway's CPU
time per request (from /proc); the mock's route counters show the requests reached the
provider's own route. The table gives each provider's median CPU per request and its ratio to
`openai/`: the issue allows at most 1.5x for a translated provider (flagged above it);
OpenAI-compatible providers (`mistral`, `hosted_vllm`, ...) forward the bytes as `openai/` does
and are there as controls (~1.0x). `replicate/` waits 500 ms for its first poll, so its closed
loop leaves the core idle: it and `openai/` are also run in an open loop at `--paced-rate`
requests/s (default 1000: enough requests for /proc's 10 ms ticks), and that pair is its ratio. A provider that fails to start, to answer, or has failed
requests under load is reported as such, with its first error, and the script exits 1.
`--smoke` makes it a few seconds per provider (CI).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from keys import MASTER, REPO, rss_mb, start  # noqa: E402
from procs import cpu_seconds, sluice_load  # noqa: E402

MODEL = "fake-openai-endpoint"
# The service-account key the mock checks Vertex's token exchange against (the tests' key).
VERTEX_KEY = REPO / "crates" / "providers" / "tests" / "fixtures" / "vertex-test-sa.json"
AWS = {
    "aws_region_name": "us-east-1",
    "aws_access_key_id": "AKIDEXAMPLE",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
}
BASELINE = "openai"
LIMIT = 1.5
# Gateways on core 0; the mock and the load generator on core 1 (unpinned on one core).
GW_CPU, OTHER_CPU = (0, 1) if len(os.sched_getaffinity(0)) > 1 else (None, None)


def deployments(mock: str, vertex_key: Path) -> dict[str, tuple[bool, str, dict, dict]]:
    """Each provider's deployment at the mock, as the Python tests configure it: (translated,
    the mock's route it must reach, litellm_params, environment)."""
    return {
        # The seed's own deployment: the client's bytes forwarded with `model` rewritten.
        "openai": (False, "chat", {"model": "openai/fake", "api_key": "fake-key", "api_base": mock + "/"}, {}),
        # The seed config's Vertex deployment (its api_base shape), with the tests' service account.
        "vertex_ai": (True, "vertex", {
            "model": "vertex_ai/gemini-1.0-pro-vision-001",
            "api_base": mock + "/v1/projects/bad-adroit-crow-413218/locations/us-central1/publishers/google/models/"
            "gemini-1.0-pro-vision-001",
            "vertex_project": "adroit-crow-413218",
            "vertex_location": "us-central1",
            "vertex_credentials": str(vertex_key),
        }, {}),
        # Vertex AI's partner models, each at its own door with the same key: Claude in
        # Anthropic's format, Llama and Mistral in OpenAI's (bytes forwarded, answers re-stamped).
        **{
            f"vertex_ai-{name}": (True, "vertex", {
                "model": f"vertex_ai/{model}", "api_base": mock, "vertex_project": "p",
                "vertex_location": "us-east5", "vertex_credentials": str(vertex_key)}, {})
            for name, model in [
                ("claude", "claude-3-5-sonnet@20240620"),
                ("llama", "meta/llama-3.1-405b-instruct-maas"),
                ("mistral", "mistral-large@2407"),
            ]
        },
        "gemini": (True, "gemini", {"model": "gemini/gemini-1.5-pro", "api_base": mock + "/v1beta", "api_key": "g-key"}, {}),
        "anthropic": (True, "anthropic", {
            "model": "anthropic/claude-3-5-sonnet-20241022", "api_base": mock, "api_key": "sk-ant-test"}, {}),
        "bedrock": (True, "bedrock", {"model": "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0", "api_base": mock, **AWS}, {}),
        "cohere_chat": (True, "cohere", {"model": "cohere_chat/command-r-plus", "api_base": mock, "api_key": "co-test"}, {}),
        "ollama": (True, "ollama", {"model": "ollama/llama3", "api_base": mock}, {}),
        "ollama_chat": (True, "ollama", {"model": "ollama_chat/llama3.1", "api_base": mock}, {}),
        # The API key is exchanged once at the mock's IBM Cloud IAM for a token.
        "watsonx": (True, "watsonx", {
            "model": "watsonx/ibm/granite-3-8b-instruct", "api_base": mock, "api_key": "wx-key", "project_id": "p1"},
            {"WATSONX_IAM_URL": mock + "/identity/token"}),
        "sagemaker": (True, "sagemaker", {"model": "sagemaker/my-tgi-endpoint", "api_base": mock, **AWS}, {}),
        "sagemaker_chat": (True, "sagemaker", {"model": "sagemaker_chat/my-chat-endpoint", "api_base": mock, **AWS}, {}),
        "cloudflare": (True, "cloudflare", {
            "model": "cloudflare/@cf/meta/llama-3.1-8b-instruct",
            "api_base": mock + "/client/v4/accounts/acc-1/ai/run/", "api_key": "cf-token"}, {}),
        "predibase": (True, "textgen", {
            "model": "predibase/llama-3-8b-instruct", "api_base": mock, "tenant_id": "t1", "api_key": "pb-key"}, {}),
        "triton": (True, "textgen", {"model": "triton/ensemble", "api_base": mock + "/v2/models/ensemble/generate"}, {}),
        "replicate": (True, "replicate", {
            "model": "replicate/meta/meta-llama-3-8b-instruct", "api_base": mock, "api_key": "r8_key"}, {}),
        "azure_text": (True, "completions", {
            "model": "azure_text/gpt-35-turbo-instruct", "api_base": mock, "api_key": "azure-key",
            "api_version": "2024-02-01"}, {}),
        # OpenAI's format at their own addresses: controls, expected at ~1.0x.
        "mistral": (False, "chat", {"model": "mistral/mistral-large-latest", "api_base": mock + "/v1", "api_key": "m-key"}, {}),
        "hosted_vllm": (False, "chat", {"model": "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct", "api_base": mock + "/v1"}, {}),
        "azure_ai": (False, "chat", {
            "model": "azure_ai/mistral-large-2407", "api_base": mock, "api_key": "az-key",
            "api_version": "2024-05-01-preview"}, {}),
        "huggingface": (False, "chat", {"model": "huggingface/tgi", "api_base": mock, "api_key": "hf-token"}, {}),
        "ai21": (False, "chat", {"model": "ai21/jamba-1.5-mini", "api_base": mock + "/v1", "api_key": "ai21-key"}, {}),
        # A real workspace's base ends in `/serving-endpoints`; the mock answers OpenAI's
        # `/chat/completions`, which is all a control needs.
        "databricks": (False, "chat", {"model": "databricks/databricks-dbrx-instruct", "api_base": mock, "api_key": "dapi"}, {}),
    }


# Providers whose requests wait on the upstream by design, so a closed loop leaves the core idle
# and its CPU per request is not comparable (fewer requests share each wake-up): they are also
# measured in an open loop at `--paced-rate`, and so is `openai/`, and compared at that rate.
PACED = {"replicate"}
# The mock keeps a prediction `processing` for 300 ms; sluice polls first after 500 ms.
PACED_WHY = ("a replicate/ request is a prediction created, then polled 500 ms later: two upstream calls, "
             "and a closed loop carries at most users/0.5 s requests a second, its core mostly idle")


def config(seed: str, params: dict) -> str:
    """The seed's config with its one deployment replaced (JSON values are YAML flow values)."""
    head, sep, rest = seed.partition("model_list:\n")
    _, sep2, tail = rest.partition("\nlitellm_settings:")
    assert sep and sep2, "examples/seed-openai.yaml's layout moved"
    return (f"{head}model_list:\n  - model_name: {MODEL}\n    litellm_params: {json.dumps(params)}\n"
            f"\nlitellm_settings:{tail}")


def probe(base: str) -> str | None:
    """One small chat through the gateway: None when it answers 200, else what it said."""
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}).encode()
    req = urllib.request.Request(base + "/v1/chat/completions", data=body, headers={
        "Authorization": f"Bearer {MASTER}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
        return None
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}: {e.read()[:300].decode(errors='replace')}"
    except OSError as e:
        return str(e)


def routes(mock: str) -> dict[str, int]:
    with urllib.request.urlopen(mock + "/mock/stats", timeout=10) as r:
        return json.loads(r.read())["by_route"]


def first_error(out: Path) -> str:
    errors = out.with_suffix(".errors.txt")
    text = errors.read_text(errors="replace").strip() if errors.exists() else ""
    return text.splitlines()[0][:300] if text else "(no error file)"


class Runs:
    """Every measured run: CPU per request from /proc around one `sluice load`, by (provider,
    open-loop rate or None for the closed loop)."""

    def __init__(self, args: argparse.Namespace, tmp: Path, mock: str, route: dict[str, str]) -> None:
        self.args, self.tmp, self.mock, self.route = args, tmp, mock, route
        self.cpu: dict[tuple[str, int | None], list[float]] = {}
        self.sent: dict[tuple[str, int | None], int] = {}
        self.failures: dict[tuple[str, int | None], int] = {}
        # The requests the mock saw on each provider's own route, in the closed loops.
        self.reached: dict[str, int] = {}
        self.errors: dict[str, str] = {}

    def one(self, rep: int, name: str, pid: int, base: str, rate: int | None) -> None:
        key = (name, rate)
        out = self.tmp / f"{rep}-{name}-{rate or 'closed'}.json"
        route = self.route[name]
        before = routes(self.mock)
        c0 = cpu_seconds(pid)
        r = sluice_load(self.args.sluice, base, OTHER_CPU, out, self.args.duration, rate, MASTER,
                        users=self.args.users)["aggregated"]
        c1 = cpu_seconds(pid)
        n, fails = r["requests"], r["failures"]
        if rate is None:
            self.reached[name] = self.reached.get(name, 0) + routes(self.mock).get(route, 0) - before.get(route, 0)
        self.sent[key] = self.sent.get(key, 0) + n
        self.failures[key] = self.failures.get(key, 0) + fails
        if fails and name not in self.errors:
            self.errors[name] = first_error(out)
        self.cpu.setdefault(key, []).append((c1 - c0) / max(n, 1) * 1e6)
        loop = f"open loop {rate}/s" if rate else "closed loop"
        print(f"run {rep + 1} {name}, {loop}: {n} requests, {self.cpu[key][-1]:.1f} µs CPU/request"
              + (f"; {fails} failed" if fails else ""), flush=True)

    def median(self, name: str, rate: int | None = None) -> float:
        return statistics.median(self.cpu[(name, rate)])


def report(args: argparse.Namespace, every: dict, gws: dict, runs: Runs, broken: dict[str, str]) -> list[str]:
    """Prints the table and what failed; returns the translated providers over the limit."""
    base_cpu = runs.median(BASELINE)
    over = []
    print()
    print(f"| provider | kind | CPU µs/request (median of {args.repeats}) | ratio to openai/ | requests | "
          f"failed | mock route saw | RSS MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, (gw, _) in gws.items():
        translated, route = every[name][:2]
        c = runs.median(name)
        ratio = f"{c / base_cpu:.2f}x"
        if name in PACED:
            # The closed loop's figure is that of an idle core: the paced one decides.
            rate = args.paced_rate
            paced, paced_base = runs.median(name, rate), runs.median(BASELINE, rate)
            c, ratio = paced, f"{paced / paced_base:.2f}x at {rate}/s (closed loop {runs.median(name):.1f} µs)"
            base_for = paced_base
        else:
            base_for = base_cpu
        if translated and c / base_for > LIMIT:
            ratio += f" **over {LIMIT}x**"
            over.append(name)
        kind = "translated" if translated else ("baseline" if name == BASELINE else "OpenAI-compatible")
        print(f"| {name} | {kind} | {c:.1f} | {ratio} | {runs.sent[(name, None)]} | {runs.failures[(name, None)]} | "
              f"{runs.reached[name]} ({route}) | {rss_mb(gw.pid):.1f} |")
    print()
    paced = [name for name in gws if name in PACED]
    if paced:
        print(f"at {args.paced_rate} requests/s (open loop), for {', '.join(paced)}: openai/ "
              f"{runs.median(BASELINE, args.paced_rate):.1f} µs CPU/request; {PACED_WHY}")
    for name in gws:
        sent = runs.sent[(name, None)]
        if runs.reached[name] < sent:
            print(f"NOT SERVED as configured, {name}: the mock's `{every[name][1]}` route saw "
                  f"{runs.reached[name]} of {sent} requests")
            broken.setdefault(name, "requests did not reach the provider's route")
    for name, err in runs.errors.items():
        failed = sum(n for (p, _), n in runs.failures.items() if p == name)
        sent = sum(n for (p, _), n in runs.sent.items() if p == name)
        print(f"FAILED under load, {name}: {failed} of {sent} requests; first error: {err}")
    for name, why in broken.items():
        print(f"NOT MEASURED, {name}: {why}")
    print(f"over {LIMIT}x openai/: {', '.join(over) if over else 'none'}")
    return over


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sluice", default=str(REPO / "target" / "release" / "sluice"))
    ap.add_argument("--duration", default="10s", help="each measured closed loop (default 10s)")
    ap.add_argument("--warmup", default="1s", help="an unmeasured closed loop per gateway first (0: none)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--users", type=int, default=64, help="closed-loop users (default 64)")
    ap.add_argument("--paced-rate", type=int, default=1000,
                    help="the open loop's requests/s for replicate/ and openai/ (default 1000)")
    ap.add_argument("--providers", help="comma-separated (default: all); openai/ is always measured")
    ap.add_argument("--json-out", type=Path, help="also write the medians and every run here")
    ap.add_argument("--smoke", action="store_true", help="1 s runs, one repeat, no warm-up (CI)")
    args = ap.parse_args()
    if args.smoke:
        args.duration, args.repeats, args.warmup, args.paced_rate = "1s", 1, "0", 100
    if not 1 <= args.repeats <= 100 or not 1 <= args.users <= 10_000 or not 1 <= args.paced_rate <= 100_000:
        ap.error("--repeats must be 1..100, --users 1..10000 and --paced-rate 1..100000")
    with tempfile.TemporaryDirectory(prefix="sluice-translation-bench-") as tmp:
        tmp = Path(tmp)
        # No rate limit: the seed's Vertex project is limited to 10,000 a minute by default.
        mock, mock_url = start([args.sluice, "mock", "--host", "127.0.0.1", "--port", "0", "--no-default-rate-limit",
                                "--vertex-credentials", str(VERTEX_KEY)], OTHER_CPU, tmp / "mock.log")
        key = json.loads(VERTEX_KEY.read_text())
        key["token_uri"] = mock_url + "/token"
        vertex_key = tmp / "vertex-key.json"
        vertex_key.write_text(json.dumps(key))
        every = deployments(mock_url, vertex_key)
        names = list(every)
        if args.providers:
            asked = [p.strip() for p in args.providers.split(",") if p.strip()]
            unknown = [p for p in asked if p not in every]
            if unknown:
                mock.terminate()
                ap.error(f"unknown providers {unknown}; known: {', '.join(every)}")
            names = [BASELINE] + [p for p in asked if p != BASELINE]
        seed = (REPO / "examples" / "seed-openai.yaml").read_text()
        procs, gws, broken = [mock], {}, {}
        try:
            for name in names:
                params, env = every[name][2:]
                path = tmp / f"config-{name}.yaml"
                path.write_text(config(seed, params))
                saved = {k: os.environ.get(k) for k in [*env, "DATABASE_URL"]}
                os.environ.update(env)
                os.environ["DATABASE_URL"] = f"sqlite://{tmp / f'gw-{name}.db'}"
                try:
                    gw, base = start([args.sluice, "--config", str(path), "--host", "127.0.0.1", "--port", "0",
                                      "--num_workers", "1"], GW_CPU, tmp / f"gateway-{name}.log")
                except RuntimeError as e:
                    broken[name] = f"did not start: {e}"
                    continue
                finally:
                    for k, v in saved.items():
                        if v is None:
                            os.environ.pop(k, None)
                        else:
                            os.environ[k] = v
                procs.append(gw)
                why = probe(base)
                if why:
                    broken[name] = f"a plain chat was refused: {why}"
                    continue
                gws[name] = (gw, base)
            if BASELINE not in gws:
                raise SystemExit(f"the openai/ baseline cannot be measured: {broken.get(BASELINE)}")
            if args.warmup not in ("0", "0s"):
                for name, (gw, base) in gws.items():
                    sluice_load(args.sluice, base, OTHER_CPU, tmp / f"warm-{name}.json", args.warmup, None, MASTER)
            runs = Runs(args, tmp, mock_url, {name: every[name][1] for name in gws})
            order = list(gws.items())
            for rep in range(args.repeats):
                # ABBA: forward then backward; each pair of repeats starts one gateway further on.
                shift = (rep // 2) % len(order)
                run = order[shift:] + order[:shift]
                for name, (gw, base) in run if rep % 2 == 0 else run[::-1]:
                    runs.one(rep, name, gw.pid, base, None)
                    if name in PACED or (name == BASELINE and PACED & gws.keys()):
                        runs.one(rep, name, gw.pid, base, args.paced_rate)
            over = report(args, every, gws, runs, broken)
            if args.json_out:
                args.json_out.write_text(json.dumps({
                    "duration": args.duration, "repeats": args.repeats, "users": args.users,
                    "paced_rate": args.paced_rate, "limit": LIMIT,
                    "cpu_us": {f"{name} at {rate}/s" if rate else name: v for (name, rate), v in runs.cpu.items()},
                    "requests": {name: n for (name, rate), n in runs.sent.items() if rate is None},
                    "failures": {name: n for (name, rate), n in runs.failures.items() if n},
                    "over": over, "not_measured": broken}, indent=2) + "\n")
            return 1 if broken or runs.errors else 0
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
