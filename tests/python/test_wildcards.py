"""Wildcard model groups, access groups and tag routing with the official `openai` SDK: a
`model_name: "*"` catch-all, a `provider/*` group and a prefix pattern; keys limited to a
wildcard or to an access group list and call only what they may.
"""

from __future__ import annotations

import uuid

import openai
import pytest
import requests

from conftest import MASTER_KEY, start_gateway

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


def config(mock_url: str, database_url: str) -> str:
    base = mock_url + "/"
    return f"""
model_list:
  - model_name: "*"
    litellm_params:
      model: "*"
      api_base: "{base}"
      api_key: sk-any
  - model_name: "anthropic/*"
    litellm_params:
      model: "anthropic/*"
      api_base: "{base}"
      api_key: sk-ant-test
    model_info:
      access_groups: ["claude-models"]
  - model_name: "claude-3-5-*"
    litellm_params:
      model: "anthropic/claude-3-5-*"
      api_base: "{base}"
      api_key: sk-ant-test
  - model_name: fake-openai-endpoint
    litellm_params:
      model: openai/fake
      api_base: "{base}"
    model_info:
      access_groups: ["beta"]
  - model_name: tagged
    litellm_params:
      model: openai/fake
      api_base: "{base}"
      tags: ["paid"]
router_settings:
  enable_tag_filtering: true
  num_retries: 0
general_settings:
  master_key: {MASTER_KEY}
  database_url: "{database_url}"
"""


@pytest.fixture(scope="module")
def gw(log_dir, mock):
    url = f"sqlite://{log_dir / ('wildcards-' + uuid.uuid4().hex[:8] + '.db')}"
    p = start_gateway(log_dir, "wildcards", config(mock.url, url))
    yield p
    p.stop()


def client(gw, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=gw.url + "/v1", max_retries=0, timeout=10)


def new_key(gw, models: list[str]) -> str:
    r = requests.post(gw.url + "/key/generate", headers=ADMIN, json={"models": models}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["key"]


def ask(c: openai.OpenAI, model: str, **extra):
    return c.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], **extra)


def test_provider_wildcard_catch_all_and_prefix(gw):
    c = client(gw)
    # `anthropic/*`: translated to Anthropic's format, the answer named as asked.
    r = ask(c, "anthropic/claude-3-opus-20240229")
    assert r.model == "anthropic/claude-3-opus-20240229"
    assert r.choices[0].message.content
    # The prefix pattern wins over `*` for a bare Claude name.
    r = ask(c, "claude-3-5-sonnet-20240620")
    assert r.choices[0].message.content
    assert r.model == "claude-3-5-sonnet-20240620"
    # `*` with `model: "*"`: the requested name names its provider (OpenAI's format here).
    r = ask(c, "openai/whatever-model")
    assert r.model == "openai/whatever-model"
    chunks = list(ask(c, "gpt-4o-mini", stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    # A name no provider claims is the client's error, in LiteLLM's words.
    with pytest.raises(openai.BadRequestError) as e:
        ask(c, "mystery-model")
    assert "LLM Provider NOT provided" in str(e.value)


def test_models_are_listed_per_key(gw):
    ids = {m.id for m in client(gw).models.list()}
    assert "anthropic/claude-3-5-sonnet-20240620" in ids
    assert "fake-openai-endpoint" in ids
    assert "*" in ids  # a catch-all cannot be expanded: listed as it is

    key = new_key(gw, ["anthropic/*"])
    ids = {m.id for m in client(gw, key).models.list()}
    assert ids and all(i.startswith("anthropic/") for i in ids), ids
    assert ask(client(gw, key), "anthropic/claude-3-haiku-20240307").choices
    with pytest.raises(openai.AuthenticationError) as e:
        ask(client(gw, key), "gpt-4o")
    assert "not allowed to access model" in str(e.value)

    key = new_key(gw, ["beta"])
    assert [m.id for m in client(gw, key).models.list()] == ["fake-openai-endpoint"]
    assert ask(client(gw, key), "fake-openai-endpoint").choices
    r = requests.get(
        gw.url + "/v1/models?only_model_access_groups=True", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert [m["id"] for m in r.json()["data"]] == ["beta"]
    r = requests.get(gw.url + "/model_group/info", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    assert [g["model_group"] for g in r.json()["data"]] == ["fake-openai-endpoint"]


def test_tags_route_and_refuse(gw):
    c = client(gw)
    r = ask(c, "tagged", extra_body={"metadata": {"tags": ["paid"]}})
    assert r.choices[0].message.content
    with pytest.raises(openai.BadRequestError) as e:
        ask(c, "tagged", extra_body={"metadata": {"tags": ["gold"]}})
    assert "Not allowed to access model due to tags configuration" in str(e.value)
