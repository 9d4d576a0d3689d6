"""The answer cache (`litellm_settings.cache`), through the official OpenAI client: two gateways
sharing one Redis (a redis-server of this module's own, so stopping it stops nothing else), the
per-request controls, streams kept and replayed, what a hit costs and how it shows, the admin
routes, and Redis away.

The mock counts the requests it served (`/mock/stats`): a hit is a request it never saw.
"""

from __future__ import annotations

import time
import uuid

import openai
import pytest
import requests

from conftest import MASTER_KEY, RedisServer, render_config, start_gateway, start_mock, yaml_scalar

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
PRICES = {"input_cost_per_token": 0.0001, "output_cost_per_token": 0.0002}


def cache_config(mock_url: str, database_url: str, cache_params: dict, prefix: str) -> str:
    models = [
        ("gpt", {"model": "openai/any", "api_base": mock_url + "/", "api_key": "test", **PRICES}),
        ("embed", {"model": "openai/text-embedding-ada-002", "api_base": mock_url + "/", "api_key": "test"}),
        ("rerank", {"model": "cohere/rerank-v3.5", "api_base": mock_url, "api_key": "co-test"}),
    ]
    general = {"master_key": MASTER_KEY, "database_url": database_url, "proxy_batch_write_at": 0.5}
    cfg = render_config(models, general, {"num_retries": 0})
    params = "".join(f"    {k}: {yaml_scalar(v)}\n" for k, v in cache_params.items())
    litellm = f'litellm_settings:\n  callbacks: ["prometheus"]\n  cache: true\n  cache_params:\n{params}'
    return cfg + litellm + f"sluice_settings:\n  redis_key_prefix: {yaml_scalar(prefix)}\n"


class Setup:
    def __init__(self, mock, gateways, redis):
        self.mock = mock
        self.gateways = gateways
        self.redis = redis

    def upstream_requests(self) -> int:
        return requests.get(self.mock.url + "/mock/stats", timeout=5).json()["requests"]


@pytest.fixture(scope="module")
def shared(log_dir):
    """A mock, a Redis of its own and two gateways caching in it."""
    d = log_dir / "cache"
    d.mkdir(exist_ok=True)
    redis = RedisServer(d)
    mock = start_mock(log_dir, "cache-mock")
    prefix = f"cache-{uuid.uuid4().hex[:8]}:"
    params = {"type": "redis", "host": "127.0.0.1", "port": redis.port}
    gateways = [
        start_gateway(
            log_dir, f"cache-gw{i}", cache_config(mock.url, f"sqlite://{d / f'gw{i}.db'}", params, prefix)
        )
        for i in (1, 2)
    ]
    yield Setup(mock, gateways, redis)
    for g in gateways:
        g.stop()
    mock.stop()
    redis.stop()


def client(gw, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=10)


def ask(gw, prompt: str, key: str = MASTER_KEY, **extra):
    """A chat call; the answer and its headers."""
    raw = client(gw, key).chat.completions.with_raw_response.create(
        model="gpt", messages=[{"role": "user", "content": prompt}], **extra
    )
    return raw.parse(), raw.headers


def fresh() -> str:
    return f"what is {uuid.uuid4().hex}?"


def kept() -> None:
    """A miss's answer goes to Redis in the background, a few milliseconds after the reply."""
    time.sleep(0.3)


def test_identical_requests_across_two_gateways_reach_the_upstream_once(shared):
    g1, g2 = shared.gateways
    prompt = fresh()
    before = shared.upstream_requests()
    first, h1 = ask(g1, prompt)
    assert "x-litellm-cache-key" not in h1, "a miss names no cache key"
    kept()
    second, h2 = ask(g2, prompt)
    third, _ = ask(g1, prompt)
    assert shared.upstream_requests() == before + 1
    assert second.id == first.id == third.id
    assert second.choices[0].message.content == first.choices[0].message.content
    key = h2["x-litellm-cache-key"]
    assert len(key) == 64 and int(key, 16) >= 0
    assert h2["x-litellm-response-cost"] in ("0", "0.0")


def test_different_prompts_are_different_answers(shared):
    g1, _ = shared.gateways
    before = shared.upstream_requests()
    ask(g1, fresh())
    ask(g1, fresh())
    # The same prompt at another temperature is another request too.
    prompt = fresh()
    ask(g1, prompt, temperature=0.1)
    kept()
    _, h = ask(g1, prompt, temperature=0.9)
    assert "x-litellm-cache-key" not in h
    assert shared.upstream_requests() == before + 4


def test_no_cache_skips_the_lookup_and_no_store_the_write(shared):
    g1, g2 = shared.gateways
    prompt = fresh()
    first, _ = ask(g1, prompt)
    kept()
    before = shared.upstream_requests()
    fresh_answer, h = ask(g2, prompt, extra_body={"cache": {"no-cache": True}})
    assert shared.upstream_requests() == before + 1 and "x-litellm-cache-key" not in h
    assert fresh_answer.id != first.id
    # no-cache still stores: the newer answer is the one kept now.
    kept()
    again, _ = ask(g1, prompt)
    assert again.id == fresh_answer.id

    unkept = fresh()
    ask(g1, unkept, extra_body={"cache": {"no-store": True}})
    kept()
    before = shared.upstream_requests()
    _, h = ask(g2, unkept)
    assert shared.upstream_requests() == before + 1 and "x-litellm-cache-key" not in h


def test_ttl_ends_an_entry_and_s_maxage_refuses_older_ones(shared):
    g1, g2 = shared.gateways
    short = fresh()
    ask(g1, short, extra_body={"cache": {"ttl": 1}})
    kept()
    _, h = ask(g2, short)
    assert "x-litellm-cache-key" in h, "within its ttl"
    time.sleep(1.2)
    before = shared.upstream_requests()
    _, h = ask(g2, short)
    assert "x-litellm-cache-key" not in h and shared.upstream_requests() == before + 1, "past its ttl"

    prompt = fresh()
    first, _ = ask(g1, prompt)
    time.sleep(1.2)
    before = shared.upstream_requests()
    young, h = ask(g2, prompt, extra_body={"cache": {"s-maxage": 1}})
    assert "x-litellm-cache-key" not in h and young.id != first.id
    assert shared.upstream_requests() == before + 1
    kept()
    # The refused entry was replaced by the fresh answer; an old enough one is accepted.
    old, h = ask(g1, prompt, extra_body={"cache": {"s-maxage": 60}})
    assert "x-litellm-cache-key" in h and old.id == young.id


def stream_text(gw, prompt: str, **extra) -> tuple[str, int]:
    """The streamed answer's text, and how many chunks it came in."""
    chunks = list(
        client(gw).chat.completions.create(
            model="gpt", messages=[{"role": "user", "content": prompt}], stream=True, **extra
        )
    )
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), len(chunks)


def test_a_stream_is_kept_once_whole_and_replayed(shared):
    g1, g2 = shared.gateways
    prompt = fresh()
    before = shared.upstream_requests()
    text, _ = stream_text(g1, prompt)
    kept()
    replayed, chunks = stream_text(g2, prompt)
    assert replayed == text and text
    assert chunks >= 2
    # The same entry answers a request that is not streamed, and usage comes when asked for.
    whole, h = ask(g1, prompt)
    assert whole.choices[0].message.content == text and "x-litellm-cache-key" in h
    assert shared.upstream_requests() == before + 1

    # A stream asking for its usage is not replayed from one kept without it: it goes upstream
    # once, and is kept again with its usage.
    def with_usage(gw):
        return list(
            client(gw).chat.completions.create(
                model="gpt", messages=[{"role": "user", "content": prompt}], stream=True,
                stream_options={"include_usage": True},
            )
        )

    with_usage(g2)
    assert shared.upstream_requests() == before + 2
    kept()
    replayed = with_usage(g1)
    assert replayed[-1].choices == [] and replayed[-1].usage.total_tokens > 0
    assert shared.upstream_requests() == before + 2

    # And the reverse: a whole answer replayed as a stream, ending with [DONE].
    other = fresh()
    answer, _ = ask(g1, other)
    kept()
    r = requests.post(
        g2.url + "/v1/chat/completions",
        headers=ADMIN,
        json={"model": "gpt", "messages": [{"role": "user", "content": other}], "stream": True},
        timeout=10,
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.text.rstrip().endswith("data: [DONE]") and "x-litellm-cache-key" in r.headers
    text, _ = stream_text(g1, other)
    assert text == answer.choices[0].message.content


def test_embeddings_completions_rerank_and_responses_are_cached(shared):
    g1, g2 = shared.gateways
    text = fresh()
    before = shared.upstream_requests()
    e1 = client(g1).embeddings.create(model="embed", input=[text])
    kept()
    raw = client(g2).embeddings.with_raw_response.create(model="embed", input=[text])
    assert "x-litellm-cache-key" in raw.headers
    assert raw.parse().data[0].embedding == e1.data[0].embedding
    c1 = client(g1).completions.create(model="gpt", prompt=text)
    kept()
    raw = client(g2).completions.with_raw_response.create(model="gpt", prompt=text)
    assert "x-litellm-cache-key" in raw.headers and raw.parse().id == c1.id
    body = {"model": "rerank", "query": text, "documents": ["a red cat", "a blue dog"], "top_n": 1}
    r1 = requests.post(g1.url + "/rerank", headers=ADMIN, json=body, timeout=10)
    kept()
    r2 = requests.post(g2.url + "/v1/rerank", headers=ADMIN, json=body, timeout=10)
    assert r1.status_code == r2.status_code == 200 and "x-litellm-cache-key" in r2.headers, r2.text
    assert r2.json() == r1.json()
    # The Responses API, whole (a streamed one is neither kept nor replayed).
    first = client(g1).responses.create(model="gpt", input=text)
    kept()
    raw = client(g2).responses.with_raw_response.create(model="gpt", input=text)
    assert "x-litellm-cache-key" in raw.headers and raw.parse().id == first.id
    assert shared.upstream_requests() == before + 4


def spend_logs(gw, key: str) -> list[dict]:
    r = requests.get(gw.url + "/spend/logs", headers=ADMIN, params={"api_key": key}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_hit_costs_nothing_is_logged_as_one_and_counted(shared):
    g1, _ = shared.gateways
    r = requests.post(g1.url + "/key/generate", headers=ADMIN, json={"key_alias": "cache-payer"}, timeout=10)
    assert r.status_code == 200, r.text
    key, token = r.json()["key"], r.json()["token"]
    prompt = fresh()
    _, paid = ask(g1, prompt, key=key)
    kept()
    _, free = ask(g1, prompt, key=key)
    cost = float(paid["x-litellm-response-cost"])
    assert cost > 0 and float(free["x-litellm-response-cost"]) == 0
    deadline = time.time() + 10
    rows = []
    while time.time() < deadline and len(rows) < 2:
        rows = spend_logs(g1, token)
        time.sleep(0.2)
    assert len(rows) == 2, rows
    hit = [row for row in rows if row["cache_hit"] == "True"]
    miss = [row for row in rows if row["cache_hit"] == "False"]
    assert len(hit) == 1 and len(miss) == 1, rows
    assert hit[0]["spend"] == 0 and hit[0]["cache_key"] == free["x-litellm-cache-key"]
    assert miss[0]["spend"] == pytest.approx(cost)
    info = requests.get(g1.url + "/key/info", headers=ADMIN, params={"key": key}, timeout=10).json()["info"]
    assert info["spend"] == pytest.approx(cost), "the hit added nothing to the key's spend"
    metrics = requests.get(g1.url + "/metrics", timeout=10).text
    hits = [
        line for line in metrics.splitlines()
        if line.startswith("litellm_cache_hits_metric_total{") and f'hashed_api_key="{token}"' in line
    ]
    assert hits and float(hits[0].rsplit(" ", 1)[1]) == 1, metrics
    assert "litellm_cache_misses_metric_total{" in metrics and "litellm_cached_tokens_metric_total{" in metrics


def test_a_hit_counts_toward_the_keys_rate_limit(shared):
    g1, _ = shared.gateways
    r = requests.post(g1.url + "/key/generate", headers=ADMIN, json={"rpm_limit": 2}, timeout=10)
    key = r.json()["key"]
    prompt = fresh()
    ask(g1, prompt, key=key)
    kept()
    ask(g1, prompt, key=key)
    with pytest.raises(openai.RateLimitError):
        ask(g1, prompt, key=key)


def test_a_keys_allowed_cache_controls_refuse_any_other(shared):
    """LiteLLM's `allowed_cache_controls`: a key that lists some may send only those in `cache`
    (any other name, even one the cache does not read, is a 403 in LiteLLM's words); only an
    admin sets the list, and a key without one may send any."""
    g1, _ = shared.gateways
    user = requests.post(g1.url + "/user/new", headers=ADMIN, json={"user_role": "internal_user"}, timeout=10).json()
    r = requests.post(g1.url + "/key/generate", headers=ADMIN,
                      json={"user_id": user["user_id"], "allowed_cache_controls": ["no-cache"]}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["allowed_cache_controls"] == ["no-cache"]
    key = r.json()["key"]
    info = requests.get(g1.url + "/key/info", headers=ADMIN, params={"key": key}, timeout=10).json()
    assert info["info"]["allowed_cache_controls"] == ["no-cache"]
    ask(g1, fresh(), key=key, extra_body={"cache": {"no-cache": True}})
    ask(g1, fresh(), key=key)
    for control in ({"no-store": True}, {"no-cache": True, "ttl": 60}, {"made-up": 1}):
        with pytest.raises(openai.PermissionDeniedError) as e:
            ask(g1, fresh(), key=key, extra_body={"cache": control})
        name = next(k for k in control if k != "no-cache")
        assert f"Not allowed to set {name} as a cache control. Contact admin to change permissions." in str(e.value)
    # The key's owner cannot lift the list (though it may update its own keys); an admin can.
    owner = {"Authorization": f"Bearer {user['key']}"}
    alias = requests.post(g1.url + "/key/update", headers=owner, json={"key": key, "key_alias": fresh()}, timeout=10)
    assert alias.status_code == 200, alias.text
    lift = requests.post(g1.url + "/key/update", headers=owner, json={"key": key, "allowed_cache_controls": []}, timeout=10)
    assert lift.status_code == 403 and "allowed_cache_controls" in lift.text, lift.text
    r = requests.post(g1.url + "/key/update", headers=ADMIN, json={"key": key, "allowed_cache_controls": []}, timeout=10)
    assert r.status_code == 200, r.text
    ask(g1, fresh(), key=key, extra_body={"cache": {"no-store": True}})


def test_the_admin_routes(shared):
    g1, g2 = shared.gateways
    ping = requests.get(g1.url + "/cache/ping", headers=ADMIN, timeout=10)
    assert ping.status_code == 200 and ping.json()["cache_type"] == "redis", ping.text
    assert str(shared.redis.port) not in ping.text
    info = requests.get(g1.url + "/cache/redis/info", headers=ADMIN, timeout=10)
    assert info.status_code == 200 and "redis_version" in info.json()["info"]

    prompt = fresh()
    ask(g1, prompt)
    kept()
    _, h = ask(g2, prompt)
    key = h["x-litellm-cache-key"]
    r = requests.post(g1.url + "/cache/delete", headers=ADMIN, json={"keys": [key]}, timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "success", r.text
    before = shared.upstream_requests()
    _, h = ask(g2, prompt)
    assert "x-litellm-cache-key" not in h and shared.upstream_requests() == before + 1

    kept()
    assert requests.post(g2.url + "/cache/flushall", headers=ADMIN, timeout=10).status_code == 200
    before = shared.upstream_requests()
    _, h = ask(g1, prompt)
    assert "x-litellm-cache-key" not in h and shared.upstream_requests() == before + 1

    # Not for a virtual key.
    key = requests.post(g1.url + "/key/generate", headers=ADMIN, json={}, timeout=10).json()["key"]
    for method, path in [("GET", "/cache/ping"), ("POST", "/cache/flushall"), ("GET", "/cache/redis/info")]:
        r = requests.request(method, g1.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert r.status_code == 401, (path, r.text)
    r = requests.post(g1.url + "/cache/delete", headers=ADMIN, json={"keys": "not-a-list"}, timeout=10)
    assert r.status_code == 400 and "keys" in r.text


def test_with_redis_away_every_request_is_answered_from_upstream(log_dir):
    d = log_dir / "cache-away"
    d.mkdir(exist_ok=True)
    redis = RedisServer(d)
    mock = start_mock(log_dir, "cache-away-mock")
    params = {"type": "redis", "host": "127.0.0.1", "port": redis.port}
    gw = start_gateway(log_dir, "cache-away-gw", cache_config(mock.url, f"sqlite://{d / 'gw.db'}", params, "away:"))
    try:
        setup = Setup(mock, [gw], redis)
        prompt = fresh()
        ask(gw, prompt)
        kept()
        _, h = ask(gw, prompt)
        assert "x-litellm-cache-key" in h
        redis.stop()
        before = setup.upstream_requests()
        for _ in range(5):
            started = time.monotonic()
            answer, h = ask(gw, prompt)
            assert answer.choices[0].message.content and "x-litellm-cache-key" not in h
            assert time.monotonic() - started < 1.0, "a cache that cannot be reached is a miss, not a wait"
        assert setup.upstream_requests() == before + 5
        ping = requests.get(gw.url + "/cache/ping", headers=ADMIN, timeout=10)
        assert ping.status_code == 503, ping.text
    finally:
        gw.stop()
        mock.stop()
        redis.stop()


def test_a_local_cache_in_default_off_mode_caches_only_when_asked(log_dir):
    mock = start_mock(log_dir, "cache-local-mock")
    d = log_dir / "cache-local"
    d.mkdir(exist_ok=True)
    params = {"type": "local", "mode": "default_off", "namespace": "local-test"}
    gw = start_gateway(log_dir, "cache-local-gw", cache_config(mock.url, f"sqlite://{d / 'gw.db'}", params, "local:"))
    try:
        setup = Setup(mock, [gw], None)
        prompt = fresh()
        before = setup.upstream_requests()
        ask(gw, prompt)
        _, h = ask(gw, prompt)
        assert "x-litellm-cache-key" not in h and setup.upstream_requests() == before + 2, "off unless asked"
        ask(gw, prompt, extra_body={"cache": {"use-cache": True}})
        _, h = ask(gw, prompt, extra_body={"cache": {"use-cache": True}})
        assert h["x-litellm-cache-key"].startswith("local-test:")
        assert setup.upstream_requests() == before + 3
        ping = requests.get(gw.url + "/cache/ping", headers=ADMIN, timeout=10).json()
        assert ping["cache_type"] == "local"
        r = requests.get(gw.url + "/cache/redis/info", headers=ADMIN, timeout=10)
        assert r.status_code == 400
    finally:
        gw.stop()
        mock.stop()


# -- the semantic cache ------------------------------------------------------------------------


def chat_upstream(mock) -> int:
    return requests.get(mock.url + "/mock/stats", timeout=5).json()["by_route"]["chat"]


@pytest.fixture(scope="module")
def semantic(log_dir):
    """Two gateways with a redis-semantic cache in a Redis of their own; prompts embedded by the
    mock's bag-of-words model, so prompts sharing most words are close."""
    d = log_dir / "cache-semantic"
    d.mkdir(exist_ok=True)
    redis = RedisServer(d)
    mock = start_mock(log_dir, "cache-semantic-mock")
    params = {
        "type": "redis-semantic",
        "host": "127.0.0.1",
        "port": redis.port,
        "similarity_threshold": 0.8,
        "redis_semantic_cache_embedding_model": "embed-bow",
    }
    gateways = []
    for i in (1, 2):
        cfg = cache_config(mock.url, f"sqlite://{d / f'gw{i}.db'}", params, "semantic:")
        cfg = cfg.replace(
            "general_settings:",
            f'  - model_name: "embed-bow"\n    litellm_params:\n      model: "openai/bag-of-words"\n'
            f'      api_base: "{mock.url}/"\n      api_key: "test"\ngeneral_settings:',
            1,
        )
        gateways.append(start_gateway(log_dir, f"cache-semantic-gw{i}", cfg))
    yield Setup(mock, gateways, redis)
    for g in gateways:
        g.stop()
    mock.stop()
    redis.stop()


def test_a_close_prompt_is_answered_from_the_cache_and_a_far_one_is_not(semantic):
    g1, g2 = semantic.gateways
    topic = uuid.uuid4().hex[:8]
    base = chat_upstream(semantic.mock)
    first, h = ask(g1, f"what is the capital city of france {topic}")
    assert "x-litellm-cache-key" not in h
    kept()
    # Close: the same words, capitalised and punctuated, on the other gateway.
    close, h = ask(g2, f"What is the capital city of France, {topic}?")
    assert close.id == first.id, "a close prompt gets the kept answer"
    assert float(h["x-litellm-semantic-similarity"]) >= 0.8
    assert "x-litellm-cache-key" in h
    assert chat_upstream(semantic.mock) == base + 1
    # Far: other words entirely, below the threshold.
    far, h = ask(g2, f"tell me a joke about cats and dogs {uuid.uuid4().hex[:8]}")
    assert far.id != first.id and "x-litellm-semantic-similarity" not in h
    # Partly close (half the words): still below 0.8.
    half, h = ask(g1, f"what is the weather in paris today {topic}")
    assert half.id != first.id and "x-litellm-semantic-similarity" not in h
    assert chat_upstream(semantic.mock) == base + 3


def test_a_semantic_hit_is_scoped_to_its_model_and_honours_no_cache(semantic):
    g1, _ = semantic.gateways
    topic = uuid.uuid4().hex[:8]
    ask(g1, f"how do rivers form {topic}")
    kept()
    base = chat_upstream(semantic.mock)
    _, h = ask(g1, f"how do rivers form {topic}", extra_body={"cache": {"no-cache": True}})
    assert "x-litellm-cache-key" not in h and chat_upstream(semantic.mock) == base + 1
    # Another model group never gets this group's answers.
    raw = client(g1).chat.completions.with_raw_response.create(
        model="embed", messages=[{"role": "user", "content": f"how do rivers form {topic}"}]
    )
    assert "x-litellm-semantic-similarity" not in raw.headers
