"""Virtual keys, users, teams, budgets and spend through LiteLLM's management API, written from
LiteLLM's documented behaviour, against sluice with its embedded SQLite database and with the
PostgreSQL server running on this machine.

Every gateway here writes spend every 0.5 s (`proxy_batch_write_at`) so tests can see rows land
without waiting LiteLLM's default 10 s.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import MASTER_KEY, render_config, start_gateway
from manage import (  # noqa: F401  (gw is a fixture)
    ADMIN,
    BATCH_WRITE_S,
    PRICES,
    admin,
    chat,
    fresh_pg_database,
    generate,
    gw,
    keys_config,
    psql,
)


def cost_of_one(gw) -> float:
    r = chat(gw, MASTER_KEY)
    assert r.status_code == 200, r.text
    return float(r.headers["x-litellm-response-cost"])


def test_generated_key_shape_and_info(gw):
    body = generate(gw, key_alias=f"alias-{uuid.uuid4().hex[:6]}", models=["fake-openai-endpoint"], metadata={"team": "x"})
    key = body["key"]
    assert key.startswith("sk-") and len(key) == 3 + 22, key
    assert body["token"] != key and len(body["token"]) == 64
    assert body["key_name"] == "sk-..." + key[-4:]
    r = admin(gw, "GET", "/key/info", params={"key": key})
    assert r.status_code == 200, r.text
    info = r.json()["info"]
    assert info["models"] == ["fake-openai-endpoint"]
    assert info["metadata"]["team"] == "x"
    assert key not in r.text.replace(f'"key":"{key}"', "").replace(f'"key": "{key}"', "")


def test_a_key_works_and_costs_show_in_the_response(gw):
    key = generate(gw)["key"]
    r = chat(gw, key)
    assert r.status_code == 200, r.text
    assert float(r.headers["x-litellm-response-cost"]) > 0


def test_unknown_key_is_refused_with_litellms_401(gw):
    r = chat(gw, "sk-" + "x" * 22)
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["type"] == "token_not_found_in_db"
    assert "x" * 10 not in err["message"]


def test_model_allow_list(gw):
    key = generate(gw, models=["fake-openai-endpoint"])["key"]
    assert chat(gw, key).status_code == 200
    r = chat(gw, key, model="other-model")
    assert r.status_code == 401, r.text
    assert r.json()["error"]["type"] == "key_model_access_denied"
    r = requests.get(gw.url + "/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert [m["id"] for m in r.json()["data"]] == ["fake-openai-endpoint"]


def test_budget_stops_the_key_and_an_update_lets_it_go_on(gw):
    cost = cost_of_one(gw)
    key = generate(gw, max_budget=cost * 2.5)["key"]
    codes = [chat(gw, key).status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200], codes
    assert codes[3:] == [400, 400], codes
    r = chat(gw, key)
    err = r.json()["error"]
    assert err["type"] == "budget_exceeded"
    assert "Budget has been exceeded! Current cost:" in err["message"]
    r = admin(gw, "POST", "/key/update", json={"key": key, "max_budget": cost * 100})
    assert r.status_code == 200, r.text
    assert chat(gw, key).status_code == 200


def test_per_model_budget(gw):
    cost = cost_of_one(gw)
    key = generate(gw, model_max_budget={"fake-openai-endpoint": {"budget_limit": cost * 1.5, "time_period": "1d"}})["key"]
    assert [chat(gw, key).status_code for _ in range(3)] == [200, 200, 400]
    assert chat(gw, key, model="other-model").status_code == 200


def test_rpm_limit_answers_429_with_retry_after(gw):
    key = generate(gw, rpm_limit=2)["key"]
    first = chat(gw, key)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-api_key-limit-requests"] == "2"
    assert chat(gw, key).status_code == 200
    r = chat(gw, key)
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert "Rate limit exceeded for api_key" in r.json()["error"]["message"]


def test_tpm_limit_counts_the_tokens_used(gw):
    first = chat(gw, MASTER_KEY).json()["usage"]["total_tokens"]
    key = generate(gw, tpm_limit=first * 2 - 1)["key"]
    codes = [chat(gw, key).status_code for _ in range(3)]
    assert codes == [200, 200, 429], codes
    r = chat(gw, key)
    assert "Limit type: tokens" in r.json()["error"]["message"]


def test_max_parallel_requests(gw):
    key = generate(gw, max_parallel_requests=1)["key"]
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(chat, gw, key, "slow")
        time.sleep(0.3)
        r = chat(gw, key)
        assert r.status_code == 429, r.text
        assert "max_parallel_requests" in r.json()["error"]["message"]
        assert slow.result().status_code == 200
    assert chat(gw, key).status_code == 200


def test_budget_duration_resets_spend(gw):
    cost = cost_of_one(gw)
    key = generate(gw, max_budget=cost * 1.5, budget_duration="2s")["key"]
    assert [chat(gw, key).status_code for _ in range(3)] == [200, 200, 400]
    deadline = time.monotonic() + 8
    while chat(gw, key).status_code != 200:
        assert time.monotonic() < deadline, "the budget did not reset after its 2 s period"
        time.sleep(0.25)


def test_block_unblock_and_delete_take_effect_at_once(gw):
    key = generate(gw)["key"]
    assert chat(gw, key).status_code == 200
    assert admin(gw, "POST", "/key/block", json={"key": key}).status_code == 200
    r = chat(gw, key)
    assert r.status_code == 401 and "blocked" in r.json()["error"]["message"]
    assert admin(gw, "POST", "/key/unblock", json={"key": key}).status_code == 200
    assert chat(gw, key).status_code == 200
    r = admin(gw, "POST", "/key/delete", json={"keys": [key]})
    assert r.status_code == 200, r.text
    assert chat(gw, key).status_code == 401


def test_expired_key(gw):
    key = generate(gw, duration="1s")["key"]
    time.sleep(1.5)
    r = chat(gw, key)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "expired_key"


def test_regenerate_replaces_the_key(gw):
    old = generate(gw, max_budget=10)["key"]
    r = admin(gw, "POST", f"/key/{old}/regenerate", json={})
    assert r.status_code == 200, r.text
    new = r.json()["key"]
    assert new != old
    assert chat(gw, new).status_code == 200
    assert chat(gw, old).status_code == 401


def test_only_admins_manage(gw):
    key = generate(gw)["key"]
    r = requests.post(
        gw.url + "/key/generate", headers={"Authorization": f"Bearer {key}"}, json={}, timeout=10
    )
    assert r.status_code in (401, 403), r.text


def test_user_with_auto_key_and_user_budget(gw):
    cost = cost_of_one(gw)
    r = admin(gw, "POST", "/user/new", json={"user_email": "a@example.com", "max_budget": cost * 1.5})
    assert r.status_code == 200, r.text
    user = r.json()
    assert user["key"].startswith("sk-")
    codes = [chat(gw, user["key"]).status_code for _ in range(3)]
    assert codes == [200, 200, 400], codes
    info = admin(gw, "GET", "/user/info", params={"user_id": user["user_id"]}).json()
    assert info["user_info"]["spend"] >= cost * 1.5


def test_team_budget_and_models_apply_to_its_keys(gw):
    cost = cost_of_one(gw)
    r = admin(gw, "POST", "/team/new", json={"team_alias": f"t-{uuid.uuid4().hex[:6]}", "max_budget": cost * 1.5, "models": ["fake-openai-endpoint"]})
    assert r.status_code == 200, r.text
    team_id = r.json()["team_id"]
    key = generate(gw, team_id=team_id)["key"]
    assert chat(gw, key, model="other-model").status_code == 401
    codes = [chat(gw, key).status_code for _ in range(3)]
    assert codes == [200, 200, 400], codes
    assert "Team=" in chat(gw, key).json()["error"]["message"]


def test_end_user_budget_via_the_user_field(gw, log_dir, mock):
    url = f"sqlite://{log_dir / ('endusers-' + uuid.uuid4().hex[:8] + '.db')}"
    cfg = keys_config(mock.url, url).replace("litellm_settings:", "litellm_settings:\n  max_end_user_budget: 0.0000001")
    p = start_gateway(log_dir, "end-users", cfg)
    try:
        assert chat(p, MASTER_KEY, user="customer-1").status_code == 200
        r = chat(p, MASTER_KEY, user="customer-1")
        assert r.status_code == 400 and "End User=customer-1" in r.json()["error"]["message"], r.text
        assert chat(p, MASTER_KEY, user="customer-2").status_code == 200
    finally:
        p.stop()


def test_spend_is_written_and_logged(gw):
    key_body = generate(gw)
    key = key_body["key"]
    for _ in range(2):
        assert chat(gw, key).status_code == 200
    # The request's `user` is the row's end_user even when no end user is tracked, as in LiteLLM.
    assert chat(gw, key, user="my-new-end-user-1").status_code == 200
    time.sleep(BATCH_WRITE_S * 4)
    rows = admin(gw, "GET", "/spend/logs", params={"api_key": key_body["token"], "summarize": "false"}).json()
    assert len(rows) == 3, rows
    assert sorted(row["end_user"] or "" for row in rows) == ["", "", "my-new-end-user-1"], rows
    assert all(row["api_key"] == key_body["token"] for row in rows)
    assert all(row["spend"] > 0 for row in rows)
    info = admin(gw, "GET", "/key/info", params={"key": key}).json()["info"]
    assert info["spend"] == pytest.approx(sum(row["spend"] for row in rows))
    assert admin(gw, "GET", "/global/spend").json()["spend"] > 0


def test_streams_are_charged(gw):
    key_body = generate(gw)
    r = requests.post(
        gw.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key_body['key']}"},
        json={"model": "fake-openai-endpoint", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        stream=True,
        timeout=10,
    )
    assert r.status_code == 200
    body = b"".join(r.iter_content(None))
    assert b"[DONE]" in body
    time.sleep(BATCH_WRITE_S * 4)
    info = admin(gw, "GET", "/key/info", params={"key": key_body["key"]}).json()["info"]
    assert info["spend"] > 0


def test_a_stream_abandoned_part_way_is_charged_for_what_it_generated(gw):
    key_body = generate(gw)
    r = requests.post(
        gw.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key_body['key']}"},
        json={"model": "slow-stream", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        stream=True,
        timeout=10,
    )
    assert r.status_code == 200
    chunks = r.iter_lines()
    got = [next(chunks) for _ in range(6)]
    assert any(line.startswith(b"data: {") for line in got)
    r.close()  # walk away mid-stream
    time.sleep(BATCH_WRITE_S * 4)
    info = admin(gw, "GET", "/key/info", params={"key": key_body["key"]}).json()["info"]
    assert info["spend"] > 0, info
    rows = admin(gw, "GET", "/spend/logs", params={"api_key": key_body["token"], "summarize": "false"}).json()
    assert len(rows) == 1 and rows[0]["completion_tokens"] > 0, rows


def test_metrics_carry_the_key_labels_and_budget_gauges(gw):
    alias = f"metrics-{uuid.uuid4().hex[:6]}"
    body = generate(gw, key_alias=alias, max_budget=5)
    assert chat(gw, body["key"]).status_code == 200
    text = requests.get(gw.url + "/metrics", timeout=10).text
    labelled = [l for l in text.splitlines() if f'hashed_api_key="{body["token"]}"' in l]
    assert any(l.startswith("litellm_proxy_total_requests_metric_total") and f'api_key_alias="{alias}"' in l for l in labelled), labelled
    assert any(l.startswith("litellm_spend_metric_total") for l in labelled), labelled
    assert any(l.startswith("litellm_remaining_api_key_budget_metric") for l in labelled), labelled
    assert body["key"] not in text

    def spent() -> float:
        text = requests.get(gw.url + "/metrics", timeout=10).text
        return sum(
            float(l.rsplit(" ", 1)[1])
            for l in text.splitlines()
            if l.startswith("litellm_spend_metric_total") and f'hashed_api_key="{body["token"]}"' in l
        )

    # A stream's cost is known only when it ends, after its record: it still reaches the counter.
    before = spent()
    r = requests.post(
        gw.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {body['key']}"},
        json={"model": "fake-openai-endpoint", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        timeout=10,
    )
    assert b"[DONE]" in r.content
    time.sleep(0.2)
    assert spent() > before


def test_queue_time_and_litellms_deprecated_request_families(gw):
    """`litellm_request_queue_time_seconds` (arrival to the first upstream call: a small part of a
    slow call's total), and the deprecated `litellm_requests_metric` (successes) and
    `litellm_llm_api_failed_requests_metric` (failures) LiteLLM still exports."""
    body = generate(gw, key_alias=f"queue-{uuid.uuid4().hex[:6]}")
    assert chat(gw, body["key"], model="slow").status_code == 200
    failed = requests.post(
        gw.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {body['key']}"},
        json={"model": "fake-openai-endpoint", "messages": [{"role": "user", "content": "hi"}], "mock_testing_rate_limit_error": True},
        timeout=10,
    )
    assert failed.status_code == 429, failed.text
    text = requests.get(gw.url + "/metrics", timeout=10).text
    mine = [l for l in text.splitlines() if f'hashed_api_key="{body["token"]}"' in l]

    def value(prefix: str, *having: str) -> float:
        found = [float(l.rsplit(" ", 1)[1]) for l in mine if l.startswith(prefix) and all(h in l for h in having)]
        assert found, (prefix, having, mine)
        return sum(found)

    slow = 'requested_model="slow"'
    assert value("litellm_request_queue_time_seconds_count", slow) == 1
    queued = value("litellm_request_queue_time_seconds_sum", slow)
    total = value("litellm_request_total_latency_metric_sum", slow)
    assert 0 < queued < 0.2 and total > 0.6, (queued, total)
    assert value("litellm_requests_metric_total", 'model="openai/sleep-700"') == 1
    assert value("litellm_llm_api_failed_requests_metric_total", 'model="openai/any"') == 1


def test_fifty_clients_on_one_budget_overshoot_by_at_most_what_was_in_flight(gw):
    cost = cost_of_one(gw)
    budget = cost * 40
    key = generate(gw, max_budget=budget)["key"]
    stop = threading.Event()

    def client() -> int:
        ok = 0
        s = requests.Session()
        while not stop.is_set():
            r = s.post(
                gw.url + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json={"model": "fake-openai-endpoint", "messages": [{"role": "user", "content": "hi"}]},
                timeout=10,
            )
            if r.status_code == 200:
                ok += 1
            elif r.status_code == 400:
                return ok
            elif r.status_code == 429 and r.json()["error"]["type"] == "budget_exceeded":
                # Over only with the requests in flight counted: retry when they have finished.
                time.sleep(0.02)
            else:
                raise AssertionError(r.text)
        return ok

    with ThreadPoolExecutor(50) as pool:
        futures = [pool.submit(client) for _ in range(50)]
        done = [f.result(timeout=60) for f in futures]
    served = sum(done)
    # Requests in flight hold their estimated cost against the budget, so the overshoot is one
    # request plus what those in flight were underestimated by (docs/keys.md, "The bound"): the
    # prompt "hi" is estimated one token short, 1/33 of a request, for at most 41 in flight.
    assert served * cost >= budget
    assert served * cost <= budget + 3 * cost, (served, cost, budget)
    time.sleep(BATCH_WRITE_S * 4)
    info = admin(gw, "GET", "/key/info", params={"key": key}).json()["info"]
    assert info["spend"] == pytest.approx(served * cost, rel=1e-6)


def test_keys_and_spend_survive_a_restart(log_dir, mock):
    db = fresh_pg_database()
    url = f"postgresql://root@127.0.0.1:5432/{db}"
    cfg = keys_config(mock.url, url)
    p = start_gateway(log_dir, "restart-1", cfg)
    try:
        key = generate(p)["key"]
        for _ in range(2):
            assert chat(p, key).status_code == 200
        spent = admin(p, "GET", "/key/info", params={"key": key}).json()["info"]["spend"]
    finally:
        p.stop()  # SIGTERM: the last spend is written on the way out
    p = start_gateway(log_dir, "restart-2", cfg)
    try:
        assert chat(p, key).status_code == 200
        info = admin(p, "GET", "/key/info", params={"key": key}).json()["info"]
        assert info["spend"] == pytest.approx(spent * 1.5)
    finally:
        p.stop()
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def test_readiness_reports_the_database(gw):
    r = requests.get(gw.url + "/health/readiness", timeout=10)
    assert r.json()["db"] == "connected"


def test_import_from_litellm_keeps_keys_working(log_dir, mock):
    """`sluice import-litellm` copies keys out of LiteLLM's database: the raw keys users hold
    keep working, with their budgets and spend, without reissuing anything."""
    import hashlib

    from conftest import sluice_bin

    source = fresh_pg_database()
    raw = "sk-litellm-" + uuid.uuid4().hex
    token = hashlib.sha256(raw.encode()).hexdigest()
    psql(
        """
        CREATE TABLE "LiteLLM_TeamTable" (team_id text PRIMARY KEY, team_alias text, models text[],
            max_budget double precision, spend double precision NOT NULL DEFAULT 0, blocked boolean NOT NULL DEFAULT false);
        CREATE TABLE "LiteLLM_VerificationToken" (token text PRIMARY KEY, key_name text, key_alias text,
            spend double precision NOT NULL DEFAULT 0, expires timestamp(3), models text[], user_id text, team_id text,
            max_budget double precision, rpm_limit bigint, metadata jsonb NOT NULL DEFAULT '{}',
            blocked boolean);
        INSERT INTO "LiteLLM_TeamTable" VALUES ('team-a', 'Team A', ARRAY['fake-openai-endpoint'], 100, 1.5, false);
        """
        + f"""
        INSERT INTO "LiteLLM_VerificationToken" VALUES ('{token}', 'sk-...{raw[-4:]}', 'imported', 0.25, NULL,
            ARRAY['fake-openai-endpoint'], NULL, 'team-a', 10, 100, '{{"env": "prod"}}', false);
        """,
        source,
    )
    target = f"sqlite://{log_dir / ('imported-' + uuid.uuid4().hex[:8] + '.db')}"
    try:
        out = subprocess.run(
            [str(sluice_bin()), "import-litellm", "--database-url", f"postgresql://root@127.0.0.1:5432/{source}",
             "--into", target],
            capture_output=True, text=True, timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert "imported 1 keys" in out.stdout and "1 teams" in out.stdout, out.stdout
        p = start_gateway(log_dir, "imported", keys_config(mock.url, target))
        try:
            assert chat(p, raw).status_code == 200
            assert chat(p, raw, model="other-model").status_code == 401
            info = admin(p, "GET", "/key/info", params={"key": raw}).json()["info"]
            assert info["key_alias"] == "imported" and info["max_budget"] == 10 and info["team_id"] == "team-a"
            assert info["metadata"]["env"] == "prod"
            assert info["spend"] > 0.25
        finally:
            p.stop()
    finally:
        psql(f"DROP DATABASE IF EXISTS {source} WITH (FORCE)")


def test_per_model_rate_limit_from_metadata_fields(gw):
    key = generate(gw, model_rpm_limit={"fake-openai-endpoint": 1}, tags=["batch-jobs"])["key"]
    assert chat(gw, key).status_code == 200
    r = chat(gw, key)
    assert r.status_code == 429 and "model_per_key" in r.json()["error"]["message"], r.text
    assert chat(gw, key, model="other-model").status_code == 200
    info = admin(gw, "GET", "/key/info", params={"key": key}).json()["info"]
    assert info["metadata"]["model_rpm_limit"] == {"fake-openai-endpoint": 1}
    assert info["metadata"]["tags"] == ["batch-jobs"]


def test_user_and_team_lifecycle(gw):
    # Users: create, update, list, delete (their keys stop working).
    user = admin(gw, "POST", "/user/new", json={"user_email": "life@example.com"}).json()
    uid, ukey = user["user_id"], user["key"]
    r = admin(gw, "POST", "/user/update", json={"user_id": uid, "user_alias": "Life", "rpm_limit": 100})
    assert r.status_code == 200, r.text
    info = admin(gw, "GET", "/user/info", params={"user_id": uid}).json()
    assert info["user_info"]["user_alias"] == "Life" and info["user_info"]["rpm_limit"] == 100
    listed = admin(gw, "GET", "/user/list", params={"page_size": 100}).json()
    assert uid in [u["user_id"] for u in listed["users"]]

    # Teams: create, update, add and remove a member, block, unblock, list, info, delete.
    team = admin(gw, "POST", "/team/new", json={"team_alias": f"life-{uuid.uuid4().hex[:6]}"}).json()
    tid = team["team_id"]
    assert admin(gw, "POST", "/team/update", json={"team_id": tid, "max_budget": 50}).status_code == 200
    r = admin(gw, "POST", "/team/member_add", json={"team_id": tid, "member": {"role": "user", "user_id": uid}})
    assert r.status_code == 200, r.text
    tkey = generate(gw, team_id=tid, user_id=uid)["key"]
    assert chat(gw, tkey).status_code == 200
    tinfo = admin(gw, "GET", "/team/info", params={"team_id": tid}).json()
    assert tinfo["team_info"]["max_budget"] == 50
    assert uid in [m.get("user_id") for m in tinfo["team_info"]["members_with_roles"]]
    assert admin(gw, "POST", "/team/block", json={"team_id": tid}).status_code == 200
    r = chat(gw, tkey)
    assert r.status_code == 401 and "blocked" in r.json()["error"]["message"], r.text
    assert admin(gw, "POST", "/team/unblock", json={"team_id": tid}).status_code == 200
    assert chat(gw, tkey).status_code == 200
    r = admin(gw, "POST", "/team/member_delete", json={"team_id": tid, "user_id": uid})
    assert r.status_code == 200, r.text
    tinfo = admin(gw, "GET", "/team/info", params={"team_id": tid}).json()
    assert uid not in [m.get("user_id") for m in tinfo["team_info"]["members_with_roles"]]
    teams = admin(gw, "GET", "/team/list").json()
    assert tid in [t["team_id"] for t in teams]

    # Keys: list and bulk info see the new keys; spend views list them.
    keys = admin(gw, "GET", "/key/list", params={"user_id": uid, "return_full_object": "true"}).json()
    assert keys["total_count"] >= 2
    r = admin(gw, "POST", "/v2/key/info", json={"keys": [tkey]})
    assert r.status_code == 200 and len(r.json()["info"]) == 1, r.text
    time.sleep(BATCH_WRITE_S * 4)
    assert any(row.get("user_id") == uid for row in admin(gw, "GET", "/spend/users").json())
    assert admin(gw, "GET", "/spend/keys").status_code == 200

    assert admin(gw, "POST", "/team/delete", json={"team_ids": [tid]}).status_code == 200
    assert chat(gw, tkey).status_code == 401
    assert admin(gw, "POST", "/user/delete", json={"user_ids": [uid]}).status_code == 200
    assert chat(gw, ukey).status_code == 401


def test_a_flood_of_made_up_keys_is_refused_and_real_keys_keep_working(gw):
    def flood(n: int) -> set[int]:
        s = requests.Session()
        codes = set()
        for _ in range(n):
            r = s.post(
                gw.url + "/v1/chat/completions",
                headers={"Authorization": f"Bearer sk-{uuid.uuid4().hex}"},
                json={"model": "fake-openai-endpoint", "messages": [{"role": "user", "content": "hi"}]},
                timeout=10,
            )
            codes.add(r.status_code)
        return codes

    t0 = time.monotonic()
    with ThreadPoolExecutor(20) as pool:
        codes = set().union(*pool.map(flood, [50] * 20))
    assert codes == {401}, codes
    # Every key was new, so at most a few database lookups ran at a time; the rest were refused
    # at once rather than queued behind them.
    assert time.monotonic() - t0 < 30
    key = generate(gw)["key"]
    assert chat(gw, key).status_code == 200


def test_spend_logs_summarised_by_day(gw):
    key_body = generate(gw)
    assert chat(gw, key_body["key"]).status_code == 200
    time.sleep(BATCH_WRITE_S * 4)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    days = admin(gw, "GET", "/spend/logs", params={"start_date": today, "end_date": today}).json()
    assert [d["startTime"] for d in days] == [today], days
    assert set(days[0]) == {"startTime", "spend", "models", "users", "api_keys"}, days
    assert days[0]["spend"] > 0
    assert days[0]["api_keys"][key_body["token"]] > 0
    for by in ("models", "api_keys"):
        assert sum(days[0][by].values()) == pytest.approx(days[0]["spend"]), days


def test_spend_logs_summary_follows_new_calls(gw):
    """The gateway keeps each day's summary while the day's aggregates are unchanged: a call
    counted since shows in the next summary."""
    today = time.strftime("%Y-%m-%d", time.gmtime())
    params = {"start_date": today, "end_date": today}
    first = admin(gw, "GET", "/spend/logs", params=params).json()
    assert admin(gw, "GET", "/spend/logs", params=params).json() == first
    key_body = generate(gw)
    assert chat(gw, key_body["key"]).status_code == 200
    time.sleep(BATCH_WRITE_S * 4)
    days = admin(gw, "GET", "/spend/logs", params=params).json()
    assert days[0]["api_keys"][key_body["token"]] > 0, days
    if first:
        assert days[0]["spend"] > first[0]["spend"]


def test_models_added_through_the_api_are_stored_and_routed(log_dir, mock):
    url = f"sqlite://{log_dir / ('models-' + uuid.uuid4().hex[:8] + '.db')}"
    cfg = keys_config(mock.url, url, {"store_model_in_db": True})
    p = start_gateway(log_dir, "models-1", cfg)
    try:
        r = admin(
            p,
            "POST",
            "/model/new",
            json={
                "model_name": "added-later",
                "litellm_params": {"model": "openai/any", "api_base": mock.url + "/", "api_key": "secret-upstream-key"},
            },
        )
        assert r.status_code == 200, r.text
        assert "secret-upstream-key" not in r.text
        info = admin(p, "GET", "/model/info").json()["data"]
        assert "added-later" in [m["model_name"] for m in info]
        assert "secret-upstream-key" not in json.dumps(info)
    finally:
        p.stop()
    # Stored models join the router when sluice starts.
    p = start_gateway(log_dir, "models-2", cfg)
    try:
        assert chat(p, MASTER_KEY, model="added-later").status_code == 200
        model_id = [m for m in admin(p, "GET", "/model/info").json()["data"] if m["model_name"] == "added-later"][0][
            "model_info"
        ]["id"]
        assert admin(p, "POST", "/model/delete", json={"id": model_id}).status_code == 200
    finally:
        p.stop()
    p = start_gateway(log_dir, "models-3", cfg)
    try:
        assert chat(p, MASTER_KEY, model="added-later").status_code == 400
    finally:
        p.stop()


def test_model_update_changes_routing_at_once_without_a_restart(log_dir, mock):
    """/model/update and PATCH /model/{id}/update (LiteLLM's shapes) take effect on the next
    request, through the openai SDK, with no restart."""
    from openai import BadRequestError, OpenAI

    url = f"sqlite://{log_dir / ('update-' + uuid.uuid4().hex[:8] + '.db')}"
    p = start_gateway(log_dir, "model-update", keys_config(mock.url, url, {"store_model_in_db": True}))
    client = OpenAI(base_url=f"{p.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10)

    def say(model: str) -> str:
        r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        return r.choices[0].message.content

    try:
        r = admin(
            p,
            "POST",
            "/model/new",
            json={"model_name": "live", "litellm_params": {"model": "openai/any", "mock_response": "first"}},
        )
        assert r.status_code == 200, r.text
        model_id = r.json()["model_info"]["id"]
        assert say("live") == "first"

        r = admin(
            p,
            "POST",
            "/model/update",
            json={"model_info": {"id": model_id}, "litellm_params": {"mock_response": "second", "api_key": "sk-up-789"}},
        )
        assert r.status_code == 200, r.text
        assert "sk-up-789" not in r.text
        assert say("live") == "second"

        r = admin(p, "PATCH", f"/model/{model_id}/update", json={"model_name": "moved"})
        assert r.status_code == 200, r.text
        assert say("moved") == "second"
        with pytest.raises(BadRequestError):
            say("live")
        info = admin(p, "GET", "/model/info").json()["data"]
        mine = [m for m in info if m["model_info"]["id"] == model_id]
        assert [m["model_name"] for m in mine] == ["moved"], info
        assert mine[0]["litellm_params"]["mock_response"] == "second"
        assert "sk-up-789" not in json.dumps(info)

        # An id nothing has: 404, as LiteLLM's PATCH answers.
        r = admin(p, "PATCH", "/model/nope/update", json={"model_name": "x"})
        assert r.status_code == 404, r.text
    finally:
        p.stop()
