"""LiteLLM's config and callback views, `/config/update` applied at once and kept across a
restart, `/key/health`, and LiteLLM's budget messages, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from conftest import MASTER_KEY, closed_port, start_gateway
from manage import ADMIN, PRICES, chat, fresh_pg_database, psql

ENV_NAME = "LANGFUSE_SECRET_KEY"


def config_yaml(mock_url: str, database_url: str) -> str:
    base = mock_url + "/"
    prices = ", ".join(f"{k}: {v}" for k, v in PRICES.items())
    return f"""model_list:
  - model_name: fake-openai-endpoint
    litellm_params: {{model: openai/any, api_base: "{base}", api_key: test, {prices}}}
  - model_name: broken
    litellm_params: {{model: openai/error-503, api_base: "{base}", api_key: test}}
general_settings:
  master_key: "{MASTER_KEY}"
  database_url: "{database_url}"
  proxy_batch_write_at: 0.5
  store_model_in_db: true
  alerting: ["slack"]
litellm_settings:
  callbacks: ["prometheus"]
  success_callback: ["lunary"]
router_settings:
  num_retries: 0
environment_variables:
  SLACK_WEBHOOK_URL: "http://127.0.0.1:{closed_port()}/services/T0/B0/config-api"
"""


class Gw:
    def __init__(self, log_dir, mock, backend: str):
        self.log_dir, self.mock, self.backend = log_dir, mock, backend
        if backend == "sqlite":
            self.db = None
            self.database_url = f"sqlite://{log_dir / ('config-' + uuid.uuid4().hex[:8] + '.db')}"
        else:
            self.db = fresh_pg_database()
            self.database_url = f"postgresql://root@127.0.0.1:5432/{self.db}"
        self.runs = 0
        self.proc = None
        self.start()

    def start(self):
        self.runs += 1
        self.proc = start_gateway(
            self.log_dir, f"config-{self.backend}-{self.runs}", config_yaml(self.mock.url, self.database_url)
        )
        self.url = self.proc.url

    def restart(self):
        self.proc.stop()
        self.start()

    def call(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, self.url + path, headers=ADMIN, timeout=10, **kw)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def cg(request, log_dir, mock):
    g = Gw(log_dir, mock, request.param)
    yield g
    g.proc.stop()
    if g.db:
        psql(f"DROP DATABASE IF EXISTS {g.db} WITH (FORCE)")


def test_active_callbacks_in_litellms_shape(cg):
    r = cg.call("GET", "/active/callbacks")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["litellm.callbacks"] == ["prometheus"]
    assert body["litellm.success_callback"] == ["lunary"]
    assert body["all_litellm_callbacks"] == ["prometheus", "lunary"]
    assert body["num_callbacks"] == 2
    assert body["num_alerting"] == 1 and body["alerting"] == "['slack']"
    assert body["sluice.running"] == ["prometheus", "slack"]
    assert cg.call("GET", "/settings").json() == body


def test_config_callbacks_name_variables_never_values(cg):
    r = cg.call("GET", "/get/config/callbacks")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    by_name = {c["name"]: c for c in body["callbacks"]}
    assert by_name["lunary"]["type"] == "success" and by_name["lunary"]["active"] is False
    assert by_name["lunary"]["variables"] == {"LUNARY_PUBLIC_KEY": None}
    assert by_name["prometheus"]["active"] is True
    assert [a["name"] for a in body["alerts"]] == ["slack"]
    slack = body["alerts"][0]
    assert slack["active"] is True and slack["variables"] == {"SLACK_WEBHOOK_URL": None}
    assert "budget_alerts" in slack["active_alerts"] and "config-api" not in r.text
    assert body["router_settings"] == {"num_retries": 0}


def test_views_are_for_admins_only(cg):
    key = cg.call("POST", "/key/generate", json={}).json()["key"]
    for path in ["/active/callbacks", "/get/config/callbacks"]:
        r = requests.get(cg.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert r.status_code == 401, (path, r.text)
    r = requests.post(cg.url + "/config/update", headers={"Authorization": f"Bearer {key}"}, json={}, timeout=10)
    assert r.status_code == 401, r.text


def test_key_health(cg):
    key = cg.call("POST", "/key/generate", json={}).json()["key"]
    r = requests.post(cg.url + "/key/health", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json() == {"key": "healthy", "logging_callbacks": None}
    logged = cg.call(
        "POST", "/key/generate", json={"metadata": {"logging": [{"callback_name": "langfuse", "callback_type": "success"}]}}
    ).json()["key"]
    r = requests.post(cg.url + "/key/health", headers={"Authorization": f"Bearer {logged}"}, timeout=10)
    body = r.json()
    assert body["key"] == "unhealthy"
    assert body["logging_callbacks"]["callbacks"] == ["langfuse"]
    assert body["logging_callbacks"]["status"] == "unhealthy"


def test_a_fallback_set_through_config_update_applies_at_once_and_after_a_restart(cg):
    r = chat(cg, MASTER_KEY, model="broken")
    assert r.status_code == 503, r.text
    r = cg.call("POST", "/config/update", json={"router_settings": {"fallbacks": [{"broken": ["fake-openai-endpoint"]}]}})
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "Config updated successfully"}
    r = chat(cg, MASTER_KEY, model="broken")
    assert r.status_code == 200, r.text
    assert r.headers.get("x-litellm-attempted-fallbacks") == "1"
    r = cg.call("GET", "/get/config/callbacks")
    assert r.json()["router_settings"]["fallbacks"] == [{"broken": ["fake-openai-endpoint"]}]

    cg.restart()
    r = chat(cg, MASTER_KEY, model="broken")
    assert r.status_code == 200, r.text

    # null removes the stored setting: the file's (no fallback) holds again.
    r = cg.call("POST", "/config/update", json={"router_settings": {"fallbacks": None}})
    assert r.status_code == 200, r.text
    assert chat(cg, MASTER_KEY, model="broken").status_code == 503


def test_num_retries_applies_at_once(cg):
    r = chat(cg, MASTER_KEY, model="broken")
    assert r.status_code == 503 and r.headers.get("x-litellm-attempted-retries", "0") == "0", r.headers
    r = cg.call("POST", "/config/update", json={"router_settings": {"num_retries": 2, "retry_after": 0}})
    assert r.status_code == 200, r.text
    r = chat(cg, MASTER_KEY, model="broken")
    assert r.status_code == 503
    assert r.headers.get("x-litellm-attempted-retries") == "2", dict(r.headers)
    assert cg.call("POST", "/config/update", json={"router_settings": {"num_retries": None}}).status_code == 200
    r = chat(cg, MASTER_KEY, model="broken")
    assert r.headers.get("x-litellm-attempted-retries", "0") == "0", dict(r.headers)


def test_an_update_reaches_another_replica_within_seconds(cg):
    other = start_gateway(cg.log_dir, f"config-{cg.backend}-other", config_yaml(cg.mock.url, cg.database_url))
    try:
        assert chat(other, MASTER_KEY, model="broken").status_code == 503
        r = cg.call("POST", "/config/update", json={"router_settings": {"fallbacks": [{"broken": ["fake-openai-endpoint"]}]}})
        assert r.status_code == 200, r.text
        deadline = time.time() + 3
        while chat(other, MASTER_KEY, model="broken").status_code != 200:
            assert time.time() < deadline, "the other replica did not take the fallback within 3 s"
            time.sleep(0.2)
        assert cg.call("POST", "/config/update", json={"router_settings": {"fallbacks": None}}).status_code == 200
        deadline = time.time() + 3
        while chat(other, MASTER_KEY, model="broken").status_code != 503:
            assert time.time() < deadline, "the other replica kept the removed fallback for 3 s"
            time.sleep(0.2)
    finally:
        other.stop()


@pytest.mark.parametrize(
    "body, param, words",
    [
        ({"router_settings": {"redis_host": "elsewhere"}}, "router_settings.redis_host", "restart"),
        ({"litellm_settings": {"max_budget": 10}}, "litellm_settings.max_budget", "without a restart"),
        ({"litellm_settings": {"no_such_setting": 1}}, "litellm_settings.no_such_setting", "without a restart"),
        ({"general_settings": {"master_key": "sk-new"}}, "general_settings.master_key", "restart"),
        ({"environment_variables": {ENV_NAME: "x"}}, "environment_variables", "environment"),
        ({"router_settings": {"num_retries": -1}}, "router_settings.num_retries", "whole number"),
        ({"router_settings": {"routing_strategy": "fastest"}}, "router_settings.routing_strategy", "unknown strategy"),
        ({"router_settings": {"timeout": 1e300}}, "router_settings.timeout", "at most"),
        ({"cache_settings": {}}, "cache_settings", "not a section"),
    ],
)
def test_settings_that_cannot_apply_are_refused_and_nothing_is_stored(cg, body, param, words):
    r = cg.call("POST", "/config/update", json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param, err
    assert words in err["message"], err["message"]
    assert "sk-new" not in r.text
    # Nothing was stored or applied: the router setting shown is the file's.
    r = cg.call("GET", "/get/config/callbacks")
    assert r.json()["router_settings"].get("routing_strategy") is None


def test_update_needs_store_model_in_db(log_dir, mock):
    cfg = config_yaml(mock.url, f"sqlite://{log_dir / ('nodb-' + uuid.uuid4().hex[:8] + '.db')}")
    p = start_gateway(log_dir, "config-no-store", cfg.replace("store_model_in_db: true", "store_model_in_db: false"))
    try:
        r = requests.post(
            p.url + "/config/update", headers=ADMIN, json={"router_settings": {"num_retries": 1}}, timeout=10
        )
        assert r.status_code == 500, r.text
        assert "STORE_MODEL_IN_DB" in r.json()["error"]["message"]
    finally:
        p.stop()


# --- LiteLLM's budget messages (auth_checks.py), numbers written as Python writes them ---


def refused(cg, key: str) -> dict:
    r = chat(cg, key)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "budget_exceeded", err
    return err


def test_key_budget_message(cg):
    key = cg.call("POST", "/key/generate", json={"max_budget": 0}).json()["key"]
    assert refused(cg, key)["message"] == "Budget has been exceeded! Current cost: 0.0, Max budget: 0.0"


def test_user_budget_message(cg):
    user = f"u-{uuid.uuid4().hex[:8]}"
    assert cg.call("POST", "/user/new", json={"user_id": user, "max_budget": 0}).status_code == 200
    key = cg.call("POST", "/key/generate", json={"user_id": user}).json()["key"]
    assert refused(cg, key)["message"] == f"ExceededBudget: User={user} over budget. Spend=0.0, Budget=0.0"


def test_team_budget_message(cg):
    team = cg.call("POST", "/team/new", json={"max_budget": 1e-7}).json()["team_id"]
    key = cg.call("POST", "/key/generate", json={"team_id": team}).json()["key"]
    assert chat(cg, key).status_code == 200
    deadline = time.time() + 5
    while True:
        r = chat(cg, key)
        if r.status_code == 400 or time.time() > deadline:
            break
        time.sleep(0.2)
    message = r.json()["error"]["message"]
    assert message.startswith(f"Budget has been exceeded! Team={team} Current cost: "), message
    assert message.endswith(", Max budget: 1e-07"), message
