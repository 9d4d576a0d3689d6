"""Spend reports LiteLLM's dashboards and spend scripts call, against sluice on SQLite and on
PostgreSQL: `/spend/logs?request_id=` by the answer's id and by the call id, request tags in the
spend log and `/spend/tags`, `/global/spend/report` grouped by team, customer and key, and
`/user/daily/activity` / `/team/daily/activity` (LiteLLM's `SpendAnalyticsPaginatedResponse`)
with numbers matching the requests made.

Each test makes its own keys, users and teams and filters the reports by them, so the tests of
one module share a gateway without seeing each other's rows.
"""

from __future__ import annotations

import datetime
import json
import time
import uuid

import pytest
import requests

from manage import ADMIN, admin, chat, generate, gw  # noqa: F401  (gw is a fixture)

TODAY = datetime.datetime.now(datetime.timezone.utc).date()
# A request made just before midnight UTC is dated the day before: the range covers both.
DATES = {"start_date": str(TODAY - datetime.timedelta(days=1)), "end_date": str(TODAY + datetime.timedelta(days=1))}


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def eventually(fetch, ok, what: str, timeout: float = 10.0):
    """`fetch()` until `ok(result)`: spend is written every half second, off the request path."""
    deadline = time.monotonic() + timeout
    while True:
        got = fetch()
        if ok(got):
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still {got!r} after {timeout} s")
        time.sleep(0.2)


def get(gw, path: str, headers=ADMIN, **params) -> requests.Response:
    return requests.get(gw.url + path, headers=headers, params=params, timeout=10)


def ok_chat(gw, key: str, **extra) -> requests.Response:
    r = chat(gw, key, **extra)
    assert r.status_code == 200, r.text
    return r


def cost(r: requests.Response) -> float:
    return float(r.headers["x-litellm-response-cost"])


def logs(gw, **params) -> list:
    r = get(gw, "/spend/logs", summarize="false", **params)
    assert r.status_code == 200, r.text
    return r.json()


def test_request_id_finds_a_call_by_its_answer_id_and_its_call_id(gw):
    key = generate(gw)["key"]
    r = ok_chat(gw, key)
    answer_id, call_id = r.json()["id"], r.headers["x-litellm-call-id"]
    assert answer_id and answer_id != call_id
    rows = eventually(lambda: logs(gw, request_id=answer_id), lambda rows: len(rows) == 1, "the row by answer id")
    assert rows[0]["response_id"] == answer_id
    assert rows[0]["request_id"] == call_id
    assert [row["request_id"] for row in logs(gw, request_id=call_id)] == [call_id]
    assert logs(gw, request_id="chatcmpl-" + uuid.uuid4().hex) == []

    # A stream's id is its chunks' id.
    with requests.post(
        gw.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "fake-openai-endpoint", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        stream=True,
        timeout=10,
    ) as s:
        assert s.status_code == 200, s.text
        stream_call = s.headers["x-litellm-call-id"]
        lines = [line for line in s.iter_lines() if line.startswith(b"data: {")]
    stream_id = json.loads(lines[0][len(b"data: ") :])["id"]
    rows = eventually(lambda: logs(gw, request_id=stream_id), lambda rows: len(rows) == 1, "the stream's row")
    assert rows[0]["request_id"] == stream_call


def test_a_responses_call_is_found_by_the_id_its_client_got(gw):
    key = generate(gw)["key"]
    r = requests.post(
        gw.url + "/v1/responses",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "fake-openai-endpoint", "input": "hi"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    # The id names the deployment too (sluice wraps it, as LiteLLM does): that is the one logged.
    rid = r.json()["id"]
    rows = eventually(lambda: logs(gw, request_id=rid), lambda rows: len(rows) == 1, "the Response's row")
    assert rows[0]["response_id"] == rid
    assert rows[0]["request_id"] == r.headers["x-litellm-call-id"]


def test_spend_logs_are_paged_newest_first(gw):
    body = generate(gw)
    for _ in range(3):
        ok_chat(gw, body["key"])
    token = body["token"]
    eventually(lambda: logs(gw, api_key=token), lambda rows: len(rows) == 3, "three rows")
    first = logs(gw, api_key=token, page_size=2)
    second = logs(gw, api_key=token, page_size=2, page=2)
    assert len(first) == 2 and len(second) == 1
    assert first[0]["startTime"] >= first[1]["startTime"] >= second[0]["startTime"]
    r = get(gw, "/spend/logs", page_size=0)
    assert r.status_code == 422 and "page_size" in r.text


def test_request_key_and_team_tags_are_logged_and_summed(gw):
    req_tag, key_tag, team_tag = uid("req"), uid("key"), uid("team")
    team = admin(gw, "POST", "/team/new", json={"metadata": {"tags": [team_tag]}}).json()["team_id"]
    body = generate(gw, team_id=team, metadata={"tags": [key_tag]})
    a = ok_chat(gw, body["key"], metadata={"tags": [req_tag]})
    b = ok_chat(gw, body["key"], tags=[req_tag, "x-" + req_tag])
    rows = eventually(lambda: logs(gw, api_key=body["token"]), lambda rows: len(rows) == 2, "two tagged rows")
    by_id = {row["request_id"]: row["request_tags"] for row in rows}
    assert by_id[a.headers["x-litellm-call-id"]] == [req_tag, key_tag, team_tag]
    assert by_id[b.headers["x-litellm-call-id"]] == [req_tag, "x-" + req_tag, key_tag, team_tag]

    r = get(gw, "/spend/tags", **DATES)
    assert r.status_code == 200, r.text
    tags = {t["individual_request_tag"]: t for t in r.json()}
    assert tags[req_tag]["log_count"] == 2
    assert tags[req_tag]["total_spend"] == pytest.approx(cost(a) + cost(b))
    assert tags["x-" + req_tag]["log_count"] == 1
    assert tags[team_tag]["total_spend"] == pytest.approx(cost(a) + cost(b))
    # Another range holds none of them.
    r = get(gw, "/spend/tags", start_date="2001-01-01", end_date="2001-01-02")
    assert r.status_code == 200 and r.json() == []
    # Admin only.
    assert get(gw, "/spend/tags", headers={"Authorization": f"Bearer {body['key']}"}).status_code == 401


def test_global_spend_report_by_team_customer_and_key(gw):
    alias = uid("alias")
    team = admin(gw, "POST", "/team/new", json={"team_alias": alias}).json()["team_id"]
    body = generate(gw, team_id=team)
    customer = uid("customer")
    made = [
        ok_chat(gw, body["key"], user=customer),
        ok_chat(gw, body["key"], user=customer),
        ok_chat(gw, body["key"], model="other-model"),
    ]
    total = sum(cost(r) for r in made)
    tokens = sum(r.json()["usage"]["total_tokens"] for r in made)

    def report(**params):
        r = get(gw, "/global/spend/report", **DATES, **params)
        assert r.status_code == 200, r.text
        return r.json()

    def team_total(days):
        return sum(t["total_spend"] for d in days for t in d["teams"])

    days = eventually(lambda: report(group_by="team", team_id=team), lambda d: team_total(d) >= total * 0.999, "team")
    assert all(d["group_by_day"].endswith("T00:00:00+00:00") for d in days)
    teams = [t for d in days for t in d["teams"]]
    assert {t["team_name"] for t in teams} == {alias}
    assert team_total(days) == pytest.approx(total)
    assert sum(m["total_tokens"] for t in teams for m in t["metadata"]) == tokens
    assert len({m["model"] for t in teams for m in t["metadata"]}) >= 1

    days = report(group_by="customer", customer_id=customer)
    customers = [c for d in days for c in d["customers"]]
    assert {c["customer"] for c in customers} == {customer}
    assert sum(c["total_spend"] for c in customers) == pytest.approx(cost(made[0]) + cost(made[1]))

    keys = report(group_by="api_key", api_key=body["token"])
    assert [k["api_key"] for k in keys] == [body["token"]]
    assert keys[0]["total_cost"] == pytest.approx(total)
    assert keys[0]["total_input_tokens"] == sum(r.json()["usage"]["prompt_tokens"] for r in made)
    assert keys[0]["total_output_tokens"] == sum(r.json()["usage"]["completion_tokens"] for r in made)
    assert sum(m["total_cost"] for m in keys[0]["model_details"]) == pytest.approx(total)

    assert get(gw, "/global/spend/report", group_by="team").status_code == 400
    assert get(gw, "/global/spend/report", group_by="model", **DATES).status_code == 400


METRICS = {
    "spend",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "api_requests",
    "successful_requests",
    "failed_requests",
}


def test_user_daily_activity_matches_the_requests(gw):
    user = uid("user")
    assert admin(gw, "POST", "/user/new", json={"user_id": user}).status_code == 200
    alias = uid("key")
    body = generate(gw, user_id=user, key_alias=alias)
    made = [ok_chat(gw, body["key"]) for _ in range(3)]
    total = sum(cost(r) for r in made)

    def activity(headers=ADMIN, **params):
        r = get(gw, "/user/daily/activity", headers=headers, **DATES, **params)
        assert r.status_code == 200, r.text
        return r.json()

    out = eventually(
        lambda: activity(user_id=user), lambda o: o["metadata"]["total_api_requests"] == 3, "three requests"
    )
    meta = out["metadata"]
    assert meta["total_spend"] == pytest.approx(total)
    assert meta["total_prompt_tokens"] == sum(r.json()["usage"]["prompt_tokens"] for r in made)
    assert meta["total_completion_tokens"] == sum(r.json()["usage"]["completion_tokens"] for r in made)
    assert meta["total_tokens"] == meta["total_prompt_tokens"] + meta["total_completion_tokens"]
    assert (meta["total_successful_requests"], meta["total_failed_requests"]) == (3, 0)
    assert (meta["page"], meta["total_pages"], meta["has_more"]) == (1, 1, False)
    [day] = out["results"]
    assert set(day["metrics"]) == METRICS
    assert day["metrics"]["api_requests"] == 3
    breakdown = day["breakdown"]
    assert set(breakdown) >= {"models", "model_groups", "providers", "api_keys", "entities"}
    assert breakdown["model_groups"]["fake-openai-endpoint"]["metrics"]["spend"] == pytest.approx(total)
    assert breakdown["providers"]["openai"]["metrics"]["api_requests"] == 3
    key = breakdown["api_keys"][body["token"]]
    assert key["metadata"]["key_alias"] == alias
    assert key["metrics"]["spend"] == pytest.approx(total)
    assert breakdown["entities"][user]["metrics"]["api_requests"] == 3

    # The user's own key sees its own activity, and is refused anyone else's.
    own = {"Authorization": f"Bearer {body['key']}"}
    assert activity(headers=own)["metadata"]["total_api_requests"] == 3
    r = get(gw, "/user/daily/activity", headers=own, user_id="someone-else", **DATES)
    assert r.status_code == 403, r.text
    # Both dates are required.
    assert get(gw, "/user/daily/activity", start_date=str(TODAY)).status_code == 400


def test_team_daily_activity_pages_and_stays_within_the_team(gw):
    team = admin(gw, "POST", "/team/new", json={}).json()["team_id"]
    other = admin(gw, "POST", "/team/new", json={}).json()["team_id"]
    body = generate(gw, team_id=team)
    a = ok_chat(gw, body["key"])
    b = ok_chat(gw, body["key"], model="other-model")
    ok_chat(gw, generate(gw, team_id=other)["key"])

    def activity(headers=ADMIN, **params):
        r = get(gw, "/team/daily/activity", headers=headers, **DATES, **params)
        assert r.status_code == 200, r.text
        return r.json()

    out = eventually(
        lambda: activity(team_ids=team), lambda o: o["metadata"]["total_api_requests"] == 2, "the team's requests"
    )
    assert out["metadata"]["total_spend"] == pytest.approx(cost(a) + cost(b))
    [day] = out["results"]
    assert set(day["breakdown"]["entities"]) == {team}
    assert set(day["breakdown"]["model_groups"]) == {"fake-openai-endpoint", "other-model"}
    # Both teams at once.
    both = eventually(
        lambda: activity(team_ids=f"{team},{other}"), lambda o: o["metadata"]["total_api_requests"] == 3, "both"
    )
    assert set(both["results"][0]["breakdown"]["entities"]) == {team, other}

    # One daily row per page: two pages, the second the last.
    first = activity(team_ids=team, page_size=1)
    assert (first["metadata"]["total_pages"], first["metadata"]["has_more"]) == (2, True)
    second = activity(team_ids=team, page_size=1, page=2)
    assert (second["metadata"]["page"], second["metadata"]["has_more"]) == (2, False)
    spent = first["metadata"]["total_spend"] + second["metadata"]["total_spend"]
    assert spent == pytest.approx(cost(a) + cost(b))

    # A team's key sees its own team, never another.
    own = {"Authorization": f"Bearer {body['key']}"}
    assert activity(headers=own)["metadata"]["total_api_requests"] == 2
    r = get(gw, "/team/daily/activity", headers=own, team_ids=other, **DATES)
    assert r.status_code == 403, r.text
