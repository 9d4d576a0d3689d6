"""OpenAI's Files and Batches APIs through sluice with the official `openai` SDK, against an
OpenAI-compatible and an Azure deployment on `sluice mock`: uploads streamed (and stopped with
LiteLLM's 413 when they pass `max_request_size_mb`, without the upstream getting them whole),
files and batches owned by the key that made them (another key gets 404; the master key sees
all), each call logged with LiteLLM's call type, a completed batch billed for its answers once,
at the deployment's batch prices (half its token prices without them).
And `/v1/messages/count_tokens` with the official `anthropic` SDK: forwarded to an Anthropic
deployment, counted locally for others."""

import io
import json
import time

import anthropic
import openai
import pytest
import requests

from conftest import MASTER_KEY, render_config, start_gateway, start_mock

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
PRICE = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}
# A deployment's own batch prices, unlike half its token prices so the test tells them apart.
BATCH_PRICE = {"input_cost_per_token_batches": 0.0003, "output_cost_per_token_batches": 0.0007}
# The mock's usage for each answer in a batch's output (crates/mock/src/files.rs).
BATCH_PROMPT, BATCH_COMPLETION = 10, 20


@pytest.fixture(scope="module")
def gw(log_dir):
    mock = start_mock(log_dir, "mock-files")
    models = [
        ("gpt", {"model": "openai/gpt-4o-mini", "api_base": mock.url + "/v1", "api_key": "sk-up", **PRICE, **BATCH_PRICE}),
        ("azure-gpt", {"model": "azure/gpt-dep", "api_base": mock.url, "api_key": "az-up", "api_version": "2024-07-01-preview", **PRICE}),
        ("claude", {"model": "anthropic/claude-3-5-sonnet-20241022", "api_base": mock.url, "api_key": "sk-ant"}),
        ("gpt35", {"model": "openai/gpt-3.5-turbo", "api_base": mock.url + "/v1", "api_key": "sk-up"}),
    ]
    general = {"master_key": MASTER_KEY, "max_request_size_mb": 1}
    g = start_gateway(log_dir, "gateway-files", render_config(models, general))
    g.mock = mock
    yield g
    g.stop()
    mock.stop()


def new_key(gw, **limits):
    r = requests.post(gw.url + "/key/generate", headers=ADMIN, json=limits, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["key"], r.json()["token"]


def client(gw, key):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def batch_input(n=3):
    lines = [
        {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"hi {i}"}]}}
        for i in range(n)
    ]
    return ("requests.jsonl", io.BytesIO("".join(json.dumps(l) + "\n" for l in lines).encode()))


def spend_rows(gw, token, count):
    deadline = time.monotonic() + 15
    while True:
        rows = requests.get(gw.url + "/spend/logs", params={"api_key": token, "summarize": "false"}, headers=ADMIN).json()
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


# target_model_names as an extra form field / query (LiteLLM's), or custom_llm_provider.
ROUTES = {
    "openai": {"extra_body": {"custom_llm_provider": "openai"}, "extra_query": {}},
    "azure": {"extra_body": {"target_model_names": "azure-gpt"}, "extra_query": {"target_model_names": "azure-gpt"}},
}


@pytest.mark.parametrize("route", ["openai", "azure"])
def test_files_round_trip_through_the_sdk(gw, route):
    key, token = new_key(gw)
    c = client(gw, key)
    extra = ROUTES[route]
    f = c.files.create(file=batch_input(), purpose="batch", extra_body=extra["extra_body"])
    assert f.id.startswith("file-") and f.purpose == "batch" and f.filename == "requests.jsonl"
    got = c.files.retrieve(f.id)
    assert got.id == f.id and got.bytes == f.bytes
    assert [x.id for x in c.files.list(extra_query=extra["extra_query"])] == [f.id]
    content = c.files.content(f.id).read()
    assert content.decode().splitlines()[0].startswith('{"custom_id": "r0"')
    assert c.files.delete(f.id).deleted
    with pytest.raises(openai.NotFoundError):
        c.files.retrieve(f.id)
    types = sorted(r["call_type"] for r in spend_rows(gw, token, 5))
    assert types == ["acreate_file", "afile_content", "afile_delete", "afile_list", "afile_retrieve"]


@pytest.mark.parametrize("route", ["openai", "azure"])
def test_batches_complete_and_are_billed_once(gw, route):
    key, token = new_key(gw)
    c = client(gw, key)
    f = c.files.create(file=batch_input(3), purpose="batch", extra_body=ROUTES[route]["extra_body"])
    b = c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert b.id.startswith("batch_") and b.status == "validating" and b.input_file_id == f.id
    done = c.batches.retrieve(b.id)
    assert done.status == "completed" and done.request_counts.completed == 3
    # The output file is the batch owner's to read.
    answers = [json.loads(l) for l in c.files.content(done.output_file_id).read().decode().splitlines()]
    assert [a["custom_id"] for a in answers] == ["r0", "r1", "r2"]
    assert c.batches.retrieve(b.id).status == "completed"
    assert [x.id for x in c.batches.list()] == [b.id]
    rows = spend_rows(gw, token, 6)
    retrieves = [r for r in rows if r["call_type"] == "aretrieve_batch"]
    assert len(retrieves) == 2, rows
    billed = sorted(r["spend"] for r in retrieves)
    if route == "openai":
        # The deployment's batch prices, as LiteLLM's `batch_cost_calculator` takes them.
        per_answer = BATCH_PROMPT * BATCH_PRICE["input_cost_per_token_batches"] + BATCH_COMPLETION * BATCH_PRICE["output_cost_per_token_batches"]
    else:
        # No batch prices (azure/gpt-dep is in no price map): half the token prices, LiteLLM's rule.
        per_answer = (BATCH_PROMPT * PRICE["input_cost_per_token"] + BATCH_COMPLETION * PRICE["output_cost_per_token"]) / 2
    assert billed[0] == 0 and billed[1] == pytest.approx(3 * per_answer)
    assert sorted(r["prompt_tokens"] for r in retrieves) == [0, 3 * BATCH_PROMPT]
    assert {r["call_type"] for r in rows} >= {"acreate_file", "acreate_batch", "aretrieve_batch", "afile_content", "alist_batches"}


def test_a_batch_can_be_cancelled(gw):
    key, _ = new_key(gw)
    c = client(gw, key)
    f = c.files.create(file=batch_input(1), purpose="batch")
    b = c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert c.batches.cancel(b.id).status == "cancelled"


def test_another_key_cannot_see_the_first_keys_objects(gw):
    key_a, _ = new_key(gw)
    key_b, _ = new_key(gw)
    a, b = client(gw, key_a), client(gw, key_b)
    f = a.files.create(file=batch_input(1), purpose="batch")
    batch = a.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    for call in (lambda: b.files.retrieve(f.id), lambda: b.files.content(f.id), lambda: b.files.delete(f.id),
                 lambda: b.batches.retrieve(batch.id), lambda: b.batches.cancel(batch.id),
                 lambda: b.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")):
        with pytest.raises(openai.NotFoundError) as e:
            call()
        assert e.value.body["message"].startswith("No such"), e.value.body
    assert f.id not in [x.id for x in b.files.list()]
    assert batch.id not in [x.id for x in b.batches.list()]
    # The owner still has them, and the master key sees them too.
    assert a.files.retrieve(f.id).id == f.id
    admin = client(gw, MASTER_KEY)
    assert admin.files.retrieve(f.id).id == f.id
    assert f.id in [x.id for x in admin.files.list()]


def mock_file_count(gw):
    return len(requests.get(gw.mock.url + "/v1/files", timeout=10).json()["data"])


def test_an_oversized_upload_gets_litellms_413_without_reaching_the_upstream_whole(gw):
    key, _ = new_key(gw)
    before = mock_file_count(gw)
    # The SDK sends a length: refused before anything goes up.
    with pytest.raises(openai.APIStatusError) as e:
        client(gw, key).files.create(file=("big.jsonl", io.BytesIO(b"x" * (2 * 1024 * 1024))), purpose="batch")
    assert e.value.status_code == 413
    assert "Request size is too large" in e.value.body["message"] and "Max size is 1.00 MB" in e.value.body["message"]
    # Without a length (chunked), the limit is found while the upload streams: the upstream's
    # request is cut off, and it keeps nothing.
    cut_before = requests.get(gw.mock.url + "/mock/stats").json()["uploads_cut_off"]
    boundary = "sluice-test-boundary"

    def body():
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
               f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jsonl\"\r\n\r\n").encode()
        for _ in range(40):
            yield b"y" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    r = requests.post(gw.url + "/v1/files", data=body(), timeout=30,
                      headers={"Authorization": f"Bearer {key}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413, r.text
    err = r.json()["error"]
    assert "Request size is too large" in err["message"] and err["type"] == "bad_request_error"
    assert mock_file_count(gw) == before
    deadline = time.monotonic() + 5
    while requests.get(gw.mock.url + "/mock/stats").json()["uploads_cut_off"] == cut_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert requests.get(gw.mock.url + "/mock/stats").json()["uploads_cut_off"] == cut_before + 1


def test_files_calls_are_limited_like_chat(gw):
    key, _ = new_key(gw, rpm_limit=2)
    c = client(gw, key)
    c.files.create(file=batch_input(1), purpose="batch")
    f = c.files.create(file=batch_input(1), purpose="batch")
    with pytest.raises(openai.RateLimitError):
        c.files.retrieve(f.id)


def test_bad_requests_get_the_envelope(gw):
    key, _ = new_key(gw)
    h = {"Authorization": f"Bearer {key}"}
    r = requests.post(gw.url + "/v1/files", headers=h, json={"purpose": "batch"})
    assert r.status_code == 400 and "multipart/form-data" in r.json()["error"]["message"]
    r = requests.post(gw.url + "/v1/files", headers=h, files={"file": ("a.jsonl", b"{}")},
                      data={"purpose": "batch", "target_model_names": "no-such-model"})
    assert r.status_code == 400 and "no-such-model" in r.json()["error"]["message"]
    r = requests.post(gw.url + "/v1/batches", headers=h, json={"endpoint": "/v1/chat/completions"})
    assert r.status_code == 400 and "input_file_id" in r.json()["error"]["message"]
    r = requests.get(gw.url + "/v1/files/file-unknown", headers=h)
    assert r.status_code == 404 and r.json()["error"]["message"] == "No such File object: file-unknown"
    assert requests.get(gw.url + "/v1/files", headers={"Authorization": "Bearer sk-wrong"}).status_code == 401


def test_count_tokens_forwarded_to_anthropic_and_counted_locally_for_others(gw):
    key, _ = new_key(gw)
    c = anthropic.Anthropic(api_key=key, base_url=gw.url, max_retries=0)
    messages = [{"role": "user", "content": "Hello world"}]
    seen = requests.get(gw.mock.url + "/mock/stats").json()["by_route"]["anthropic"]
    upstream = c.messages.count_tokens(model="claude", messages=messages)
    assert upstream.input_tokens > 0
    assert requests.get(gw.mock.url + "/mock/stats").json()["by_route"]["anthropic"] == seen + 1
    # cl100k, the cookbook's overhead: 3 + 3 per message + "user" (1) + "Hello world" (2).
    local = c.messages.count_tokens(model="gpt35", messages=messages)
    assert local.input_tokens == 9
    assert requests.get(gw.mock.url + "/mock/stats").json()["by_route"]["anthropic"] == seen + 1
    with pytest.raises(anthropic.BadRequestError):
        c.messages.count_tokens(model="no-such-model", messages=messages)
