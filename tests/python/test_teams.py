"""Teams as LiteLLM runs them, against a real sluice on SQLite and on PostgreSQL: aliases that
repeat, members created once however many requests name them at once, the creator as admin,
member roles and budgets in a team, team model aliases and model lists, the teams a user may
join, and what a team's own admins may do.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import MASTER_KEY, start_gateway
from manage import admin, chat, fresh_pg_database, generate, keys_config, psql

AVAILABLE = ["avail-a-" + uuid.uuid4().hex[:6], "avail-b-" + uuid.uuid4().hex[:6]]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def tgw(request, log_dir, mock):
    """A gateway whose `default_internal_user_params.available_teams` lists two teams."""
    db = None
    if request.param == "sqlite":
        url = f"sqlite://{log_dir / ('teams-' + uuid.uuid4().hex[:8] + '.db')}"
    else:
        db = fresh_pg_database()
        url = f"postgresql://root@127.0.0.1:5432/{db}"
    listed = ", ".join(AVAILABLE)
    cfg = keys_config(mock.url, url).replace(
        "litellm_settings:", f"litellm_settings:\n  default_internal_user_params:\n    available_teams: [{listed}]", 1
    )
    p = start_gateway(log_dir, f"teams-{request.param}", cfg)
    yield p
    p.stop()
    if db:
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def new_team(gw, **body) -> dict:
    r = admin(gw, "POST", "/team/new", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def call(gw, key: str, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, gw.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=10, **kw)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_team_aliases_repeat(tgw):
    alias = uid("same-name")
    a, b = new_team(tgw, team_alias=alias), new_team(tgw, team_alias=alias)
    assert a["team_id"] != b["team_id"] and a["team_alias"] == b["team_alias"] == alias
    other = new_team(tgw, team_alias=uid("other"))
    r = admin(tgw, "POST", "/team/update", json={"team_id": other["team_id"], "team_alias": alias})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("by", ["user_id", "user_email"])
def test_ten_new_teams_at_once_share_one_new_member(tgw, by):
    member = {"role": "user", "user_id": uid("new-u")} if by == "user_id" else {"role": "user", "user_email": uid("new") + "@example.com"}

    def create(_):
        return admin(tgw, "POST", "/team/new", json={"team_alias": "burst", "members_with_roles": [member]})

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(create, range(10)))
    assert [r.status_code for r in answers] == [200] * 10, [r.text for r in answers if r.status_code != 200]
    team_ids = sorted(r.json()["team_id"] for r in answers)
    if by == "user_id":
        users = [admin(tgw, "GET", "/user/info", params={"user_id": member["user_id"]}).json()["user_info"]]
    else:
        listed = admin(tgw, "GET", "/user/list", params={"user_email": member["user_email"], "page_size": 100}).json()
        users = listed["users"]
    assert len(users) == 1, users
    assert sorted(users[0]["teams"]) == team_ids
    # Every team names that one user.
    for r in answers:
        ids = [m["user_id"] for m in r.json()["members_with_roles"]]
        assert ids == [users[0]["user_id"]], r.json()


def test_the_creating_user_becomes_a_team_admin(tgw):
    boss = uid("boss")
    r = admin(tgw, "POST", "/user/new", json={"user_id": boss, "user_role": "proxy_admin"})
    assert r.status_code == 200, r.text
    r = call(tgw, r.json()["key"], "POST", "/team/new", json={"team_alias": uid("made-by-boss")})
    assert r.status_code == 200, r.text
    assert {"user_id": boss, "role": "admin"}.items() <= r.json()["members_with_roles"][0].items(), r.json()
    assert admin(tgw, "GET", "/user/info", params={"user_id": boss}).json()["user_info"]["teams"] == [r.json()["team_id"]]
    # The master key is no user: its teams start with the members the request names.
    assert new_team(tgw, team_alias=uid("by-master"))["members_with_roles"] == []


def test_member_budget_in_team_stops_the_members_key(tgw):
    cost = float(chat(tgw, MASTER_KEY).headers["x-litellm-response-cost"])
    team_id, user = new_team(tgw, team_alias=uid("budgeted"))["team_id"], uid("member")
    r = admin(tgw, "POST", "/team/member_add", json={"team_id": team_id, "member": {"role": "user", "user_id": user}})
    assert r.status_code == 200, r.text
    r = admin(tgw, "POST", "/team/member_update", json={"team_id": team_id, "user_id": user, "max_budget_in_team": cost * 1.5, "role": "admin"})
    assert r.status_code == 200, r.text
    assert r.json() == {"team_id": team_id, "user_id": user, "user_email": None, "max_budget_in_team": cost * 1.5}
    key = generate(tgw, team_id=team_id, user_id=user)["key"]
    # The same user's key outside the team is not held to the team budget.
    solo = generate(tgw, user_id=user)["key"]
    codes = [chat(tgw, key).status_code for _ in range(3)]
    assert codes == [200, 200, 400], codes
    err = chat(tgw, key).json()["error"]
    assert err["type"] == "budget_exceeded", err
    assert err["message"].startswith(f"Budget has been exceeded! User={user} in Team={team_id} Current cost: "), err
    assert chat(tgw, solo).status_code == 200

    info = admin(tgw, "GET", "/team/info", params={"team_id": team_id}).json()
    (m,) = info["team_memberships"]
    assert m["user_id"] == user and m["spend"] >= 2 * cost * 0.999, m
    assert m["litellm_budget_table"]["max_budget"] == cost * 1.5, m
    assert [x["role"] for x in info["team_info"]["members_with_roles"]] == ["admin"]

    # Raising the budget lets the key through again; `null` removes it.
    r = admin(tgw, "POST", "/team/member_update", json={"team_id": team_id, "user_id": user, "max_budget_in_team": cost * 10})
    assert r.status_code == 200, r.text
    assert chat(tgw, key).status_code == 200
    r = admin(tgw, "POST", "/team/member_update", json={"team_id": team_id, "user_id": user, "max_budget_in_team": None})
    assert r.status_code == 200, r.text
    assert admin(tgw, "GET", "/team/info", params={"team_id": team_id}).json()["team_memberships"][0]["budget_id"] is None

    r = admin(tgw, "POST", "/team/member_update", json={"team_id": team_id, "user_id": "not-a-member", "role": "user"})
    assert r.status_code == 400 and "not a member" in r.json()["error"]["message"], r.text


def test_team_model_aliases_route_before_the_access_check(tgw):
    team = new_team(tgw, team_alias=uid("aliased"), models=["fake-openai-endpoint"], model_aliases={"my-fast": "fake-openai-endpoint"})
    assert team["litellm_model_table"]["model_aliases"] == {"my-fast": "fake-openai-endpoint"}, team
    key = generate(tgw, team_id=team["team_id"])["key"]
    r = chat(tgw, key, model="my-fast")
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "fake-openai-endpoint"
    # The alias is the team's alone.
    assert chat(tgw, generate(tgw)["key"], model="my-fast").status_code == 400
    r = admin(tgw, "POST", "/team/update", json={"team_id": team["team_id"], "model_aliases": {"my-fast": "other-model"}})
    assert r.status_code == 200, r.text
    r = chat(tgw, key, model="my-fast")
    assert r.status_code == 401 and r.json()["error"]["type"] == "team_model_access_denied", r.text
    r = admin(tgw, "POST", "/team/update", json={"team_id": team["team_id"], "model_aliases": {"my-fast": 3}})
    assert r.status_code == 400, r.text


def test_team_model_add_and_delete(tgw):
    team_id = new_team(tgw, team_alias=uid("models"), models=["fake-openai-endpoint"])["team_id"]
    key = generate(tgw, team_id=team_id)["key"]
    assert chat(tgw, key, model="other-model").status_code == 401
    r = admin(tgw, "POST", "/team/model/add", json={"team_id": team_id, "models": ["other-model"]})
    assert r.status_code == 200, r.text
    assert r.json()["models"] == ["fake-openai-endpoint", "other-model"]
    assert chat(tgw, key, model="other-model").status_code == 200
    r = admin(tgw, "POST", "/team/model/delete", json={"team_id": team_id, "models": ["other-model"]})
    assert r.status_code == 200 and r.json()["models"] == ["fake-openai-endpoint"], r.text
    assert chat(tgw, key, model="other-model").status_code == 401
    # A team with every model keeps every model.
    open_team = new_team(tgw, team_alias=uid("open"))["team_id"]
    r = admin(tgw, "POST", "/team/model/add", json={"team_id": open_team, "models": ["other-model"]})
    assert r.json()["models"] == ["all-proxy-models", "other-model"], r.text
    r = admin(tgw, "POST", "/team/model/add", json={"team_id": "no-such-team", "models": ["x"]})
    assert r.status_code == 404, r.text
    r = admin(tgw, "POST", "/team/model/add", json={"team_id": team_id})
    assert r.status_code == 422, r.text


def test_team_available_lists_the_offered_teams_a_user_is_not_in(tgw):
    for t in AVAILABLE:
        if admin(tgw, "GET", "/team/info", params={"team_id": t}).status_code == 404:
            new_team(tgw, team_id=t, team_alias=t)
    user = uid("joiner")
    r = admin(tgw, "POST", "/user/new", json={"user_id": user, "teams": [AVAILABLE[0]]})
    assert r.status_code == 200, r.text
    r = call(tgw, r.json()["key"], "GET", "/team/available")
    assert r.status_code == 200, r.text
    assert [t["team_id"] for t in r.json()] == [AVAILABLE[1]]
    # The master key is no user.
    assert admin(tgw, "GET", "/team/available").status_code == 404


def test_a_team_admin_runs_their_team_and_no_other(tgw):
    mine, other = new_team(tgw, team_alias=uid("mine"))["team_id"], new_team(tgw, team_alias=uid("other"))["team_id"]
    alice, bob = uid("alice"), uid("bob")
    for user, role in [(alice, "admin"), (bob, "user")]:
        r = admin(tgw, "POST", "/team/member_add", json={"team_id": mine, "member": {"role": role, "user_id": user}})
        assert r.status_code == 200, r.text
    alice_key, bob_key = generate(tgw, user_id=alice)["key"], generate(tgw, user_id=bob)["key"]

    newcomer = uid("newcomer")
    for path, body in [
        ("/team/update", {"team_id": mine, "max_budget": 100}),
        ("/team/member_add", {"team_id": mine, "member": {"role": "user", "user_id": newcomer}}),
        ("/team/member_update", {"team_id": mine, "user_id": newcomer, "max_budget_in_team": 1}),
        ("/team/member_delete", {"team_id": mine, "user_id": newcomer}),
        ("/team/model/add", {"team_id": mine, "models": ["other-model"]}),
    ]:
        r = call(tgw, alice_key, "POST", path, json=body)
        assert r.status_code == 200, f"{path}: {r.text}"
    assert call(tgw, alice_key, "GET", "/team/info", params={"team_id": mine}).status_code == 200

    for key, team in [(alice_key, other), (bob_key, mine)]:
        for path, body in [
            ("/team/update", {"team_id": team, "max_budget": 1}),
            ("/team/member_add", {"team_id": team, "member": {"role": "admin", "user_id": uid("sneaky")}}),
            ("/team/member_update", {"team_id": team, "user_id": bob, "role": "admin"}),
            ("/team/member_delete", {"team_id": team, "user_id": alice}),
        ]:
            r = call(tgw, key, "POST", path, json=body)
            assert r.status_code == 403, f"{path}: {r.text}"
            message = r.json()["error"]["message"]
            assert message.startswith(f"Call not allowed. User not proxy admin OR team admin. route={path}, team_id={team}"), message
        r = call(tgw, key, "POST", "/team/model/add", json={"team_id": team, "models": ["x"]})
        assert r.status_code == 403 and r.json()["error"]["message"] == "Only proxy admin or team admin can modify team models"
    # Creating, deleting and blocking teams stays the proxy admin's.
    for path in ["/team/delete", "/team/block"]:
        body = {"team_ids": [mine]} if path == "/team/delete" else {"team_id": mine}
        assert call(tgw, alice_key, "POST", path, json=body).status_code == 401, path
