"""The official `openai` SDK's Responses API (`client.responses.create`, `.retrieve`, `.delete`)
through sluice: natively to an OpenAI deployment and translated through chat to an Anthropic one,
streamed and not, with function tools, `previous_response_id`, ownership per key and spend
recorded. Every upstream is `sluice mock`."""

import time

import requests
import openai
import pytest

from conftest import MASTER_KEY, MOCK_SENTENCE, render_config, start_gateway, start_mock

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
PRICE = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}


@pytest.fixture(scope="module")
def stack(log_dir):
    mock = start_mock(log_dir, "mock-responses")
    models = [
        ("gpt", {"model": "openai/gpt-4o", "api_base": mock.url + "/", "api_key": "test", **PRICE}),
        ("claude", {"model": "anthropic/claude-3-5-sonnet-20241022", "api_base": mock.url, "api_key": "sk-ant", **PRICE}),
    ]
    gw = start_gateway(log_dir, "gateway-responses", render_config(models, {"master_key": MASTER_KEY}))
    yield gw
    gw.stop()
    mock.stop()


def client(gw, key=MASTER_KEY):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def new_key(gw) -> tuple[str, str]:
    r = requests.post(gw.url + "/key/generate", headers={"Authorization": f"Bearer {MASTER_KEY}"}, json={})
    r.raise_for_status()
    return r.json()["key"], r.json()["token"]


def retrieve_soon(c, rid):
    """A translated response is written to the database just after its answer: wait for it."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return c.responses.retrieve(rid)
        except openai.NotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize("model", ["gpt", "claude"])
def test_create_whole(stack, model):
    r = client(stack).responses.create(model=model, input="Say hello", instructions="Be brief.", max_output_tokens=64)
    assert r.object == "response"
    assert r.status == "completed"
    assert r.model == model
    assert r.output_text
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.id.startswith("resp_")


@pytest.mark.parametrize("model", ["gpt", "claude"])
def test_create_streamed_event_sequence(stack, model):
    stream = client(stack).responses.create(
        model=model, input=[{"role": "user", "content": "Say hello"}], stream=True
    )
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created"
    assert kinds[1] == "response.in_progress"
    assert "response.output_item.added" in kinds
    assert "response.content_part.added" in kinds
    assert "response.output_text.delta" in kinds
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == sorted(e.sequence_number for e in events)
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = events[-1].response
    assert done.model == model
    assert done.output_text == text
    assert done.usage.output_tokens > 0
    if model == "gpt":
        assert text == MOCK_SENTENCE


@pytest.mark.parametrize("model", ["gpt", "claude"])
def test_stream_helper_accumulates(stack, model):
    with client(stack).responses.stream(model=model, input="Say hello") as s:
        for _ in s:
            pass
        final = s.get_final_response()
    assert final.status == "completed"
    assert final.output_text


@pytest.mark.parametrize("model", ["gpt", "claude"])
def test_function_tools_and_their_calls(stack, model):
    c = client(stack)
    r = c.responses.create(model=model, input="Please use the tool for Paris", tools=TOOLS)
    calls = [o for o in r.output if o.type == "function_call"]
    assert calls, r.output
    assert calls[0].name == "get_weather"
    if model == "claude":
        nxt = c.responses.create(
            model=model,
            previous_response_id=r.id,
            tools=TOOLS,
            input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}],
        )
        assert nxt.status == "completed"
    stream = c.responses.create(model=model, input="use the tool", tools=TOOLS, stream=True)
    events = list(stream)
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert done and done[0].arguments


def test_translated_conversation_get_delete_and_ownership(stack):
    alice_key, alice_token = new_key(stack)
    bob_key, _ = new_key(stack)
    alice, bob = client(stack, alice_key), client(stack, bob_key)
    first = alice.responses.create(model="claude", input="My name is Ada.")
    second = alice.responses.create(model="claude", input="What is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    got = retrieve_soon(alice, first.id)
    assert got.id == first.id and got.output_text == first.output_text
    # Another key: as if it did not exist.
    with pytest.raises(openai.NotFoundError):
        bob.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.create(model="claude", input="x", previous_response_id=first.id)
    alice.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        alice.responses.retrieve(first.id)
    # Spend recorded for the key, as LiteLLM's `aresponses`.
    deadline = time.monotonic() + 15
    while True:
        rows = requests.get(
            stack.url + "/spend/logs",
            params={"api_key": alice_token, "summarize": "false"},
            headers={"Authorization": f"Bearer {MASTER_KEY}"},
        ).json()
        if len(rows) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(rows) == 2, rows
    assert all(r["call_type"] == "aresponses" and r["spend"] > 0 for r in rows), rows


def test_native_get_delete_and_previous_response_id(stack):
    c = client(stack)
    first = c.responses.create(model="gpt", input="hi")
    got = c.responses.retrieve(first.id)
    assert got.id == first.id
    c.responses.delete(first.id)
    nxt = c.responses.create(model="gpt", input="again", previous_response_id=first.id)
    # The upstream saw its own id (the mock echoes it): not the wrapped one the client holds.
    assert nxt.previous_response_id and nxt.previous_response_id != first.id


def test_bad_input_is_a_400_in_litellm_envelope(stack):
    c = client(stack)
    with pytest.raises(openai.BadRequestError) as e:
        c.responses.create(model="claude", input="x", tools=[{"type": "web_search_preview"}])
    assert e.value.param == "tools"
    with pytest.raises(openai.BadRequestError):
        c.responses.create(model="no-such-model", input="x")
    with pytest.raises(openai.NotFoundError):
        c.responses.create(model="claude", input="x", previous_response_id="resp_missing")
