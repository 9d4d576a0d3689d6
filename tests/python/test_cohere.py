"""The official `openai` SDK against Cohere deployments through sluice: `cohere_chat/` and
`cohere/` chat through Cohere's v2 `/v2/chat` (typed SSE events translated to OpenAI chunks),
tool calls, embeddings through `/v2/embed` with `input_type`, LiteLLM's error classes, and spend
logged as for any chat; and LiteLLM's `/rerank`, `/v1/rerank`, `/v2/rerank` with plain
`requests`, limited and logged like chat. The upstream is `sluice mock` speaking Cohere's v2 API."""

import json

import openai
import pytest
import requests

from conftest import MASTER_KEY, render_config, spend_rows, start_gateway, start_mock

PRICE = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}
TEXT = "Hello from the fake Cohere."
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


@pytest.fixture(scope="module")
def gw(log_dir):
    mock = start_mock(log_dir, "mock-cohere")
    models = [
        ("chat", {"model": "cohere_chat/command-r-plus", "api_base": mock.url, "api_key": "co-test", **PRICE}),
        ("legacy", {"model": "cohere/command-r", "api_base": mock.url + "/", "api_key": "co-test"}),
        ("embed", {"model": "cohere/embed-english-v3.0", "api_base": mock.url, "api_key": "co-test", **PRICE}),
        ("limited", {"model": "cohere_chat/429", "api_base": mock.url, "api_key": "co-test"}),
        ("chat-only", {"model": "ollama_chat/llama3", "api_base": mock.url}),
        ("rerank", {"model": "cohere/rerank-v3.5", "api_base": mock.url, "api_key": "co-test"}),
        ("vllm-rerank", {"model": "hosted_vllm/BAAI/bge-reranker-v2-m3", "api_base": mock.url + "/v1"}),
        ("rerank-own-price", {"model": "cohere/rerank-v3.5", "api_base": mock.url, "api_key": "co-test", "input_cost_per_query": 0.05}),
    ]
    g = start_gateway(log_dir, "gateway-cohere", render_config(models, {"master_key": MASTER_KEY}))
    yield g
    g.stop()
    mock.stop()


def client(gw, key=MASTER_KEY):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


@pytest.mark.parametrize("model", ["chat", "legacy"])
def test_chat_and_stream(gw, model):
    c = client(gw)
    r = c.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], top_p=0.5, stop="END")
    assert r.choices[0].message.content == TEXT
    assert r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (13, 5)
    chunks = list(
        c.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == TEXT
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage.total_tokens == 18


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_and_its_result(gw, stream):
    c = client(gw)
    asked = [{"role": "user", "content": "please use the tool"}]
    if stream:
        chunks = list(c.chat.completions.create(model="chat", messages=asked, tools=TOOLS, stream=True))
        calls = [t for ch in chunks if ch.choices for t in (ch.choices[0].delta.tool_calls or [])]
        call_id = calls[0].id
        name = calls[0].function.name
        arguments = "".join(t.function.arguments or "" for t in calls)
        assert chunks[-1].choices[0].finish_reason == "tool_calls"
        message = {
            "role": "assistant",
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}],
        }
    else:
        r = c.chat.completions.create(model="chat", messages=asked, tools=TOOLS)
        assert r.choices[0].finish_reason == "tool_calls"
        call = r.choices[0].message.tool_calls[0]
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
        message = r.choices[0].message.model_dump(exclude_none=True)
    assert name == "get_weather" and json.loads(arguments) == {"x": 1} and call_id
    r2 = c.chat.completions.create(
        model="chat", tools=TOOLS, messages=[*asked, message, {"role": "tool", "tool_call_id": call_id, "content": "sunny"}]
    )
    assert r2.choices[0].message.content == TEXT


def test_embeddings(gw):
    c = client(gw)
    r = c.embeddings.create(model="embed", input=["one two", "three"])
    assert len(r.data) == 2 and len(r.data[0].embedding) == 8 and r.data[1].embedding[0] == -0.375
    assert r.usage.prompt_tokens == 3
    r = c.embeddings.create(model="embed", input="q", encoding_format="float", dimensions=2, extra_body={"input_type": "search_query"})
    assert r.data[0].embedding == [-0.5, -0.375]


def test_errors_in_litellms_classes(gw):
    c = client(gw)
    with pytest.raises(openai.RateLimitError) as e:
        c.chat.completions.create(model="limited", messages=[{"role": "user", "content": "hi"}])
    assert "CohereException" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}], logit_bias={"1": 2})
    assert "logit_bias" in e.value.message


def test_spend_is_logged(gw):
    r = requests.post(gw.url + "/key/generate", headers={"Authorization": f"Bearer {MASTER_KEY}"}, json={})
    key, token = r.json()["key"], r.json()["token"]
    c = client(gw, key)
    c.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
    c.embeddings.create(model="embed", input="hello")
    rows = spend_rows(gw, token, 2)
    assert sorted(r["call_type"] for r in rows) == ["acompletion", "aembedding"], rows
    chat = [r for r in rows if r["call_type"] == "acompletion"][0]
    assert abs(chat["spend"] - (13 * 0.001 + 5 * 0.002)) < 1e-9


DOCS = ["the blue dog sleeps", "a red cat purrs", "red cars are fast"]


def rerank(gw, path, body, key=MASTER_KEY):
    return requests.post(gw.url + path, headers={"Authorization": f"Bearer {key}"}, json=body)


@pytest.mark.parametrize("path", ["/rerank", "/v1/rerank", "/v2/rerank"])
def test_rerank_routes_answer_in_cohere_shape(gw, path):
    r = rerank(gw, path, {"model": "rerank", "query": "red cat", "documents": DOCS, "top_n": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["index"] for x in body["results"]] == [1, 2]
    assert body["results"][0]["document"] == {"text": "a red cat purrs"}
    assert body["results"][0]["relevance_score"] > body["results"][1]["relevance_score"]
    assert body["meta"]["billed_units"]["search_units"] == 1
    r = rerank(gw, path, {"model": "rerank", "query": "red cat", "documents": DOCS, "return_documents": False})
    assert len(r.json()["results"]) == 3 and "document" not in r.json()["results"][0]


def test_rerank_on_an_openai_compatible_server_is_forwarded(gw):
    r = rerank(gw, "/v1/rerank", {"model": "vllm-rerank", "query": "red cat", "documents": DOCS, "top_n": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["results"] == [{"index": 1, "document": {"text": "a red cat purrs"}, "relevance_score": 0.75}]
    assert body["usage"]["total_tokens"] == 12
    # A provider without rerank says so.
    r = rerank(gw, "/rerank", {"model": "chat-only", "query": "x", "documents": DOCS})
    message = r.json()["error"]["message"]
    assert r.status_code == 400 and "use /chat/completions or /completions or /embeddings with this model group" in message, r.text


def test_rerank_bad_input_and_providers_without_it(gw):
    r = rerank(gw, "/rerank", {"model": "rerank", "documents": DOCS})
    assert r.status_code == 400 and r.json()["error"]["param"] == "query", r.text
    r = rerank(gw, "/rerank", {"model": "rerank", "query": "x", "documents": []})
    assert r.status_code == 400 and r.json()["error"]["param"] == "documents", r.text
    r = rerank(gw, "/rerank", {"query": "x", "documents": DOCS})
    assert r.status_code == 400, r.text
    r = rerank(gw, "/rerank", {"model": "nope", "query": "x", "documents": DOCS})
    assert r.status_code in (400, 404), r.text
    r = rerank(gw, "/v1/rerank", {"model": "rerank", "query": "x", "documents": DOCS}, key="sk-wrong")
    assert r.status_code == 401, r.text


def test_rerank_is_limited_and_logged_like_chat(gw):
    r = requests.post(gw.url + "/key/generate", headers={"Authorization": f"Bearer {MASTER_KEY}"}, json={"rpm_limit": 2})
    key, token = r.json()["key"], r.json()["token"]
    for _ in range(2):
        r = rerank(gw, "/rerank", {"model": "rerank", "query": "red", "documents": DOCS}, key=key)
        assert r.status_code == 200, r.text
    r = rerank(gw, "/rerank", {"model": "rerank", "query": "red", "documents": DOCS}, key=key)
    assert r.status_code == 429, r.text
    rows = spend_rows(gw, token, 2)
    assert [r["call_type"] for r in rows] == ["arerank", "arerank"], rows
    assert all(r["model_group"] == "rerank" for r in rows), rows


def test_rerank_is_billed_per_search_unit(gw):
    """As LiteLLM bills it: Cohere's `meta.billed_units.search_units` times the model's
    `input_cost_per_query` (LiteLLM's map: $0.002 for rerank-v3.5; a deployment's own wins)."""
    r = requests.post(gw.url + "/key/generate", headers={"Authorization": f"Bearer {MASTER_KEY}"}, json={})
    key, token = r.json()["key"], r.json()["token"]
    r = rerank(gw, "/rerank", {"model": "rerank", "query": "red cat", "documents": DOCS}, key=key)
    assert r.status_code == 200 and r.json()["meta"]["billed_units"]["search_units"] == 1, r.text
    assert abs(float(r.headers["x-litellm-response-cost"]) - 0.002) < 1e-12, r.headers
    # 150 documents: two search units (one per 100 documents), at the deployment's own price.
    many = [f"document {i} about a red cat" for i in range(150)]
    r = rerank(gw, "/v1/rerank", {"model": "rerank-own-price", "query": "red cat", "documents": many, "top_n": 3}, key=key)
    assert r.status_code == 200 and r.json()["meta"]["billed_units"]["search_units"] == 2, r.text
    assert abs(float(r.headers["x-litellm-response-cost"]) - 0.1) < 1e-12, r.headers
    rows = spend_rows(gw, token, 2)
    assert sorted(round(r["spend"], 9) for r in rows) == [0.002, 0.1], rows
    info = requests.get(gw.url + "/key/info", params={"key": key}, headers={"Authorization": f"Bearer {MASTER_KEY}"}).json()
    assert abs(info["info"]["spend"] - 0.102) < 1e-9, info
