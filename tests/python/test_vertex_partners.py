"""The official `openai` SDK against Vertex AI's partner models through sluice: Claude
(`vertex_ai/claude-…`, Anthropic's Messages API at `:rawPredict`), Llama (`vertex_ai/meta/…`, the
OpenAI-compatible `endpoints/openapi`) and Mistral (`vertex_ai/mistral-…`, its publisher's
`:rawPredict`), each behind the Google token `sluice mock` issues for the test service account."""

import json

import openai
import pytest

from conftest import MASTER_KEY, render_config, start_gateway, start_mock, vertex_key_at
from test_providers import TEST_KEY, TOOLS

MODELS = {
    "claude": "vertex_ai/claude-3-5-sonnet@20240620",
    "llama": "vertex_ai/meta/llama-3.1-405b-instruct-maas",
    "mistral": "vertex_ai/mistral-large@2407",
}


@pytest.fixture(scope="module")
def stack(log_dir):
    # The mock accepts only bearer tokens its /token endpoint issued for this key.
    mock = start_mock(log_dir, "mock-vertex-partners", "--vertex-credentials", str(TEST_KEY))
    key_path = vertex_key_at(mock, log_dir, "vertex-partner-key.json")
    models = [
        (
            name,
            {
                "model": model,
                "api_base": mock.url,
                "vertex_project": "p",
                "vertex_location": "us-east5",
                "vertex_credentials": str(key_path),
            },
        )
        for name, model in MODELS.items()
    ]
    models.append(
        (
            "claude-busy",
            {"model": "vertex_ai/claude/error-429", "api_base": mock.url, "vertex_project": "p",
             "vertex_credentials": str(key_path)},
        )
    )
    config = render_config(models, {"master_key": MASTER_KEY}, {"num_retries": 0})
    gw = start_gateway(log_dir, "gateway-vertex-partners", config)
    yield gw
    gw.stop()
    mock.stop()


@pytest.fixture
def oa(stack):
    return openai.OpenAI(base_url=stack.url + "/v1", api_key=MASTER_KEY, max_retries=0)


@pytest.mark.parametrize("model", list(MODELS))
def test_chat(oa, model):
    r = oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert r.model == model
    assert r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens > 0


@pytest.mark.parametrize("model", list(MODELS))
def test_stream(oa, model):
    chunks = list(
        oa.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
        )
    )
    assert all(c.model == model for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_claude_tool_call_round_trip(oa):
    r = oa.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "please use the tool"}], tools=TOOLS
    )
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"x": 1}
    r2 = oa.chat.completions.create(
        model="claude",
        tools=TOOLS,
        messages=[
            {"role": "user", "content": "please use the tool"},
            r.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert r2.choices[0].message.content


def test_claude_streamed_tool_call(oa):
    chunks = list(
        oa.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "please use the tool"}], tools=TOOLS, stream=True
        )
    )
    calls = [tc for c in chunks if c.choices and c.choices[0].delta.tool_calls for tc in c.choices[0].delta.tool_calls]
    assert [tc.function.name for tc in calls if tc.function and tc.function.name] == ["get_weather"]
    assert json.loads("".join(tc.function.arguments or "" for tc in calls)) == {"x": 1}


def test_upstream_rate_limit_is_the_sdks_rate_limit_error(oa):
    with pytest.raises(openai.RateLimitError) as e:
        oa.chat.completions.create(model="claude-busy", messages=[{"role": "user", "content": "hi"}])
    assert "litellm.RateLimitError: VertexAIException" in str(e.value)
