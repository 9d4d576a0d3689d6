"""The official `openai` SDK against Ollama deployments through sluice: `ollama/` (Ollama's
`/api/generate`, the chat flattened into one prompt) and `ollama_chat/` (`/api/chat`) — chat,
NDJSON streams translated to OpenAI chunks, tool calls, embeddings through `/api/embed` (the SDK's
default base64 and plain floats), LiteLLM's error classes, and spend logged and key limits
applied as for any chat. The upstream is `sluice mock` speaking Ollama's native API."""

import json

import openai
import pytest
import requests

from conftest import MASTER_KEY, render_config, spend_rows, start_gateway, start_mock

PRICE = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}
TEXT = "Hello from the fake Ollama."
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
    mock = start_mock(log_dir, "mock-ollama")
    models = [
        ("gen", {"model": "ollama/llama3", "api_base": mock.url, **PRICE}),
        ("chat", {"model": "ollama_chat/llama3.1", "api_base": mock.url + "/", **PRICE}),
        ("embed", {"model": "ollama/nomic-embed-text", "api_base": mock.url, **PRICE}),
        ("missing", {"model": "ollama_chat/missing", "api_base": mock.url}),
        ("broken", {"model": "ollama_chat/stream-garbage", "api_base": mock.url}),
    ]
    gw = start_gateway(log_dir, "gateway-ollama", render_config(models, {"master_key": MASTER_KEY}))
    yield gw, mock
    gw.stop()
    mock.stop()


def client(gw, key=MASTER_KEY):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


@pytest.mark.parametrize("model", ["gen", "chat"])
def test_chat(stack, model):
    r = client(stack[0]).chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert r.model == model
    assert r.choices[0].message.content == TEXT
    assert r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (11, 4)


@pytest.mark.parametrize("model", ["gen", "chat"])
def test_stream(stack, model):
    chunks = list(
        client(stack[0]).chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 15


@pytest.mark.parametrize("model", ["gen", "chat"])
@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_and_its_result(stack, model, stream):
    c = client(stack[0])
    asked = [{"role": "user", "content": "please use the tool"}]
    if stream:
        chunks = list(c.chat.completions.create(model=model, messages=asked, tools=TOOLS, stream=True))
        calls = [t for ch in chunks if ch.choices for t in (ch.choices[0].delta.tool_calls or [])]
        assert len(calls) == 1 and calls[0].index == 0 and calls[0].id
        name, arguments, call_id = calls[0].function.name, calls[0].function.arguments, calls[0].id
        assert chunks[-1].choices[0].finish_reason == "tool_calls"
        message = {
            "role": "assistant",
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}],
        }
    else:
        r = c.chat.completions.create(model=model, messages=asked, tools=TOOLS)
        assert r.choices[0].finish_reason == "tool_calls"
        call = r.choices[0].message.tool_calls[0]
        name, arguments, call_id = call.function.name, call.function.arguments, call.id
        message = r.choices[0].message.model_dump(exclude_none=True)
    assert name == "get_weather"
    assert json.loads(arguments) == {"x": 1}
    # The result goes back in the next turn, and the model answers in text.
    r2 = c.chat.completions.create(
        model=model, tools=TOOLS, messages=[*asked, message, {"role": "tool", "tool_call_id": call_id, "content": "sunny"}]
    )
    assert r2.choices[0].message.content


def test_embeddings_as_the_sdk_asks_base64_or_floats(stack):
    c = client(stack[0])
    # The SDK asks for base64 by default and decodes it itself.
    r = c.embeddings.create(model="embed", input=["one two", "three"])
    assert [d.index for d in r.data] == [0, 1]
    assert len(r.data[0].embedding) == 8 and r.data[0].embedding[0] == -0.5
    assert r.usage.prompt_tokens == 3
    r = c.embeddings.create(model="embed", input="x", encoding_format="float", dimensions=3)
    assert r.data[0].embedding == [-0.5, -0.375, -0.25]
    raw = requests.post(
        stack[0].url + "/v1/embeddings",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json={"model": "embed", "input": "x", "encoding_format": "base64"},
    ).json()
    assert isinstance(raw["data"][0]["embedding"], str)
    with pytest.raises(openai.BadRequestError) as e:
        c.embeddings.create(model="embed", input=[[1, 2, 3]], encoding_format="float")
    assert "token ids" in e.value.message


def test_errors_in_litellms_classes(stack):
    c = client(stack[0])
    with pytest.raises(openai.NotFoundError) as e:
        c.chat.completions.create(model="missing", messages=[{"role": "user", "content": "hi"}])
    assert "OllamaException" in e.value.message and "not found" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}], logit_bias={"1": 2})
    assert "logit_bias" in e.value.message
    # An error line mid-stream ends the stream with an error event.
    with pytest.raises(openai.APIError) as e:
        list(c.chat.completions.create(model="broken", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "model runner crashed" in str(e.value)
    # A text completion is made through the chat (LiteLLM's `text_completion`), not refused.
    done = c.completions.create(model="chat", prompt="hi")
    assert done.object == "text_completion" and done.choices[0].text


def test_spend_is_logged_and_key_limits_apply(stack):
    gw = stack[0]
    r = requests.post(
        gw.url + "/key/generate", headers={"Authorization": f"Bearer {MASTER_KEY}"}, json={"rpm_limit": 3}
    )
    r.raise_for_status()
    key, token = r.json()["key"], r.json()["token"]
    c = client(gw, key)
    c.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
    list(
        c.chat.completions.create(
            model="gen", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
        )
    )
    c.embeddings.create(model="embed", input="hello")
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
    rows = spend_rows(gw, token, 3)
    assert sorted(r["call_type"] for r in rows) == ["acompletion", "acompletion", "aembedding"], rows
    chat = [r for r in rows if r["model_group"] == "chat"][0]
    assert chat["prompt_tokens"] == 11 and chat["completion_tokens"] == 4
    assert abs(chat["spend"] - (11 * 0.001 + 4 * 0.002)) < 1e-9
    assert all(r["spend"] > 0 for r in rows), rows
