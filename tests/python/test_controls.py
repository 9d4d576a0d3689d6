"""LiteLLM's per-request controls and `/health`, through the official `openai` SDK and `requests`.

A client passes the gateway's own fields with `extra_body` (`fallbacks`, `num_retries`,
`timeout`, `mock_response`, `mock_testing_fallbacks`, ...); the headers say what the router did.
"""

from __future__ import annotations

import openai
import pytest
import requests
from openai import OpenAI

from conftest import MASTER_KEY, start_gateway

MESSAGES = [{"role": "user", "content": "Say hello"}]
SECRET = "sk-python-health-secret"


@pytest.fixture(scope="module")
def controls_gateway(log_dir, mock):
    base = mock.url + "/"
    cfg = f"""
model_list:
  - model_name: primary
    litellm_params: {{model: openai/error-503, api_base: "{base}", api_key: {SECRET}}}
  - model_name: backup
    litellm_params: {{model: openai/any, api_base: "{base}", api_key: {SECRET}}}
  - model_name: slow
    litellm_params: {{model: openai/sleep-3000, api_base: "{base}", api_key: {SECRET}}}
router_settings:
  num_retries: 0
  retry_after: 0
general_settings:
  master_key: {MASTER_KEY}
"""
    p = start_gateway(log_dir, "controls-gateway", cfg)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def client(controls_gateway) -> OpenAI:
    c = OpenAI(base_url=f"{controls_gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=20)
    yield c
    c.close()


def test_body_fallbacks_retries_and_mock_testing_fallbacks(client):
    raw = client.chat.completions.with_raw_response.create(
        model="primary",
        messages=MESSAGES,
        extra_body={"fallbacks": ["backup"], "num_retries": 1, "mock_testing_fallbacks": True},
    )
    resp = raw.parse()
    assert resp.choices[0].message.content
    assert raw.headers["x-litellm-attempted-fallbacks"] == "1"
    assert raw.headers["x-litellm-max-retries"] == "1"


def test_request_fallbacks_take_over_from_a_failing_model(client):
    raw = client.chat.completions.with_raw_response.create(
        model="primary", messages=MESSAGES, extra_body={"fallbacks": [{"model": "backup", "messages": MESSAGES}]}
    )
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-litellm-attempted-fallbacks"] == "1"


def test_without_fallbacks_the_upstream_error_is_the_answer(client):
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="primary", messages=MESSAGES, extra_body={"num_retries": 0})
    assert e.value.status_code == 503


def test_unknown_fallback_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="primary", messages=MESSAGES, extra_body={"fallbacks": ["nope"]})
    assert "nope" in e.value.body["message"]
    assert e.value.body["param"] == "fallbacks"


def test_mock_response_streamed_and_not(client):
    resp = client.chat.completions.create(model="backup", messages=MESSAGES, extra_body={"mock_response": "mocked!"})
    assert resp.choices[0].message.content == "mocked!"
    assert resp.usage.total_tokens == 30
    stream = client.chat.completions.create(
        model="backup", messages=MESSAGES, stream=True, extra_body={"mock_response": "one two"}
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "one two"


def test_mock_rate_limit_and_timeouts(client):
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="backup", messages=MESSAGES, extra_body={"mock_testing_rate_limit_error": True}
        )
    # The SDK's own `timeout` is the client's; the gateway's per-attempt timeout rides in the body.
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model="slow", messages=MESSAGES, extra_body={"timeout": 0.3})
    assert e.value.status_code == 408
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(
            model="backup", messages=MESSAGES, extra_headers={"x-litellm-timeout": "0.2"}, extra_body={"mock_timeout": True}
        )
    assert e.value.status_code == 408


def test_health_reports_each_deployment_without_secrets(controls_gateway):
    r = requests.get(
        f"{controls_gateway.url}/health?model=backup", headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=20
    )
    assert r.status_code == 200, r.text
    assert SECRET not in r.text
    body = r.json()
    assert body["healthy_count"] == 1 and body["unhealthy_count"] == 0, body
    assert body["healthy_endpoints"][0]["model"] == "openai/any"
    r = requests.get(f"{controls_gateway.url}/health", headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=30)
    body = r.json()
    assert SECRET not in r.text
    assert {e["model"] for e in body["unhealthy_endpoints"]} >= {"openai/error-503"}, body
    assert all("error" in e for e in body["unhealthy_endpoints"])
    assert requests.get(f"{controls_gateway.url}/health", timeout=10).status_code == 401
