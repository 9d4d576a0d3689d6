"""LiteLLM's `generic_api` logging callback: one StandardLoggingPayload per finished call, POSTed
in batches (a JSON array) to GENERIC_LOGGER_ENDPOINT with GENERIC_LOGGER_HEADERS, written from
LiteLLM's documented behaviour (`generic_api_callback.py`, `logging_spec.md`).

The collector is a real HTTP server on loopback (stdlib `http.server` in a thread); the gateway
reads its address from the config's `environment_variables`, as LiteLLM would from the process.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import MASTER_KEY, closed_port, refused_start, render_config, start_gateway, wait_for_failures
from manage import ADMIN, PRICES

COLLECTOR_TOKEN = "collector-secret-" + uuid.uuid4().hex[:8]


class Collector:
    """A webhook sink: keeps every POST's headers and JSON body."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict, object]] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with collector.lock:
                    collector.posts.append(({k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ingest"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def records(self) -> list[dict]:
        with self.lock:
            return [r for _, body in self.posts for r in body]

    def wait_for(self, pred, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in self.records():
                if pred(r):
                    return r
            time.sleep(0.1)
        raise AssertionError(f"no matching record within {timeout} s; got {self.records()}")

    def stop(self) -> None:
        self.server.shutdown()


def logging_config(mock_url: str, database_url: str, litellm: str, env: dict[str, str]) -> str:
    models = [
        ("fake-openai-endpoint", {"model": "openai/any", "api_base": mock_url + "/", "api_key": "test", **PRICES}),
        # Nothing listens there: every call fails.
        ("dead", {"model": "openai/any", "api_base": f"http://127.0.0.1:{closed_port()}/", "api_key": "test"}),
        # 100 chunks 5 ms apart: half a second from the first token to the last.
        ("slow-stream", {"model": "openai/slow-stream-5", "api_base": mock_url + "/", "api_key": "test", **PRICES}),
    ]
    general = {"master_key": MASTER_KEY, "database_url": database_url, "proxy_batch_write_at": 0.5}
    cfg = render_config(models, general, {"num_retries": 0})
    cfg += "litellm_settings:\n" + litellm
    if env:
        cfg += "environment_variables:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in env.items())
    return cfg


@pytest.fixture(scope="module")
def collector():
    c = Collector()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def logged(log_dir, mock, collector):
    """A gateway logging successes and failures to the collector."""
    cfg = logging_config(
        mock.url,
        f"sqlite://{log_dir / ('logging-' + uuid.uuid4().hex[:8] + '.db')}",
        '  callbacks: ["prometheus"]\n  success_callback: ["generic_api"]\n  failure_callback: ["generic_api"]\n',
        {
            "GENERIC_LOGGER_ENDPOINT": collector.url,
            "GENERIC_LOGGER_HEADERS": f"Authorization=Bearer {COLLECTOR_TOKEN}, x-team = blue",
        },
    )
    p = start_gateway(log_dir, "logging", cfg)
    yield p
    p.stop()


def new_key(gw, **body) -> dict:
    r = requests.post(gw.url + "/key/generate", headers=ADMIN, json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def chat(gw, key: str, model: str, **headers) -> requests.Response:
    return requests.post(
        gw.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}", **headers},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], "user": "end-user-7"},
        timeout=10,
    )


def test_a_success_and_a_failure_reach_the_collector_in_litellms_shape(logged, collector):
    alias = "logged-" + uuid.uuid4().hex[:6]
    made = new_key(logged, key_alias=alias, metadata={"tags": ["from-key"]})
    key, key_hash = made["key"], made["token"]

    ok = chat(logged, key, "fake-openai-endpoint")
    assert ok.status_code == 200, ok.text
    call_id = ok.headers["x-litellm-call-id"]
    record = collector.wait_for(lambda r: r["id"] == call_id)
    assert record["status"] == "success"
    assert record["call_type"] == "acompletion"
    assert record["model_group"] == "fake-openai-endpoint"
    # The model as the provider knows it, without the provider prefix, as LiteLLM logs it.
    assert record["model"] == "any" and record["custom_llm_provider"] == "openai"
    assert record["response_cost"] > 0
    assert record["response_cost"] == pytest.approx(float(ok.headers["x-litellm-response-cost"]))
    usage = ok.json()["usage"]
    assert record["prompt_tokens"] == usage["prompt_tokens"] > 0
    assert record["completion_tokens"] == usage["completion_tokens"] > 0
    assert record["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert record["startTime"] <= record["endTime"] and abs(record["endTime"] - time.time()) < 60
    assert record["response_time"] >= 0
    meta = record["metadata"]
    assert meta["user_api_key_hash"] == key_hash
    assert meta["user_api_key_alias"] == alias
    assert record["end_user"] == "end-user-7"
    assert "from-key" in record["request_tags"]
    assert record["error_str"] is None
    # The prompt as the client sent it, and the answer as the provider gave it (LiteLLM's
    # default; `turn_off_message_logging` keeps them out).
    assert record["messages"] == [{"role": "user", "content": "hi"}]
    assert record["response"]["choices"][0]["message"]["content"] == ok.json()["choices"][0]["message"]["content"]

    bad = chat(logged, key, "dead")
    assert bad.status_code >= 500, bad.text
    failed_id = bad.headers["x-litellm-call-id"]
    failure = collector.wait_for(lambda r: r["id"] == failed_id)
    assert failure["messages"] == [{"role": "user", "content": "hi"}] and failure["response"] is None
    assert failure["status"] == "failure"
    assert failure["model_group"] == "dead"
    assert failure["response_cost"] == 0
    assert failure["error_str"]
    assert failure["error_information"]["error_code"] == str(bad.status_code)
    assert failure["error_information"]["error_class"]
    assert failure["metadata"]["user_api_key_alias"] == alias

    with collector.lock:
        posts = list(collector.posts)
    for headers, body in posts:
        assert headers["authorization"] == f"Bearer {COLLECTOR_TOKEN}"
        assert headers["x-team"] == "blue"
        assert headers["content-type"] == "application/json"
        assert isinstance(body, list)
        # The raw key is never sent, anywhere in a record.
        assert key not in json.dumps(body)


def test_a_streams_record_says_when_its_first_token_came(logged, collector):
    r = requests.post(
        logged.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json={"model": "slow-stream", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        timeout=30,
    )
    assert r.status_code == 200 and "[DONE]" in r.text
    record = collector.wait_for(lambda rec: rec["id"] == r.headers["x-litellm-call-id"])
    assert record["startTime"] <= record["completionStartTime"] < record["endTime"], record
    # The chunks came 5 ms apart after the first (about 30 of them): the first token came well
    # before the end.
    assert record["endTime"] - record["completionStartTime"] > 0.05, record
    # The answer as the stream carried it, assembled.
    text = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        for line in r.text.splitlines()
        if line.startswith("data: {") and json.loads(line[6:])["choices"]
    )
    assert text and record["response"]["choices"][0]["message"]["content"] == text, record["response"]


def test_a_request_refused_before_it_is_billed_is_logged_as_a_failure(logged, collector):
    bad = chat(logged, "sk-not-a-key", "fake-openai-endpoint")
    assert bad.status_code == 401, bad.text
    call_id = bad.headers["x-litellm-call-id"]
    failure = collector.wait_for(lambda r: r["id"] == call_id)
    assert failure["status"] == "failure"
    assert failure["error_information"]["error_class"] == "AuthenticationError"
    assert failure["error_information"]["error_code"] == "401"
    assert failure["response_cost"] == 0 and failure["messages"] is None
    assert "sk-not-a-key" not in json.dumps(failure)


def test_turn_off_message_logging_keeps_prompts_and_answers_out(log_dir, mock):
    sink = Collector()
    cfg = logging_config(
        mock.url,
        f"sqlite://{log_dir / ('logging-quiet-' + uuid.uuid4().hex[:8] + '.db')}",
        '  turn_off_message_logging: true\n  callbacks: ["generic_api"]\n',
        {"GENERIC_LOGGER_ENDPOINT": sink.url},
    )
    gw = start_gateway(log_dir, "logging-quiet", cfg)
    try:
        ok = chat(gw, MASTER_KEY, "fake-openai-endpoint")
        assert ok.status_code == 200, ok.text
        record = sink.wait_for(lambda r: r["id"] == ok.headers["x-litellm-call-id"])
        assert record["messages"] is None and record["response"] is None
        assert record["prompt_tokens"] > 0
    finally:
        gw.stop()
        sink.stop()


def test_the_callback_is_listed_as_running(logged):
    r = requests.get(logged.url + "/active/callbacks", headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "generic_api" in body["sluice.running"]
    assert body["litellm.success_callback"] == ["generic_api"]
    r = requests.get(logged.url + "/get/config/callbacks", headers=ADMIN, timeout=10)
    entries = [c for c in r.json()["callbacks"] if c["name"] == "generic_api"]
    assert entries and all(c["active"] for c in entries)
    assert COLLECTOR_TOKEN not in r.text


def test_success_callback_alone_logs_no_failures(log_dir, mock):
    only = Collector()
    cfg = logging_config(
        mock.url,
        f"sqlite://{log_dir / ('logging-ok-' + uuid.uuid4().hex[:8] + '.db')}",
        '  success_callback: ["generic_api"]\n',
        {"GENERIC_LOGGER_ENDPOINT": only.url},
    )
    gw = start_gateway(log_dir, "logging-success-only", cfg)
    try:
        bad = chat(gw, MASTER_KEY, "dead")
        assert bad.status_code >= 500
        ok = chat(gw, MASTER_KEY, "fake-openai-endpoint")
        assert ok.status_code == 200
        only.wait_for(lambda r: r["id"] == ok.headers["x-litellm-call-id"])
        # The failure came first: had it been logged, it would be in this or an earlier batch.
        assert all(r["status"] == "success" for r in only.records()), only.records()
    finally:
        gw.stop()
        only.stop()


def test_a_collector_that_is_down_costs_requests_nothing(log_dir, mock):
    cfg = logging_config(
        mock.url,
        f"sqlite://{log_dir / ('logging-down-' + uuid.uuid4().hex[:8] + '.db')}",
        '  callbacks: ["prometheus", "generic_api"]\n',
        {"GENERIC_LOGGER_ENDPOINT": f"http://127.0.0.1:{closed_port()}/ingest"},
    )
    gw = start_gateway(log_dir, "logging-down", cfg)
    try:
        started = time.monotonic()
        for _ in range(50):
            r = chat(gw, MASTER_KEY, "fake-openai-endpoint")
            assert r.status_code == 200, r.text
        # Generous: the mock answers at once, and a debug build serves 50 calls in well under this.
        assert time.monotonic() - started < 10
        wait_for_failures(gw, "generic_api")
    finally:
        gw.stop()


def test_a_callback_without_its_endpoint_stops_the_start(log_dir, mock):
    cfg = logging_config(mock.url, "sqlite://" + str(log_dir / "never.db"), '  success_callback: ["generic_api"]\n', {})
    err = refused_start(log_dir, "logging-no-endpoint", cfg, ("GENERIC_LOGGER_",))
    assert "GENERIC_LOGGER_ENDPOINT" in err and "litellm_settings.success_callback[0]" in err, err


def test_records_still_queued_are_delivered_when_the_gateway_stops(log_dir, mock):
    sink = Collector()
    cfg = logging_config(
        mock.url,
        f"sqlite://{log_dir / ('logging-stop-' + uuid.uuid4().hex[:8] + '.db')}",
        '  callbacks: ["generic_api"]\n',
        {"GENERIC_LOGGER_ENDPOINT": sink.url},
    )
    gw = start_gateway(log_dir, "logging-stop", cfg)
    try:
        ids = []
        for _ in range(3):
            r = chat(gw, MASTER_KEY, "fake-openai-endpoint")
            assert r.status_code == 200, r.text
            ids.append(r.headers["x-litellm-call-id"])
        # At once, inside the batch's second: SIGTERM, and the gateway delivers before it exits.
        gw.stop()
        assert sorted(r["id"] for r in sink.records()) == sorted(ids)
    finally:
        gw.stop()
        sink.stop()


class RawCollector:
    """A webhook sink keeping each POST's path, headers and raw body (any format)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict, bytes]] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with collector.lock:
                    collector.posts.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def at(self, path: str) -> list[tuple[dict, bytes]]:
        with self.lock:
            return [(h, b) for p, h, b in self.posts if p == path]

    def stop(self) -> None:
        self.server.shutdown()


def test_callback_settings_names_webhooks_that_each_get_their_records(log_dir, mock):
    """LiteLLM's named `generic_api` callbacks: each `callback_settings` entry a list names is a
    webhook of its own, with its headers (`os.environ/` resolved), `event_types` and `log_format`."""
    sink = RawCollector()
    token = "audit-" + uuid.uuid4().hex[:8]
    cfg = logging_config(
        mock.url,
        f"sqlite://{log_dir / ('named-hooks-' + uuid.uuid4().hex[:8] + '.db')}",
        '  callbacks: ["audit_hook", "lines_hook"]\n',
        {"AUDIT_TOKEN": token},
    )
    cfg += (
        "callback_settings:\n"
        "  audit_hook:\n"
        "    callback_type: generic_api\n"
        f"    endpoint: {sink.base}/audit\n"
        "    headers:\n"
        "      Authorization: Bearer os.environ/AUDIT_TOKEN\n"
        "    event_types: [llm_api_failure]\n"
        "  lines_hook:\n"
        "    callback_type: generic_api\n"
        f"    endpoint: {sink.base}/lines\n"
        "    log_format: ndjson\n"
    )
    gw = start_gateway(log_dir, "named-hooks", cfg)
    try:
        ok = chat(gw, MASTER_KEY, "fake-openai-endpoint")
        assert ok.status_code == 200, ok.text
        bad = chat(gw, MASTER_KEY, "dead")
        assert bad.status_code >= 500, bad.text
        ok_id, bad_id = ok.headers["x-litellm-call-id"], bad.headers["x-litellm-call-id"]

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = [json.loads(line) for _, body in sink.at("/lines") for line in body.splitlines() if line]
            audit = [r for _, body in sink.at("/audit") for r in json.loads(body)]
            if {r["id"] for r in lines} >= {ok_id, bad_id} and audit:
                break
            time.sleep(0.1)
        # One object a line, both outcomes.
        assert {r["id"]: r["status"] for r in lines if r["id"] in (ok_id, bad_id)} == {
            ok_id: "success",
            bad_id: "failure",
        }, lines
        assert all(h["content-type"] == "application/x-ndjson" for h, _ in sink.at("/lines"))
        # A JSON array of failures only, with the header resolved from the environment.
        assert [r["id"] for r in audit] == [bad_id], audit
        assert all(h["authorization"] == f"Bearer {token}" for h, _ in sink.at("/audit"))

        running = requests.get(gw.url + "/active/callbacks", headers=ADMIN, timeout=10).json()["sluice.running"]
        assert {"audit_hook", "lines_hook"} <= set(running), running
    finally:
        gw.stop()
        sink.stop()


def test_a_named_webhook_without_an_endpoint_stops_the_start(log_dir, mock):
    cfg = logging_config(mock.url, "sqlite://:memory:", '  callbacks: ["hook"]\n', {})
    cfg += "callback_settings:\n  hook:\n    callback_type: generic_api\n"
    err = refused_start(log_dir, "named-hook-bad", cfg, ())
    assert "callback_settings.hook.endpoint" in err, err
