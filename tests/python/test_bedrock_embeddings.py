"""Bedrock embeddings through InvokeModel, as LiteLLM makes them, with the official `openai` SDK
against sluice and `sluice mock`: Amazon Titan (one text per SigV4-signed call, so a list is
several calls, their `inputTextTokenCount`s summed), Cohere Embed (every text in one call, its
tokens estimated with cl100k as LiteLLM does), floats and base64, usage and spend at a
deployment's token price, and LiteLLM's `bedrock/invoke/` route marker (stripped from the id;
chat still goes through Converse)."""

import json

import openai
import pytest
import requests

from conftest import MASTER_KEY, render_config, spend_rows, start_gateway, start_mock

PRICE = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}
AWS = {"aws_region_name": "us-east-1", "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
TEXTS = ["hello world", "hi", "a third text"]
# The mock's fake vectors: input i's value j is ((i + j) % 8) / 8 - 0.5; Titan answers one input.
def fake(i: int, n: int) -> list:
    return [((i + j) % 8) / 8 - 0.5 for j in range(n)]


@pytest.fixture(scope="module")
def stack(log_dir):
    mock = start_mock(log_dir, "mock-bedrock-embeddings", "--record")
    base = {"api_base": mock.url, **AWS}
    models = [
        ("titan-v1", {"model": "bedrock/amazon.titan-embed-text-v1", **base, **PRICE}),
        ("titan-v2", {"model": "bedrock/invoke/amazon.titan-embed-text-v2:0", **base}),
        ("titan-image", {"model": "bedrock/amazon.titan-embed-image-v1", **base}),
        ("cohere-en", {"model": "bedrock/cohere.embed-english-v3", **base, **PRICE}),
        ("cohere-multi", {"model": "bedrock/invoke/cohere.embed-multilingual-v3", **base}),
        ("cohere-busy", {"model": "bedrock/cohere.embed/429", **base}),
        ("claude-invoke", {"model": "bedrock/invoke/anthropic.claude-3-haiku-20240307-v1:0", **base}),
    ]
    config = render_config(models, {"master_key": MASTER_KEY}, {"num_retries": 0})
    gw = start_gateway(log_dir, "gateway-bedrock-embeddings", config)
    yield gw, mock
    gw.stop()
    mock.stop()


def client(gw, key=MASTER_KEY):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def last(mock) -> dict:
    return requests.get(mock.url + "/mock/last").json()


def upstream_calls(mock) -> int:
    return requests.get(mock.url + "/mock/stats").json()["requests"]


def test_titan_makes_one_signed_invoke_call_per_text(stack):
    gw, mock = stack
    c = client(gw)
    before = upstream_calls(mock)
    floats = c.embeddings.create(model="titan-v1", input=TEXTS, encoding_format="float")
    assert upstream_calls(mock) - before == len(TEXTS)
    seen = last(mock)
    assert seen["path"] == "/model/amazon.titan-embed-text-v1/invoke"
    assert json.loads(seen["body"]) == {"inputText": "a third text"}
    auth = seen["headers"]["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") and "/us-east-1/bedrock/aws4_request" in auth
    assert floats.object == "list" and floats.model == "titan-v1"
    assert [d.index for d in floats.data] == [0, 1, 2] and floats.data[0].embedding == fake(0, 1536)
    # Titan's inputTextTokenCount (the mock: words) summed over the calls.
    assert (floats.usage.prompt_tokens, floats.usage.total_tokens) == (6, 6)
    # The SDK's default is base64: the same vectors, encoded by the gateway.
    b64 = c.embeddings.create(model="titan-v1", input=TEXTS)
    assert [d.embedding for d in b64.data] == [d.embedding for d in floats.data]


def test_titan_v2_dimensions_and_normalize_behind_the_invoke_marker(stack):
    gw, mock = stack
    r = client(gw).embeddings.create(model="titan-v2", input="hello", dimensions=256, extra_body={"normalize": False})
    seen = last(mock)
    assert seen["path"] == "/model/amazon.titan-embed-text-v2%3A0/invoke"
    assert json.loads(seen["body"]) == {"inputText": "hello", "dimensions": 256, "normalize": False}
    assert len(r.data) == 1 and r.data[0].embedding == fake(0, 256) and r.usage.prompt_tokens == 1
    with pytest.raises(openai.BadRequestError) as e:
        client(gw).embeddings.create(model="titan-v2", input="hello", dimensions=300)
    assert "256, 512, 1024" in e.value.message


def test_titan_image_takes_text_or_a_data_url(stack):
    gw, mock = stack
    r = client(gw).embeddings.create(model="titan-image", input=["a cat", "data:image/png;base64,iVBORw0KGgo="], encoding_format="float")
    assert json.loads(last(mock)["body"]) == {"inputImage": "iVBORw0KGgo="}
    assert len(r.data) == 2 and len(r.data[1].embedding) == 1024 and r.usage.prompt_tokens == 2


def test_cohere_sends_every_text_in_one_call_and_tokens_are_estimated(stack):
    gw, mock = stack
    c = client(gw)
    before = upstream_calls(mock)
    r = c.embeddings.create(model="cohere-en", input=TEXTS, encoding_format="float", extra_body={"input_type": "search_query"})
    assert upstream_calls(mock) - before == 1
    seen = last(mock)
    assert seen["path"] == "/model/cohere.embed-english-v3/invoke"
    assert json.loads(seen["body"]) == {"texts": TEXTS, "input_type": "search_query", "embedding_types": ["float"]}
    assert [d.embedding for d in r.data] == [fake(i, 1024) for i in range(3)]
    # No token counts from Bedrock's Cohere: LiteLLM's cl100k estimate ("hello world" 2, "hi" 1,
    # "a third text" 3).
    assert (r.usage.prompt_tokens, r.usage.total_tokens) == (6, 6)
    b64 = c.embeddings.create(model="cohere-multi", input=TEXTS)
    assert [d.embedding for d in b64.data] == [d.embedding for d in r.data]
    assert json.loads(last(mock)["body"])["input_type"] == "search_document"
    assert last(mock)["path"] == "/model/cohere.embed-multilingual-v3/invoke"


def test_invoke_marker_on_a_chat_model_goes_through_converse(stack):
    gw, mock = stack
    r = client(gw).chat.completions.create(model="claude-invoke", messages=[{"role": "user", "content": "hi"}])
    assert last(mock)["path"] == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    assert r.choices[0].message.content == "Hello from the fake Bedrock endpoint."


def test_errors_in_litellms_classes(stack):
    c = client(stack[0])
    with pytest.raises(openai.RateLimitError) as e:
        c.embeddings.create(model="cohere-busy", input="x")
    assert "BedrockException" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        c.embeddings.create(model="titan-v1", input="x", dimensions=8)
    assert "['dimensions']" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        c.embeddings.create(model="titan-v1", input=[[1, 2, 3]])
    assert "embeds text" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        c.embeddings.create(model="claude-invoke", input="x")
    assert "/chat/completions" in e.value.message


def test_spend_bills_the_usage_at_the_deployments_price(stack):
    gw = stack[0]
    r = requests.post(gw.url + "/key/generate", headers={"Authorization": f"Bearer {MASTER_KEY}"}, json={})
    r.raise_for_status()
    key, token = r.json()["key"], r.json()["token"]
    c = client(gw, key)
    for model in ("titan-v1", "cohere-en"):
        c.embeddings.create(model=model, input=TEXTS)
    rows = spend_rows(gw, token, 2)
    by_group = {r["model_group"]: r for r in rows}
    for model in ("titan-v1", "cohere-en"):
        assert by_group[model]["prompt_tokens"] == 6, by_group[model]
        assert abs(by_group[model]["spend"] - 6 * 0.001) < 1e-9, (model, by_group[model])
