"""The official `openai` Python SDK against sluice, through a `sluice mock` upstream.

Each test states the LiteLLM-compatible behaviour a client relies on: what the
SDK returns on success, and which exception class (by HTTP status) it raises for
each failure the gateway maps (reference/litellm.md §11, formats.md §1.6).
"""

from __future__ import annotations

import time
import uuid

import openai
import pytest
import requests
from openai import OpenAI

from conftest import ECHOED_KEY, MASTER_KEY, MOCK_SENTENCE

MODEL = "fake-openai-endpoint"
MESSAGES = [{"role": "user", "content": "Say hello"}]
HTTP_TIMEOUT_S = 20


@pytest.fixture(scope="module")
def client(gateway) -> OpenAI:
    c = OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=HTTP_TIMEOUT_S)
    yield c
    c.close()


@pytest.fixture(scope="module")
def client_no_v1(gateway) -> OpenAI:
    c = OpenAI(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0, timeout=HTTP_TIMEOUT_S)
    yield c
    c.close()


def assert_error_envelope(exc: openai.APIStatusError, status: int) -> None:
    """LiteLLM's error body: all four keys, `code` the status as a string."""
    assert exc.status_code == status, f"status {exc.status_code}, body {exc.body!r}"
    body = exc.body
    assert isinstance(body, dict), f"error body is not an object: {body!r}"
    for key in ("message", "type", "param", "code"):
        assert key in body, f"error body lacks {key!r}: {body!r}"
    assert body["code"] == str(status), body
    assert isinstance(body["message"], str) and body["message"], body


# --- success paths ---------------------------------------------------------


@pytest.mark.parametrize("which", ["v1", "no_v1"])
def test_chat_non_stream(which, client, client_no_v1):
    c = client if which == "v1" else client_no_v1
    resp = c.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert resp.object == "chat.completion"
    assert resp.model == MODEL, "model must be re-stamped to the requested name"
    assert resp.choices, resp
    msg = resp.choices[0].message
    assert msg.role == "assistant"
    assert isinstance(msg.content, str) and msg.content.strip()
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None
    assert resp.usage.prompt_tokens > 0
    assert resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_chat_stream(client):
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert chunks, "no chunks"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == MOCK_SENTENCE
    for ch in chunks:
        assert ch.object == "chat.completion.chunk"
        assert ch.model == MODEL, "every chunk's model must be re-stamped"
    with_choices = [ch for ch in chunks if ch.choices]
    assert with_choices[-1].choices[0].finish_reason == "stop"


def test_chat_stream_include_usage_seed_compat(client):
    # The --seed-compat mock sends no usage chunk (like LiteLLM's fake endpoint):
    # the gateway must still produce one when the client asks for it.
    stream = client.chat.completions.create(
        model="compat-endpoint",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text.strip(), "no streamed text"
    usage_chunks = [ch for ch in chunks if ch.usage is not None]
    assert usage_chunks, "no usage chunk although include_usage was set"
    usage = usage_chunks[-1].usage
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert chunks[-1].usage is not None, "the usage chunk must be the last one"
    assert chunks[-1].choices == []


def test_legacy_completions(client):
    resp = client.completions.create(model=MODEL, prompt="Say this is a test")
    assert resp.object == "text_completion"
    assert resp.model == MODEL
    assert resp.choices and isinstance(resp.choices[0].text, str) and resp.choices[0].text.strip()
    assert resp.usage is not None and resp.usage.prompt_tokens > 0


def test_embeddings_sdk_default_base64(client):
    # The SDK asks for base64 when the caller does not choose, and decodes it.
    resp = client.embeddings.create(model="text-embedding", input="hello world")
    assert resp.object == "list"
    assert len(resp.data) == 1
    vec = resp.data[0].embedding
    assert isinstance(vec, list) and len(vec) == 400
    assert all(isinstance(x, float) for x in vec)
    assert resp.model == "text-embedding"


def test_embeddings_float(client):
    resp = client.embeddings.create(
        model="text-embedding", input=["hello", "world"], encoding_format="float"
    )
    assert [d.index for d in resp.data] == [0, 1]
    for d in resp.data:
        assert isinstance(d.embedding, list) and len(d.embedding) == 400
        assert all(isinstance(x, float) for x in d.embedding)


@pytest.mark.parametrize("which", ["v1", "no_v1"])
def test_models_list(which, client, client_no_v1, gateway):
    c = client if which == "v1" else client_no_v1
    ids = [m.id for m in c.models.list()]
    assert sorted(ids) == sorted(gateway.model_names)


def test_models_retrieve(client):
    m = client.models.retrieve(MODEL)
    assert m.id == MODEL
    assert m.object == "model"


def test_litellm_response_headers(client, mock):
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    h = raw.headers
    for name in (
        "x-litellm-call-id",
        "x-litellm-model-id",
        "x-litellm-model-api-base",
        "x-litellm-response-duration-ms",
        "x-litellm-overhead-duration-ms",
        "x-litellm-attempted-retries",
    ):
        assert h.get(name), f"missing header {name}; got {dict(h)}"
    uuid.UUID(h["x-litellm-call-id"])
    assert h["x-litellm-model-api-base"].rstrip("/") == mock.url
    assert float(h["x-litellm-response-duration-ms"]) >= 0
    assert float(h["x-litellm-overhead-duration-ms"]) >= 0
    assert h["x-litellm-attempted-retries"] == "0"
    assert any(k.lower().startswith("llm_provider-") for k in h.keys()), dict(h)
    # Parsing still works through the raw wrapper.
    assert raw.parse().model == MODEL


# --- errors ------------------------------------------------------------------


def test_wrong_key_is_authentication_error(gateway):
    bad = OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-wrong", max_retries=0, timeout=HTTP_TIMEOUT_S)
    with pytest.raises(openai.AuthenticationError) as ei:
        bad.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert_error_envelope(ei.value, 401)


def test_unknown_model_is_bad_request_naming_models(client, gateway):
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert_error_envelope(ei.value, 400)
    message = ei.value.body["message"]
    assert "no-such-model" in message
    for name in gateway.model_names:
        assert name in message, f"available model {name!r} not named in: {message}"


@pytest.mark.parametrize(
    "model, exc_type, status",
    [
        ("err-404", openai.NotFoundError, 404),
        ("err-429", openai.RateLimitError, 429),
        ("err-503", openai.InternalServerError, 503),
        ("err-400", openai.BadRequestError, 400),
        ("garbage", openai.InternalServerError, 500),
        ("dead", openai.InternalServerError, 500),
    ],
)
def test_upstream_error_maps_to_sdk_exception(client, model, exc_type, status):
    with pytest.raises(exc_type) as ei:
        client.chat.completions.create(model=model, messages=MESSAGES)
    assert_error_envelope(ei.value, status)


def test_a_deployment_missing_its_key_says_what_to_set(client):
    with pytest.raises(openai.InternalServerError) as ei:
        client.chat.completions.create(model="replicate-model", messages=MESSAGES)
    assert_error_envelope(ei.value, 500)
    assert "REPLICATE_API_KEY" in ei.value.body["message"]


def test_vertex_without_a_key_says_what_is_missing(client):
    # The seed's Vertex deployment with no vertex_credentials on this machine.
    with pytest.raises(openai.AuthenticationError) as ei:
        client.chat.completions.create(model="gemini-vision", messages=MESSAGES)
    assert_error_envelope(ei.value, 401)
    assert "vertex_credentials" in ei.value.body["message"]


def test_upstream_timeout_is_408(client):
    # Deployment timeout is 1 s; the upstream model sleeps 3 s.
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as ei:
        client.chat.completions.create(model="slow", messages=MESSAGES)
    elapsed = time.monotonic() - started
    assert_error_envelope(ei.value, 408)
    assert elapsed < 2.9, f"gateway waited {elapsed:.1f}s, not the deployment's 1 s timeout"


def test_request_too_large_is_413(client):
    # general_settings.max_request_size_mb is 1.
    big = [{"role": "user", "content": "x" * (1536 * 1024)}]
    with pytest.raises(openai.APIStatusError) as ei:
        client.chat.completions.create(model=MODEL, messages=big)
    assert_error_envelope(ei.value, 413)


def test_mid_stream_reset_raises_while_iterating(client):
    stream = client.chat.completions.create(model="stream-reset", messages=MESSAGES, stream=True)
    got = []
    with pytest.raises(openai.APIError) as ei:
        for ch in stream:
            got.append(ch)
    assert got, "the stream should have delivered some chunks before failing"
    assert ei.value.message


def test_mid_stream_error_does_not_echo_the_provider_key(gateway):
    """An upstream that quotes the key it was sent in an error chunk after the stream started (as
    OpenAI's "Incorrect API key provided" does) has the key replaced before the client sees it."""
    r = requests.post(
        f"{gateway.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json={"model": "stream-echo-key", "messages": MESSAGES, "stream": True},
        timeout=HTTP_TIMEOUT_S,
    )
    assert r.status_code == 200, r.text
    frames = [line for line in r.text.splitlines() if line.startswith("data: ")]
    assert len(frames) >= 2 and '"choices"' in frames[0], r.text
    assert "Incorrect API key provided: [redacted]" in r.text, r.text
    assert ECHOED_KEY not in r.text


# --- raw HTTP routes -------------------------------------------------------------


def test_azure_style_deployment_route(gateway):
    r = requests.post(
        f"{gateway.url}/openai/deployments/{MODEL}/chat/completions",
        params={"api-version": "2024-02-01"},
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json={"messages": MESSAGES},
        timeout=HTTP_TIMEOUT_S,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == MODEL
    assert body["choices"][0]["message"]["content"]


def test_health_liveliness(gateway):
    r = requests.get(f"{gateway.url}/health/liveliness", timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200
    assert r.json() == "I'm alive!"


def test_health_readiness(gateway):
    r = requests.get(f"{gateway.url}/health/readiness", timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200
    assert r.json()["status"] == "healthy"
