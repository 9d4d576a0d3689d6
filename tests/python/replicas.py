"""N sluice replicas on one machine, the way the seed deploys LiteLLM: behind nginx (round robin,
keep-alive upstream), with one PostgreSQL database, one Redis (a key prefix of their own) and one
`sluice mock` whose per-deployment rate limits play the providers' quotas.

Used two ways:
- by the tests (`tests/python/test_replicas.py`, `test_replicas_seed.py`): `ReplicaSet(...)` in a
  module-scoped fixture, `.start()` / `.stop()`;
- from a shell (`scripts/replicas.sh start|status|stop`): the processes outlive this script, and
  what `stop` needs (pids, database, prefix) is kept in `<run dir>/state.json`.

Standard library only (plus the `psql` and `redis-cli` clients), so the shell path needs no
virtualenv. Everything listens on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Sets started and not yet stopped: conftest shows their logs when a test fails.
ACTIVE: list["ReplicaSet"] = []
MASTER_KEY = "sk-1234"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
NGINX = "/usr/sbin/nginx"
# The service-account key the providers' tests use; its token_uri is pointed at the mock.
VERTEX_TEST_KEY = REPO_ROOT / "crates" / "providers" / "tests" / "fixtures" / "vertex-test-sa.json"
# The seed's Vertex path; each deployment gets its own project so the mock limits each apart.
VERTEX_MODEL = "gemini-1.0-pro-vision-001"


def vertex_path(project: str) -> str:
    return f"/v1/projects/{project}/locations/us-central1/publishers/google/models/{VERTEX_MODEL}"


def sluice_bin() -> Path:
    raw = os.environ.get("SLUICE_BIN", "target/debug/sluice")
    path = Path(raw)
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file() or not os.access(path, os.X_OK):
        raise SystemExit(
            f"sluice binary not found or not executable at {path} "
            "(build it with `cargo build -p sluice`, or set SLUICE_BIN)"
        )
    return path


def psql(sql: str, db: str = "postgres") -> str:
    user = os.environ.get("PGUSER", "root")
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", user, "-d", db, "-Atc", sql],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if out.returncode != 0:
        raise RuntimeError(
            f"psql failed ({out.stderr.strip()}); is PostgreSQL running on 127.0.0.1:5432 with trust auth? "
            "Start it with `scripts/services.sh` (or set PGUSER to a role that may create databases)"
        )
    return out.stdout.strip()


def redis_cli(port: int, *args: str) -> str:
    out = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True, text=True, timeout=10
    )
    if out.returncode != 0:
        raise RuntimeError(f"redis-cli {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def consecutive_ports(n: int, start: int = 20000, end: int = 32000) -> int:
    """The first of `n` consecutive loopback ports nothing listens on (checked by binding). Below
    Linux's ephemeral range (32768+), so no outgoing connection takes one before we bind it."""
    rng = start + (os.getpid() * 37) % (end - start - n)  # spread parallel sessions apart
    for base in list(range(rng, end - n, n + 1)) + list(range(start, rng, n + 1)):
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports between {start} and {end}")


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def wait_for_line(proc: subprocess.Popen, log: Path, pattern: str, what: str) -> re.Match:
    rx = re.compile(pattern)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            m = rx.search(log.read_text(errors="replace"))
        except OSError:
            m = None
        if m:
            return m
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(
        f"{what} did not come up within {READY_TIMEOUT_S:.0f}s (exit code {proc.poll()}); log tail ({log}):\n{tail(log)}"
    )


def http_json(method: str, url: str, body: dict | None = None, key: str = MASTER_KEY, timeout: float = 10):
    """(status, parsed JSON or text) without raising on HTTP errors."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def running(pid: int) -> bool:
    """Whether `pid` runs. An exited process that is not our child (the shell path's, whose parent
    is gone) stays a zombie until init reaps it, which may take a while: that counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False


def stop_pid(pid: int, sig: int = signal.SIGTERM) -> None:
    """Signals `pid` and waits (bounded) for it to go; SIGKILL if it does not."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            # Reap it if it is our child; otherwise just probe.
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            if not running(pid):
                return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def yaml_scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_section(name: str, values: dict) -> list[str]:
    lines = [f"{name}:"]
    for k, v in values.items():
        if isinstance(v, list):
            lines.append(f"  {k}: [{', '.join(yaml_scalar(x) for x in v)}]")
        elif isinstance(v, dict):
            lines.append(f"  {k}:")
            for k2, v2 in v.items():
                if isinstance(v2, list):
                    lines.append(f"    {k2}: [{', '.join(yaml_scalar(x) for x in v2)}]")
                else:
                    lines.append(f"    {k2}: {yaml_scalar(v2)}")
        else:
            lines.append(f"  {k}: {yaml_scalar(v)}")
    return lines


def shed_latencies_ms(url: str, n: int) -> tuple[list[int], list[float]]:
    """`n` requests one after another on one keep-alive connection: statuses and client-side ms."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    body = json.dumps({"model": "gemini-vision", "messages": [{"role": "user", "content": "hi"}]})
    head = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
    codes, ms = [], []
    for _ in range(n):
        t = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", body=body, headers=head)
        r = conn.getresponse()
        r.read()
        ms.append((time.perf_counter() - t) * 1000)
        codes.append(r.status)
    conn.close()
    return codes, ms


@dataclass
class Deployment:
    """One model-list entry. `project` set: a `vertex_ai/` deployment at its own mock path, limited
    by the mock to `mock_rpm` a minute (the provider's quota) when given."""

    model_name: str
    rpm: int | None = None
    project: str | None = None
    mock_rpm: int | None = None
    upstream_model: str = "any"  # an `openai/` deployment's upstream model (the mock's triggers)
    extra: dict = field(default_factory=dict)


@dataclass
class ReplicaSet:
    deployments: list[Deployment]
    replicas: int = 4
    run_dir: Path | None = None
    redis_port: int = 6379
    prefix: str | None = None
    general: dict = field(default_factory=dict)
    router: dict = field(default_factory=dict)
    litellm: dict = field(default_factory=dict)
    # Share limits through Redis. Off: N independent replicas.
    share: bool = True
    # How the config names Redis: `router_settings` (redis_host/redis_port) or `cache_params`
    # (litellm_settings.cache with supported_call_types: []). The prefix is
    # sluice_settings.redis_key_prefix either way (LiteLLM's Router refuses unknown
    # router_settings keys, so sluice's own setting lives in sluice_settings).
    redis_style: str = "router_settings"
    mock_threads: int = 1
    num_workers: int | None = None
    # Extra flags for every replica; SLUICE_REPLICA_ARGS adds some from outside (e.g.
    # `--allow-unenforced-settings` to run the harness on a build that refuses the Redis settings).
    extra_args: list[str] = field(default_factory=lambda: os.environ.get("SLUICE_REPLICA_ARGS", "").split())
    # Left running when this Python process exits (the shell path); otherwise stopped at exit
    # even if the test run is aborted.
    detach: bool = False

    # Filled by start().
    base_port: int = 0
    url: str = ""  # nginx
    replica_urls: list[str] = field(default_factory=list)
    mock_url: str = ""
    database: str = ""
    pids: dict = field(default_factory=dict)
    _procs: list = field(default_factory=list)

    def __post_init__(self):
        if self.run_dir is None:
            self.run_dir = Path(tempfile.mkdtemp(prefix="sluice-replicas-"))
        self.run_dir = Path(self.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.prefix is None:
            self.prefix = f"sluice-test:replicas:{os.getpid()}:{uuid.uuid4().hex[:8]}:"

    # -- start -------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> tuple[subprocess.Popen, Path]:
        log = self.run_dir / f"{name}.log"
        out = open(log, "wb")
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=str(self.run_dir),
            env={**os.environ, "NO_COLOR": "1"},
            start_new_session=True,  # a shell's Ctrl-C on `replicas.sh start` does not reach them
        )
        out.close()
        self._procs.append(proc)
        self.pids[name] = proc.pid
        return proc, log

    def _start_mock(self) -> None:
        argv = [str(sluice_bin()), "mock", "--host", "127.0.0.1", "--port", "0", "--no-default-rate-limit"]
        argv += ["--threads", str(self.mock_threads), "--vertex-credentials", str(VERTEX_TEST_KEY)]
        for d in self.deployments:
            if d.project and d.mock_rpm is not None:
                argv += ["--rate-limit", f"/v1/projects/{d.project}/={d.mock_rpm}/60s"]
        proc, log = self._spawn("mock", argv)
        m = wait_for_line(proc, log, r"sluice mock listening on (http://127\.0\.0\.1:\d+)", "sluice mock")
        self.mock_url = m.group(1)

    def config_yaml(self) -> str:
        key = json.loads(VERTEX_TEST_KEY.read_text())
        key["token_uri"] = self.mock_url + "/token"
        key_path = self.run_dir / "vertex-key.json"
        key_path.write_text(json.dumps(key))
        lines = ["model_list:"]
        for d in self.deployments:
            if d.project:
                params = {
                    "model": f"vertex_ai/{VERTEX_MODEL}",
                    "api_base": self.mock_url + vertex_path(d.project),
                    "vertex_project": d.project,
                    "vertex_location": "us-central1",
                    "vertex_credentials": str(key_path),
                }
            else:
                params = {"model": f"openai/{d.upstream_model}", "api_base": self.mock_url + "/", "api_key": "test"}
            if d.rpm is not None:
                params["rpm"] = d.rpm
            params.update(d.extra)
            lines.append(f"  - model_name: {yaml_scalar(d.model_name)}")
            lines.append("    litellm_params:")
            lines += [f"      {k}: {yaml_scalar(v)}" for k, v in params.items()]
        general = {
            "master_key": MASTER_KEY,
            "database_url": f"postgresql://{os.environ.get('PGUSER', 'root')}@127.0.0.1:5432/{self.database}",
            **self.general,
        }
        router = dict(self.router)
        litellm = dict(self.litellm)
        if self.share and self.redis_style == "router_settings":
            router = {"redis_host": "127.0.0.1", "redis_port": self.redis_port, **router}
        elif self.share:
            # LiteLLM's other way: the proxy's Redis "cache", caching no answers.
            litellm = {
                "cache": True,
                "cache_params": {"type": "redis", "host": "127.0.0.1", "port": self.redis_port, "supported_call_types": []},
                **litellm,
            }
        lines += render_section("general_settings", general)
        if self.share:
            lines += render_section("sluice_settings", {"redis_key_prefix": self.prefix})
        if router:
            lines += render_section("router_settings", router)
        if litellm:
            lines += render_section("litellm_settings", litellm)
        return "\n".join(lines) + "\n"

    def _start_replicas(self) -> None:
        cfg = self.run_dir / "config.yaml"
        cfg.write_text(self.config_yaml())
        self.base_port = consecutive_ports(self.replicas)
        started = []
        for i in range(self.replicas):
            port = self.base_port + i
            argv = [str(sluice_bin()), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)]
            if self.num_workers:
                argv += ["--num_workers", str(self.num_workers)]
            argv += self.extra_args
            started.append(self._spawn(f"replica-{i}", argv))
        # Started all at once, waited for after: the start-ups overlap.
        for i, (proc, log) in enumerate(started):
            wait_for_line(proc, log, r"sluice listening on (http://127\.0\.0\.1:\d+)", f"replica {i}")
            self.replica_urls.append(f"http://127.0.0.1:{self.base_port + i}")

    def _start_nginx(self) -> None:
        if not os.access(NGINX, os.X_OK):
            raise RuntimeError(f"{NGINX} is missing: install it with `apt-get install -y nginx-light`")
        port = consecutive_ports(1)  # the replicas listen already: not picked again
        d = self.run_dir
        servers = "\n".join(f"        server 127.0.0.1:{self.base_port + i};" for i in range(self.replicas))
        (d / "nginx.conf").write_text(
            f"""# Written by tests/python/replicas.py: round robin over the replicas, kept-alive upstream.
worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/nginx.error.log warn;
daemon off;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {d}/nginx-body;
    proxy_temp_path {d}/nginx-proxy;
    fastcgi_temp_path {d}/nginx-fastcgi;
    uwsgi_temp_path {d}/nginx-uwsgi;
    scgi_temp_path {d}/nginx-scgi;
    client_max_body_size 10m;
    # Bodies stay in memory (the seed's prompts are ~15 kB): no temp files, which nginx's workers
    # (`nobody` when started as root) could not write under a private tmp dir anyway.
    client_body_buffer_size 10m;
    upstream sluice {{
{servers}
        keepalive 256;
    }}
    server {{
        listen 127.0.0.1:{port} reuseport;
        keepalive_requests 100000;
        location / {{
            proxy_pass http://sluice;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_read_timeout 120s;
            # Which replica answered, so tests can check the balancing.
            add_header X-Upstream-Addr $upstream_addr always;
        }}
    }}
}}
"""
        )
        # nginx running as root drops its workers to `nobody`, which must be able to read nothing
        # here but its own config (already read by the master); the temp dirs it writes to must be
        # writable by it.
        for sub in ("nginx-body", "nginx-proxy", "nginx-fastcgi", "nginx-uwsgi", "nginx-scgi"):
            (d / sub).mkdir(exist_ok=True)
            os.chmod(d / sub, 0o777)
        proc, log = self._spawn("nginx", [NGINX, "-p", str(d), "-c", str(d / "nginx.conf")])
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {proc.returncode}:\n{tail(log)}\n{tail(d / 'nginx.error.log')}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen on {port} within {READY_TIMEOUT_S:.0f}s")

    def start(self) -> "ReplicaSet":
        try:
            self.database = f"sluice_replicas_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            psql(f"CREATE DATABASE {self.database}")
            self._start_mock()
            self._start_replicas()
            self._start_nginx()
            self.save()
            ACTIVE.append(self)
        except BaseException:
            self.stop()
            raise
        return self

    # -- state for the shell path ------------------------------------------------------------

    def save(self) -> None:
        state = {
            "url": self.url,
            "replica_urls": self.replica_urls,
            "mock_url": self.mock_url,
            "database": self.database,
            "prefix": self.prefix,
            "redis_port": self.redis_port,
            "pids": self.pids,
            "run_dir": str(self.run_dir),
            "master_key": MASTER_KEY,
        }
        (self.run_dir / "state.json").write_text(json.dumps(state, indent=2) + "\n")

    # -- stop --------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stops everything this set started (nginx first, so no request reaches a dying replica),
        drops its database and deletes its Redis keys. Safe to call twice."""
        stop_all(self.pids, self.database, self.prefix, self.redis_port)
        if self in ACTIVE:
            ACTIVE.remove(self)
        self.pids = {}
        self.database = ""

    # -- helpers for tests -------------------------------------------------------------------

    def mock_stats(self) -> dict:
        return http_json("GET", self.mock_url + "/mock/stats")[1]

    def mock_reset(self) -> None:
        http_json("POST", self.mock_url + "/mock/reset")

    def logs(self, lines: int = 20) -> str:
        parts = []
        for name in list(self.pids):
            parts.append(f"--- {name} ({self.run_dir / (name + '.log')})\n{tail(self.run_dir / (name + '.log'), lines)}")
        return "\n".join(parts)


@atexit.register
def _stop_owned() -> None:
    for rs in list(ACTIVE):
        if not rs.detach:
            rs.stop()


def stop_all(pids: dict, database: str, prefix: str, redis_port: int) -> list[str]:
    problems = []
    order = sorted(pids, key=lambda n: (n != "nginx", n == "mock"))  # nginx, replicas, mock
    for name in order:
        # nginx: QUIT is its graceful stop; sluice drains on TERM.
        stop_pid(pids[name], signal.SIGQUIT if name == "nginx" else signal.SIGTERM)
    if database:
        try:
            psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        except RuntimeError as e:
            problems.append(str(e))
    if prefix:
        try:
            keys = redis_cli(redis_port, "--scan", "--pattern", prefix.replace("*", "\\*") + "*").split()
            for i in range(0, len(keys), 500):
                redis_cli(redis_port, "DEL", *keys[i : i + 500])
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            problems.append(f"could not delete the Redis keys under {prefix!r}: {e}")
    return problems


# -- the shell path (scripts/replicas.sh) ------------------------------------------------------


def seed_deployments(rpm: int) -> list[Deployment]:
    """The seed's second test: two `vertex_ai/` deployments of `gemini-vision`, each limited to
    `rpm` a minute by the gateway (`rpm`) and by the provider (the mock)."""
    return [
        Deployment("gemini-vision", rpm=rpm, project="bad-adroit-crow-413218", mock_rpm=rpm),
        Deployment("gemini-vision", rpm=rpm, project="good-adroit-crow-413218", mock_rpm=rpm),
        Deployment("fake-openai-endpoint"),
    ]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="scripts/replicas.sh", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start the replicas, nginx, the mock; print the state as JSON")
    s.add_argument("--replicas", type=int, default=4)
    s.add_argument("--rpm", type=int, default=10000, help="each gemini-vision deployment's quota a minute")
    s.add_argument("--run-dir", type=Path, default=None)
    s.add_argument("--redis-port", type=int, default=6379)
    s.add_argument("--no-share", action="store_true", help="no Redis settings: N independent replicas")
    s.add_argument("--mock-threads", type=int, default=2)
    s.add_argument("--num-workers", type=int, default=None, help="each replica's worker threads")
    s.add_argument("--config", type=Path, default=None, help="use this config.yaml instead of the seed's")
    s.add_argument("--allow-unenforced-settings", action="store_true")
    for name in ("status", "stop"):
        p = sub.add_parser(name)
        p.add_argument("run_dir", type=Path, help="the run dir `start` printed")
    a = ap.parse_args(argv)

    if a.cmd == "start":
        rs = ReplicaSet(
            seed_deployments(a.rpm),
            replicas=a.replicas,
            run_dir=a.run_dir,
            redis_port=a.redis_port,
            share=not a.no_share,
            mock_threads=a.mock_threads,
            num_workers=a.num_workers,
            detach=True,
        )
        if a.allow_unenforced_settings:
            rs.extra_args.append("--allow-unenforced-settings")
        if a.config:
            rs.config_yaml = lambda: a.config.read_text()  # type: ignore[method-assign]
        rs.start()
        print(json.dumps(json.loads((rs.run_dir / "state.json").read_text()), indent=2))
        return 0

    state_path = a.run_dir / "state.json"
    if not state_path.is_file():
        print(f"no {state_path}: give the run dir that `start` printed", file=sys.stderr)
        return 2
    st = json.loads(state_path.read_text())
    if a.cmd == "status":
        ok = True
        for name, pid in st["pids"].items():
            if running(pid):
                alive = "running"
            else:
                alive, ok = "GONE", False
            print(f"{name:12} pid {pid:<8} {alive}")
        for i, u in enumerate(st["replica_urls"]):
            status, _ = http_json("GET", u + "/health/liveliness", timeout=2)
            print(f"replica-{i}    {u} liveliness {status}")
            ok &= status == 200
        print(f"nginx        {st['url']}   database {st['database']}   redis prefix {st['prefix']}")
        return 0 if ok else 1
    problems = stop_all(st["pids"], st["database"], st["prefix"], st["redis_port"])
    for p in problems:
        print(p, file=sys.stderr)
    state_path.unlink()
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
