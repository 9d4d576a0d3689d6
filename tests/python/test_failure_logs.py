"""Failed calls in the spend logs, as LiteLLM writes them: a call the provider refuses becomes a
row with status `failure`, nothing billed, the deployment it tried, the caller's key, user, end
user and tags, and `metadata.error_information` (status, exception class, provider, message).
`/spend/logs?status=failure` finds it and `/user/daily/activity` counts it as a failed request.
On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import uuid

import openai
import pytest

from conftest import render_config
from manage import BATCH_WRITE_S, MASTER_KEY, PRICES, admin, gateway_on, generate
from test_spend_reports import DATES, eventually, get, logs

# The upstream's key: it must never reach a row.
UPSTREAM_KEY = "sk-upstream-" + uuid.uuid4().hex


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gw(request, log_dir, mock):
    def config(database_url: str) -> str:
        params = {"api_base": mock.url + "/", "api_key": UPSTREAM_KEY, **PRICES}
        models = [
            ("working", {"model": "openai/any", **params}),
            # The mock answers this model with 429 (LiteLLM's RateLimitError).
            ("throttled", {"model": "openai/429", **params}),
        ]
        general = {"master_key": MASTER_KEY, "database_url": database_url, "proxy_batch_write_at": BATCH_WRITE_S}
        return render_config(models, general, {"num_retries": 0})

    yield from gateway_on(request.param, log_dir, "failure-logs", config)


def test_a_failed_call_is_logged_and_counted_as_failed(gw, mock):
    user = f"user-{uuid.uuid4().hex[:8]}"
    assert admin(gw, "POST", "/user/new", json={"user_id": user}).status_code == 200
    key = generate(gw, user_id=user)
    client = openai.OpenAI(api_key=key["key"], base_url=gw.url + "/v1", max_retries=0)
    messages = [{"role": "user", "content": "hi"}]

    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(
            model="throttled", messages=messages, user="customer-1", extra_body={"metadata": {"tags": ["nightly"]}}
        )
    call_id = refused.value.response.headers["x-litellm-call-id"]
    client.chat.completions.create(model="working", messages=messages)

    failed = eventually(
        lambda: logs(gw, user_id=user, status="failure"), lambda rows: len(rows) == 1, "the failure's row"
    )
    [row] = failed
    assert row["request_id"] == call_id
    assert row["status"] == "failure"
    assert (row["spend"], row["total_tokens"]) == (0, 0)
    assert row["model_group"] == "throttled"
    assert row["custom_llm_provider"] == "openai"
    assert row["api_base"].rstrip("/") == mock.url.rstrip("/")
    assert row["api_key"] == key["token"]
    assert row["user"] == user
    assert row["end_user"] == "customer-1"
    assert "nightly" in row["request_tags"]
    # A refusal from the mock can come back inside one millisecond, the rows' resolution.
    assert row["startTime"] <= row["endTime"]
    error = row["metadata"]["error_information"]
    assert error["error_code"] == "429"
    assert error["error_class"] == "RateLimitError"
    assert error["llm_provider"] == "openai"
    assert error["traceback"] == ""
    assert "RateLimitError" in error["error_message"]
    assert UPSTREAM_KEY not in json.dumps(row)

    # The success has its own row, and only that one.
    succeeded = eventually(
        lambda: logs(gw, user_id=user, status="success"), lambda rows: len(rows) == 1, "the success's row"
    )
    assert "error_information" not in (succeeded[0]["metadata"] or {})
    assert len(logs(gw, user_id=user)) == 2

    # The daily aggregates count it as a failed request.
    def activity():
        r = get(gw, "/user/daily/activity", user_id=user, **DATES)
        assert r.status_code == 200, r.text
        return r.json()["metadata"]

    meta = eventually(activity, lambda m: m["total_api_requests"] == 2, "two requests in the daily activity")
    assert (meta["total_successful_requests"], meta["total_failed_requests"]) == (1, 1)

