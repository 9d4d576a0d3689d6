"""Provider pass-through with the providers' own SDKs: `anthropic` at /anthropic, `openai` at
/openai, `google-genai` at /gemini and `boto3` (bedrock-runtime) at /bedrock, each holding a sluice
virtual key. The upstream is `sluice mock --provider-key --record`: it answers 401 unless the
provider's credential arrived, and shows the last request as it came, so each test shows the body
arrived untouched, the provider's credential (never the sluice key) was used, and the usage the
provider reported was charged to the key."""

import json
import time
import uuid

import anthropic
import boto3
import openai
import pytest
import requests
from botocore.config import Config
from google import genai
from google.genai import types

from conftest import MASTER_KEY, start_gateway, start_mock

PROVIDER_KEY = "prov-secret-" + uuid.uuid4().hex[:8]
ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def stack(log_dir):
    mock = start_mock(log_dir, "mock-passthrough", "--provider-key", PROVIDER_KEY, "--record", "--no-default-rate-limit")
    db = log_dir / f"passthrough-{uuid.uuid4().hex[:8]}.db"
    env = {
        "OPENAI_API_BASE": mock.url,
        "OPENAI_API_KEY": PROVIDER_KEY,
        "ANTHROPIC_API_BASE": mock.url,
        "ANTHROPIC_API_KEY": PROVIDER_KEY,
        "GEMINI_API_BASE": mock.url,
        "GEMINI_API_KEY": PROVIDER_KEY,
        "AWS_BEDROCK_RUNTIME_ENDPOINT": mock.url,
        "AWS_REGION_NAME": "us-east-1",
        "AWS_ACCESS_KEY_ID": PROVIDER_KEY,
        "AWS_SECRET_ACCESS_KEY": "aws-secret-never-sent",
    }
    cfg = "\n".join(
        [
            "general_settings:",
            f'  master_key: "{MASTER_KEY}"',
            f'  database_url: "sqlite://{db}"',
            "environment_variables:",
            *[f'  {k}: "{v}"' for k, v in env.items()],
        ]
    )
    gw = start_gateway(log_dir, "gateway-passthrough", cfg + "\n")
    yield gw, mock
    gw.stop()
    mock.stop()


def new_key(gw) -> str:
    r = requests.post(gw.url + "/key/generate", headers=ADMIN, json={}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["key"]


def spend(gw, key: str, above: float = 0.0) -> float:
    """The key's spend once it is above `above` (charges land as answers end)."""
    value = 0.0
    for _ in range(50):
        r = requests.get(gw.url + "/key/info", params={"key": key}, headers=ADMIN, timeout=10)
        assert r.status_code == 200, r.text
        value = r.json()["info"]["spend"] or 0.0
        if value > above:
            break
        time.sleep(0.1)
    return value


def last(mock) -> dict:
    r = requests.get(mock.url + "/mock/last", timeout=10)
    assert r.status_code == 200
    return r.json()


def assert_provider_credential(seen: dict, key: str, header: str, value: str) -> None:
    assert seen["headers"].get(header) == value, seen["headers"]
    dumped = json.dumps(seen)
    assert key not in dumped, "the sluice key went upstream"
    assert MASTER_KEY not in dumped


def test_anthropic_sdk(stack):
    gw, mock = stack
    key = new_key(gw)
    client = anthropic.Anthropic(api_key=key, base_url=gw.url + "/anthropic", max_retries=0)
    msg = client.messages.create(
        model="claude-3-5-sonnet-20241022",
        max_tokens=32,
        system="be brief",
        messages=[{"role": "user", "content": "hello there"}],
    )
    assert msg.type == "message" and msg.content[0].type == "text"
    assert msg.usage.input_tokens > 0
    seen = last(mock)
    assert seen["path"] == "/v1/messages"
    assert json.loads(seen["body"]) == {
        "model": "claude-3-5-sonnet-20241022",
        "max_tokens": 32,
        "system": "be brief",
        "messages": [{"role": "user", "content": "hello there"}],
    }
    assert_provider_credential(seen, key, "x-api-key", PROVIDER_KEY)
    first = spend(gw, key)
    assert first > 0

    with client.messages.stream(
        model="claude-3-5-sonnet-20241022", max_tokens=32, messages=[{"role": "user", "content": "stream it"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.usage.output_tokens > 0
    seen = last(mock)
    assert json.loads(seen["body"])["stream"] is True
    assert_provider_credential(seen, key, "x-api-key", PROVIDER_KEY)
    assert spend(gw, key, first) > first, "the stream's usage was charged"

    # Token counting reaches Anthropic's count_tokens through the same route.
    count = client.messages.count_tokens(model="claude-3-5-sonnet-20241022", messages=[{"role": "user", "content": "count me"}])
    assert count.input_tokens > 0
    seen = last(mock)
    assert seen["path"] == "/v1/messages/count_tokens"
    assert_provider_credential(seen, key, "x-api-key", PROVIDER_KEY)


def test_openai_sdk(stack):
    gw, mock = stack
    key = new_key(gw)
    client = openai.OpenAI(api_key=key, base_url=gw.url + "/openai", max_retries=0)
    r = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], temperature=0.25, user="u-1"
    )
    assert r.choices[0].message.content
    assert r.usage.prompt_tokens > 0
    seen = last(mock)
    assert seen["path"] == "/chat/completions"
    assert json.loads(seen["body"]) == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.25,
        "user": "u-1",
    }
    assert_provider_credential(seen, key, "authorization", f"Bearer {PROVIDER_KEY}")
    first = spend(gw, key)
    assert first > 0

    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage is not None
    assert spend(gw, key, first) > first


def test_google_genai_sdk(stack):
    gw, mock = stack
    key = new_key(gw)
    client = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=gw.url + "/gemini"))
    r = client.models.generate_content(model="gemini-2.0-flash", contents="hello gemini")
    assert r.text
    seen = last(mock)
    assert seen["path"].endswith("/models/gemini-2.0-flash:generateContent"), seen["path"]
    assert json.loads(seen["body"])["contents"][0]["parts"][0]["text"] == "hello gemini"
    assert_provider_credential(seen, key, "x-goog-api-key", PROVIDER_KEY)
    first = spend(gw, key)
    assert first > 0

    text = "".join(c.text or "" for c in client.models.generate_content_stream(model="gemini-2.0-flash", contents="more"))
    assert text
    seen = last(mock)
    assert seen["path"].endswith(":streamGenerateContent") and "alt=sse" in seen["query"]
    assert_provider_credential(seen, key, "x-goog-api-key", PROVIDER_KEY)
    assert spend(gw, key, first) > first


def bedrock_client(gw, access_key: str, header_key: str | None):
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=gw.url + "/bedrock",
        aws_access_key_id=access_key,
        aws_secret_access_key="dummy-secret",
        config=Config(retries={"max_attempts": 1}),
    )
    if header_key:
        # LiteLLM's documented way: the sluice key in a header of its own, boto3 signing with
        # dummy credentials.
        def add_key(request, **_):
            request.headers["x-litellm-api-key"] = header_key

        client.meta.events.register("before-send.bedrock-runtime.*", add_key)
    return client


def test_boto3_bedrock_runtime(stack):
    gw, mock = stack
    key = new_key(gw)
    model = "anthropic.claude-3-haiku-20240307-v1:0"
    client = bedrock_client(gw, "AKIDDUMMY", key)
    r = client.converse(
        modelId=model,
        messages=[{"role": "user", "content": [{"text": "hello bedrock"}]}],
        inferenceConfig={"maxTokens": 32},
    )
    assert r["output"]["message"]["content"][0]["text"]
    assert r["usage"]["inputTokens"] > 0
    seen = last(mock)
    assert json.loads(seen["body"]) == {
        "messages": [{"role": "user", "content": [{"text": "hello bedrock"}]}],
        "inferenceConfig": {"maxTokens": 32},
    }
    auth = seen["headers"]["authorization"]
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={PROVIDER_KEY}/"), auth
    assert "AKIDDUMMY" not in json.dumps(seen) and key not in json.dumps(seen)
    first = spend(gw, key)
    assert first > 0

    # The sluice key as boto3's access key id: no header needed. The stream's event-stream
    # framing reaches boto3 untouched.
    client = bedrock_client(gw, key, None)
    r = client.converse_stream(modelId=model, messages=[{"role": "user", "content": [{"text": "stream"}]}])
    events = list(r["stream"])
    assert any("contentBlockDelta" in e for e in events)
    assert any("metadata" in e and e["metadata"]["usage"]["outputTokens"] > 0 for e in events)
    assert spend(gw, key, first) > first


def test_refusals_keep_litellms_envelopes(stack):
    gw, mock = stack
    client = anthropic.Anthropic(api_key="sk-not-a-real-key", base_url=gw.url + "/anthropic", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as e:
        client.messages.create(model="claude-3-5-sonnet-20241022", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert "Authentication Error" in str(e.value)
    client = openai.OpenAI(api_key="sk-not-a-real-key", base_url=gw.url + "/openai", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
