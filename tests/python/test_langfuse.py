"""LiteLLM's classic `langfuse` logging callback: each finished call sent to Langfuse's public
ingestion API (`POST {host}/api/public/ingestion`, HTTP Basic auth with the project's public and
secret keys) as a `trace-create` and a `generation-create` event, in batches; a key's or team's
`metadata.logging` sending its calls to a project of its own, as LiteLLM's key/team based
logging does.

The Langfuse stand-in is a real HTTP server on loopback that follows the public API: it checks
Basic auth against the projects it knows (401 otherwise), checks each event's envelope and body,
and answers 207 with `successes` and `errors`.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import MASTER_KEY, refused_start, start_gateway, wait_for_failures
from manage import ADMIN
from test_logging_callbacks import chat, logging_config, new_key

# Projects the stand-in knows: public key -> secret key. "pk-lf-refused" is a real project whose
# every event Langfuse refuses (207 with errors).
GLOBAL = ("pk-lf-global", "sk-lf-global-" + uuid.uuid4().hex[:8])
KEY_OWN = ("pk-lf-key", "sk-lf-key-" + uuid.uuid4().hex[:8])
TEAM_OWN = ("pk-lf-team", "sk-lf-team-" + uuid.uuid4().hex[:8])
REFUSED = ("pk-lf-refused", "sk-lf-refused-" + uuid.uuid4().hex[:8])
PROJECTS = dict([GLOBAL, KEY_OWN, TEAM_OWN, REFUSED])

EVENT_TYPES = {"trace-create", "generation-create"}


def iso(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def event_problem(event: dict) -> str | None:
    """What is wrong with one ingestion event, per Langfuse's public API; None if nothing."""
    if not isinstance(event.get("id"), str) or not event["id"]:
        return "event id missing"
    if event.get("type") not in EVENT_TYPES:
        return f"unknown event type {event.get('type')!r}"
    try:
        iso(event["timestamp"])
    except (KeyError, TypeError, ValueError):
        return "timestamp is not ISO-8601"
    body = event.get("body")
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        return "body.id missing"
    if event["type"] == "generation-create":
        if not isinstance(body.get("traceId"), str):
            return "generation without traceId"
        for field in ("startTime", "endTime"):
            try:
                iso(body[field])
            except (KeyError, TypeError, ValueError):
                return f"{field} is not ISO-8601"
        if body.get("level") not in ("DEBUG", "DEFAULT", "WARNING", "ERROR"):
            return "bad level"
    return None


class LangfuseStandIn:
    """Langfuse's ingestion endpoint: keeps every accepted event by the project it came in for."""

    def __init__(self) -> None:
        self.events: dict[str, list[dict]] = {}
        self.posts: list[tuple[str, dict]] = []
        self.unauthorized = 0
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/api/public/ingestion":
                    return self.answer(404, {"message": "not found"})
                project = stand_in.authenticate(self.headers.get("Authorization", ""))
                if project is None:
                    with stand_in.lock:
                        stand_in.unauthorized += 1
                    return self.answer(401, {"message": "Invalid credentials"})
                try:
                    body = json.loads(raw)
                    batch = body["batch"]
                    assert isinstance(batch, list) and isinstance(body.get("metadata", {}), dict)
                except (ValueError, KeyError, AssertionError):
                    return self.answer(400, {"message": "Invalid request data"})
                successes, errors = [], []
                for event in batch:
                    problem = event_problem(event) if isinstance(event, dict) else "not an object"
                    if problem is None and project == REFUSED[0]:
                        problem = "project over its quota"
                    if problem is None:
                        successes.append({"id": event["id"], "status": 201})
                    else:
                        errors.append({"id": str(event.get("id")), "status": 400, "message": problem})
                with stand_in.lock:
                    stand_in.posts.append((project, body))
                    stand_in.events.setdefault(project, []).extend(
                        e for e in batch if isinstance(e, dict) and e.get("id") in {s["id"] for s in successes}
                    )
                self.answer(207, {"successes": successes, "errors": errors})

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def authenticate(header: str) -> str | None:
        if not header.startswith("Basic "):
            return None
        try:
            public, secret = base64.b64decode(header[6:]).decode().split(":", 1)
        except ValueError:
            return None
        return public if PROJECTS.get(public) == secret else None

    def generation(self, project: str, trace_id: str, timeout: float = 10.0) -> tuple[dict, dict]:
        """The trace and generation bodies of call `trace_id` in `project`, once they arrive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                events = list(self.events.get(project, []))
            trace = next(
                (e["body"] for e in events if e["type"] == "trace-create" and e["body"]["id"] == trace_id), None
            )
            gen = next(
                (e["body"] for e in events if e["type"] == "generation-create" and e["body"]["traceId"] == trace_id),
                None,
            )
            if trace and gen:
                return trace, gen
            time.sleep(0.1)
        with self.lock:
            seen = {p: [e["body"].get("id") for e in es] for p, es in self.events.items()}
        raise AssertionError(f"no events for {trace_id} in {project} within {timeout} s; got {seen}")

    def projects_with(self, trace_id: str) -> set[str]:
        with self.lock:
            return {p for p, es in self.events.items() for e in es if e["body"].get("id") == trace_id}

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def langfuse():
    s = LangfuseStandIn()
    yield s
    s.stop()


def langfuse_env(stand_in: LangfuseStandIn) -> dict[str, str]:
    return {
        "LANGFUSE_PUBLIC_KEY": GLOBAL[0],
        "LANGFUSE_SECRET_KEY": GLOBAL[1],
        "LANGFUSE_HOST": stand_in.url,
        "LANGFUSE_RELEASE": "release-7",
        # Read by keys' `os.environ/` values.
        "TEAM_LF_SECRET": TEAM_OWN[1],
    }


@pytest.fixture(scope="module")
def gw(log_dir, mock, langfuse):
    """A gateway logging successes and failures to the configured Langfuse project."""
    cfg = logging_config(
        mock.url,
        f"sqlite://{log_dir / ('langfuse-' + uuid.uuid4().hex[:8] + '.db')}",
        '  callbacks: ["prometheus", "langfuse"]\n',
        langfuse_env(langfuse),
    )
    p = start_gateway(log_dir, "langfuse", cfg)
    yield p
    p.stop()


def own_logging(project: tuple[str, str], host: str, secret: str | None = None, kind: str = "success_and_failure"):
    return [
        {
            "callback_name": "langfuse",
            "callback_type": kind,
            "callback_vars": {
                "langfuse_public_key": project[0],
                "langfuse_secret_key": secret or project[1],
                "langfuse_host": host,
            },
        }
    ]


def test_a_success_and_a_failure_reach_langfuse_as_trace_and_generation(gw, langfuse):
    alias = "lf-" + uuid.uuid4().hex[:6]
    made = new_key(gw, key_alias=alias, metadata={"tags": ["from-key"]})
    key, key_hash = made["key"], made["token"]

    ok = chat(gw, key, "fake-openai-endpoint")
    assert ok.status_code == 200, ok.text
    call_id = ok.headers["x-litellm-call-id"]
    trace, gen = langfuse.generation(GLOBAL[0], call_id)
    assert trace["name"] == "litellm-acompletion"
    assert trace["userId"] == "end-user-7"
    assert trace["release"] == "release-7"
    assert "from-key" in trace["tags"]
    # The prompt and the answer's message, as LiteLLM logs them.
    prompt = {"messages": [{"role": "user", "content": "hi"}]}
    answer = ok.json()["choices"][0]["message"]
    assert trace["input"] == gen["input"] == prompt
    assert trace["output"] == gen["output"] == answer
    assert gen["name"] == f"litellm:{alias}"
    assert gen["model"] == "any"
    assert gen["level"] == "DEFAULT"
    usage = ok.json()["usage"]
    assert gen["usage"]["input"] == usage["prompt_tokens"] > 0
    assert gen["usage"]["output"] == usage["completion_tokens"] > 0
    assert gen["usage"]["total"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert gen["usageDetails"] == {
        "input": usage["prompt_tokens"],
        "output": usage["completion_tokens"],
        "total": gen["usage"]["total"],
    }
    cost = float(ok.headers["x-litellm-response-cost"])
    assert cost > 0
    assert gen["usage"]["totalCost"] == pytest.approx(cost)
    assert gen["costDetails"]["total"] == pytest.approx(cost)
    assert iso(gen["startTime"]) <= iso(gen["endTime"]) <= iso(gen["completionStartTime"])
    assert abs(iso(gen["endTime"]).timestamp() - time.time()) < 60
    meta = gen["metadata"]
    assert meta["user_api_key_alias"] == alias
    assert meta["user_api_key_hash"] == key_hash
    assert meta["model_group"] == "fake-openai-endpoint"
    assert meta["api_base"].startswith("http://127.0.0.1")
    assert "from-key" in meta["tags"]

    bad = chat(gw, key, "dead")
    assert bad.status_code >= 500, bad.text
    failed_id = bad.headers["x-litellm-call-id"]
    trace, gen = langfuse.generation(GLOBAL[0], failed_id)
    assert gen["level"] == "ERROR"
    assert gen["statusMessage"]
    assert gen["output"] == gen["statusMessage"]
    assert gen["input"] == {"messages": [{"role": "user", "content": "hi"}]}
    assert gen.get("usage") is None
    assert gen["metadata"]["model_group"] == "dead"
    assert gen["metadata"]["error_information"]["error_code"] == str(bad.status_code)

    with langfuse.lock:
        posts = list(langfuse.posts)
    assert posts
    for project, body in posts:
        assert body["metadata"]["batch_size"] == len(body["batch"])
        # The raw key is never sent, and no project's secret is.
        text = json.dumps(body)
        assert key not in text and all(secret not in text for secret in PROJECTS.values())


def test_a_key_with_its_own_logging_reaches_its_project(gw, langfuse):
    key = new_key(gw, metadata={"logging": own_logging(KEY_OWN, langfuse.url)})["key"]
    ok = chat(gw, key, "fake-openai-endpoint")
    assert ok.status_code == 200, ok.text
    call_id = ok.headers["x-litellm-call-id"]
    langfuse.generation(KEY_OWN[0], call_id)
    bad = chat(gw, key, "dead")
    langfuse.generation(KEY_OWN[0], bad.headers["x-litellm-call-id"])
    # A moment for anything sent elsewhere too: it went to the key's project only.
    time.sleep(1.5)
    assert langfuse.projects_with(call_id) == {KEY_OWN[0]}
    r = requests.post(gw.url + "/key/health", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.json()["key"] == "healthy", r.text


def test_a_teams_logging_applies_to_its_keys_unless_a_key_has_its_own(gw, langfuse):
    # The team's secret comes from the environment, as `os.environ/` names it.
    logging = own_logging(TEAM_OWN, langfuse.url, secret="os.environ/TEAM_LF_SECRET")
    r = requests.post(gw.url + "/team/new", headers=ADMIN, json={"metadata": {"logging": logging}}, timeout=10)
    assert r.status_code == 200, r.text
    team_id = r.json()["team_id"]
    team_key = new_key(gw, team_id=team_id)["key"]
    ok = chat(gw, team_key, "fake-openai-endpoint")
    assert ok.status_code == 200, ok.text
    team_call = ok.headers["x-litellm-call-id"]
    _, gen = langfuse.generation(TEAM_OWN[0], team_call)
    assert gen["metadata"]["user_api_key_team_id"] == team_id

    own_key = new_key(gw, team_id=team_id, metadata={"logging": own_logging(KEY_OWN, langfuse.url)})["key"]
    ok = chat(gw, own_key, "fake-openai-endpoint")
    assert ok.status_code == 200, ok.text
    own_call = ok.headers["x-litellm-call-id"]
    langfuse.generation(KEY_OWN[0], own_call)
    time.sleep(1.5)
    assert langfuse.projects_with(team_call) == {TEAM_OWN[0]}
    assert langfuse.projects_with(own_call) == {KEY_OWN[0]}


def test_a_teams_older_callback_settings_reach_its_project(gw, langfuse):
    # LiteLLM's `/team/{id}/callback` format, as a database moved from it holds it.
    settings = {
        "success_callback": ["langfuse"],
        "failure_callback": ["langfuse"],
        "callback_vars": {
            "langfuse_public_key": TEAM_OWN[0],
            "langfuse_secret_key": TEAM_OWN[1],
            "langfuse_host": langfuse.url,
        },
    }
    r = requests.post(
        gw.url + "/team/new", headers=ADMIN, json={"metadata": {"callback_settings": settings}}, timeout=10
    )
    assert r.status_code == 200, r.text
    key = new_key(gw, team_id=r.json()["team_id"])["key"]
    bad = chat(gw, key, "dead")
    assert bad.status_code >= 500
    _, gen = langfuse.generation(TEAM_OWN[0], bad.headers["x-litellm-call-id"])
    assert gen["level"] == "ERROR"


def test_a_success_only_key_logs_its_failures_to_the_configured_project(gw, langfuse):
    key = new_key(gw, metadata={"logging": own_logging(KEY_OWN, langfuse.url, kind="success")})["key"]
    bad = chat(gw, key, "dead")
    assert bad.status_code >= 500
    # The key's credentials still apply to the whole call (LiteLLM's dynamic credentials): the
    # configured callback, which takes failures, logs it to the key's project.
    langfuse.generation(KEY_OWN[0], bad.headers["x-litellm-call-id"])


def test_refused_events_count_as_failed_deliveries(gw, langfuse):
    key = new_key(gw, metadata={"logging": own_logging(REFUSED, langfuse.url)})["key"]
    for _ in range(2):
        assert chat(gw, key, "fake-openai-endpoint").status_code == 200
    wait_for_failures(gw, "langfuse")


def test_a_key_with_wrong_credentials_is_unhealthy_and_refused(gw, langfuse):
    key = new_key(gw, metadata={"logging": own_logging(KEY_OWN, langfuse.url, secret="sk-wrong")})["key"]
    before = langfuse.unauthorized
    assert chat(gw, key, "fake-openai-endpoint").status_code == 200
    deadline = time.monotonic() + 10
    while langfuse.unauthorized == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert langfuse.unauthorized > before
    unset = {
        "langfuse_host": langfuse.url,
        "langfuse_public_key": "pk",
        "langfuse_secret_key": "os.environ/NOT_SET_ANYWHERE",
    }
    key = new_key(gw, metadata={"logging": [{"callback_name": "langfuse", "callback_vars": unset}]})["key"]
    r = requests.post(gw.url + "/key/health", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.json()["key"] == "unhealthy", r.text
    assert "langfuse_secret_key" in r.json()["logging_callbacks"]["details"]


def test_keys_log_to_their_project_when_the_config_names_no_langfuse(log_dir, mock, langfuse):
    cfg = logging_config(
        mock.url,
        f"sqlite://{log_dir / ('langfuse-keys-only-' + uuid.uuid4().hex[:8] + '.db')}",
        '  callbacks: ["prometheus"]\n',
        {},
    )
    p = start_gateway(log_dir, "langfuse-keys-only", cfg)
    try:
        key = new_key(p, metadata={"logging": own_logging(KEY_OWN, langfuse.url)})["key"]
        ok = chat(p, key, "fake-openai-endpoint")
        assert ok.status_code == 200, ok.text
        trace, gen = langfuse.generation(KEY_OWN[0], ok.headers["x-litellm-call-id"])
        # The key's project gets the prompt and the answer, as with a configured project,
        # although no configured sink writes content.
        prompt = {"messages": [{"role": "user", "content": "hi"}]}
        assert trace["input"] == gen["input"] == prompt
        assert gen["output"] == ok.json()["choices"][0]["message"]
        streamed = requests.post(
            p.url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "fake-openai-endpoint", "messages": [{"role": "user", "content": "hi"}], "stream": True},
            timeout=10,
        )
        assert streamed.status_code == 200, streamed.text
        _, gen = langfuse.generation(KEY_OWN[0], streamed.headers["x-litellm-call-id"])
        assert gen["input"] == prompt
        assert gen["output"]["content"], gen
        # The master key's calls go nowhere: no project is configured.
        plain = chat(p, MASTER_KEY, "fake-openai-endpoint")
        time.sleep(1.5)
        assert langfuse.projects_with(plain.headers["x-litellm-call-id"]) == set()
    finally:
        p.stop()


def test_langfuse_without_its_keys_stops_the_start(log_dir, mock):
    cfg = logging_config(mock.url, "sqlite://" + str(log_dir / "never.db"), '  success_callback: ["langfuse"]\n', {})
    err = refused_start(log_dir, "langfuse-no-keys", cfg, ("LANGFUSE_",))
    assert "LANGFUSE_PUBLIC_KEY" in err and "litellm_settings.success_callback[0]" in err, err


def test_the_requests_metadata_and_langfuse_headers_name_its_trace(gw, langfuse):
    """LiteLLM's per-request Langfuse keys, sent the way an OpenAI SDK user sends them: the body's
    `metadata` (through `extra_body`) and `langfuse_*` headers, a header winning."""
    import openai

    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    trace_id = "trace-" + uuid.uuid4().hex[:8]
    raw = client.chat.completions.with_raw_response.create(
        model="fake-openai-endpoint",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={
            "metadata": {
                "trace_id": trace_id,
                "trace_name": "checkout-flow",
                "session_id": "overridden-by-the-header",
                "generation_name": "summarise",
                "generation_id": "gen-" + trace_id,
                "trace_user_id": "shopper-1",
                "tags": ["from-metadata"],
            }
        },
        extra_headers={"langfuse_session_id": "session-42", "langfuse_trace_version": "v3"},
    )
    assert raw.http_response.status_code == 200
    trace, gen = langfuse.generation(GLOBAL[0], trace_id)
    assert trace["name"] == "checkout-flow"
    assert trace["sessionId"] == "session-42"
    assert trace["userId"] == "shopper-1"
    assert trace["version"] == "v3"
    assert "from-metadata" in trace["tags"]
    assert gen["name"] == "summarise" and gen["id"] == "gen-" + trace_id and gen["traceId"] == trace_id

    # A later call joins that trace without renaming it.
    raw = client.chat.completions.with_raw_response.create(
        model="fake-openai-endpoint",
        messages=[{"role": "user", "content": "again"}],
        extra_headers={"langfuse_existing_trace_id": trace_id, "langfuse_generation_name": "follow-up"},
    )
    assert raw.http_response.status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with langfuse.lock:
            events = list(langfuse.events.get(GLOBAL[0], []))
        later = [e["body"] for e in events if e["type"] == "generation-create" and e["body"].get("name") == "follow-up"]
        if later:
            break
        time.sleep(0.1)
    assert later and later[0]["traceId"] == trace_id, later
    joined = [e["body"] for e in events if e["type"] == "trace-create" and e["body"]["id"] == trace_id]
    assert any(set(t) == {"id", "timestamp"} for t in joined), joined
