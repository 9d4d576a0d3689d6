"""What the management-API tests share: a gateway on SQLite or on a fresh PostgreSQL database
(the `gw` fixture: import it into a test module to run that module's tests on both), the
master-key caller, and the few calls every such test makes.

Every gateway here writes spend every 0.5 s (`proxy_batch_write_at`) so tests can see rows land
without waiting LiteLLM's default 10 s.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest
import requests

from conftest import MASTER_KEY, render_config, start_gateway

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
# Prices set in the config so a budget trips after a known number of requests: the mock answers
# every chat with usage, so each request costs the same.
PRICES = {"input_cost_per_token": 0.0001, "output_cost_per_token": 0.0002}
BATCH_WRITE_S = 0.5


def psql(sql: str, db: str = "postgres") -> str:
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "root", "-d", db, "-Atc", sql],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if out.returncode != 0:
        raise RuntimeError(
            f"psql failed ({out.stderr.strip()}); is PostgreSQL running on 127.0.0.1:5432? Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
        )
    return out.stdout.strip()


def fresh_pg_database() -> str:
    name = f"sluice_keys_{uuid.uuid4().hex[:12]}"
    psql(f"CREATE DATABASE {name}")
    return name


def keys_config(mock_url: str, database_url: str, extra_general: dict | None = None) -> str:
    models = [
        ("fake-openai-endpoint", {"model": "openai/any", "api_base": mock_url + "/", "api_key": "test", **PRICES}),
        ("other-model", {"model": "openai/any", "api_base": mock_url + "/", "api_key": "test", **PRICES}),
        # 100 chunks 50 ms apart: a stream a client can walk away from.
        ("slow-stream", {"model": "openai/slow-stream-50", "api_base": mock_url + "/", "api_key": "test", **PRICES}),
        ("slow", {"model": "openai/sleep-700", "api_base": mock_url + "/", "api_key": "test", **PRICES}),
    ]
    general = {
        "master_key": MASTER_KEY,
        "database_url": database_url,
        "proxy_batch_write_at": BATCH_WRITE_S,
        **(extra_general or {}),
    }
    cfg = render_config(models, general, {"num_retries": 0})
    return cfg.replace("router_settings:", 'litellm_settings:\n  callbacks: ["prometheus"]\nrouter_settings:')


def gateway_on(backend: str, log_dir, name: str, config_for):
    """A gateway on `backend` ("sqlite": a fresh file; "postgres": a fresh database, dropped
    after), its config `config_for(database_url)`; yields it and stops it (a fixture body)."""
    if backend == "sqlite":
        url = f"sqlite://{log_dir / (name + '-' + uuid.uuid4().hex[:8] + '.db')}"
        db = None
    else:
        db = fresh_pg_database()
        url = f"postgresql://root@127.0.0.1:5432/{db}"
    p = start_gateway(log_dir, f"{name}-{backend}", config_for(url))
    p.backend = backend
    p.db = db
    p.database_url = url
    yield p
    p.stop()
    if db:
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gw(request, log_dir, mock):
    yield from gateway_on(request.param, log_dir, "keys", lambda url: keys_config(mock.url, url))


def admin(gw, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, gw.url + path, headers=ADMIN, timeout=10, **kw)


def generate(gw, **body) -> dict:
    r = admin(gw, "POST", "/key/generate", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def chat(gw, key: str, model: str = "fake-openai-endpoint", **extra) -> requests.Response:
    return requests.post(
        gw.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], **extra},
        timeout=10,
    )
