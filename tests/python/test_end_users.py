"""End users (LiteLLM's customers: a request's `user` field) and budgets through LiteLLM's
management API, and their limits on requests, against sluice on SQLite and on PostgreSQL (the
`gw` fixture).
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import MASTER_KEY, render_config, start_gateway
from manage import ADMIN, PRICES, admin, chat, fresh_pg_database, gw, psql  # noqa: F401  (gw is a fixture)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def call_as(gw, end_user: str, model: str = "fake-openai-endpoint") -> requests.Response:
    return chat(gw, MASTER_KEY, model=model, user=end_user)


def test_budget_crud(gw):
    bid = uid("tier")
    r = admin(gw, "POST", "/budget/new", json={"budget_id": bid, "max_budget": 5, "rpm_limit": 10, "budget_duration": "30d"})
    assert r.status_code == 200, r.text
    b = r.json()
    assert (b["budget_id"], b["max_budget"], b["rpm_limit"], b["tpm_limit"]) == (bid, 5.0, 10, None)
    assert b["budget_duration"] == "30d" and b["budget_reset_at"], b
    assert b["created_by"] == "default_user_id"

    r = admin(gw, "POST", "/budget/new", json={"budget_id": bid})
    assert r.status_code == 400 and f"Budget with id '{bid}' already exists." in r.text, r.text
    r = admin(gw, "POST", "/budget/new", json={"max_budget": -1})
    assert r.status_code == 400 and "non-negative" in r.text, r.text
    # No id: one is made.
    auto = admin(gw, "POST", "/budget/new", json={"tpm_limit": 100}).json()["budget_id"]
    assert len(auto) >= 32

    r = admin(gw, "POST", "/budget/update", json={"budget_id": bid, "rpm_limit": 20, "max_budget": None})
    assert r.status_code == 200, r.text
    assert (r.json()["rpm_limit"], r.json()["max_budget"]) == (20, None)
    r = admin(gw, "POST", "/budget/update", json={"budget_id": uid("nope"), "rpm_limit": 1})
    assert r.status_code == 404, r.text
    r = admin(gw, "POST", "/budget/update", json={"rpm_limit": 1})
    assert r.status_code == 400 and "budget_id is required" in r.text

    r = admin(gw, "POST", "/budget/info", json={"budgets": [bid, "missing"]})
    assert r.status_code == 200 and [x["budget_id"] for x in r.json()] == [bid], r.text
    assert admin(gw, "POST", "/budget/info", json={"budgets": []}).status_code == 400
    listed = {x["budget_id"] for x in admin(gw, "GET", "/budget/list").json()}
    assert {bid, auto} <= listed

    r = admin(gw, "GET", "/budget/settings", params={"budget_id": bid})
    assert r.status_code == 200, r.text
    settings = {x["field_name"]: x for x in r.json()}
    assert settings["rpm_limit"]["field_value"] == 20 and settings["rpm_limit"]["field_type"] == "Integer"
    assert settings["budget_duration"]["field_value"] == "30d"

    r = admin(gw, "POST", "/budget/delete", json={"id": auto})
    assert r.status_code == 200 and r.json()["budget_id"] == auto, r.text
    assert admin(gw, "POST", "/budget/delete", json={"id": auto}).status_code == 404
    assert auto not in {x["budget_id"] for x in admin(gw, "GET", "/budget/list").json()}

    # Non-admin keys are refused.
    key = admin(gw, "POST", "/key/generate", json={}).json()["key"]
    r = requests.get(gw.url + "/budget/list", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 401, r.text


def test_end_user_crud_under_both_prefixes(gw):
    for prefix in ("/end_user", "/customer"):
        eid = uid("cust")
        r = admin(gw, "POST", f"{prefix}/new", json={"user_id": eid, "alias": "Acme", "max_budget": 3, "rpm_limit": 7, "budget_duration": "1d"})
        assert r.status_code == 200, r.text
        e = r.json()
        assert (e["user_id"], e["alias"], e["blocked"], e["spend"]) == (eid, "Acme", False, 0.0)
        budget = e["litellm_budget_table"]
        # LiteLLM keeps an end user's budget fields in a budget row it names.
        assert e["budget_id"] == budget["budget_id"]
        assert (budget["max_budget"], budget["rpm_limit"], budget["budget_duration"]) == (3.0, 7, "1d")
        assert budget["budget_reset_at"]

        r = admin(gw, "POST", f"{prefix}/new", json={"user_id": eid})
        assert r.status_code == 400 and "Customer already exists" in r.text, r.text
        r = admin(gw, "POST", f"{prefix}/new", json={"user_id": uid("x"), "allowed_model_region": "mars"})
        assert r.status_code == 422, r.text
        r = admin(gw, "POST", f"{prefix}/new", json={"user_id": uid("x"), "default_model": "no-such-model"})
        assert r.status_code == 422 and "Default Model not on proxy" in r.text, r.text
        r = admin(gw, "POST", f"{prefix}/new", json={"user_id": uid("x"), "budget_id": uid("missing")})
        assert r.status_code == 404, r.text

        r = admin(gw, "GET", f"{prefix}/info", params={"end_user_id": eid})
        assert r.status_code == 200 and r.json()["litellm_budget_table"]["rpm_limit"] == 7, r.text
        r = admin(gw, "GET", f"{prefix}/info", params={"end_user_id": uid("nobody")})
        assert r.status_code == 404 and "does not exist in db" in r.text, r.text

        r = admin(
            gw,
            "POST",
            f"{prefix}/update",
            json={"user_id": eid, "alias": "Acme 2", "rpm_limit": 9, "allowed_model_region": "eu", "default_model": "other-model"},
        )
        assert r.status_code == 200, r.text
        e2 = r.json()
        assert (e2["alias"], e2["allowed_model_region"], e2["default_model"]) == ("Acme 2", "eu", "other-model")
        # The same budget row, changed.
        assert e2["budget_id"] == e["budget_id"] and e2["litellm_budget_table"]["rpm_limit"] == 9
        assert admin(gw, "POST", f"{prefix}/update", json={"user_id": uid("nobody"), "alias": "x"}).status_code == 404

        assert eid in {x["user_id"] for x in admin(gw, "GET", f"{prefix}/list").json()}

        r = admin(gw, "POST", f"{prefix}/delete", json={"user_ids": [eid, uid("nobody")]})
        assert r.status_code == 404, r.text
        assert admin(gw, "GET", f"{prefix}/info", params={"end_user_id": eid}).status_code == 200, "nothing deleted"
        r = admin(gw, "POST", f"{prefix}/delete", json={"user_ids": [eid]})
        assert r.status_code == 200 and r.json()["deleted_customers"] == 1, r.text
        assert admin(gw, "GET", f"{prefix}/info", params={"end_user_id": eid}).status_code == 404


def test_a_budget_in_use_is_not_deleted_and_a_shared_budget_limits_each_end_user(gw):
    bid = uid("shared")
    assert admin(gw, "POST", "/budget/new", json={"budget_id": bid, "rpm_limit": 1}).status_code == 200
    a, b = uid("a"), uid("b")
    for e in (a, b):
        r = admin(gw, "POST", "/customer/new", json={"user_id": e, "budget_id": bid})
        assert r.status_code == 200 and r.json()["litellm_budget_table"]["rpm_limit"] == 1, r.text
    r = admin(gw, "POST", "/budget/delete", json={"id": bid})
    assert r.status_code == 400 and a in r.text, r.text
    # Each end user has its own window under the shared budget's limit.
    assert call_as(gw, a).status_code == 200
    assert call_as(gw, b).status_code == 200
    assert call_as(gw, a).status_code == 429
    # Raising the budget's limit lets them through at once.
    assert admin(gw, "POST", "/budget/update", json={"budget_id": bid, "rpm_limit": 5}).status_code == 200
    assert call_as(gw, a).status_code == 200


def test_end_user_max_budget_stops_requests(gw):
    first = call_as(gw, uid("probe"))
    assert first.status_code == 200, first.text
    cost = float(first.headers["x-litellm-response-cost"])
    eid = uid("capped")
    # Room for one request and a half: the second starts below the budget, the third cannot.
    r = admin(gw, "POST", "/end_user/new", json={"user_id": eid, "max_budget": cost * 1.5})
    assert r.status_code == 200, r.text
    codes = []
    for _ in range(4):
        r = call_as(gw, eid)
        codes.append(r.status_code)
        if r.status_code != 200:
            break
        time.sleep(0.05)
    assert codes == [200, 200, 400], codes
    err = r.json()["error"]
    assert err["type"] == "budget_exceeded", err
    assert err["message"].startswith(f"ExceededBudget: End User={eid} over budget."), err
    # Another end user is not held by it; nor is a request naming none.
    assert call_as(gw, uid("free")).status_code == 200
    assert chat(gw, MASTER_KEY).status_code == 200
    # Spend shows on the end user.
    time.sleep(1.2)
    info = admin(gw, "GET", "/end_user/info", params={"end_user_id": eid}).json()
    assert abs(info["spend"] - 2 * cost) < 1e-9, info


def test_a_budget_duration_ending_zeroes_its_end_users_spend(gw):
    cost = float(call_as(gw, uid("probe")).headers["x-litellm-response-cost"])
    eid = uid("monthly")
    # One request spends the budget; the period is 2 s, so the spend is zeroed soon after.
    r = admin(gw, "POST", "/end_user/new", json={"user_id": eid, "max_budget": cost / 2, "budget_duration": "2s"})
    assert r.status_code == 200, r.text
    first_reset = r.json()["litellm_budget_table"]["budget_reset_at"]
    assert call_as(gw, eid).status_code == 200
    time.sleep(0.2)
    assert call_as(gw, eid).status_code == 400
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and call_as(gw, eid).status_code != 200:
        time.sleep(0.25)
    assert time.monotonic() < deadline, "the budget period ended but the end user is still refused"
    # The budget's next period is scheduled.
    info = admin(gw, "GET", "/end_user/info", params={"end_user_id": eid}).json()
    assert info["litellm_budget_table"]["budget_reset_at"] > first_reset, info

def test_end_user_rpm_limit_stops_requests_with_v3s_message(gw):
    eid = uid("rpm")
    assert admin(gw, "POST", "/customer/new", json={"user_id": eid, "rpm_limit": 2}).status_code == 200
    assert [call_as(gw, eid).status_code for _ in range(2)] == [200, 200]
    r = call_as(gw, eid)
    assert r.status_code == 429, r.text
    msg = r.json()["error"]["message"]
    assert msg.startswith(f"Rate limit exceeded for end_user: {eid}. Limit type: requests. Current limit: 2, Remaining: 0."), msg
    assert r.headers["rate_limit_type"] == "requests"
    assert int(r.headers["retry-after"]) >= 1
    # Through a virtual key too: the end user's limit holds whoever calls.
    key = admin(gw, "POST", "/key/generate", json={}).json()["key"]
    assert chat(gw, key, user=eid).status_code == 429
    assert chat(gw, key, user=uid("other")).status_code == 200


def test_50_concurrent_clients_on_one_end_users_tpm_limit(gw):
    """Token limits are checked before a request and counted after its answer (LiteLLM's v3
    limiter does the same), so requests already in flight when the window fills are let through.
    With 50 clients each keeping one request in flight, every request let through was admitted
    while the window held fewer than `limit` tokens, and at most 50 (itself included) were
    uncounted then; so the tokens let through are at most `limit - 1 + 50 * per_request`, and
    at least `limit` (a client is refused only once the window holds the limit). The whole run
    is well inside the 60 s window, so nothing ages out of it."""
    probe = call_as(gw, uid("probe"))
    per_request = probe.json()["usage"]["total_tokens"]
    assert per_request > 0
    limit = per_request * 20
    eid = uid("tpm")
    assert admin(gw, "POST", "/end_user/new", json={"user_id": eid, "tpm_limit": limit}).status_code == 200

    let_through = []
    refusals = []
    lock = threading.Lock()
    start = threading.Barrier(50)
    deadline = time.monotonic() + 30

    def client():
        s = requests.Session()
        start.wait()
        while time.monotonic() < deadline:
            r = s.post(
                gw.url + "/v1/chat/completions",
                headers=ADMIN,
                json={"model": "fake-openai-endpoint", "messages": [{"role": "user", "content": "hi"}], "user": eid},
                timeout=30,
            )
            with lock:
                if r.status_code == 200:
                    let_through.append(r.json()["usage"]["total_tokens"])
                else:
                    refusals.append((r.status_code, r.json()["error"]["message"]))
                    return

    t0 = time.monotonic()
    with ThreadPoolExecutor(50) as pool:
        for f in [pool.submit(client) for _ in range(50)]:
            f.result()
    assert time.monotonic() - t0 < 40, "the run must stay inside one 60 s window"
    tokens = sum(let_through)
    assert len(refusals) == 50, f"every client ends refused: {len(refusals)}"
    assert all(code == 429 for code, _ in refusals), refusals[:3]
    assert all(f"Rate limit exceeded for end_user: {eid}. Limit type: tokens" in m for _, m in refusals), refusals[:3]
    assert tokens >= limit, (tokens, limit)
    assert tokens <= limit - 1 + 50 * per_request, (tokens, limit, per_request)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def regional(request, log_dir, mock):
    """A gateway whose `regional` group has a deployment in the EU (AWS's name for it), one in
    the US (Azure's) and one that names no region; `us-only` has only a US one. The api_base of
    each says which served (`x-litellm-model-api-base`): the mock answers under both paths."""
    if request.param == "sqlite":
        url, db = f"sqlite://{log_dir / ('regions-' + uuid.uuid4().hex[:8] + '.db')}", None
    else:
        db = fresh_pg_database()
        url = f"postgresql://root@127.0.0.1:5432/{db}"
    base = {"model": "openai/any", "api_key": "test", **PRICES}
    models = [
        ("regional", {**base, "api_base": mock.url + "/", "region_name": "eu-west-1"}),
        ("regional", {**base, "api_base": mock.url + "/v1", "region_name": "eastus2"}),
        ("regional", {**base, "api_base": mock.url + "/v1/"}),
        ("us-only", {**base, "api_base": mock.url + "/v1", "region_name": "us"}),
    ]
    cfg = render_config(models, {"master_key": MASTER_KEY, "database_url": url}, {"num_retries": 0})
    p = start_gateway(log_dir, f"regions-{request.param}", cfg)
    yield p
    p.stop()
    if db:
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def test_an_end_user_held_to_a_region_is_routed_only_there(regional, mock):
    eu, us, free = uid("eu"), uid("us"), uid("free")
    assert admin(regional, "POST", "/end_user/new", json={"user_id": eu, "allowed_model_region": "eu"}).status_code == 200
    assert admin(regional, "POST", "/customer/new", json={"user_id": us, "allowed_model_region": "us"}).status_code == 200
    assert admin(regional, "POST", "/end_user/new", json={"user_id": free}).status_code == 200

    def bases(end_user: str, n: int = 12) -> set[str]:
        seen = set()
        for _ in range(n):
            r = call_as(regional, end_user, model="regional")
            assert r.status_code == 200, r.text
            seen.add(r.headers["x-litellm-model-api-base"])
            region = r.headers.get("x-litellm-model-region")
            assert region == (None if end_user == free else end_user.split("-")[0]), (end_user, region)
        return seen

    assert bases(eu) == {mock.url + "/"}
    assert bases(us) == {mock.url + "/v1"}
    # An end user with no region (and a request naming none) may use every deployment.
    assert len(bases(free, 40)) == 3

    # No deployment of the group in the region: LiteLLM's refusal, not a deployment elsewhere.
    r = call_as(regional, eu, model="us-only")
    assert r.status_code == 400, r.text
    assert "allowed_model_region=eu" in r.json()["error"]["message"], r.text
    assert call_as(regional, us, model="us-only").status_code == 200

    # Lifting the region takes effect at once.
    r = admin(regional, "POST", "/end_user/update", json={"user_id": eu, "allowed_model_region": None})
    assert r.status_code == 200 and r.json()["allowed_model_region"] is None, r.text
    assert call_as(regional, eu, model="us-only").status_code == 200


@pytest.fixture(scope="module")
def replicas(log_dir):
    """Three replicas behind nginx sharing one PostgreSQL and one Redis."""
    from replicas import Deployment, ReplicaSet

    s = ReplicaSet(
        [Deployment("fake-openai-endpoint", extra=PRICES)],
        replicas=3,
        run_dir=log_dir / "end-user-replicas",
        general={"proxy_batch_write_at": 0.5},
        router={"num_retries": 0},
        mock_threads=2,
        num_workers=1,
    ).start()
    yield s
    s.stop()


def test_an_end_users_rpm_limit_holds_across_replicas(replicas):
    """The end user's window is shared through Redis (`end_user:<id>:rpm`): 60 requests spread
    round robin over three replicas let exactly the limit through, not three times it."""
    eid = uid("spread")
    r = requests.post(replicas.url + "/customer/new", headers=ADMIN, json={"user_id": eid, "rpm_limit": 15}, timeout=10)
    assert r.status_code == 200, r.text
    time.sleep(1.0)  # every replica learns of it within 1 s (live changes)

    def send(_):
        return requests.post(
            replicas.url + "/v1/chat/completions",
            headers=ADMIN,
            json={"model": "fake-openai-endpoint", "messages": [{"role": "user", "content": "hi"}], "user": eid},
            timeout=10,
        )

    with ThreadPoolExecutor(3) as ex:
        out = list(ex.map(send, range(60)))
    codes = [r.status_code for r in out]
    assert codes.count(200) == 15, f"admitted {codes.count(200)} of 60, want exactly 15"
    assert codes.count(429) == 45, sorted(set(codes))
    assert len({r.headers.get("x-upstream-addr") for r in out}) == 3, "nginx spread the requests over every replica"
