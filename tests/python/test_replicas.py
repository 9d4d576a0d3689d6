"""Four replicas behind nginx, one PostgreSQL, one Redis: limits, budgets, cooldowns and live
changes behave exactly as on one gateway (issue #19, point 6), and the seed's second test runs
scaled down (point 5).

One replica set serves every test but the Redis outage (which needs a Redis of its own to stop);
tests never share a key or a deployment, so they do not interfere. The harness is
`tests/python/replicas.py` (also behind `scripts/replicas.sh`).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import openai
import pytest
import requests

from conftest import RedisServer
from replicas import MASTER_KEY, Deployment, ReplicaSet, running, shed_latencies_ms, sluice_bin, tail

REPLICAS = 4
# Fixed prices, so every chat costs the same (the mock's usage is the same for the same prompt).
PRICES = {"input_cost_per_token": 0.0001, "output_cost_per_token": 0.0002}
# The seed's second test, scaled: 2 deployments at SEED_RPM a minute (gateway `rpm` and the
# mock's quota alike), SEED_RATE req/s for SEED_SECONDS: 800 requests for 240 slots, the seed's
# ratio (70,200 for 20,000).
SEED_RPM = 120
SEED_RATE = 40
SEED_SECONDS = 20
COOL_PROJECT = "cool-a-413218"


def deployments() -> list[Deployment]:
    return [
        Deployment("fake-openai-endpoint", extra=PRICES),
        Deployment("gemini-vision", rpm=SEED_RPM, project="bad-adroit-crow-413218", mock_rpm=SEED_RPM),
        Deployment("gemini-vision", rpm=SEED_RPM, project="good-adroit-crow-413218", mock_rpm=SEED_RPM),
        # Cooldown group: a Vertex deployment the mock answers 429 every time (quota 0) and an
        # OpenAI one that always answers; the mock counts them on different routes.
        Deployment("cool-group", project=COOL_PROJECT, mock_rpm=0, extra={"cooldown_time": 30}),
        Deployment("cool-group"),
    ]


def make_set(log_dir: Path, name: str, **kw) -> ReplicaSet:
    return ReplicaSet(
        deployments(),
        replicas=REPLICAS,
        run_dir=log_dir / name,
        general={"proxy_batch_write_at": 0.5},
        # num_retries 0: each refusal or upstream 429 reaches the client as it happened.
        router={"num_retries": 0},
        mock_threads=2,
        num_workers=2,
        **kw,
    ).start()


@pytest.fixture(scope="module")
def rs(log_dir):
    s = make_set(log_dir, "replicas")
    yield s
    s.stop()


# -- clients -----------------------------------------------------------------------------------


def chat(url: str, key: str, model: str = "fake-openai-endpoint", session=None, timeout=10) -> requests.Response:
    return (session or requests).post(
        url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=timeout,
    )


def admin(url: str, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, url + path, headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=10, **kw)


def new_key(rs: ReplicaSet, **params) -> str:
    r = admin(rs.url, "POST", "/key/generate", json={"key_alias": f"t-{uuid.uuid4().hex[:8]}", **params})
    assert r.status_code == 200, r.text
    key = r.json()["key"]
    # A key made on one replica is known to all within 1 s (live changes); give it that second.
    time.sleep(1.0)
    return key


def served_by_all(responses: list[requests.Response], rs: ReplicaSet) -> None:
    seen = {r.headers.get("x-upstream-addr") for r in responses}
    want = {u.removeprefix("http://") for u in rs.replica_urls}
    assert want <= seen, f"nginx did not spread the requests over every replica: saw {seen}, want {want}"


def cost_of_one(rs: ReplicaSet) -> float:
    r = chat(rs.url, MASTER_KEY)
    assert r.status_code == 200, r.text
    return float(r.headers["x-litellm-response-cost"])


# -- the harness itself ------------------------------------------------------------------------


def test_harness_balances_over_every_replica(rs):
    # The official SDK through nginx, on its own keep-alive pool.
    client = openai.OpenAI(base_url=rs.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    seen = set()
    for _ in range(4 * REPLICAS):
        raw = client.chat.completions.with_raw_response.create(
            model="fake-openai-endpoint", messages=[{"role": "user", "content": "hi"}]
        )
        assert raw.parse().choices[0].message.content
        seen.add(raw.headers.get("x-upstream-addr"))
    assert seen == {u.removeprefix("http://") for u in rs.replica_urls}, f"nginx spread the calls over {seen}"
    for u in rs.replica_urls:
        assert requests.get(u + "/health/liveliness", timeout=5).status_code == 200


# -- point 6 -----------------------------------------------------------------------------------


def test_rpm_limit_30_admits_exactly_30_of_90_across_replicas(rs):
    key = new_key(rs, rpm_limit=30)
    # Four clients at once, each on its own keep-alive connection through nginx's round robin.
    def send(_):
        return chat(rs.url, key)

    with ThreadPoolExecutor(4) as ex:
        out = list(ex.map(send, range(90)))
    codes = [r.status_code for r in out]
    assert codes.count(200) == 30, f"admitted {codes.count(200)} of 90, want exactly 30: {sorted(set(codes))}"
    assert codes.count(429) == 60, f"refused {codes.count(429)} with 429, want 60: {sorted(set(codes))}"
    served_by_all(out, rs)


def test_max_budget_of_24_calls_admits_24_and_every_replica_shows_the_spend(rs):
    cost = cost_of_one(rs)
    key = new_key(rs, max_budget=24 * cost)
    admitted = 0
    answers = []
    # One at a time, round robin over the replicas: each call is charged before the next is
    # admitted, so 24 fit; float sums may let a 25th through.
    for i in range(40):
        r = chat(rs.replica_urls[i % REPLICAS], key)
        answers.append(r.status_code)
        if r.status_code == 200:
            admitted += 1
            assert float(r.headers["x-litellm-response-cost"]) == pytest.approx(cost, rel=1e-12)
    assert 24 <= admitted <= 25, f"admitted {admitted} calls on a budget of 24: {answers}"
    assert answers[:24] == [200] * 24, answers
    assert set(answers[admitted:]) <= {400, 429}, answers  # LiteLLM: budget exceeded is a 400
    want = admitted * cost
    # /key/info on every replica (one of them made none of the last calls) shows the exact spend.
    deadline = time.monotonic() + 2.0
    while True:
        spends = []
        for u in rs.replica_urls:
            r = admin(u, "GET", "/key/info", params={"key": key})
            assert r.status_code == 200, r.text
            spends.append(r.json()["info"]["spend"])
        if all(s == pytest.approx(want, rel=1e-9) for s in spends) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert spends == [pytest.approx(want, rel=1e-9)] * REPLICAS, f"spend per replica {spends}, want {want}"


def test_team_and_user_budgets_hold_and_every_replica_shows_their_spend(rs):
    cost = cost_of_one(rs)
    tag = uuid.uuid4().hex[:8]
    team, user = f"team-{tag}", f"user-{tag}"
    r = admin(rs.url, "POST", "/team/new", json={"team_id": team, "max_budget": 12 * cost})
    assert r.status_code == 200, r.text
    r = admin(rs.url, "POST", "/user/new", json={"user_id": user, "max_budget": 1000 * cost})
    assert r.status_code == 200, r.text
    key = new_key(rs, team_id=team, user_id=user)
    answers = [chat(rs.replica_urls[i % REPLICAS], key).status_code for i in range(20)]
    admitted = answers.count(200)
    assert 12 <= admitted <= 13, f"admitted {admitted} calls on a team budget of 12: {answers}"
    want = admitted * cost
    # The team's and the user's spend, as every replica shows it, is the total over all of them.
    deadline = time.monotonic() + 2.0
    while True:
        teams = [admin(u, "GET", "/team/info", params={"team_id": team}).json()["team_info"]["spend"] for u in rs.replica_urls]
        users = [admin(u, "GET", "/user/info", params={"user_id": user}).json()["user_info"]["spend"] for u in rs.replica_urls]
        done = all(s == pytest.approx(want, rel=1e-9) for s in teams + users)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert teams == [pytest.approx(want, rel=1e-9)] * REPLICAS, f"team spend per replica {teams}, want {want}"
    assert users == [pytest.approx(want, rel=1e-9)] * REPLICAS, f"user spend per replica {users}, want {want}"


def test_organization_budget_holds_across_replicas_and_every_replica_shows_its_spend(rs):
    cost = cost_of_one(rs)
    r = admin(rs.replica_urls[0], "POST", "/organization/new",
              json={"organization_alias": f"org-{uuid.uuid4().hex[:8]}", "max_budget": 12 * cost})
    assert r.status_code == 200, r.text
    org = r.json()["organization_id"]
    r = admin(rs.replica_urls[1 % REPLICAS], "POST", "/team/new", json={"organization_id": org})
    assert r.status_code == 200, r.text
    key = new_key(rs, team_id=r.json()["team_id"])
    time.sleep(1.0)  # the organization reaches every replica within 1 s
    answers = [chat(rs.replica_urls[i % REPLICAS], key).status_code for i in range(20)]
    admitted = answers.count(200)
    assert 12 <= admitted <= 13, f"admitted {admitted} calls on an organization budget of 12: {answers}"
    want = admitted * cost
    deadline = time.monotonic() + 2.0
    while True:
        spend = [admin(u, "GET", "/organization/info", params={"organization_id": org}).json()["spend"]
                 for u in rs.replica_urls]
        if all(s == pytest.approx(want, rel=1e-9) for s in spend) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert spend == [pytest.approx(want, rel=1e-9)] * REPLICAS, f"organization spend per replica {spend}, want {want}"


def test_deployment_cooled_through_one_replica_gets_no_call_from_the_others(rs):
    before = rs.mock_stats()
    # Through replica 0 only, until the always-429 deployment has been hit once (it cools at once:
    # a 429 in a group with somewhere else to go).
    first = None
    for i in range(40):
        r = chat(rs.replica_urls[0], MASTER_KEY, model="cool-group")
        if r.status_code == 429:
            first = i
            break
        assert r.status_code == 200, r.text
    assert first is not None, "replica 0 never picked the failing deployment in 40 calls"
    mid = rs.mock_stats()
    assert mid["by_route"]["vertex"] - before["by_route"]["vertex"] == 1
    assert mid["rate_limited"] - before["rate_limited"] == 1
    time.sleep(1.0)  # shared within 1 s
    # 60 calls through the other replicas: the cooled deployment (30 s) gets none of them.
    out = [chat(rs.replica_urls[1 + i % (REPLICAS - 1)], MASTER_KEY, model="cool-group") for i in range(60)]
    after = rs.mock_stats()
    calls = after["by_route"]["vertex"] - mid["by_route"]["vertex"]
    assert calls == 0, f"the other replicas sent {calls} calls to the deployment replica 0 cooled"
    assert [r.status_code for r in out] == [200] * 60, [r.text for r in out if r.status_code != 200][:3]


def test_blocked_key_is_refused_by_every_replica_within_1s(rs):
    key = new_key(rs)
    for u in rs.replica_urls:
        r = chat(u, key)
        assert r.status_code == 200, r.text  # every replica knows and admits it
    r = admin(rs.replica_urls[0], "POST", "/key/block", json={"key": key})
    blocked_at = time.monotonic()
    assert r.status_code == 200, r.text
    refused_after = {}
    while len(refused_after) < REPLICAS and time.monotonic() - blocked_at < 3.0:
        for i, u in enumerate(rs.replica_urls):
            if i not in refused_after and chat(u, key).status_code in (401, 403):
                refused_after[i] = time.monotonic() - blocked_at
        time.sleep(0.02)
    assert sorted(refused_after) == list(range(REPLICAS)), f"replicas refusing after 3 s: {refused_after}"
    slow = {i: round(t, 3) for i, t in refused_after.items() if t > 1.0}
    assert not slow, f"replicas that took more than 1 s to refuse the blocked key: {slow}"
    # And it stays refused everywhere.
    for u in rs.replica_urls:
        assert chat(u, key).status_code in (401, 403)


# -- the seed's second test, scaled ------------------------------------------------------------


def test_seed_second_test_scaled(rs, log_dir):
    rs.mock_reset()
    report = log_dir / "seed-scaled.json"
    out = subprocess.run(
        [
            str(sluice_bin()), "load", "-H", rs.url, "--model", "gemini-vision",
            "--rate", str(SEED_RATE), "-t", f"{SEED_SECONDS}s", "--connections", "64",
            "--timeout", "10s", "--json", str(report), "--error-file", str(log_dir / "seed-errors.txt"),
        ],
        capture_output=True, text=True, timeout=SEED_SECONDS + 60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    s = json.loads(report.read_text())
    total = s["aggregated"]["requests"]
    ok = total - s["aggregated"]["failures"]
    stats = rs.mock_stats()
    upstream = stats["by_route"]["vertex"]
    upstream_429 = stats["rate_limited"]
    capacity = 2 * SEED_RPM
    assert total >= SEED_RATE * SEED_SECONDS * 0.98, f"the load sent only {total} requests"
    # The seed's bar, scaled: >= 99.5% of the quota served (19,900 of 20,000) ...
    assert capacity * 0.995 <= ok <= capacity, f"{ok} successes, want {capacity * 0.995:.0f}..{capacity}"
    # ... and < 1% of upstream calls answered 429: the gateway sheds the rest itself.
    assert upstream_429 < 0.01 * upstream, f"{upstream_429} of {upstream} upstream calls answered 429"
    assert upstream == ok + upstream_429
    by_status = {}
    for f in s["failures"]:
        by_status[f["status"]] = by_status.get(f["status"], 0) + f["count"]
    assert set(by_status) <= {429}, f"failures other than the gateway's 429s: {s['failures']}"
    # Over-quota requests are refused by the gateway in under 5 ms (through nginx; the windows
    # are full for the next minute).
    codes, ms = shed_latencies_ms(rs.url, 50)
    assert codes == [429] * 50, codes
    assert rs.mock_stats()["by_route"]["vertex"] == upstream, "a shed request reached the provider"
    ms.sort()
    assert ms[int(0.9 * len(ms))] < 5.0, f"shedding p90 {ms[int(0.9 * len(ms))]:.2f} ms (median {ms[len(ms)//2]:.2f})"
    # And as the replicas timed it themselves (their access logs), over the whole run.
    logged = sorted(
        float(m.group(1))
        for i in range(REPLICAS)
        for m in re.finditer(r"status=429 latency_ms=([0-9.]+)", (rs.run_dir / f"replica-{i}.log").read_text())
    )
    assert len(logged) >= total - ok, f"{len(logged)} 429s in the access logs, {total - ok} at the client"
    assert logged[int(0.99 * len(logged))] < 5.0, f"gateway-side shedding p99 {logged[int(0.99 * len(logged))]:.2f} ms"


# -- Redis stopped mid-load, then back -----------------------------------------------------------


@pytest.fixture(scope="module")
def outage(log_dir):
    d = log_dir / "outage"
    d.mkdir(exist_ok=True)
    redis = RedisServer(d)
    s = None
    try:
        # Redis named LiteLLM's other way here, so both ways are exercised across replicas.
        s = make_set(log_dir, "replicas-outage", redis_port=redis.port, redis_style="cache_params")
        yield s, redis
    finally:
        if s is not None:
            s.stop()
        redis.stop()


def exact_rpm(rs: ReplicaSet, limit: int) -> int:
    """A fresh key with `rpm_limit: limit`, 3× as many requests through nginx: how many pass."""
    key = new_key(rs, rpm_limit=limit)
    with ThreadPoolExecutor(4) as ex:
        codes = list(ex.map(lambda _: chat(rs.url, key).status_code, range(3 * limit)))
    assert set(codes) <= {200, 429}, codes
    return codes.count(200)


def test_redis_stopped_mid_load_then_back(outage):
    rs, redis = outage
    # Measured first, asserted last: the outage's own checks (no 5xx, no wait) come first.
    before = exact_rpm(rs, 20)
    # Made while Redis is up, so every replica knows it before the outage; used only during it.
    key = new_key(rs, rpm_limit=40)

    results: list[tuple[float, int, float]] = []  # (when, status, seconds)
    stop = threading.Event()
    t0 = time.monotonic()

    def client():
        with requests.Session() as s:
            while not stop.is_set():
                t = time.monotonic()
                try:
                    code = chat(rs.url, MASTER_KEY, session=s, timeout=10).status_code
                except requests.RequestException as e:
                    code = -1
                    print("request failed:", e)
                results.append((t - t0, code, time.monotonic() - t))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    redis.stop()
    down_at = time.monotonic() - t0
    time.sleep(1.0)
    # While Redis is away each replica admits its share of a limit: 40 / 4 replicas = 10 each.
    # Sent to each replica directly (30 each): nginx's round robin is shared with the load above.
    with ThreadPoolExecutor(4) as ex:
        during_codes = list(ex.map(lambda i: chat(rs.replica_urls[i % REPLICAS], key).status_code, range(120)))
    during = during_codes.count(200)
    time.sleep(1.0)
    redis.start()
    up_at = time.monotonic() - t0
    time.sleep(3.0)
    stop.set()
    for t in threads:
        t.join(timeout=15)

    down = [r for r in results if down_at <= r[0] < up_at]
    assert len(down) >= 20, f"only {len(down)} requests while Redis was down"
    bad = [r for r in results if r[1] != 200]
    assert not bad, f"{len(bad)} of {len(results)} requests did not answer 200 (Redis down {down_at:.1f}..{up_at:.1f} s): {bad[:5]}"
    slowest = max(r[2] for r in results)
    assert slowest < 1.0, f"a request waited {slowest:.2f} s while Redis was away"
    assert before == 20, f"with Redis up the replicas admitted {before} of a 20 rpm limit: not shared"
    assert set(during_codes) <= {200, 429}, during_codes
    assert during == 40, f"with Redis down the replicas admitted {during} of a 40 rpm limit, want 4 × 10"
    # Redis back (and empty): sharing resumes.
    assert exact_rpm(rs, 20) == 20, "limits are not shared again after Redis came back"


# -- the shell path ----------------------------------------------------------------------------


def test_replicas_script_starts_reports_and_stops_everything(log_dir):
    """`scripts/replicas.sh start|status|stop`: the processes outlive `start`, `stop` leaves no
    process, database or listening port behind. Without Redis settings (`--no-share`), so this
    holds on any build."""
    run_dir = log_dir / "script"
    script = [str(Path(__file__).resolve().parents[2] / "scripts" / "replicas.sh")]
    out = subprocess.run(
        script + ["start", "--replicas", "2", "--rpm", "100", "--run-dir", str(run_dir), "--no-share", "--num-workers", "1"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    st = json.loads(out.stdout)
    try:
        assert len(st["replica_urls"]) == 2
        ports = [int(u.rsplit(":", 1)[1]) for u in st["replica_urls"]]
        assert ports[1] == ports[0] + 1, f"replicas not on consecutive ports: {ports}"
        r = chat(st["url"], MASTER_KEY, model="gemini-vision")
        assert r.status_code == 200, r.text
        status = subprocess.run(script + ["status", str(run_dir)], capture_output=True, text=True, timeout=30)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("running") == 4, status.stdout  # mock, 2 replicas, nginx
    finally:
        stop = subprocess.run(script + ["stop", str(run_dir)], capture_output=True, text=True, timeout=60)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    for name, pid in st["pids"].items():
        assert not running(pid), f"{name} (pid {pid}) still runs after stop"
    for url in [st["url"], *st["replica_urls"], st["mock_url"]]:
        u = urlsplit(url)
        with pytest.raises(OSError):
            socket.create_connection((u.hostname, u.port), timeout=1).close()
    from replicas import psql

    assert psql(f"SELECT count(*) FROM pg_database WHERE datname = '{st['database']}'") == "0"
    assert not (run_dir / "state.json").exists()
