"""The official `openai` SDK through sluice to the providers LiteLLM users name besides the big
ones: `azure_ai/` (Azure AI Foundry and serverless endpoints), `huggingface/` (an Inference
Endpoint's OpenAI-compatible server), `ai21/` (Jamba), forwarded in OpenAI's format, and
`cloudflare/` (Workers AI: its own answer envelope and SSE pieces), `predibase/` (Hugging Face
TGI's `/generate`), `triton/` (TensorRT-LLM's `/generate`, KServe's `/infer`), `azure_text/` (a chat answered from
Azure's completions endpoint), `watsonx/` (watsonx.ai's chat behind an IBM Cloud IAM token,
exchanged once and shared) and `sagemaker/` / `sagemaker_chat/` (SigV4-signed `invocations`, AWS
event-stream responses) and `replicate/` (a prediction created, polled until it has finished, or
its stream fetched), translated. Each is checked for
what reaches the provider (path, credential header, model name) as well as what the client gets:
answers, streams, tool calls, usage, LiteLLM's error classes and spend. The upstream is
`sluice mock`, which answers each provider's wire shape at the paths the provider really uses."""

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
import requests

from conftest import MASTER_KEY, MOCK_SENTENCE, render_config, spend_rows, start_gateway, start_mock

PRICE = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}
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
HI = [{"role": "user", "content": "hi"}]
CF_TEXT = "Hello from the fake Workers AI."
CF_RUN = "/client/v4/accounts/acc-1/ai/run/"
TEXTGEN = "Hello from the fake text generator."


@pytest.fixture(scope="module")
def stack(log_dir):
    mock = start_mock(log_dir, "mock-more-providers", "--record")
    models = [
        (
            "foundry",
            {"model": "azure_ai/mistral-large-2407", "api_base": mock.url, "api_key": "az-key", "api_version": "2024-05-01-preview"},
        ),
        ("foundry-embed", {"model": "azure_ai/cohere-embed-v3-english", "api_base": mock.url + "/", "api_key": "az-key"}),
        ("hf", {"model": "huggingface/tgi", "api_base": mock.url, "api_key": "hf-token"}),
        ("jamba", {"model": "ai21/jamba-1.5-mini", "api_base": mock.url + "/v1"}),
        ("workers", {"model": "cloudflare/@cf/meta/llama-3.1-8b-instruct", "api_base": mock.url + CF_RUN, **PRICE}),
        ("workers-priced", {"model": "cloudflare/@cf/meta/llama-2-7b-chat-fp16", "api_base": mock.url + CF_RUN}),
        ("workers-busy", {"model": "cloudflare/@cf/meta/429", "api_base": mock.url + CF_RUN}),
        ("workers-broken", {"model": "cloudflare/@cf/meta/stream-garbage", "api_base": mock.url + CF_RUN}),
        ("pb", {"model": "predibase/llama-3-8b-instruct", "api_base": mock.url, "tenant_id": "t1", **PRICE}),
        ("pb-busy", {"model": "predibase/429", "api_base": mock.url, "tenant_id": "t1"}),
        ("pb-no-tenant", {"model": "predibase/llama-3-8b-instruct", "api_base": mock.url}),
        ("triton", {"model": "triton/ensemble", "api_base": mock.url + "/v2/models/ensemble/generate"}),
        ("triton-infer", {"model": "triton/m", "api_base": mock.url + "/v2/models/m/infer"}),
        ("triton-bad-base", {"model": "triton/m", "api_base": mock.url + "/v2/models/m"}),
        (
            "instruct",
            {"model": "azure_text/gpt-35-turbo-instruct", "api_base": mock.url, "api_key": "azure-key", "api_version": "2024-02-01"},
        ),
        # LiteLLM's further OpenAI-compatible prefixes: base and key from LiteLLM's variables.
        ("nebius", {"model": "nebius/meta-llama/Llama-3.3-70B-Instruct"}),
        ("friendli", {"model": "friendliai/meta-llama-3.1-8b-instruct", "api_base": mock.url + "/v1"}),
        ("vercel", {"model": "vercel_ai_gateway/openai/gpt-4o-mini", "api_base": mock.url + "/v1", "api_key": "vck"}),
        ("dmr", {"model": "docker_model_runner/ai/smollm2", "api_base": mock.url + "/v1"}),
        ("llama-api", {"model": "meta_llama/Llama-4-Maverick-17B-128E-Instruct-FP8", "api_base": mock.url + "/v1"}),
        # LiteLLM 1.81's remaining ones: a JSON-registered prefix, a base LiteLLM adds `/v1` to,
        # Clarifai's model URL and DataRobot's gateway path.
        ("glm", {"model": "zai/glm-4.6", "api_base": mock.url + "/v1"}),
        ("chutes", {"model": "chutes/deepseek-ai/DeepSeek-V3", "api_base": mock.url + "/v1"}),
        ("heroku", {"model": "heroku/claude-4-sonnet"}),
        ("clarifai", {"model": "clarifai/openai.chat-completion.gpt-4o", "api_base": mock.url + "/v1", "api_key": "pat-1"}),
        ("datarobot", {"model": "datarobot/azure/gpt-4o-mini", "api_base": mock.url}),
        ("ragflow", {"model": "ragflow/chat/c1/deepseek-chat", "api_base": mock.url + "/v1"}),
        # Codestral's fill-in-the-middle API: `api_base` is the whole URL.
        ("fim", {"model": "text-completion-codestral/codestral-latest", "api_base": mock.url + "/v1/fim/completions"}),
        ("copilot", {"model": "github_copilot/gpt-4o"}),
    ]
    env = {
        "AI21_API_KEY": "ai21-key",
        "NEBIUS_API_BASE": mock.url + "/v1",
        "NEBIUS_API_KEY": "nebius-key",
        "FRIENDLI_TOKEN": "friendli-token",
        "LLAMA_API_KEY": "llama-key",
        "ZAI_API_KEY": "zai-key",
        "CHUTES_API_KEY": "chutes-key",
        "HEROKU_API_BASE": mock.url,
        "HEROKU_API_KEY": "heroku-key",
        "DATAROBOT_API_TOKEN": "dr-token",
        "CODESTRAL_API_KEY": "cs-key",
        "RAGFLOW_API_KEY": "rf-key",
    }
    saved = {k: os.environ.get(k) for k in (*env, "CLOUDFLARE_API_KEY", "PREDIBASE_API_KEY")}
    os.environ.update(env)
    os.environ["CLOUDFLARE_API_KEY"] = "cf-token"
    os.environ["PREDIBASE_API_KEY"] = "pb-key"
    try:
        gw = start_gateway(log_dir, "gateway-more-providers", render_config(models, {"master_key": MASTER_KEY}, {"num_retries": 0}))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    yield gw, mock
    gw.stop()
    mock.stop()


def client(gw, key=MASTER_KEY):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def last(mock):
    return requests.get(mock.url + "/mock/last").json()


@pytest.mark.parametrize(
    "model, path, query, header, value, upstream_model",
    [
        ("foundry", "/chat/completions", "api-version=2024-05-01-preview", "authorization", "Bearer az-key", "mistral-large-2407"),
        ("hf", "/v1/chat/completions", "", "authorization", "Bearer hf-token", "tgi"),
        ("jamba", "/v1/chat/completions", "", "authorization", "Bearer ai21-key", "jamba-1.5-mini"),
        ("nebius", "/v1/chat/completions", "", "authorization", "Bearer nebius-key", "meta-llama/Llama-3.3-70B-Instruct"),
        ("friendli", "/v1/chat/completions", "", "authorization", "Bearer friendli-token", "meta-llama-3.1-8b-instruct"),
        ("vercel", "/v1/chat/completions", "", "authorization", "Bearer vck", "openai/gpt-4o-mini"),
        ("dmr", "/v1/chat/completions", "", "authorization", "Bearer dummy-key", "ai/smollm2"),
        ("llama-api", "/v1/chat/completions", "", "authorization", "Bearer llama-key", "Llama-4-Maverick-17B-128E-Instruct-FP8"),
        ("glm", "/v1/chat/completions", "", "authorization", "Bearer zai-key", "glm-4.6"),
        ("chutes", "/v1/chat/completions", "", "authorization", "Bearer chutes-key", "deepseek-ai/DeepSeek-V3"),
        ("heroku", "/v1/chat/completions", "", "authorization", "Bearer heroku-key", "claude-4-sonnet"),
        ("clarifai", "/v1/chat/completions", "", "authorization", "Bearer pat-1", "https://clarifai.com/openai/chat-completion/models/gpt-4o"),
        ("datarobot", "/api/v2/genai/llmgw/chat/completions/", "", "authorization", "Bearer dr-token", "azure/gpt-4o-mini"),
        ("ragflow", "/api/v1/chats_openai/c1/chat/completions", "", "authorization", "Bearer rf-key", "deepseek-chat"),
    ],
)
def test_openai_compatible_prefixes_reach_the_provider_as_litellm_addresses_it(stack, model, path, query, header, value, upstream_model):
    gw, mock = stack
    r = client(gw).chat.completions.create(model=model, messages=HI)
    assert r.model == model and r.choices[0].message.content
    seen = last(mock)
    assert (seen["path"], seen["query"]) == (path, query)
    assert seen["headers"][header] == value
    assert json.loads(seen["body"])["model"] == upstream_model
    chunks = list(client(gw).chat.completions.create(model=model, messages=HI, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("stream", [False, True])
def test_codestral_fim_completes_between_prompt_and_suffix(stack, stream):
    gw, mock = stack
    c = client(gw)
    args = {"model": "fim", "prompt": "def add(a, b):", "suffix": "    return c", "max_tokens": 16, "seed": 7}
    if stream:
        chunks = list(c.completions.create(**args, stream=True, stream_options={"include_usage": True}))
        assert all(ch.object == "text_completion" and ch.model == "fim" for ch in chunks)
        assert "".join(ch.choices[0].text for ch in chunks if ch.choices)
        assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == ["stop"]
    else:
        r = c.completions.create(**args)
        assert r.object == "text_completion" and r.model == "fim"
        assert r.choices[0].text and r.choices[0].finish_reason == "stop"
        assert r.usage.total_tokens > 0
    seen = last(mock)
    assert seen["path"] == "/v1/fim/completions"
    assert seen["headers"]["authorization"] == "Bearer cs-key"
    body = json.loads(seen["body"])
    assert (body["model"], body["prompt"], body["suffix"]) == ("codestral-latest", "def add(a, b):", "    return c")
    assert (body["max_tokens"], body["random_seed"], body.get("stream", False)) == (16, 7, stream)
    with pytest.raises(openai.BadRequestError) as e:
        c.completions.create(model="fim", prompt="x", echo=True)
    assert "echo" in e.value.message


def test_a_litellm_prefix_sluice_does_not_serve_says_why(stack):
    gw, mock = stack
    with pytest.raises(openai.BadRequestError) as e:
        client(gw).chat.completions.create(model="copilot", messages=HI)
    assert "provider github_copilot is not implemented in sluice" in e.value.message
    assert "OAuth device flow" in e.value.message


def test_azure_ai_embeddings(stack):
    gw, mock = stack
    r = client(gw).embeddings.create(model="foundry-embed", input=["a", "b"])
    assert len(r.data) == 2
    seen = last(mock)
    assert seen["path"] == "/embeddings" and json.loads(seen["body"])["model"] == "cohere-embed-v3-english"


def test_cloudflare_chat_goes_to_the_accounts_run_url(stack):
    gw, mock = stack
    r = client(gw).chat.completions.create(model="workers", messages=HI, max_completion_tokens=20)
    assert r.model == "workers"
    assert r.choices[0].message.content == CF_TEXT and r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (9, 4)
    seen = last(mock)
    assert seen["path"] == CF_RUN + "@cf/meta/llama-3.1-8b-instruct"
    assert seen["headers"]["authorization"] == "Bearer cf-token"
    assert json.loads(seen["body"]) == {"messages": HI, "max_tokens": 20}


def test_cloudflare_stream_with_usage(stack):
    chunks = list(
        client(stack[0]).chat.completions.create(
            model="workers", messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == CF_TEXT
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 13


@pytest.mark.parametrize("stream", [False, True])
def test_cloudflare_tool_calls(stack, stream):
    c = client(stack[0])
    asked = [{"role": "user", "content": "please use the tool"}]
    if stream:
        chunks = list(c.chat.completions.create(model="workers", messages=asked, tools=TOOLS, stream=True))
        calls = [t for ch in chunks if ch.choices for t in (ch.choices[0].delta.tool_calls or [])]
        assert len(calls) == 1 and calls[0].index == 0 and calls[0].id
        call = calls[0]
        assert chunks[-1].choices[0].finish_reason == "tool_calls"
    else:
        r = c.chat.completions.create(model="workers", messages=asked, tools=TOOLS)
        assert r.choices[0].finish_reason == "tool_calls"
        call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"x": 1}


def test_cloudflare_errors_in_litellms_classes(stack):
    c = client(stack[0])
    with pytest.raises(openai.RateLimitError) as e:
        c.chat.completions.create(model="workers-busy", messages=HI)
    assert "CloudflareException" in e.value.message and "Capacity temporarily exceeded" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="workers", messages=HI, logit_bias={"1": 2})
    assert "logit_bias" in e.value.message
    with pytest.raises(openai.APIError):
        list(c.chat.completions.create(model="workers-broken", messages=HI, stream=True))
    with pytest.raises(openai.BadRequestError):
        c.embeddings.create(model="workers", input="x")


def test_cloudflare_without_a_valid_token_is_an_authentication_error(stack, log_dir):
    mock = start_mock(log_dir, "mock-cloudflare-key", "--provider-key", "cf-right")
    try:
        models = [("w", {"model": "cloudflare/@cf/meta/x", "api_base": mock.url + CF_RUN, "api_key": "cf-wrong"})]
        gw = start_gateway(log_dir, "gateway-cloudflare-key", render_config(models, {"master_key": MASTER_KEY}, {"num_retries": 0}))
        try:
            with pytest.raises(openai.AuthenticationError) as e:
                client(gw).chat.completions.create(model="w", messages=HI)
            assert "CloudflareException" in e.value.message
            assert "cf-wrong" not in e.value.message
        finally:
            gw.stop()
    finally:
        mock.stop()


def test_predibase_sends_tgis_generate_and_reads_its_answer(stack):
    gw, mock = stack
    r = client(gw).chat.completions.create(
        model="pb",
        messages=[{"role": "system", "content": "Be brief."}, *HI],
        temperature=0,
        max_tokens=30,
        extra_body={"adapter_id": "my-adapter/1"},
    )
    assert r.choices[0].message.content == TEXTGEN and r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == 4
    seen = last(mock)
    assert seen["path"] == "/t1/deployments/v2/llms/llama-3-8b-instruct/generate"
    assert seen["headers"]["authorization"] == "Bearer pb-key"
    sent = json.loads(seen["body"])
    assert sent["inputs"] == "Be brief. hi"
    # TGI refuses a temperature of 0: LiteLLM's 0.01 goes instead (the mock validates as TGI does).
    assert sent["parameters"] == {
        "details": True,
        "max_new_tokens": 30,
        "return_full_text": False,
        "temperature": 0.01,
        "adapter_id": "my-adapter/1",
    }


def test_predibase_stream(stack):
    gw, mock = stack
    chunks = list(
        client(gw).chat.completions.create(model="pb", messages=HI, stream=True, stream_options={"include_usage": True})
    )
    assert last(mock)["path"].endswith("/llama-3-8b-instruct/generate_stream")
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXTGEN
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage.completion_tokens == 5


def test_predibase_errors(stack):
    c = client(stack[0])
    with pytest.raises(openai.RateLimitError) as e:
        c.chat.completions.create(model="pb-busy", messages=HI)
    assert "PredibaseException" in e.value.message and "Model is overloaded" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="pb", messages=HI, tools=TOOLS)
    assert "['tools']" in e.value.message
    with pytest.raises(openai.InternalServerError) as e:
        c.chat.completions.create(model="pb-no-tenant", messages=HI)
    assert "tenant_id" in e.value.message and "PREDIBASE_TENANT_ID" in e.value.message


def test_triton_generate_whole_and_streamed(stack):
    gw, mock = stack
    r = client(gw).chat.completions.create(model="triton", messages=HI, max_tokens=12)
    assert r.choices[0].message.content == TEXTGEN
    seen = last(mock)
    assert seen["path"] == "/v2/models/ensemble/generate"
    assert json.loads(seen["body"]) == {
        "text_input": "hi",
        "parameters": {"max_tokens": 12, "bad_words": [""], "stop_words": [""]},
        "stream": False,
    }
    chunks = list(client(gw).chat.completions.create(model="triton", messages=HI, stream=True))
    assert last(mock)["path"] == "/v2/models/ensemble/generate_stream"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXTGEN


def test_triton_infer(stack):
    gw, mock = stack
    r = client(gw).chat.completions.create(model="triton-infer", messages=HI)
    assert r.choices[0].message.content == TEXTGEN
    sent = json.loads(last(mock)["body"])
    assert sent["inputs"][0] == {"name": "text_input", "shape": [1], "datatype": "BYTES", "data": ["hi"]}
    with pytest.raises(openai.BadRequestError) as e:
        list(client(gw).chat.completions.create(model="triton-infer", messages=HI, stream=True))
    assert "/infer" in e.value.message
    with pytest.raises(openai.InternalServerError) as e:
        client(gw).chat.completions.create(model="triton-bad-base", messages=HI)
    assert "/generate" in e.value.message


def test_azure_text_answers_a_chat_from_its_completions_endpoint(stack):
    gw, mock = stack
    r = client(gw).chat.completions.create(
        model="instruct", messages=[{"role": "system", "content": "Be brief."}, *HI], max_completion_tokens=9
    )
    assert r.object == "chat.completion" and r.model == "instruct"
    assert r.choices[0].message.role == "assistant" and r.choices[0].message.content
    assert r.usage.total_tokens > 0
    seen = last(mock)
    assert (seen["path"], seen["query"]) == ("/openai/deployments/gpt-35-turbo-instruct/completions", "api-version=2024-02-01")
    assert seen["headers"]["api-key"] == "azure-key"
    sent = json.loads(seen["body"])
    assert (sent["prompt"], sent["max_tokens"]) == ("Be brief. hi", 9) and "messages" not in sent
    chunks = list(
        client(gw).chat.completions.create(model="instruct", messages=HI, stream=True, stream_options={"include_usage": True})
    )
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == MOCK_SENTENCE
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage.total_tokens > 0
    with pytest.raises(openai.BadRequestError) as e:
        client(gw).chat.completions.create(model="instruct", messages=HI, tools=TOOLS)
    assert "azure_text does not support parameters: ['tools']" in e.value.message


def test_azure_text_serves_completions_as_sent(stack):
    gw, mock = stack
    r = client(gw).completions.create(model="instruct", prompt="Say hi", max_tokens=5)
    assert r.object == "text_completion" and r.choices[0].text and r.model == "instruct"
    sent = json.loads(last(mock)["body"])
    assert (sent["model"], sent["prompt"], sent["max_tokens"]) == ("gpt-35-turbo-instruct", "Say hi", 5)
    text = "".join(c.choices[0].text for c in client(gw).completions.create(model="instruct", prompt="x", stream=True) if c.choices)
    assert text == MOCK_SENTENCE


WX_TEXT = "Hello from the fake watsonx.ai."


@pytest.fixture(scope="module")
def wx(log_dir):
    mock = start_mock(log_dir, "mock-watsonx", "--record")
    models = [
        ("granite", {"model": "watsonx/ibm/granite-3-8b-instruct", "api_base": mock.url, "api_key": "wx-key", "project_id": "p1", **PRICE}),
        ("granite-deployed", {"model": "watsonx/deployment/d1", "api_base": mock.url, "api_key": "wx-key"}),
        ("granite-refused", {"model": "watsonx/ibm/granite-3-8b-instruct", "api_base": mock.url, "api_key": "bad-key", "project_id": "p1"}),
        ("granite-busy", {"model": "watsonx/ibm/429", "api_base": mock.url, "api_key": "wx-key", "project_id": "p1"}),
        ("granite-no-project", {"model": "watsonx/ibm/granite-3-8b-instruct", "api_base": mock.url, "api_key": "wx-key"}),
    ]
    saved = os.environ.get("WATSONX_IAM_URL")
    os.environ["WATSONX_IAM_URL"] = mock.url + "/identity/token"
    try:
        gw = start_gateway(log_dir, "gateway-watsonx", render_config(models, {"master_key": MASTER_KEY}, {"num_retries": 0}))
    finally:
        if saved is None:
            os.environ.pop("WATSONX_IAM_URL", None)
        else:
            os.environ["WATSONX_IAM_URL"] = saved
    yield gw, mock
    gw.stop()
    mock.stop()


def test_watsonx_chat_with_an_iam_token_exchanged_once(wx):
    gw, mock = wx
    c = client(gw)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: c.chat.completions.create(model="granite", messages=HI), range(8)))
    assert all(a.choices[0].message.content == WX_TEXT for a in answers)
    assert (answers[0].usage.prompt_tokens, answers[0].usage.completion_tokens) == (12, 6)
    c.chat.completions.create(model="granite-deployed", messages=HI)
    seen = last(mock)
    assert (seen["path"], seen["query"]) == ("/ml/v1/deployments/d1/text/chat", "version=2024-03-13")
    assert seen["headers"]["authorization"] == "Bearer wx-iam-1"
    assert "model_id" not in json.loads(seen["body"])
    r = c.chat.completions.create(model="granite", messages=HI, max_completion_tokens=7, tool_choice="auto", tools=TOOLS)
    sent = json.loads(last(mock)["body"])
    assert (sent["model_id"], sent["project_id"], sent["max_tokens"]) == ("ibm/granite-3-8b-instruct", "p1", 7)
    assert sent["tool_choice_option"] == "auto"
    stats = requests.get(mock.url + "/mock/stats").json()
    assert stats["tokens_issued"] == 1, "one IAM exchange for every call with the same key"


def test_watsonx_stream_and_tool_calls(wx):
    c = client(wx[0])
    chunks = list(c.chat.completions.create(model="granite", messages=HI, stream=True, stream_options={"include_usage": True}))
    assert last(wx[1])["path"] == "/ml/v1/text/chat_stream"
    assert all(ch.model == "granite" for ch in chunks)
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == WX_TEXT
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 18
    asked = [{"role": "user", "content": "please use the tool"}]
    r = c.chat.completions.create(model="granite", messages=asked, tools=TOOLS)
    assert r.choices[0].finish_reason == "tool_calls"
    assert r.choices[0].message.tool_calls[0].function.name == "get_weather"
    chunks = list(c.chat.completions.create(model="granite", messages=asked, tools=TOOLS, stream=True))
    calls = [t for ch in chunks if ch.choices for t in (ch.choices[0].delta.tool_calls or [])]
    assert calls[0].function.name == "get_weather" and json.loads(calls[0].function.arguments) == {"x": 1}


def test_watsonx_errors_in_litellms_classes(wx):
    c = client(wx[0])
    with pytest.raises(openai.AuthenticationError) as e:
        c.chat.completions.create(model="granite-refused", messages=HI)
    assert "WatsonxException" in e.value.message and "BXNIM0415E" in e.value.message
    assert "bad-key" not in e.value.message
    with pytest.raises(openai.RateLimitError) as e:
        c.chat.completions.create(model="granite-busy", messages=HI)
    assert "token_quota_reached" in e.value.message
    with pytest.raises(openai.InternalServerError) as e:
        c.chat.completions.create(model="granite-no-project", messages=HI)
    assert "project_id" in e.value.message and "WATSONX_PROJECT_ID" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="granite", messages=HI, logit_bias={"1": 2})
    assert "['logit_bias']" in e.value.message


SM_TEXT = "Hello from the fake SageMaker endpoint."
AWS = {"aws_region_name": "us-west-2", "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}


@pytest.fixture(scope="module")
def sm(log_dir):
    mock = start_mock(log_dir, "mock-sagemaker", "--record")
    models = [
        ("sm-tgi", {"model": "sagemaker/my-tgi-endpoint", "api_base": mock.url, **AWS, **PRICE}),
        ("sm-chat", {"model": "sagemaker_chat/my-chat-endpoint", "api_base": mock.url, **AWS}),
        ("sm-busy", {"model": "sagemaker/429", "api_base": mock.url, **AWS}),
        ("sm-crash", {"model": "sagemaker_chat/stream-error", "api_base": mock.url, **AWS}),
    ]
    gw = start_gateway(log_dir, "gateway-sagemaker", render_config(models, {"master_key": MASTER_KEY}, {"num_retries": 0}))
    yield gw, mock
    gw.stop()
    mock.stop()


def test_sagemaker_tgi_endpoint_signed_with_sigv4(sm):
    gw, mock = sm
    r = client(gw).chat.completions.create(model="sm-tgi", messages=HI, temperature=0, max_tokens=16)
    assert r.choices[0].message.content == SM_TEXT
    seen = last(mock)
    assert seen["path"] == "/endpoints/my-tgi-endpoint/invocations"
    auth = seen["headers"]["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") and "/us-west-2/sagemaker/aws4_request" in auth
    assert json.loads(seen["body"]) == {"inputs": "hi", "parameters": {"max_new_tokens": 16, "temperature": 0.01}}
    chunks = list(client(gw).chat.completions.create(model="sm-tgi", messages=HI, stream=True, stream_options={"include_usage": True}))
    seen = last(mock)
    assert seen["path"] == "/endpoints/my-tgi-endpoint/invocations-response-stream"
    assert json.loads(seen["body"])["stream"] is True
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == SM_TEXT
    assert chunks[-1].usage.completion_tokens == 5


def test_sagemaker_chat_endpoint(sm):
    gw, mock = sm
    r = client(gw).chat.completions.create(model="sm-chat", messages=HI)
    assert r.model == "sm-chat" and r.choices[0].message.content == SM_TEXT and r.usage.total_tokens == 11
    sent = json.loads(last(mock)["body"])
    assert sent["model"] == "my-chat-endpoint" and sent["messages"] == HI
    chunks = list(client(gw).chat.completions.create(model="sm-chat", messages=HI, stream=True, stream_options={"include_usage": True}))
    assert all(c.model == "sm-chat" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == SM_TEXT
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 11


def test_sagemaker_errors(sm):
    c = client(sm[0])
    with pytest.raises(openai.RateLimitError) as e:
        c.chat.completions.create(model="sm-busy", messages=HI)
    assert "SagemakerException" in e.value.message and "Rate exceeded" in e.value.message
    with pytest.raises(openai.APIError) as e:
        list(c.chat.completions.create(model="sm-crash", messages=HI, stream=True))
    assert "ModelStreamError" in str(e.value) and "crashed" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="sm-tgi", messages=HI, tools=TOOLS)
    assert "sagemaker does not support parameters: ['tools']" in e.value.message


RP_TEXT = "Hello from the fake Replicate."
VERSION = "02e509c789964a7ea8736978a43525956ef40397be9033abf9fd2badfe68c9e3"


@pytest.fixture(scope="module")
def rp(log_dir):
    mock = start_mock(log_dir, "mock-replicate", "--record")
    models = [
        ("llama", {"model": "replicate/meta/meta-llama-3-8b-instruct", "api_base": mock.url, "api_key": "r8_key", **PRICE}),
        ("llama-version", {"model": f"replicate/meta/llama-2-70b-chat:{VERSION}", "api_base": mock.url, "api_key": "r8_key"}),
        ("llama-fails", {"model": "replicate/acme/fails", "api_base": mock.url, "api_key": "r8_key"}),
        ("llama-busy", {"model": "replicate/acme/429", "api_base": mock.url, "api_key": "r8_key"}),
        ("llama-slow", {"model": "replicate/acme/x", "api_base": mock.url, "api_key": "r8_key", "timeout": 0.2}),
    ]
    gw = start_gateway(log_dir, "gateway-replicate", render_config(models, {"master_key": MASTER_KEY}, {"num_retries": 0}))
    yield gw, mock
    gw.stop()
    mock.stop()


def test_replicate_prediction_is_created_and_polled_until_it_succeeds(rp):
    gw, mock = rp
    started = time.monotonic()
    r = client(gw).chat.completions.create(model="llama", messages=[{"role": "system", "content": "Be brief."}, *HI], max_tokens=20, stop=["\n"])
    assert r.choices[0].message.content == RP_TEXT and r.model == "llama"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (8, 4)
    assert time.monotonic() - started >= 0.3, "the prediction was polled past its processing time"
    stats = requests.get(mock.url + "/mock/stats").json()
    assert stats["by_route"]["replicate"] >= 2, stats
    seen = last(mock)
    assert seen["method"] == "GET" and seen["path"].startswith("/v1/predictions/")
    assert seen["headers"]["authorization"] == "Token r8_key"
    r = client(gw).chat.completions.create(model="llama-version", messages=HI)
    assert r.choices[0].message.content == RP_TEXT


def test_replicate_sends_the_prompt_and_replicates_names(rp):
    gw, mock = rp
    # A creation answered 429 is the call's last request, so /mock/last shows it.
    with pytest.raises(openai.RateLimitError) as e:
        client(gw).chat.completions.create(model="llama-busy", messages=HI, max_tokens=20, stop=["a", "b"], temperature=0.5)
    assert "ReplicateException" in e.value.message
    seen = last(mock)
    assert (seen["method"], seen["path"]) == ("POST", "/v1/models/acme/429/predictions")
    assert json.loads(seen["body"]) == {"input": {"prompt": "hi", "max_new_tokens": 20, "stop_sequences": "a,b", "temperature": 0.5}}


def test_replicate_stream_comes_from_the_predictions_stream_url(rp):
    gw, mock = rp
    chunks = list(client(gw).chat.completions.create(model="llama", messages=HI, stream=True, stream_options={"include_usage": True}))
    seen = last(mock)
    assert seen["method"] == "GET" and seen["path"].startswith("/v1/streams/")
    assert all(c.model == "llama" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == RP_TEXT
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]


def test_replicate_failures(rp):
    c = client(rp[0])
    with pytest.raises(openai.UnprocessableEntityError) as e:
        c.chat.completions.create(model="llama-fails", messages=HI)
    assert "ReplicateException" in e.value.message and "mock: the model failed" in e.value.message
    with pytest.raises(openai.APIError) as e:
        list(c.chat.completions.create(model="llama-fails", messages=HI, stream=True))
    assert "mock: the model failed" in str(e.value)
    # Polling is bounded by the deployment's timeout.
    with pytest.raises(openai.APIStatusError) as e:
        c.chat.completions.create(model="llama-slow", messages=HI)
    assert e.value.status_code == 408, e.value
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="llama", messages=HI, tools=TOOLS)
    assert "replicate does not support parameters: ['tools']" in e.value.message


def test_spend_uses_the_deployments_or_litellms_prices(stack):
    gw = stack[0]
    r = requests.post(gw.url + "/key/generate", headers={"Authorization": f"Bearer {MASTER_KEY}"}, json={})
    r.raise_for_status()
    key, token = r.json()["key"], r.json()["token"]
    c = client(gw, key)
    c.chat.completions.create(model="workers", messages=HI)
    list(c.chat.completions.create(model="workers-priced", messages=HI, stream=True))
    rows = spend_rows(gw, token, 2)
    by_group = {r["model_group"]: r for r in rows}
    assert abs(by_group["workers"]["spend"] - (9 * 0.001 + 4 * 0.002)) < 1e-9
    # LiteLLM's price map prices cloudflare/@cf/meta/llama-2-7b-chat-fp16.
    assert by_group["workers-priced"]["spend"] > 0, rows
