"""Usage LiteLLM estimates when a provider's answer has none: the official `openai` SDK through
sluice to `triton/` (which reports no token counts) and `predibase/` (Hugging Face TGI, which
reports its generated tokens but not the prompt's unless it lists a `prefill`), both on
`sluice mock`. The missing side is counted with the tokenizer — the request's messages as
`token_counter` counts them, the answer's text — and shows in the answer's `usage`, in the
usage chunk of a stream that asked for it, and in the bill, asked for or not."""

import pytest
import requests

import openai
from conftest import MASTER_KEY, render_config, spend_rows, start_gateway, start_mock

PRICE = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}
HI = [{"role": "user", "content": "hi"}]
# `token_counter` on HI: 3 to prime the reply, 3 for the message, 1 for "user", 1 for "hi".
HI_TOKENS = 8
# "Hello from the fake text generator." in cl100k_base.
TEXTGEN_TOKENS = 7
# What the mock's TGI reports as generated: 4 whole, 5 streamed.
TGI_WHOLE, TGI_STREAMED = 4, 5


@pytest.fixture(scope="module")
def gw(log_dir):
    mock = start_mock(log_dir, "mock-usage-estimate")
    models = [
        ("triton", {"model": "triton/ensemble", "api_base": mock.url + "/v2/models/ensemble/generate", **PRICE}),
        ("triton-infer", {"model": "triton/m", "api_base": mock.url + "/v2/models/m/infer", **PRICE}),
        ("pb", {"model": "predibase/llama-3-8b-instruct", "api_base": mock.url, "tenant_id": "t1", "api_key": "pb", **PRICE}),
    ]
    gw = start_gateway(log_dir, "gateway-usage-estimate", render_config(models, {"master_key": MASTER_KEY}, {"num_retries": 0}))
    yield gw
    gw.stop()
    mock.stop()


def client(gw, key=MASTER_KEY):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def new_key(gw):
    r = requests.post(gw.url + "/key/generate", headers={"Authorization": f"Bearer {MASTER_KEY}"}, json={})
    r.raise_for_status()
    return r.json()["key"], r.json()["token"]


def usage(u):
    return (u.prompt_tokens, u.completion_tokens, u.total_tokens)


@pytest.mark.parametrize("model", ["triton", "triton-infer"])
def test_triton_answers_carry_the_estimated_usage(gw, model):
    r = client(gw).chat.completions.create(model=model, messages=HI)
    assert usage(r.usage) == (HI_TOKENS, TEXTGEN_TOKENS, HI_TOKENS + TEXTGEN_TOKENS)


def test_a_triton_stream_ends_with_the_estimated_usage_chunk(gw):
    chunks = list(
        client(gw).chat.completions.create(model="triton", messages=HI, stream=True, stream_options={"include_usage": True})
    )
    assert chunks[-1].choices == []
    assert usage(chunks[-1].usage) == (HI_TOKENS, TEXTGEN_TOKENS, HI_TOKENS + TEXTGEN_TOKENS)


def test_tgi_keeps_its_generated_count_and_gets_the_prompts_estimated(gw):
    r = client(gw).chat.completions.create(model="pb", messages=HI)
    assert usage(r.usage) == (HI_TOKENS, TGI_WHOLE, HI_TOKENS + TGI_WHOLE)
    chunks = list(
        client(gw).chat.completions.create(model="pb", messages=HI, stream=True, stream_options={"include_usage": True})
    )
    assert usage(chunks[-1].usage) == (HI_TOKENS, TGI_STREAMED, HI_TOKENS + TGI_STREAMED)


def test_the_estimate_is_billed_whole_and_streamed(gw):
    key, token = new_key(gw)
    c = client(gw, key)
    c.chat.completions.create(model="triton", messages=HI)
    # No usage asked for: the stream is billed with the estimate all the same.
    list(c.chat.completions.create(model="triton", messages=HI, stream=True))
    c.chat.completions.create(model="pb", messages=HI)
    rows = spend_rows(gw, token, 3)
    assert len(rows) == 3, rows
    triton_cost = HI_TOKENS * 0.001 + TEXTGEN_TOKENS * 0.002
    pb_cost = HI_TOKENS * 0.001 + TGI_WHOLE * 0.002
    by_group = sorted((r["model_group"], r["prompt_tokens"], r["completion_tokens"], r["spend"]) for r in rows)
    assert [g[:3] for g in by_group] == [
        ("pb", HI_TOKENS, TGI_WHOLE),
        ("triton", HI_TOKENS, TEXTGEN_TOKENS),
        ("triton", HI_TOKENS, TEXTGEN_TOKENS),
    ], rows
    for group, _, _, spend in by_group:
        assert abs(spend - (pb_cost if group == "pb" else triton_cost)) < 1e-9, rows
    info = requests.get(gw.url + "/key/info", params={"key": key}, headers={"Authorization": f"Bearer {MASTER_KEY}"})
    assert abs(info.json()["info"]["spend"] - (2 * triton_cost + pb_cost)) < 1e-6, info.json()
