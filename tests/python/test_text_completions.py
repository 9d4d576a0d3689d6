"""The official `openai` SDK's `client.completions.create` against deployments whose providers
only chat (Vertex/Gemini, Anthropic): LiteLLM's `text_completion` made through chat, streamed and
not, billed at the deployment's prices and logged as `atext_completion`. Every upstream is
`sluice mock`."""

from pathlib import Path

import openai
import pytest
import requests

from conftest import MASTER_KEY, render_config, spend_rows, start_gateway, start_mock, vertex_key_at

REPO = Path(__file__).resolve().parents[2]
TEST_KEY = REPO / "crates" / "providers" / "tests" / "fixtures" / "vertex-test-sa.json"
PRICE = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}
MODELS = ["gemini", "claude"]


@pytest.fixture(scope="module")
def gw(log_dir):
    mock = start_mock(log_dir, "mock-text-completions", "--vertex-credentials", str(TEST_KEY))
    key_path = vertex_key_at(mock, log_dir, "vertex-key-text-completions.json")
    models = [
        (
            "gemini",
            {
                "model": "vertex_ai/gemini-1.5-pro",
                "api_base": mock.url + "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-1.5-pro",
                "vertex_project": "p",
                "vertex_location": "us-central1",
                "vertex_credentials": str(key_path),
                **PRICE,
            },
        ),
        ("claude", {"model": "anthropic/claude-3-5-sonnet-20241022", "api_base": mock.url, "api_key": "sk-ant-test", **PRICE}),
        (
            "claude-dropping",
            {"model": "anthropic/claude-3-5-sonnet-20241022", "api_base": mock.url, "api_key": "sk-ant-test", "drop_params": True},
        ),
    ]
    g = start_gateway(log_dir, "gateway-text-completions", render_config(models, {"master_key": MASTER_KEY}))
    yield g
    g.stop()
    mock.stop()


def client(gw, key=MASTER_KEY):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


@pytest.mark.parametrize("model", MODELS)
def test_completions_create(gw, model):
    r = client(gw).completions.create(model=model, prompt="Say hi", max_tokens=20, temperature=0.2, stop=["END"])
    assert r.object == "text_completion"
    assert r.model == model
    assert r.id.startswith("cmpl-")
    assert len(r.choices) == 1
    assert r.choices[0].text
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_completions_stream(gw, model):
    c = client(gw)
    whole = c.completions.create(model=model, prompt="Say hi").choices[0].text
    chunks = list(c.completions.create(model=model, prompt="Say hi", stream=True, stream_options={"include_usage": True}))
    assert all(ch.object == "text_completion" and ch.model == model for ch in chunks)
    assert "".join(ch.choices[0].text for ch in chunks if ch.choices) == whole
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0


def test_a_list_of_prompts_is_one_conversation(gw):
    r = client(gw).completions.create(model="claude", prompt=["first", "second"])
    assert len(r.choices) == 1 and r.choices[0].text


def test_completion_only_parameters_are_refused_unless_dropped(gw):
    c = client(gw)
    with pytest.raises(openai.BadRequestError) as e:
        c.completions.create(model="claude", prompt="hi", echo=True, suffix="!")
    assert "['echo', 'suffix']" in e.value.message and "drop_params" in e.value.message
    r = c.completions.create(model="claude-dropping", prompt="hi", echo=True, suffix="!", best_of=2)
    assert r.choices[0].text


def test_spend_is_logged_as_text_completion(gw):
    r = requests.post(gw.url + "/key/generate", headers={"Authorization": f"Bearer {MASTER_KEY}"}, json={})
    key, token = r.json()["key"], r.json()["token"]
    c = client(gw, key)
    c.completions.create(model="gemini", prompt="hi")
    list(c.completions.create(model="claude", prompt="hi", stream=True))
    rows = spend_rows(gw, token, 2)
    assert sorted(r["call_type"] for r in rows) == ["atext_completion", "atext_completion"], rows
    for row in rows:
        want = row["prompt_tokens"] * 0.001 + row["completion_tokens"] * 0.002
        assert row["completion_tokens"] > 0 and abs(row["spend"] - want) < 1e-9, row
