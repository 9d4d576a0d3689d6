"""Fixtures for the real-client tests: a `sluice mock` upstream (plain and
`--seed-compat`) and a `sluice` gateway whose config points at them.

Every process listens on port 0 and prints one ready line with the port it got;
we parse that line instead of guessing free ports. stderr goes to a file in the
session's tmp dir, and its tail is printed when a test fails (or a process does
not come up), so a gateway panic or log line is visible in the pytest report.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
MASTER_KEY = "sk-1234"
MOCK_SENTENCE = "Hello this is a test response from a fixed OpenAI endpoint."
READY_TIMEOUT_S = 20.0

# Every process started by this session, so a failing test can show their logs.
_PROCS: list["SluiceProc"] = []


def sluice_bin() -> Path:
    raw = os.environ.get("SLUICE_BIN", "target/debug/sluice")
    path = Path(raw)
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.exit(
            f"sluice binary not found or not executable at {path} "
            "(build it with `cargo build -p sluice`, or set SLUICE_BIN)",
            returncode=2,
        )
    return path


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<no log>"
    return "\n".join(text.splitlines()[-lines:])


class SluiceProc:
    """One `sluice` process that announces `... listening on http://HOST:PORT`."""

    def __init__(self, name: str, args: list[str], ready_re: str, log_dir: Path, env: dict[str, str] | None = None):
        self.name = name
        self.stderr_path = log_dir / f"{name}.stderr.log"
        self.stdout_path = log_dir / f"{name}.stdout.log"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [str(sluice_bin()), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=str(log_dir),
            env={**os.environ, **(env or {}), "NO_COLOR": "1"},  # plain text in the captured logs
        )
        _PROCS.append(self)
        self.url = self._wait_ready(re.compile(ready_re))
        self.port = int(self.url.rsplit(":", 1)[1])

    def _wait_ready(self, pattern: re.Pattern) -> str:
        found: dict[str, str] = {}
        ready = threading.Event()

        def pump() -> None:
            # Keep draining stdout after the ready line so the pipe never fills.
            with open(self.stdout_path, "wb") as out:
                for raw in self.proc.stdout:
                    out.write(raw)
                    out.flush()
                    if not ready.is_set():
                        m = pattern.search(raw.decode(errors="replace"))
                        if m:
                            found["url"] = m.group(1)
                            ready.set()
            ready.set()

        threading.Thread(target=pump, name=f"{self.name}-stdout", daemon=True).start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and not ready.is_set():
            ready.wait(0.1)
        if "url" not in found:
            self.stop()
            raise RuntimeError(
                f"{self.name} did not print its ready line within {READY_TIMEOUT_S}s "
                f"(exit code {self.proc.poll()}); stderr tail:\n{tail(self.stderr_path)}"
            )
        return found["url"]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._stderr.close()


VERTEX_TEST_KEY = REPO_ROOT / "crates" / "providers" / "tests" / "fixtures" / "vertex-test-sa.json"


def vertex_key_at(mock: SluiceProc, log_dir: Path, name: str) -> Path:
    """The tests' Vertex service-account key (`VERTEX_TEST_KEY`) with its token_uri at `mock`,
    written to `log_dir / name`: a mock started with `--vertex-credentials VERTEX_TEST_KEY`
    issues tokens for it, and only for it."""
    key = json.loads(VERTEX_TEST_KEY.read_text())
    key["token_uri"] = mock.url + "/token"
    path = log_dir / name
    path.write_text(json.dumps(key))
    return path


def start_mock(log_dir: Path, name: str, *extra: str) -> SluiceProc:
    return SluiceProc(
        name,
        ["mock", "--host", "127.0.0.1", "--port", "0", *extra],
        r"sluice mock listening on (http://127\.0\.0\.1:\d+)",
        log_dir,
    )


def start_gateway(log_dir: Path, name: str, config_yaml: str, env: dict[str, str] | None = None) -> SluiceProc:
    """A gateway on `config_yaml`, with `env` added to this process's environment."""
    cfg = log_dir / f"{name}.config.yaml"
    cfg.write_text(config_yaml)
    return SluiceProc(
        name,
        ["--config", str(cfg), "--host", "127.0.0.1", "--port", "0"],
        r"sluice listening on (http://127\.0\.0\.1:\d+)",
        log_dir,
        env,
    )


def refused_start(log_dir: Path, name: str, config_yaml: str, without_env: tuple[str, ...] = ()) -> str:
    """Starts sluice with `config_yaml`, and the environment without the variables starting with
    `without_env`; asserts the start stops, and gives back what it printed on stderr."""
    path = log_dir / f"{name}.yaml"
    path.write_text(config_yaml)
    env = {k: v for k, v in os.environ.items() if not (without_env and k.startswith(without_env))}
    out = subprocess.run(
        [str(sluice_bin()), "--config", str(path), "--host", "127.0.0.1", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert out.returncode != 0, f"the start did not stop: {out.stderr}"
    return out.stderr


def callback_failures(gw, name: str) -> float:
    """`litellm_callback_logging_failures_metric_total` for callback `name` (0 when absent; the
    gateway must list `prometheus`)."""
    r = requests.get(gw.url + "/metrics", timeout=10)
    assert r.status_code == 200, "list prometheus among the callbacks to read the metrics"
    text = r.text
    prefix = f'litellm_callback_logging_failures_metric_total{{callback_name="{name}"}} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def wait_for_failures(gw, name: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callback_failures(gw, name) >= 1:
            return
        time.sleep(0.2)
    raise AssertionError(f"no failed delivery of {name} was counted in litellm_callback_logging_failures_metric")


def spend_rows(gw, token: str, want: int, timeout: float = 15.0) -> list:
    """The key's spend-log rows once `want` of them are written (or whatever is there after
    `timeout` seconds): the spend writer batches rows off the response path."""
    deadline = time.monotonic() + timeout
    while True:
        rows = requests.get(
            gw.url + "/spend/logs",
            params={"api_key": token, "summarize": "false"},
            headers={"Authorization": f"Bearer {MASTER_KEY}"},
        ).json()
        if len(rows) >= want or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


# ---- s3 ----


class Moto:
    """moto's S3 (and IAM) server: a bucket, and an IAM user whose key signs every request."""


class RedisServer:
    """A redis-server of this test's own on a free port: the machine's 6379 is never stopped."""

    def __init__(self, log_dir: Path):
        self.dir = log_dir
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
            stdout=open(self.dir / "redis.log", "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on {self.port} did not start:\n{tail(self.dir / 'redis.log')}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()  # an outage, not a shutdown: no goodbye to the clients
            self.proc.wait(timeout=5)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@atexit.register
def _stop_all() -> None:
    # Fixture teardown normally stops everything; this covers an aborted session.
    for p in _PROCS:
        if p.proc.poll() is None:
            p.proc.kill()


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sluice")


@pytest.fixture(scope="session")
def mock(log_dir):
    p = start_mock(log_dir, "mock")
    yield p
    p.stop()


@pytest.fixture(scope="session")
def mock_compat(log_dir):
    p = start_mock(log_dir, "mock-compat", "--seed-compat")
    yield p
    p.stop()


# model_name -> litellm_params (api_base filled in by the fixture). The upstream
# model names are the mock's triggers (429, error-<status>, garbage, ...).
# The provider key of the deployment whose upstream quotes it back in a mid-stream error.
ECHOED_KEY = "sk-provider-echoed-0123456789"


def gateway_models(mock_url: str, compat_url: str, dead_url: str) -> list[tuple[str, dict]]:
    def openai(name: str, base: str = mock_url, **extra) -> dict:
        return {"model": f"openai/{name}", "api_base": base + "/", "api_key": "test", **extra}

    return [
        ("fake-openai-endpoint", openai("any")),
        ("compat-endpoint", openai("any", compat_url)),
        ("text-embedding", openai("text-embedding-ada-002")),
        ("err-404", openai("error-404")),
        ("err-429", openai("429")),
        ("err-503", openai("error-503")),
        ("err-400", openai("error-400")),
        ("garbage", openai("garbage")),
        ("stream-reset", openai("stream-reset")),
        ("stream-echo-key", openai("stream-echo-key", api_key=ECHOED_KEY)),
        ("slow", openai("sleep-3000", timeout=1, stream_timeout=1)),
        ("dead", openai("any", dead_url)),
        ("replicate-model", {"model": "replicate/meta/llama-3-8b-instruct"}),
        (
            "gemini-vision",
            {
                "model": "vertex_ai/gemini-1.0-pro-vision-001",
                "api_base": mock_url
                + "/v1/projects/bad-adroit-crow-413218/locations/us-central1/publishers/google/models/gemini-1.0-pro-vision-001",
                "vertex_project": "adroit-crow-413218",
                "vertex_location": "us-central1",
            },
        ),
    ]


def yaml_scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(models: list[tuple[str, dict]], general: dict | None = None, router: dict | None = None) -> str:
    lines = ["model_list:"]
    for name, params in models:
        lines.append(f"  - model_name: {yaml_scalar(name)}")
        lines.append("    litellm_params:")
        for k, v in params.items():
            lines.append(f"      {k}: {yaml_scalar(v)}")
    if general:
        lines.append("general_settings:")
        for k, v in general.items():
            lines.append(f"  {k}: {yaml_scalar(v)}")
    if router:
        lines.append("router_settings:")
        for k, v in router.items():
            lines.append(f"  {k}: {yaml_scalar(v)}")
    return "\n".join(lines) + "\n"


class Gateway:
    def __init__(self, proc: SluiceProc, model_names: list[str]):
        self.proc = proc
        self.url = proc.url
        self.port = proc.port
        self.model_names = model_names


@pytest.fixture(scope="session")
def gateway(log_dir, mock, mock_compat):
    models = gateway_models(mock.url, mock_compat.url, f"http://127.0.0.1:{closed_port()}")
    # num_retries 0: each error test sees the single upstream answer it provoked (retries have
    # their own tests in crates/router and crates/sluice/tests/routing.rs).
    cfg = render_config(models, {"master_key": MASTER_KEY, "max_request_size_mb": 1}, {"num_retries": 0})
    p = start_gateway(log_dir, "gateway", cfg)
    yield Gateway(p, [name for name, _ in models])
    p.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for p in _PROCS:
            state = "running" if p.alive() else f"exited {p.proc.returncode}"
            report.sections.append(
                (f"{p.name} stderr tail ({state}, {p.stderr_path})", tail(p.stderr_path))
            )
        # Replica sets (tests/python/replicas.py) started by the failing test's module.
        import replicas

        for rs in replicas.ACTIVE:
            report.sections.append((f"replica set {rs.run_dir}", rs.logs(8)))
