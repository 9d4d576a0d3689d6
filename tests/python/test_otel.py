"""OpenTelemetry traces (`callbacks: ["otel"]`, `langfuse_otel`), received by real OTLP endpoints:
an OTLP/HTTP receiver decoding protobuf with the official `opentelemetry-proto` classes (and
reading OTLP/JSON), and an OTLP/gRPC receiver built on `grpcio` with the same package's service
stubs. A recording upstream checks that `traceparent` goes on to the provider.

One trace per request: a server span named as LiteLLM names it, parented on the caller's
`traceparent`, and a client span per upstream attempt, so a fallback shows as two.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest
import requests
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from conftest import MASTER_KEY, closed_port, refused_start, render_config, start_gateway, wait_for_failures
from manage import ADMIN, PRICES

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


def flatten(request: trace_service_pb2.ExportTraceServiceRequest) -> list[dict]:
    """Every span of an export as a plain dict: ids as hex, attributes by key."""
    out = []
    for rs in request.resource_spans:
        resource = {a.key: a.value.string_value for a in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                attrs = {}
                for a in s.attributes:
                    v = a.value
                    kind = v.WhichOneof("value")
                    attrs[a.key] = (
                        [x.string_value for x in v.array_value.values] if kind == "array_value" else getattr(v, kind)
                    )
                out.append(
                    {
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent": s.parent_span_id.hex(),
                        "name": s.name,
                        "kind": s.kind,
                        "start": s.start_time_unix_nano,
                        "end": s.end_time_unix_nano,
                        "status": s.status.code,
                        "status_message": s.status.message,
                        "attributes": attrs,
                        "events": [(e.name, {a.key: a.value.string_value for a in e.attributes}) for e in s.events],
                        "resource": resource,
                        "scope": ss.scope.name,
                    }
                )
    return out


class Receiver:
    """Spans received, whatever the protocol; with the raw bodies and headers of each export."""

    def __init__(self) -> None:
        self.spans: list[dict] = []
        self.exports: list[tuple[dict, bytes]] = []
        self.lock = threading.Lock()

    def add(self, headers: dict, raw: bytes, spans: list[dict]) -> None:
        with self.lock:
            self.exports.append((headers, raw))
            self.spans.extend(spans)

    def trace(self, trace_id: str, count: int, timeout: float = 10.0) -> list[dict]:
        """The spans of `trace_id`, once `count` of them are in."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                got = [s for s in self.spans if s["trace_id"] == trace_id]
            if len(got) >= count:
                return got
            time.sleep(0.1)
        with self.lock:
            raise AssertionError(f"trace {trace_id}: wanted {count} spans within {timeout} s; got {self.spans}")


class HttpReceiver(Receiver):
    """OTLP/HTTP: POST {path} with protobuf (decoded with opentelemetry-proto) or JSON."""

    def __init__(self, path: str = "/v1/traces", auth: str | None = None) -> None:
        super().__init__()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if self.path != path or (auth is not None and headers.get("authorization") != auth):
                    self.send_response(404 if self.path != path else 401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if headers.get("content-type") == "application/json":
                    spans = json_spans(json.loads(raw))
                    answer, kind = b"{}", "application/json"
                else:
                    assert headers.get("content-type") == "application/x-protobuf", headers
                    request = trace_service_pb2.ExportTraceServiceRequest()
                    request.ParseFromString(raw)
                    spans = flatten(request)
                    answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                    kind = "application/x-protobuf"
                receiver.add(headers, raw, spans)
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def json_spans(body: dict) -> list[dict]:
    """OTLP/JSON spans, shaped as `flatten` shapes protobuf ones."""
    out = []
    for rs in body["resourceSpans"]:
        resource = {a["key"]: a["value"]["stringValue"] for a in rs["resource"]["attributes"]}
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                attrs = {a["key"]: next(iter(a["value"].values())) for a in s["attributes"]}
                out.append(
                    {
                        "trace_id": s["traceId"],
                        "span_id": s["spanId"],
                        "parent": s.get("parentSpanId", ""),
                        "name": s["name"],
                        "kind": s["kind"],
                        "start": int(s["startTimeUnixNano"]),
                        "end": int(s["endTimeUnixNano"]),
                        "status": s["status"]["code"],
                        "status_message": s["status"].get("message", ""),
                        "attributes": attrs,
                        "events": [],
                        "resource": resource,
                        "scope": ss["scope"]["name"],
                    }
                )
    return out


class GrpcReceiver(Receiver):
    """OTLP/gRPC: the TraceService with opentelemetry-proto's stubs, on grpcio."""

    def __init__(self) -> None:
        super().__init__()
        receiver = self

        class Service(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):  # noqa: N802
                headers = {k: v for k, v in context.invocation_metadata()}
                receiver.add(headers, request.SerializeToString(), flatten(request))
                return trace_service_pb2.ExportTraceServiceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.base = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.stop(0)


class RecordingUpstream:
    """An OpenAI-compatible upstream that answers every chat call and keeps its headers."""

    def __init__(self) -> None:
        self.headers: list[dict] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                asked = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                upstream.headers.append({k.lower(): v for k, v in self.headers.items()})
                if asked.get("stream"):
                    # A stream cut short by its length: the finish reason the trace must carry.
                    chunks = [
                        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}]},
                        {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
                        {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}},
                    ]
                    body = b"".join(
                        b"data: "
                        + json.dumps({"id": "chatcmpl-streamed", "object": "chat.completion.chunk", "model": "any", **c}).encode()
                        + b"\n\n"
                        for c in chunks
                    ) + b"data: [DONE]\n\n"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                body = json.dumps(
                    {
                        "id": "chatcmpl-recorded",
                        "object": "chat.completion",
                        "created": 1,
                        "model": "any",
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def otel_config(upstream_url: str, log_dir, litellm: str, env: dict[str, str]) -> str:
    models = [
        ("recorded", {"model": "openai/any", "api_base": upstream_url + "/", "api_key": "test", **PRICES}),
        # Nothing listens there: every call fails, and falls back to `recorded`.
        ("dead", {"model": "openai/dead", "api_base": f"http://127.0.0.1:{closed_port()}/", "api_key": "test"}),
    ]
    db = f"sqlite://{log_dir / ('otel-' + uuid.uuid4().hex[:8] + '.db')}"
    general = {"master_key": MASTER_KEY, "database_url": db, "proxy_batch_write_at": 0.5}
    cfg = render_config(models, general, {"num_retries": 0})
    cfg += "litellm_settings:\n" + '  fallbacks: [{"dead": ["recorded"]}]\n' + litellm
    cfg += "environment_variables:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in env.items())
    return cfg


@pytest.fixture(scope="module")
def upstream():
    u = RecordingUpstream()
    yield u
    u.stop()


def chat(gw, key: str, model: str, **headers) -> requests.Response:
    return requests.post(
        gw.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}", **headers},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=15,
    )


@pytest.fixture(scope="module")
def receiver():
    r = HttpReceiver()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def traced(log_dir, upstream, receiver):
    cfg = otel_config(
        upstream.url,
        log_dir,
        '  callbacks: ["prometheus", "otel"]\n',
        {"OTEL_EXPORTER": "otlp_http", "OTEL_ENDPOINT": receiver.base, "OTEL_HEADERS": "x-otel-token=s3cr3t%20t0ken"},
    )
    p = start_gateway(log_dir, "otel", cfg)
    yield p
    p.stop()


def test_a_fallback_is_one_trace_under_the_callers_span_with_a_span_per_attempt(traced, receiver, upstream):
    team = requests.post(traced.url + "/team/new", headers=ADMIN, json={"team_alias": "traced-team"}, timeout=10)
    team_id = team.json()["team_id"]
    made = requests.post(
        traced.url + "/key/generate", headers=ADMIN, json={"key_alias": "traced-key", "team_id": team_id}, timeout=10
    ).json()
    key = made["key"]
    seen = len(upstream.headers)
    r = chat(traced, key, "dead", traceparent=TRACEPARENT, tracestate="vendor=opaque")
    assert r.status_code == 200, r.text

    spans = receiver.trace(CALLER_TRACE, 3)
    server = [s for s in spans if s["kind"] == 2]
    attempts = sorted((s for s in spans if s["kind"] == 3), key=lambda s: s["start"])
    assert len(server) == 1 and len(attempts) == 2, spans
    server = server[0]
    assert server["name"] == "Received Proxy Server Request"
    assert server["parent"] == CALLER_SPAN
    assert server["status"] == 1  # OK
    a = server["attributes"]
    assert a["gen_ai.request.model"] == "dead"
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.usage.input_tokens"] == 10 and a["gen_ai.usage.output_tokens"] == 20
    assert a["gen_ai.response.id"] == "chatcmpl-recorded"
    assert a["gen_ai.cost.total_cost"] > 0
    assert a["metadata.user_api_key_alias"] == "traced-key"
    assert a["metadata.user_api_key_hash"] == made["token"]
    assert a["metadata.user_api_key_team_id"] == team_id
    assert a["metadata.user_api_key_team_alias"] == "traced-team"
    # The deployment that answered (the fallback's), and its provider.
    assert a["gen_ai.system"] == a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.response.model"] == "any"
    assert a["http.response.status_code"] == 200
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert server["resource"]["service.name"] == "litellm"
    assert server["scope"] == "litellm"
    # No prompt or answer unless OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT asks for them.
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a

    # The dead deployment first (failed), then the fallback that answered, both under the server span.
    failed, served = attempts
    assert failed["parent"] == served["parent"] == server["span_id"]
    assert failed["status"] == 2 and failed["attributes"]["error.type"] == "APIConnectionError"
    assert failed["attributes"]["gen_ai.request.model"] == "dead"
    assert served["status"] == 1 and served["attributes"]["litellm.model_group"] == "recorded"
    assert server["start"] <= failed["start"] <= failed["end"] <= served["start"] <= served["end"] <= server["end"]

    # The provider got the trace: the answering attempt's span as its parent, the state passed on.
    sent = upstream.headers[seen:]
    assert len(sent) == 1, sent
    assert sent[0]["traceparent"] == f"00-{CALLER_TRACE}-{served['span_id']}-01"
    assert sent[0]["tracestate"] == "vendor=opaque"

    # The export carried the decoded header, and nowhere the key itself.
    headers, _ = receiver.exports[-1]
    assert headers["x-otel-token"] == "s3cr3t t0ken"
    assert all(key.encode() not in raw for _, raw in receiver.exports)


def test_a_streams_finish_reason_is_its_last_chunks(traced, receiver):
    trace_id = uuid.uuid4().hex
    r = requests.post(
        traced.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {MASTER_KEY}", "traceparent": f"00-{trace_id}-{CALLER_SPAN}-01"},
        json={"model": "recorded", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        timeout=15,
    )
    assert r.status_code == 200 and '"length"' in r.text, r.text
    server = next(s for s in receiver.trace(trace_id, 2) if s["kind"] == 2)
    assert server["attributes"]["gen_ai.response.finish_reasons"] == ["length"]


def test_otel_is_listed_as_running(traced):
    r = requests.get(traced.url + "/active/callbacks", headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    assert "otel" in r.json()["sluice.running"], r.json()


def test_a_request_without_a_traceparent_starts_its_own_trace(traced, receiver):
    r = chat(traced, MASTER_KEY, "recorded")
    assert r.status_code == 200, r.text
    call_id = r.headers["x-litellm-call-id"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with receiver.lock:
            mine = [s for s in receiver.spans if s["attributes"].get("gen_ai.request.id") == call_id]
        if mine:
            break
        time.sleep(0.1)
    assert mine, "no server span for the call"
    server = mine[0]
    assert server["parent"] == "" and server["trace_id"] != CALLER_TRACE
    assert len(receiver.trace(server["trace_id"], 2)) == 2


def test_a_refused_request_is_an_error_span_with_its_exception(traced, receiver):
    trace_id = uuid.uuid4().hex
    r = chat(traced, "sk-not-a-key", "recorded", traceparent=f"00-{trace_id}-{CALLER_SPAN}-01")
    assert r.status_code == 401, r.text
    (server,) = receiver.trace(trace_id, 1)
    assert server["status"] == 2 and server["status_message"] == "AuthenticationError"
    assert server["attributes"]["error.type"] == "AuthenticationError"
    assert server["attributes"]["http.response.status_code"] == 401
    name, attrs = server["events"][0]
    assert name == "exception" and attrs["exception.type"] == "AuthenticationError"
    assert "sk-not-a-key" not in json.dumps(server)


def test_an_unsampled_caller_is_not_exported_but_still_propagated(traced, receiver, upstream):
    trace_id = uuid.uuid4().hex
    seen = len(upstream.headers)
    r = chat(traced, MASTER_KEY, "recorded", traceparent=f"00-{trace_id}-{CALLER_SPAN}-00")
    assert r.status_code == 200, r.text
    assert upstream.headers[seen]["traceparent"].startswith(f"00-{trace_id}-")
    assert upstream.headers[seen]["traceparent"].endswith("-00")
    # A later sampled call's spans arrive; the unsampled one's never did.
    marker = uuid.uuid4().hex
    assert chat(traced, MASTER_KEY, "recorded", traceparent=f"00-{marker}-{CALLER_SPAN}-01").status_code == 200
    receiver.trace(marker, 2)
    assert not [s for s in receiver.spans if s["trace_id"] == trace_id]


def test_http_protobuf_http_json_and_grpc_exports_carry_the_same_spans(log_dir, upstream):
    for protocol in ("http/protobuf", "http/json", "grpc"):
        receiver = GrpcReceiver() if protocol == "grpc" else HttpReceiver()
        cfg = otel_config(
            upstream.url,
            log_dir,
            '  callbacks: ["otel"]\n',
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base,
                "OTEL_EXPORTER_OTLP_HEADERS": "x-otel-token=abc",
                "OTEL_SERVICE_NAME": "gateway-" + protocol.replace("/", "-"),
                # Percent-encoded values, and a service.name that OTEL_SERVICE_NAME overrides.
                "OTEL_RESOURCE_ATTRIBUTES": "service.name=ignored,deployment.environment=ci,team=ml%2Fops",
                # The content, asked for over gRPC only.
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": str(protocol == "grpc").lower(),
            },
        )
        gw = start_gateway(log_dir, "otel-" + protocol.replace("/", "-"), cfg)
        try:
            trace_id = uuid.uuid4().hex
            r = chat(gw, MASTER_KEY, "recorded", traceparent=f"00-{trace_id}-{CALLER_SPAN}-01")
            assert r.status_code == 200, r.text
            spans = receiver.trace(trace_id, 2)
            server = next(s for s in spans if s["kind"] == 2)
            assert server["parent"] == CALLER_SPAN, protocol
            assert server["resource"]["service.name"] == "gateway-" + protocol.replace("/", "-")
            assert server["resource"]["deployment.environment"] == "ci", protocol
            assert server["resource"]["team"] == "ml/ops", protocol
            assert str(server["attributes"]["gen_ai.usage.input_tokens"]) == "10", protocol
            assert receiver.exports[-1][0]["x-otel-token"] == "abc"
            captured = server["attributes"].get("gen_ai.input.messages")
            if protocol == "grpc":
                assert json.loads(captured) == [{"role": "user", "content": "hi"}]
                assert json.loads(server["attributes"]["gen_ai.output.messages"])["id"] == "chatcmpl-recorded"
            else:
                assert captured is None
        finally:
            gw.stop()
            receiver.stop()


def test_turn_off_message_logging_keeps_the_prompt_out_of_spans_that_would_carry_it(log_dir, upstream):
    """`langfuse_otel` always carries the prompt and the answer, and the GenAI opt-in asks for
    them on `otel`: `turn_off_message_logging` wins over both."""
    auth = "Basic " + base64.b64encode(b"pk-lf-test:sk-lf-test").decode()
    receiver = HttpReceiver(path="/api/public/otel/v1/traces", auth=auth)
    cfg = otel_config(
        upstream.url,
        log_dir,
        '  turn_off_message_logging: true\n  callbacks: ["langfuse_otel"]\n',
        {
            "LANGFUSE_PUBLIC_KEY": "pk-lf-test",
            "LANGFUSE_SECRET_KEY": "sk-lf-test",
            "LANGFUSE_OTEL_HOST": receiver.base,
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
        },
    )
    gw = start_gateway(log_dir, "otel-quiet", cfg)
    try:
        trace_id = uuid.uuid4().hex
        r = chat(gw, MASTER_KEY, "recorded", traceparent=f"00-{trace_id}-{CALLER_SPAN}-01")
        assert r.status_code == 200, r.text
        spans = receiver.trace(trace_id, 2)
        server = next(s for s in spans if s["kind"] == 2)
        assert server["attributes"]["gen_ai.usage.input_tokens"] == 10
        for span in spans:
            assert "gen_ai.input.messages" not in span["attributes"], span
            assert "gen_ai.output.messages" not in span["attributes"], span
        assert all(b'"hi"' not in raw and b"chatcmpl-recorded\"" not in raw for _, raw in receiver.exports)
    finally:
        gw.stop()
        receiver.stop()


def test_langfuse_otel_goes_to_langfuses_endpoint_with_the_projects_keys(log_dir, upstream):
    auth = "Basic " + base64.b64encode(b"pk-lf-test:sk-lf-test").decode()
    receiver = HttpReceiver(path="/api/public/otel/v1/traces", auth=auth)
    cfg = otel_config(
        upstream.url,
        log_dir,
        '  callbacks: ["langfuse_otel"]\n',
        {"LANGFUSE_PUBLIC_KEY": "pk-lf-test", "LANGFUSE_SECRET_KEY": "sk-lf-test", "LANGFUSE_OTEL_HOST": receiver.base},
    )
    gw = start_gateway(log_dir, "langfuse-otel", cfg)
    try:
        trace_id = uuid.uuid4().hex
        r = requests.post(
            gw.url + "/v1/chat/completions",
            headers={
                "Authorization": f"Bearer {MASTER_KEY}",
                "traceparent": f"00-{trace_id}-{CALLER_SPAN}-01",
                "langfuse_trace_user_id": "shopper-9",
            },
            json={
                "model": "recorded",
                "messages": [{"role": "user", "content": "hi"}],
                "metadata": {"session_id": "session-9", "generation_name": "answer", "tags": ["a", "b"]},
            },
            timeout=15,
        )
        assert r.status_code == 200, r.text
        spans = receiver.trace(trace_id, 2)
        assert {s["kind"] for s in spans} == {2, 3}
        # Langfuse shows the prompt and the answer: its spans carry them.
        server = next(s for s in spans if s["kind"] == 2)
        assert json.loads(server["attributes"]["gen_ai.input.messages"]) == [{"role": "user", "content": "hi"}]
        # The request's own Langfuse keys, under the names Langfuse's OTLP endpoint reads.
        a = server["attributes"]
        assert a["session.id"] == "session-9" and a["user.id"] == "shopper-9"
        assert a["langfuse.generation.name"] == "answer"
        assert json.loads(a["langfuse.trace.tags"]) == ["a", "b"]
    finally:
        gw.stop()
        receiver.stop()


def test_litellm_request_span_and_redacted_exceptions(log_dir, upstream):
    """`USE_OTEL_LITELLM_REQUEST_SPAN=true`: the call's attributes on a `litellm_request` span
    between the request's span and the attempts; `redact_messages_in_exceptions`: a failure's
    exception keeps its class and loses its message."""
    receiver = HttpReceiver()
    cfg = otel_config(
        upstream.url,
        log_dir,
        '  callbacks: ["otel"]\n  redact_messages_in_exceptions: true\n',
        {"OTEL_EXPORTER": "otlp_http", "OTEL_ENDPOINT": receiver.base, "USE_OTEL_LITELLM_REQUEST_SPAN": "true"},
    )
    gw = start_gateway(log_dir, "otel-request-span", cfg)
    try:
        trace_id = uuid.uuid4().hex
        assert chat(gw, MASTER_KEY, "recorded", traceparent=f"00-{trace_id}-{CALLER_SPAN}-01").status_code == 200
        spans = receiver.trace(trace_id, 3)
        (server,) = [s for s in spans if s["kind"] == 2]
        (call,) = [s for s in spans if s["name"] == "litellm_request"]
        (attempt,) = [s for s in spans if s["kind"] == 3]
        assert server["parent"] == CALLER_SPAN
        assert call["parent"] == server["span_id"] and attempt["parent"] == call["span_id"]
        assert call["kind"] == 1 and call["status"] == 1
        assert call["attributes"]["gen_ai.usage.output_tokens"] == 20
        assert call["attributes"]["gen_ai.response.finish_reasons"] == ["stop"]
        assert "gen_ai.usage.output_tokens" not in server["attributes"]
        assert server["start"] <= call["start"] <= attempt["start"] <= attempt["end"] <= call["end"] <= server["end"]

        failed = uuid.uuid4().hex
        r = chat(gw, "sk-not-a-key", "recorded", traceparent=f"00-{failed}-{CALLER_SPAN}-01")
        assert r.status_code == 401, r.text
        spans = receiver.trace(failed, 2)
        (call,) = [s for s in spans if s["name"] == "litellm_request"]
        name, attrs = call["events"][0]
        assert name == "exception" and attrs["exception.type"] == "AuthenticationError"
        assert "exception.message" not in attrs, attrs
        assert all(r.json()["error"]["message"] not in json.dumps(s) for s in spans)
    finally:
        gw.stop()
        receiver.stop()


def test_a_collector_that_is_down_costs_requests_nothing(log_dir, upstream):
    cfg = otel_config(
        upstream.url,
        log_dir,
        '  callbacks: ["prometheus", "otel"]\n',
        {"OTEL_EXPORTER": "otlp_http", "OTEL_ENDPOINT": f"http://127.0.0.1:{closed_port()}"},
    )
    gw = start_gateway(log_dir, "otel-down", cfg)
    try:
        started = time.monotonic()
        for _ in range(50):
            assert chat(gw, MASTER_KEY, "recorded").status_code == 200
        assert time.monotonic() - started < 10
        wait_for_failures(gw, "otel")
    finally:
        gw.stop()


def test_an_exporter_sluice_cannot_honour_stops_the_start(log_dir, upstream):
    cfg = otel_config(upstream.url, log_dir, '  callbacks: ["otel"]\n', {"OTEL_EXPORTER": "zipkin"})
    err = refused_start(log_dir, "otel-bad", cfg, ("OTEL_",))
    assert "zipkin" in err and "litellm_settings.callbacks[0]" in err, err
