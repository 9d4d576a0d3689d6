"""LiteLLM's Slack alerting (`general_settings.alerting: ["slack"]`, `SLACK_WEBHOOK_URL`,
`alerting_threshold`, `alert_types`): the messages a real gateway posts to a Slack incoming webhook
for a key crossing its budget, a deployment cooled down, a slow and a hanging request, and a burst
of failures folded into one message a minute.

The webhook is a stand-in on loopback that follows Slack's public API: a POST of JSON
`{"text": ...}`, answered 200 `ok`, or 429 with `Retry-After` when it is told to rate-limit. The
upstream is `sluice mock`, whose model names provoke what each scenario needs (`sleep-<ms>`,
`429`, `error-<status>`).
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import MASTER_KEY, closed_port, render_config, start_gateway
from manage import ADMIN, PRICES

WEBHOOK_TOKEN = "T000/B000/" + uuid.uuid4().hex
PROXY_BASE_URL = "https://llm.example.test"


class SlackWebhook:
    """A Slack incoming webhook stand-in: keeps each message's arrival time and text; answers
    the first `rate_limited` posts with 429 and `Retry-After: 1`, the rest with 200 `ok`."""

    def __init__(self, rate_limited: int = 0) -> None:
        self.messages: list[tuple[float, str, str]] = []
        self.refused = 0
        self.rate_limited = rate_limited
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                    return self.answer(400, b"invalid_payload")
                try:
                    text = json.loads(body)["text"]
                except (ValueError, KeyError, TypeError):
                    return self.answer(400, b"invalid_payload")
                with hook.lock:
                    if hook.refused < hook.rate_limited:
                        hook.refused += 1
                        return self.answer(429, b"rate_limited", {"Retry-After": "1"})
                    hook.messages.append((time.monotonic(), self.path, text))
                self.answer(200, b"ok")

            def answer(self, status: int, body: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/{WEBHOOK_TOKEN}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def texts(self) -> list[str]:
        with self.lock:
            return [t for _, _, t in self.messages]

    def wait_for(self, pred, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t in self.texts():
                if pred(t):
                    return t
            time.sleep(0.1)
        raise AssertionError(f"no matching Slack message within {timeout} s; got {self.texts()}")

    def stop(self) -> None:
        self.server.shutdown()


def alerting_config(mock_url: str, database_url: str, hook_url: str, alert_types: list[str]) -> str:
    def openai(name: str, **extra) -> dict:
        return {"model": f"openai/{name}", "api_base": mock_url + "/", "api_key": "test", **extra}

    models = [
        ("fake-openai-endpoint", openai("any", **PRICES)),
        ("slow", openai("sleep-2500")),
        # Two deployments: a 429 from the first cools it down at once (LiteLLM's rule).
        ("flaky", openai("429")),
        ("flaky", openai("any")),
        ("err-503", openai("error-503")),
    ]
    general = {"master_key": MASTER_KEY, "database_url": database_url, "proxy_batch_write_at": 0.5}
    cfg = render_config(models, general)
    cfg += '  alerting: ["slack"]\n  alerting_threshold: 1\n'
    cfg += "  alert_types: [" + ", ".join(json.dumps(t) for t in alert_types) + "]\n"
    cfg += "router_settings:\n  num_retries: 0\n  cooldown_time: 30\n"
    cfg += "environment_variables:\n" + f"  SLACK_WEBHOOK_URL: {json.dumps(hook_url)}\n"
    cfg += f"  PROXY_BASE_URL: {json.dumps(PROXY_BASE_URL)}\n"
    return cfg


def start(log_dir, mock, name: str, hook: SlackWebhook, alert_types: list[str]):
    db = f"sqlite://{log_dir / (name + '-' + uuid.uuid4().hex[:8] + '.db')}"
    return start_gateway(log_dir, name, alerting_config(mock.url, db, hook.url, alert_types))


@pytest.fixture(scope="module")
def hook():
    h = SlackWebhook()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def gw(log_dir, mock, hook):
    types = ["budget_alerts", "cooldown_deployment", "llm_too_slow", "llm_requests_hanging"]
    p = start(log_dir, mock, "alerting", hook, types)
    yield p
    p.stop()


def chat(gw, key: str, model: str) -> requests.Response:
    return requests.post(
        gw.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=15,
    )


def test_a_key_crossing_its_budget_is_told_once(gw, hook):
    alias = "alerted-" + uuid.uuid4().hex[:6]
    r = requests.post(gw.url + "/key/generate", headers=ADMIN, json={"key_alias": alias, "max_budget": 0.00001}, timeout=10)
    assert r.status_code == 200, r.text
    key, token = r.json()["key"], r.json()["token"]

    first = chat(gw, key, "fake-openai-endpoint")
    assert first.status_code == 200, first.text
    text = hook.wait_for(lambda t: alias in t)
    assert text.startswith("Level: `High`\nTimestamp: `"), text
    assert "Message: Key Budget: Budget Crossed\n Total Budget:`0.00001`" in text
    assert f"token: `{token}`" in text and f"key_alias: `{alias}`" in text
    assert "event_group: `key`" in text
    assert text.endswith(f"\n\nProxy URL: `{PROXY_BASE_URL}`"), text
    spend = float(text.split("spend: `")[1].split("`")[0])
    assert spend == pytest.approx(float(first.headers["x-litellm-response-cost"]))
    assert key not in text, "the key itself is never sent"

    # Over budget now: refused, and not told again.
    assert chat(gw, key, "fake-openai-endpoint").status_code == 400
    time.sleep(2)
    assert sum(alias in t for t in hook.texts()) == 1, hook.texts()


def test_a_deployment_cooled_down_is_told(gw, hook):
    for _ in range(40):
        if chat(gw, MASTER_KEY, "flaky").status_code == 429:
            break
    else:
        pytest.fail("the 429 deployment was never picked")
    text = hook.wait_for(lambda t: "Router: Cooling down Deployment" in t)
    assert text.startswith("Level: `Low`\nTimestamp: `"), text
    assert "Model Name: `429`" in text and "Model Group: `flaky`" in text, text
    assert "API Base: `http://127.0.0.1:" in text, text
    cooldown = int(text.split("Cooldown Time: `")[1].split(" seconds`")[0])
    assert 25 <= cooldown <= 30, text


def test_a_slow_request_and_a_hanging_one_are_told(gw, hook):
    r = chat(gw, MASTER_KEY, "slow")
    assert r.status_code == 200, r.text
    slow = hook.wait_for(lambda t: "Responses are slow" in t)
    assert slow.startswith("Level: `Low`\nTimestamp: `"), slow
    took = float(slow.split("`Responses are slow - ")[1].split("s response time")[0])
    assert 2.4 <= took < 10, slow
    assert "> Alerting threshold: 1s`\nRequest Model: `slow`\nAPI Base: `http://127.0.0.1:" in slow, slow
    # Unanswered past the threshold (1 s) while the mock slept 2.5 s: hanging too (the scan
    # looks once a second).
    hanging = hook.wait_for(lambda t: "Requests are hanging" in t)
    assert hanging.startswith("Level: `Medium`\nTimestamp: `"), hanging
    assert "Message: `Requests are hanging - 1s+ request time`\nRequest Model: `slow`" in hanging, hanging


def test_a_burst_is_one_message_a_minute_and_a_rate_limit_is_waited_out(log_dir, mock):
    # Only failed calls are alerted here, and the webhook refuses the first post with a 429.
    hook = SlackWebhook(rate_limited=1)
    p = start(log_dir, mock, "alerting-burst", hook, ["llm_exceptions"])
    try:
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda _: chat(p, MASTER_KEY, "err-503").status_code, range(12)))
        assert all(c == 503 for c in codes), codes
        text = hook.wait_for(lambda t: "LLM API call failed" in t)
        assert hook.refused == 1, "the first post was rate-limited, and sent again after Retry-After"
        assert text.startswith("[Num Alerts: 12]\n\nLevel: `High`\nTimestamp: `"), text
        assert "Model: `err-503`" in text and "(repeated 12 times)" in text, text
        # More failures within the minute: no second message.
        for _ in range(5):
            assert chat(p, MASTER_KEY, "err-503").status_code == 503
        time.sleep(4)
        assert len(hook.texts()) == 1, hook.texts()
        with hook.lock:
            assert all(path == f"/services/{WEBHOOK_TOKEN}" for _, path, _ in hook.messages)
    finally:
        p.stop()
        hook.stop()
    logs = p.stderr_path.read_text(errors="replace") + p.stdout_path.read_text(errors="replace")
    assert WEBHOOK_TOKEN not in logs, "the webhook's path is its credential"


def test_team_and_user_budgets_the_spend_report_and_a_redis_outage(log_dir, mock):
    """A second gateway, sharing state through a Redis the test runs: a call that takes a team and
    a user over their budgets is one message with both; the spend report names the team and the
    key; Redis going away is told."""
    port = closed_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    hook = SlackWebhook()
    p = None
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        db = f"sqlite://{log_dir / ('alerting-report-' + uuid.uuid4().hex[:8] + '.db')}"
        cfg = alerting_config(mock.url, db, hook.url, ["budget_alerts", "daily_reports", "db_exceptions"])
        cfg = cfg.replace(
            "  alerting_threshold: 1\n", "  alerting_threshold: 1\n  alerting_args:\n    daily_report_frequency: 4\n"
        )
        cfg = cfg.replace("router_settings:\n", f"router_settings:\n  redis_host: 127.0.0.1\n  redis_port: {port}\n")
        p = start_gateway(log_dir, "alerting-report", cfg)

        def admin(path: str, body: dict) -> dict:
            r = requests.post(p.url + path, headers=ADMIN, json=body, timeout=10)
            assert r.status_code == 200, r.text
            return r.json()

        suffix = uuid.uuid4().hex[:6]
        team = admin("/team/new", {"team_alias": "team-" + suffix, "max_budget": 0.00001})["team_id"]
        user = admin("/user/new", {"user_id": "user-" + suffix, "max_budget": 0.00001})["user_id"]
        key_alias = "report-key-" + suffix
        key = admin("/key/generate", {"team_id": team, "user_id": user, "key_alias": key_alias})["key"]
        assert chat(p, key, "fake-openai-endpoint").status_code == 200

        budgets = hook.wait_for(lambda t: "Team Budget: Budget Crossed" in t)
        assert budgets.startswith("[Num Alerts: 2]\n\nLevel: `High`"), budgets
        assert f"team_id: `{team}`" in budgets and f"team_alias: `team-{suffix}`" in budgets, budgets
        assert "User Budget: Budget Crossed\n Total Budget:`0.00001`" in budgets
        assert f"user_id: `{user}`" in budgets and "event_group: `internal_user`" in budgets, budgets

        report = hook.wait_for(lambda t: "Spend Report for" in t)
        assert report.startswith("*💸 Spend Report for `"), report
        assert f"Team: `team-{suffix}` | Spend: `$" in report, report
        assert f"Key: `{key_alias}` | Spend: `$" in report, report
        assert "Next Run is at: `" in report

        redis.terminate()
        redis.wait(timeout=10)
        down = hook.wait_for(lambda t: "Redis unavailable" in t)
        assert down.startswith("Level: `High`\nTimestamp: `"), down
    finally:
        if p is not None:
            p.stop()
        if redis.poll() is None:
            redis.kill()
        hook.stop()


def test_a_database_outage_is_told(log_dir, mock):
    """PostgreSQL behind a TCP relay the test cuts (`test_db_outage.Relay`): the failed spend
    writes are told as LiteLLM's `db_exceptions`."""
    from test_db_outage import Relay
    from test_keys import fresh_pg_database, psql

    db = fresh_pg_database()
    relay = Relay()
    hook = SlackWebhook()
    url = f"postgresql://root@127.0.0.1:{relay.port}/{db}"
    p = start_gateway(log_dir, "alerting-db", alerting_config(mock.url, url, hook.url, ["db_exceptions"]))
    try:
        assert chat(p, MASTER_KEY, "fake-openai-endpoint").status_code == 200
        time.sleep(1)
        assert hook.texts() == [], "nothing to tell while the database answers"
        relay.cut()
        for _ in range(3):
            assert chat(p, MASTER_KEY, "fake-openai-endpoint").status_code == 200
        down = hook.wait_for(lambda t: "DB read/write call failed" in t, timeout=20)
        assert down.startswith("Level: `High`\nTimestamp: `"), down
        assert "spend is kept and written when the database is back" in down, down
        assert "root@" not in down and str(relay.port) not in down, "no connection details"
    finally:
        p.stop()
        relay.close()
        hook.stop()
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def test_budget_warnings_outages_and_a_new_model_are_told(log_dir, mock):
    """LiteLLM's `budget_alerts` at 15 % and 5 % of a budget left, `outage_alerts` (a deployment
    failing `minor_outage_alert_threshold` then `major_outage_alert_threshold` times within the
    window) and `new_model_added` (a model added through /model/new)."""
    hook = SlackWebhook()
    db = f"sqlite://{log_dir / ('alerting-more-' + uuid.uuid4().hex[:8] + '.db')}"
    cfg = alerting_config(mock.url, db, hook.url, ["budget_alerts", "outage_alerts", "new_model_added"])
    cfg = cfg.replace("  alerting_threshold: 1\n", "  alerting_threshold: 1\n  store_model_in_db: true\n")
    cfg = cfg.replace(
        "  alert_types:",
        "  alerting_args:\n    minor_outage_alert_threshold: 2\n    major_outage_alert_threshold: 3\n  alert_types:",
    )
    p = start_gateway(log_dir, "alerting-more", cfg)
    try:
        # One call's cost, then keys whose budget that cost leaves 10 % and 3 % of. A topic gets
        # one message a minute: both calls go at once, and their warnings share it.
        cost = float(chat(p, MASTER_KEY, "fake-openai-endpoint").headers["x-litellm-response-cost"])
        assert cost > 0
        warned = []
        for left, words in ((0.10, "15% Threshold Crossed"), (0.03, "5% Threshold Crossed ")):
            alias = "warned-" + uuid.uuid4().hex[:6]
            body = {"key_alias": alias, "max_budget": cost / (1 - left)}
            key = requests.post(p.url + "/key/generate", headers=ADMIN, json=body, timeout=10).json()["key"]
            warned.append((alias, words, key))
        for _, _, key in warned:
            assert chat(p, key, "fake-openai-endpoint").status_code == 200
        for alias, words, _ in warned:
            text = hook.wait_for(lambda t, a=alias: a in t)
            # Each key's own line: its warning, then who it is.
            line = text[: text.index(f"key_alias: `{alias}`")].rsplit("Level: ", 1)[1]
            assert line.startswith("`High`") and f"Message: Key Budget: {words}\n" in line, text

        # Three 503s within the window: a minor outage at two, a major one at three.
        for _ in range(3):
            assert chat(p, MASTER_KEY, "err-503").status_code == 503
        minor = hook.wait_for(lambda t: "Minor Service Outage" in t)
        assert "*Model Name:* `openai/error-503`" in minor and "*Provider:* `openai`" in minor, minor
        assert "API Errors: 2" in minor, minor
        major = hook.wait_for(lambda t: "Major Service Outage" in t)
        assert "API Errors: 3" in major, major
        assert "Level: `High`" in major or "Level: `Medium`" in major, major

        r = requests.post(
            p.url + "/model/new",
            headers=ADMIN,
            json={"model_name": "added-model", "litellm_params": {"model": "openai/gpt-4o", "api_base": mock.url + "/", "api_key": "test"}},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        added = hook.wait_for(lambda t: "New Model Added" in t)
        assert "Model Name: `added-model`" in added and "model=\"added-model\"" in added, added
        assert f"base_url={PROXY_BASE_URL}" in added, added
        assert "input_cost_per_token: 0.00000250" in added, added
    finally:
        p.stop()
        hook.stop()


def test_fallbacks_are_reported_with_the_daily_report(log_dir, mock):
    """`fallback_reports`: each report period, which model group fell back to which and how often
    it worked (LiteLLM sends its Prometheus fallback counts daily)."""
    hook = SlackWebhook()
    db = f"sqlite://{log_dir / ('alerting-fallbacks-' + uuid.uuid4().hex[:8] + '.db')}"
    cfg = alerting_config(mock.url, db, hook.url, ["fallback_reports"])
    cfg = cfg.replace("  alert_types:", "  alerting_args:\n    daily_report_frequency: 2\n  alert_types:")
    cfg += 'litellm_settings:\n  fallbacks: [{"err-503": ["fake-openai-endpoint"]}]\n'
    p = start_gateway(log_dir, "alerting-fallbacks", cfg)
    try:
        for _ in range(2):
            r = chat(p, MASTER_KEY, "err-503")
            assert r.status_code == 200 and r.headers.get("x-litellm-attempted-fallbacks") == "1", r.text
        text = hook.wait_for(lambda t: "Fallback Statistics" in t)
        assert "`err-503` -> `fake-openai-endpoint`: successful: `2`, failed: `0`" in text, text
        assert "Level: `Low`" in text, text
    finally:
        p.stop()
        hook.stop()
