"""The official `openai` SDK's embeddings through sluice to the providers whose embedding APIs
are not OpenAI's, translated as LiteLLM translates them: `huggingface/` (feature extraction on
the router's pipeline or a TEI server), `watsonx/` (`/ml/v1/text/embeddings` behind an IBM Cloud
IAM token), `cloudflare/` (Workers AI's `@cf/baai/` models) and `sagemaker/` (a Hugging Face
embedding container, SigV4-signed). Each is checked for what reaches the provider, the vectors
the client gets (floats, and base64, which the SDK asks for by default), the usage and spend
LiteLLM would bill, and LiteLLM's error classes. The upstream is `sluice mock`."""

import json

import openai
import pytest
import requests

from conftest import MASTER_KEY, render_config, spend_rows, start_gateway, start_mock

PRICE = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}
CF_RUN = "/client/v4/accounts/acc-1/ai/run/"
HF_PIPELINE = "/hf-inference/pipeline/feature-extraction/BAAI/bge-small-en-v1.5"
AWS = {"aws_region_name": "us-west-2", "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
# The mock's fake vectors: input i's value j is ((i + j) % 8) / 8 - 0.5, 8 values long.
FAKE = [[((i + j) % 8) / 8 - 0.5 for j in range(8)] for i in range(2)]
TEXTS = ["hello world", "hi"]


@pytest.fixture(scope="module")
def stack(log_dir):
    mock = start_mock(log_dir, "mock-provider-embeddings", "--record")
    models = [
        ("hf-router", {"model": "huggingface/BAAI/bge-small-en-v1.5", "api_base": mock.url + HF_PIPELINE, "api_key": "hf-token", **PRICE}),
        ("hf-tei", {"model": "huggingface/BAAI/bge-small-en-v1.5", "api_base": mock.url + "/embed"}),
        ("hf-openai", {"model": "huggingface/tei", "api_base": mock.url + "/v1", "api_key": "hf-token"}),
        ("hf-busy", {"model": "huggingface/429", "api_base": mock.url + "/hf-inference/pipeline/feature-extraction/429", "api_key": "hf-token"}),
        ("slate", {"model": "watsonx/ibm/slate-125m-english-rtrvr", "api_base": mock.url, "api_key": "wx-key", "project_id": "p1", **PRICE}),
        ("slate-deployed", {"model": "watsonx/deployment/d1", "api_base": mock.url, "api_key": "wx-key"}),
        ("slate-busy", {"model": "watsonx/ibm/429", "api_base": mock.url, "api_key": "wx-key", "project_id": "p1"}),
        ("bge", {"model": "cloudflare/@cf/baai/bge-base-en-v1.5", "api_base": mock.url + CF_RUN, **PRICE}),
        ("bge-broken", {"model": "cloudflare/@cf/baai/error-500", "api_base": mock.url + CF_RUN}),
        ("sm-embed", {"model": "sagemaker/my-embedding-endpoint", "api_base": mock.url, **AWS, **PRICE}),
        ("sm-embed-busy", {"model": "sagemaker/429", "api_base": mock.url, **AWS}),
        ("sm-chat", {"model": "sagemaker_chat/my-chat-endpoint", "api_base": mock.url, **AWS}),
    ]
    env = {"CLOUDFLARE_API_KEY": "cf-token", "WATSONX_IAM_URL": mock.url + "/identity/token"}
    config = render_config(models, {"master_key": MASTER_KEY}, {"num_retries": 0})
    gw = start_gateway(log_dir, "gateway-provider-embeddings", config, env)
    yield gw, mock
    gw.stop()
    mock.stop()


def client(gw, key=MASTER_KEY):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def last(mock):
    return requests.get(mock.url + "/mock/last").json()


def vectors_both_ways(c, mock, model):
    """The answer for floats, with what reached the provider; the same vectors come through
    base64 (the SDK's default, which it decodes)."""
    floats = c.embeddings.create(model=model, input=TEXTS, encoding_format="float")
    sent = json.loads(last(mock)["body"])
    b64 = c.embeddings.create(model=model, input=TEXTS)
    assert [d.embedding for d in b64.data] == [d.embedding for d in floats.data]
    return floats, sent


@pytest.mark.parametrize(
    "model, path, upstream",
    [
        ("hf-router", HF_PIPELINE, {"inputs": TEXTS}),
        ("hf-tei", "/embed", {"inputs": TEXTS}),
        ("slate", "/ml/v1/text/embeddings", {"inputs": TEXTS, "model_id": "ibm/slate-125m-english-rtrvr", "project_id": "p1"}),
        ("bge", CF_RUN + "@cf/baai/bge-base-en-v1.5", {"text": TEXTS}),
        ("sm-embed", "/endpoints/my-embedding-endpoint/invocations", {"text_inputs": TEXTS}),
    ],
)
def test_embeddings_reach_the_provider_in_its_format_and_answer_openais_list(stack, model, path, upstream):
    gw, mock = stack
    r, sent = vectors_both_ways(client(gw), mock, model)
    assert r.object == "list" and r.model == model
    assert [d.embedding for d in r.data] == FAKE and [d.index for d in r.data] == [0, 1]
    seen = last(mock)
    assert seen["path"] == path and json.loads(seen["body"]) == upstream == sent


def test_usage_is_the_providers_count_or_litellms_estimate(stack):
    c = client(stack[0])
    # watsonx.ai counts input tokens (the mock: words); Hugging Face and SageMaker count none,
    # so LiteLLM's cl100k estimate: "hello world" is 2 tokens, "hi" 1; Workers AI counts none
    # either, and LiteLLM bills one token per vector.
    expected = {"slate": 3, "hf-router": 3, "sm-embed": 3, "bge": 2}
    for model, tokens in expected.items():
        u = c.embeddings.create(model=model, input=TEXTS).usage
        assert (model, u.prompt_tokens, u.total_tokens) == (model, tokens, tokens)


def test_each_provider_is_addressed_and_authenticated_as_litellm_does(stack):
    gw, mock = stack
    c = client(gw)
    c.embeddings.create(model="hf-router", input="x")
    assert last(mock)["headers"]["authorization"] == "Bearer hf-token"
    c.embeddings.create(model="slate", input="x")
    seen = last(mock)
    assert seen["query"] == "version=2024-03-13" and seen["headers"]["authorization"].startswith("Bearer wx-iam-")
    c.embeddings.create(model="slate-deployed", input="x")
    seen = last(mock)
    assert seen["path"] == "/ml/v1/deployments/d1/text/embeddings" and json.loads(seen["body"]) == {"inputs": ["x"]}
    c.embeddings.create(model="bge", input="x")
    assert last(mock)["headers"]["authorization"] == "Bearer cf-token"
    c.embeddings.create(model="sm-embed", input="x")
    seen = last(mock)
    auth = seen["headers"]["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") and "/us-west-2/sagemaker/aws4_request" in auth
    assert seen["headers"]["x-amzn-sagemaker-custom-attributes"] == "accept_eula=true"
    # An OpenAI-compatible `/v1` base is forwarded as OpenAI's embeddings.
    r = c.embeddings.create(model="hf-openai", input=TEXTS)
    seen = last(mock)
    assert seen["path"] == "/v1/embeddings" and json.loads(seen["body"])["model"] == "tei" and len(r.data) == 2


def test_errors_in_litellms_classes(stack):
    c = client(stack[0])
    with pytest.raises(openai.RateLimitError) as e:
        c.embeddings.create(model="hf-busy", input="x")
    assert "Rate limit reached" in e.value.message
    with pytest.raises(openai.RateLimitError) as e:
        c.embeddings.create(model="slate-busy", input="x")
    assert "WatsonxException" in e.value.message and "token_quota_reached" in e.value.message
    with pytest.raises(openai.InternalServerError) as e:
        c.embeddings.create(model="bge-broken", input="x")
    assert "mock error 500" in e.value.message
    with pytest.raises(openai.RateLimitError) as e:
        c.embeddings.create(model="sm-embed-busy", input="x")
    assert "SagemakerException" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        c.embeddings.create(model="bge", input=[[1, 2, 3]])
    assert "Workers AI embeds text" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        c.embeddings.create(model="slate", input="x", dimensions=8)
    assert "['dimensions']" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        c.embeddings.create(model="hf-tei", input="x", extra_body={"input_type": "sentence-similarity"})
    assert "/rerank" in e.value.message
    # `sagemaker_chat/` serves chat only, as in LiteLLM.
    with pytest.raises(openai.BadRequestError) as e:
        c.embeddings.create(model="sm-chat", input="x")
    assert "use /chat/completions" in e.value.message


def test_spend_bills_the_usage(stack):
    gw = stack[0]
    r = requests.post(gw.url + "/key/generate", headers={"Authorization": f"Bearer {MASTER_KEY}"}, json={})
    r.raise_for_status()
    key, token = r.json()["key"], r.json()["token"]
    c = client(gw, key)
    for model in ("slate", "hf-router", "bge", "sm-embed"):
        c.embeddings.create(model=model, input=TEXTS)
    rows = spend_rows(gw, token, 4)
    by_group = {r["model_group"]: r for r in rows}
    for model, tokens in {"slate": 3, "hf-router": 3, "bge": 2, "sm-embed": 3}.items():
        assert abs(by_group[model]["spend"] - tokens * 0.001) < 1e-9, (model, by_group[model])
        assert by_group[model]["prompt_tokens"] == tokens
