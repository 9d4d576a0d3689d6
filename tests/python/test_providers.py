"""Real SDKs against translated providers: the official `openai` SDK against Vertex/Gemini and
Anthropic deployments, and the official `anthropic` SDK against sluice's /v1/messages front door,
streamed and not, tool calls included. Every upstream is `sluice mock`."""

import json
from pathlib import Path

import anthropic
import openai
import pytest

from conftest import MASTER_KEY, render_config, start_gateway, start_mock, vertex_key_at

REPO = Path(__file__).resolve().parents[2]
TEST_KEY = REPO / "crates" / "providers" / "tests" / "fixtures" / "vertex-test-sa.json"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


@pytest.fixture(scope="module")
def stack(log_dir):
    mock = start_mock(log_dir, "mock-providers", "--vertex-credentials", str(TEST_KEY))
    key_path = vertex_key_at(mock, log_dir, "vertex-key.json")
    models = [
        (
            "gemini",
            {
                "model": "vertex_ai/gemini-1.5-pro",
                "api_base": mock.url
                + "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-1.5-pro",
                "vertex_project": "p",
                "vertex_location": "us-central1",
                "vertex_credentials": str(key_path),
            },
        ),
        ("claude", {"model": "anthropic/claude-3-5-sonnet-20241022", "api_base": mock.url, "api_key": "sk-ant-test"}),
        ("gpt", {"model": "openai/any", "api_base": mock.url + "/", "api_key": "test"}),
        (
            "bedrock",
            {
                "model": "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
                "api_base": mock.url,
                "aws_region_name": "us-east-1",
                "aws_access_key_id": "AKIDEXAMPLE",
                "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            },
        ),
    ]
    gw = start_gateway(log_dir, "gateway-providers", render_config(models, {"master_key": MASTER_KEY}))
    yield gw
    gw.stop()
    mock.stop()


@pytest.fixture
def oa(stack):
    return openai.OpenAI(base_url=stack.url + "/v1", api_key=MASTER_KEY, max_retries=0)


@pytest.fixture
def an(stack):
    return anthropic.Anthropic(base_url=stack.url, api_key=MASTER_KEY, max_retries=0)


@pytest.mark.parametrize("model", ["gemini", "claude", "bedrock"])
def test_openai_sdk_chat(oa, model):
    r = oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert r.model == model
    assert r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens > 0


@pytest.mark.parametrize("model", ["gemini", "claude", "bedrock"])
def test_openai_sdk_stream(oa, model):
    chunks = list(
        oa.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


@pytest.mark.parametrize("model", ["claude", "bedrock", "gemini"])
def test_openai_sdk_tool_call(oa, model):
    r = oa.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "please use the tool"}], tools=TOOLS
    )
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"x": 1}
    # The tool result goes back in the next turn.
    r2 = oa.chat.completions.create(
        model=model,
        tools=TOOLS,
        messages=[
            {"role": "user", "content": "please use the tool"},
            r.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert r2.choices[0].message.content


@pytest.mark.parametrize("model", ["claude", "gemini", "bedrock"])
def test_openai_sdk_streamed_tool_call(oa, model):
    chunks = list(
        oa.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "please use the tool"}], tools=TOOLS, stream=True
        )
    )
    args = "".join(
        (tc.function.arguments or "")
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
        for tc in c.choices[0].delta.tool_calls
    )
    names = [
        tc.function.name
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
        for tc in c.choices[0].delta.tool_calls
        if tc.function and tc.function.name
    ]
    assert names == ["get_weather"]
    assert json.loads(args) == {"x": 1}
    assert any(c.choices and c.choices[0].finish_reason == "tool_calls" for c in chunks)


@pytest.mark.parametrize("model", ["gpt", "claude", "gemini"])
def test_anthropic_sdk_messages(an, model):
    m = an.messages.create(model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert m.type == "message" and m.role == "assistant"
    assert m.content[0].type == "text" and m.content[0].text
    assert m.stop_reason == "end_turn"
    assert m.usage.output_tokens > 0


@pytest.mark.parametrize("model", ["gpt", "claude"])
def test_anthropic_sdk_stream(an, model):
    with an.messages.stream(model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text
    assert final.stop_reason == "end_turn"


def test_anthropic_sdk_tool_use(an):
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": TOOLS[0]["function"]["parameters"]}]
    m = an.messages.create(
        model="claude", max_tokens=64, tools=tools, messages=[{"role": "user", "content": "please use the tool"}]
    )
    block = next(b for b in m.content if b.type == "tool_use")
    assert block.name == "get_weather" and block.input == {"x": 1}
    assert m.stop_reason == "tool_use"


def test_anthropic_sdk_errors(an):
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=an.base_url, api_key="sk-wrong", max_retries=0).messages.create(
            model="gpt", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(anthropic.BadRequestError):
        an.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
