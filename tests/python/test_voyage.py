"""Voyage AI deployments through sluice: embeddings with the official `openai` SDK (`dimensions`
sent as Voyage's `output_dimension`, the SDK's default base64), rerank through `/rerank` with
plain `requests` (`top_n` sent as `top_k`, the answer in LiteLLM's Cohere shape), both billed by
the tokens Voyage counts; chat is refused. The upstream is `sluice mock` (Voyage under
`/voyage/v1`)."""


import openai
import pytest
import requests

from conftest import MASTER_KEY, render_config, spend_rows, start_gateway, start_mock

PRICE = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.0}


@pytest.fixture(scope="module")
def gw(log_dir):
    mock = start_mock(log_dir, "mock-voyage")
    base = mock.url + "/voyage/v1"
    models = [
        ("voyage-embed", {"model": "voyage/voyage-3", "api_base": base, "api_key": "pa-test", **PRICE}),
        ("voyage-rerank", {"model": "voyage/rerank-2", "api_base": base, "api_key": "pa-test", **PRICE}),
    ]
    g = start_gateway(log_dir, "gateway-voyage", render_config(models, {"master_key": MASTER_KEY}))
    yield g
    g.stop()
    mock.stop()


def test_embeddings(gw):
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    r = c.embeddings.create(model="voyage-embed", input=["one two", "three"])
    assert len(r.data) == 2 and len(r.data[1].embedding) == 8 and r.data[1].embedding[0] == -0.375
    assert r.usage.prompt_tokens == 3
    r = c.embeddings.create(model="voyage-embed", input="x", dimensions=3, encoding_format="float")
    assert r.data[0].embedding == [-0.5, -0.375, -0.25]
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="voyage-embed", messages=[{"role": "user", "content": "hi"}])
    assert "not supported for provider voyage yet; use /embeddings or /rerank" in e.value.message


def test_rerank_and_its_bill(gw):
    key_r = requests.post(gw.url + "/key/generate", headers={"Authorization": f"Bearer {MASTER_KEY}"}, json={})
    key, token = key_r.json()["key"], key_r.json()["token"]
    docs = ["the blue dog sleeps", "a red cat purrs", "red cars are fast"]
    r = requests.post(
        gw.url + "/v2/rerank",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "voyage-rerank", "query": "red cat", "documents": docs, "top_n": 2},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["index"] for x in body["results"]] == [1, 2]
    assert body["results"][0]["document"] == {"text": "a red cat purrs"}
    assert body["usage"]["prompt_tokens"] == 14
    rows = spend_rows(gw, token, 1)
    assert [r["call_type"] for r in rows] == ["arerank"], rows
    assert abs(rows[0]["spend"] - 14 * 0.001) < 1e-9, rows
