"""The official `openai` SDK's embeddings against Google deployments through sluice: Vertex AI
(`vertex_ai/…`, `:predict` with a service-account token) and Google AI Studio (`gemini/…`,
`:batchEmbedContents`), with `dimensions`, the SDK's default base64 and plain floats, and spend
logged as `aembedding`. The upstream is `sluice mock`."""

from pathlib import Path

import openai
import pytest
import requests

from conftest import MASTER_KEY, render_config, spend_rows, start_gateway, start_mock, vertex_key_at

REPO = Path(__file__).resolve().parents[2]
TEST_KEY = REPO / "crates" / "providers" / "tests" / "fixtures" / "vertex-test-sa.json"
PRICE = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.0}


@pytest.fixture(scope="module")
def gw(log_dir):
    mock = start_mock(log_dir, "mock-google-embed", "--vertex-credentials", str(TEST_KEY))
    key_path = vertex_key_at(mock, log_dir, "vertex-embed-key.json")
    models = [
        (
            "vertex-embed",
            {
                "model": "vertex_ai/text-embedding-004",
                "api_base": mock.url,
                "vertex_project": "p",
                "vertex_location": "us-central1",
                "vertex_credentials": str(key_path),
                **PRICE,
            },
        ),
        ("gemini-embed", {"model": "gemini/text-embedding-004", "api_base": mock.url + "/v1beta", "api_key": "g-key"}),
    ]
    g = start_gateway(log_dir, "gateway-google-embed", render_config(models, {"master_key": MASTER_KEY}))
    yield g
    g.stop()
    mock.stop()


@pytest.mark.parametrize("model", ["vertex-embed", "gemini-embed"])
def test_embeddings(gw, model):
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    r = c.embeddings.create(model=model, input=["one two", "three"])  # the SDK asks for base64
    assert [d.index for d in r.data] == [0, 1]
    assert len(r.data[1].embedding) == 8 and r.data[1].embedding[0] == -0.375
    r = c.embeddings.create(model=model, input="x", dimensions=3, encoding_format="float")
    assert r.data[0].embedding == [-0.5, -0.375, -0.25]
    with pytest.raises(openai.BadRequestError):
        c.embeddings.create(model=model, input=[[1, 2]], encoding_format="float")


def test_vertex_token_counts_are_billed(gw):
    r = requests.post(gw.url + "/key/generate", headers={"Authorization": f"Bearer {MASTER_KEY}"}, json={})
    key, token = r.json()["key"], r.json()["token"]
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)
    r = c.embeddings.create(model="vertex-embed", input=["one two", "three"])
    assert r.usage.prompt_tokens == 3
    rows = spend_rows(gw, token, 1)
    assert [r["call_type"] for r in rows] == ["aembedding"], rows
    assert abs(rows[0]["spend"] - 0.003) < 1e-9
