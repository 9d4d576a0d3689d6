"""User roles on the management API (LiteLLM's `LitellmUserRoles`, `route_checks.py` and the
endpoints' own checks), on SQLite and on PostgreSQL:

- the role matrix: every management route × every kind of caller → allowed, or refused with
  LiteLLM's status and error `type` (`MATRIX`, one row per route call: add a route's row there);
- self-service: an internal user manages its own keys and is refused on anyone else's, a team
  admin manages its team's keys and members, viewers change nothing;
- the proxy-wide budget's user `litellm-proxy-budget`, shown by /user/info and /user/list with the
  proxy's spend, its budget reset every `budget_duration`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

import pytest
import requests

from conftest import MASTER_KEY
from manage import ADMIN, chat, gateway_on, keys_config

PROXY_BUDGET = 1000.0
# Short, so that a test sees the proxy budget's period end and its spend reset.
PROXY_BUDGET_PERIOD_S = 3


def roles_config(mock_url: str, url: str) -> str:
    cfg = keys_config(mock_url, url, {"store_model_in_db": True})
    return cfg.replace(
        'litellm_settings:\n  callbacks: ["prometheus"]',
        f'litellm_settings:\n  callbacks: ["prometheus"]\n  max_budget: {PROXY_BUDGET}\n'
        f"  budget_duration: {PROXY_BUDGET_PERIOD_S}s",
    )


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def rgw(request, log_dir, mock):
    for p in gateway_on(request.param, log_dir, "roles", lambda url: roles_config(mock.url, url)):
        p.mock_url = mock.url
        yield p


def call(gw, method: str, path: str, key: str | None, **kw) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.request(method, gw.url + path, headers=headers, timeout=10, **kw)


def master(gw, method: str, path: str, **kw) -> dict:
    r = requests.request(method, gw.url + path, headers=ADMIN, timeout=10, **kw)
    assert r.status_code == 200, f"{method} {path}: {r.text}"
    return r.json()


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class World:
    """The callers, and the objects that belong to someone else (a `victim` user and a team)."""

    gw: object
    keys: dict[str, str | None] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    team: str = ""
    victim: str = ""
    victim_key: str = ""
    team_key: str = ""
    model_id: str = ""

    def user(self, role: str = "internal_user") -> str:
        user_id = uid("u")
        master(self.gw, "POST", "/user/new", json={"user_id": user_id, "user_role": role, "auto_create_key": False})
        return user_id

    def key(self, **body) -> str:
        return master(self.gw, "POST", "/key/generate", json=body)["key"]

    def victim_fresh_key(self) -> str:
        return self.key(user_id=self.victim)

    def fresh_team(self) -> str:
        return master(self.gw, "POST", "/team/new", json={"team_alias": uid("t")})["team_id"]

    def model(self) -> str:
        body = {
            "model_name": uid("m"),
            "litellm_params": {"model": "openai/any", "api_base": self.gw.mock_url + "/", "api_key": "test"},
        }
        return master(self.gw, "POST", "/model/new", json=body)["model_info"]["id"]

    def budget(self) -> str:
        return master(self.gw, "POST", "/budget/new", json={"budget_id": uid("b"), "max_budget": 5})["budget_id"]

    def end_user(self) -> str:
        user_id = uid("e")
        master(self.gw, "POST", "/end_user/new", json={"user_id": user_id})
        return user_id

    def org(self) -> str:
        return master(self.gw, "POST", "/organization/new", json={"organization_alias": uid("o")})["organization_id"]

    def org_member(self) -> tuple[str, str]:
        org, user_id = self.org(), self.user()
        member = [{"role": "internal_user", "user_id": user_id}]
        master(self.gw, "POST", "/organization/member_add", json={"organization_id": org, "member": member})
        return org, user_id


# The callers of the matrix, in its columns' order. `no key` and `bad key` are refused the same
# way on every route, so their columns are not written in each row.
CALLERS = ["master", "proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer", "team_admin", "no_user"]


@pytest.fixture(scope="module")
def world(rgw) -> World:
    w = World(gw=rgw)
    w.keys["master"] = MASTER_KEY
    for role in ["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]:
        w.users[role] = w.user(role)
        w.keys[role] = w.key(user_id=w.users[role])
    w.users["team_admin"] = w.user("internal_user")
    w.victim = w.user("internal_user")
    w.team = master(
        rgw,
        "POST",
        "/team/new",
        json={
            "team_alias": uid("team"),
            "members_with_roles": [
                {"role": "admin", "user_id": w.users["team_admin"]},
                {"role": "user", "user_id": w.victim},
            ],
        },
    )["team_id"]
    w.keys["team_admin"] = w.key(user_id=w.users["team_admin"])
    w.keys["no_user"] = w.key()
    w.victim_key = w.victim_fresh_key()
    w.team_key = w.key(team_id=w.team, user_id=w.victim)
    w.model_id = w.model()
    return w


# What a caller gets:
#   A  allowed (200)
#   R  LiteLLM's route check, admin-only: 401 auth_error "Only proxy admin can be used to ..."
#   V  LiteLLM's route check on a proxy_admin_viewer's write: 403 auth_error
#   F  the route is the caller's, this object is not (or the endpoint refuses): 403 auth_error
#   U  the endpoint's own 401 auth_error (its own words)
#   X  a 400 (a team key for a team the caller is not in)
Builder = Callable[[World], tuple[str, dict]]


@dataclass
class Row:
    method: str
    route: str
    build: Builder
    expect: str  # one letter per CALLERS column

    def __post_init__(self):
        assert len(self.expect) == len(CALLERS), self.route


def new_model_body(w: World) -> dict:
    return {
        "model_name": uid("m"),
        "litellm_params": {"model": "openai/any", "api_base": w.gw.mock_url + "/", "api_key": "test"},
    }


def member_to_remove(w: World) -> tuple[str, dict]:
    user_id = w.user()
    master(w.gw, "POST", "/team/member_add", json={"team_id": w.team, "member": {"role": "user", "user_id": user_id}})
    return "/team/member_delete", {"json": {"team_id": w.team, "user_id": user_id}}


def regenerate_path(w: World) -> tuple[str, dict]:
    return f"/key/{w.victim_fresh_key()}/regenerate", {"json": {}}


# The date range of the report routes: today, as the daily rows are dated (UTC).
DAYS = {"start_date": time.strftime("%Y-%m-%d", time.gmtime()), "end_date": time.strftime("%Y-%m-%d", time.gmtime())}


#                  columns: master, proxy_admin, proxy_admin_viewer, internal_user, internal_user_viewer, team_admin, no_user
MATRIX: list[Row] = [
    Row("POST", "/key/generate", lambda w: ("/key/generate", {"json": {}}), "AAVARAR"),
    Row("POST", "/key/generate", lambda w: ("/key/generate", {"json": {"user_id": w.victim}}), "AAVFRFR"),
    Row("POST", "/key/generate", lambda w: ("/key/generate", {"json": {"team_id": w.team}}), "AAVXRAR"),
    Row("POST", "/key/update", lambda w: ("/key/update", {"json": {"key": w.victim_key, "metadata": {"x": 1}}}), "AAVFRFR"),
    Row("POST", "/key/update", lambda w: ("/key/update", {"json": {"key": w.team_key, "metadata": {"x": 1}}}), "AAVFRAR"),
    Row("GET", "/key/info", lambda w: ("/key/info", {"params": {"key": w.victim_key}}), "AAAFFFF"),
    Row("GET", "/key/info", lambda w: ("/key/info", {"params": {"key": w.team_key}}), "AAAFFAF"),
    Row("POST", "/v2/key/info", lambda w: ("/v2/key/info", {"json": {"keys": [w.victim_key]}}), "AAAAAAA"),
    Row("GET", "/key/list", lambda w: ("/key/list", {}), "AAAAAAA"),
    Row("POST", "/key/delete", lambda w: ("/key/delete", {"json": {"keys": [w.victim_fresh_key()]}}), "AAVFRFR"),
    Row("POST", "/key/block", lambda w: ("/key/block", {"json": {"key": w.victim_fresh_key()}}), "AAVFRFR"),
    Row("POST", "/key/unblock", lambda w: ("/key/unblock", {"json": {"key": w.victim_fresh_key()}}), "AAVFRFR"),
    Row("POST", "/key/regenerate", lambda w: ("/key/regenerate", {"json": {"key": w.victim_fresh_key()}}), "AAVFRFR"),
    Row("POST", "/key/{key}/regenerate", regenerate_path, "AAVFRFR"),
    Row("POST", "/user/new", lambda w: ("/user/new", {"json": {"auto_create_key": False}}), "AAVRRRR"),
    Row("POST", "/user/update", lambda w: ("/user/update", {"json": {"user_id": w.victim, "user_alias": "v"}}), "AAVRRRR"),
    Row("POST", "/user/delete", lambda w: ("/user/delete", {"json": {"user_ids": [w.user()]}}), "AAVRRRR"),
    Row("GET", "/user/info", lambda w: ("/user/info", {"params": {"user_id": w.victim}}), "AAAFFFF"),
    Row("GET", "/user/list", lambda w: ("/user/list", {}), "AAAFFFF"),
    Row("POST", "/team/new", lambda w: ("/team/new", {"json": {"team_alias": uid("t")}}), "AAVRRRR"),
    Row("POST", "/team/update", lambda w: ("/team/update", {"json": {"team_id": w.team, "metadata": {"x": 1}}}), "AAVFFAF"),
    Row("POST", "/team/delete", lambda w: ("/team/delete", {"json": {"team_ids": [w.fresh_team()]}}), "AAVRRRR"),
    Row("GET", "/team/info", lambda w: ("/team/info", {"params": {"team_id": w.team}}), "AAARRAR"),
    Row("GET", "/team/list", lambda w: ("/team/list", {}), "AAAAAAA"),
    Row(
        "POST",
        "/team/member_add",
        lambda w: ("/team/member_add", {"json": {"team_id": w.team, "member": {"role": "user", "user_id": w.user()}}}),
        "AAVFFAF",
    ),
    Row("POST", "/team/member_delete", member_to_remove, "AAVFFAF"),
    Row(
        "POST",
        "/team/member_update",
        lambda w: ("/team/member_update", {"json": {"team_id": w.team, "user_id": w.victim, "role": "user"}}),
        "AAVFFAF",
    ),
    Row("POST", "/team/model/add", lambda w: ("/team/model/add", {"json": {"team_id": w.team, "models": ["x"]}}), "AAVFFAF"),
    Row("POST", "/team/model/delete", lambda w: ("/team/model/delete", {"json": {"team_id": w.team, "models": ["x"]}}), "AAVFFAF"),
    # No `available_teams` in this config: LiteLLM's 400 for everyone.
    Row("GET", "/team/available", lambda w: ("/team/available", {}), "XXXXXXX"),
    Row("POST", "/team/block", lambda w: ("/team/block", {"json": {"team_id": w.fresh_team()}}), "AAVRRRR"),
    Row("POST", "/team/unblock", lambda w: ("/team/unblock", {"json": {"team_id": w.fresh_team()}}), "AAVRRRR"),
    Row("GET", "/spend/logs", lambda w: ("/spend/logs", {}), "AAAAAAA"),
    Row("GET", "/spend/logs", lambda w: ("/spend/logs", {"params": {"user_id": w.victim}}), "AAAFFFF"),
    Row("GET", "/global/spend", lambda w: ("/global/spend", {}), "AAAAAAR"),
    Row("GET", "/spend/keys", lambda w: ("/spend/keys", {}), "AAAAAAR"),
    Row("GET", "/spend/users", lambda w: ("/spend/users", {}), "AAAAAAR"),
    Row("GET", "/spend/users", lambda w: ("/spend/users", {"params": {"user_id": w.victim}}), "AAAFFFR"),
    Row("POST", "/model/new", lambda w: ("/model/new", {"json": new_model_body(w)}), "AAVFFFF"),
    Row(
        "POST",
        "/model/update",
        lambda w: ("/model/update", {"json": {"model_info": {"id": w.model_id}, "model_name": uid("m")}}),
        "AAVFFFF",
    ),
    Row("POST", "/model/delete", lambda w: ("/model/delete", {"json": {"id": w.model()}}), "AAVFFFF"),
    Row(
        "PATCH",
        "/model/{model_id}/update",
        lambda w: (f"/model/{w.model_id}/update", {"json": {"model_name": uid("m")}}),
        "AAVFFFF",
    ),
    Row("GET", "/model/info", lambda w: ("/model/info", {}), "AAAAAAA"),
    Row("POST", "/organization/new", lambda w: ("/organization/new", {"json": {"organization_alias": uid("o")}}), "AAVUUUU"),
    Row(
        "PATCH",
        "/organization/update",
        lambda w: ("/organization/update", {"json": {"organization_id": w.org(), "metadata": {"x": 1}}}),
        "AAVRRRR",
    ),
    Row("DELETE", "/organization/delete", lambda w: ("/organization/delete", {"json": {"organization_ids": [w.org()]}}), "AAVUUUU"),
    Row(
        "POST",
        "/organization/member_add",
        lambda w: (
            "/organization/member_add",
            {"json": {"organization_id": w.org(), "member": [{"role": "internal_user", "user_id": w.user()}]}},
        ),
        "AAVRRRR",
    ),
    Row(
        "PATCH",
        "/organization/member_update",
        lambda w: (lambda o, u: ("/organization/member_update", {"json": {"organization_id": o, "user_id": u, "role": "internal_user"}}))(*w.org_member()),
        "AAVRRRR",
    ),
    Row(
        "DELETE",
        "/organization/member_delete",
        lambda w: (lambda o, u: ("/organization/member_delete", {"json": {"organization_id": o, "user_id": u}}))(*w.org_member()),
        "AAVRRRR",
    ),
    Row("GET", "/organization/list", lambda w: ("/organization/list", {}), "AAAAAAA"),
    Row("GET", "/organization/info", lambda w: ("/organization/info", {"params": {"organization_id": w.org()}}), "AAARRRR"),
    Row("POST", "/organization/info", lambda w: ("/organization/info", {"json": {"organizations": [w.org()]}}), "AAARRRR"),
    Row("POST", "/config/update", lambda w: ("/config/update", {"json": {"router_settings": {"num_retries": 0}}}), "AAVRRRR"),
    Row("GET", "/active/callbacks", lambda w: ("/active/callbacks", {}), "AAARRRR"),
    Row("GET", "/settings", lambda w: ("/settings", {}), "AAARRRR"),
    Row("GET", "/get/config/callbacks", lambda w: ("/get/config/callbacks", {}), "AAARRRR"),
    Row("POST", "/key/health", lambda w: ("/key/health", {}), "AAAAAAA"),
    Row("GET", "/key/health", lambda w: ("/key/health", {}), "AAAAAAA"),
    Row("GET", "/spend/tags", lambda w: ("/spend/tags", {}), "AAARRRR"),
    Row("GET", "/global/spend/report", lambda w: ("/global/spend/report", {"params": DAYS}), "AAARRRR"),
    Row("GET", "/user/daily/activity", lambda w: ("/user/daily/activity", {"params": DAYS}), "AAAAAAA"),
    Row(
        "GET",
        "/user/daily/activity",
        lambda w: ("/user/daily/activity", {"params": {**DAYS, "user_id": w.victim}}),
        "AAAFFFF",
    ),
    Row("GET", "/team/daily/activity", lambda w: ("/team/daily/activity", {"params": DAYS}), "AAAFFFF"),
    Row("POST", "/budget/new", lambda w: ("/budget/new", {"json": {"budget_id": uid("b"), "max_budget": 5}}), "AAVRRRR"),
    Row("POST", "/budget/update", lambda w: ("/budget/update", {"json": {"budget_id": w.budget(), "max_budget": 6}}), "AAVRRRR"),
    Row("POST", "/budget/delete", lambda w: ("/budget/delete", {"json": {"id": w.budget()}}), "AAVRRRR"),
    Row("POST", "/budget/info", lambda w: ("/budget/info", {"json": {"budgets": [w.budget()]}}), "AAARRRR"),
    Row("GET", "/budget/list", lambda w: ("/budget/list", {}), "AAARRRR"),
    Row("GET", "/budget/settings", lambda w: ("/budget/settings", {"params": {"budget_id": w.budget()}}), "AAARRRR"),
    Row("POST", "/end_user/new", lambda w: ("/end_user/new", {"json": {"user_id": uid("e")}}), "AAVRRRR"),
    Row("POST", "/end_user/update", lambda w: ("/end_user/update", {"json": {"user_id": w.end_user(), "alias": "x"}}), "AAVRRRR"),
    Row("POST", "/end_user/delete", lambda w: ("/end_user/delete", {"json": {"user_ids": [w.end_user()]}}), "AAVRRRR"),
    Row("GET", "/end_user/info", lambda w: ("/end_user/info", {"params": {"end_user_id": w.end_user()}}), "AAARRRR"),
    Row("GET", "/end_user/list", lambda w: ("/end_user/list", {}), "AAARRRR"),
    Row("POST", "/customer/new", lambda w: ("/customer/new", {"json": {"user_id": uid("e")}}), "AAVRRRR"),
    Row("POST", "/customer/update", lambda w: ("/customer/update", {"json": {"user_id": w.end_user(), "alias": "x"}}), "AAVRRRR"),
    Row("POST", "/customer/delete", lambda w: ("/customer/delete", {"json": {"user_ids": [w.end_user()]}}), "AAVRRRR"),
    Row("GET", "/customer/info", lambda w: ("/customer/info", {"params": {"end_user_id": w.end_user()}}), "AAARRRR"),
    Row("GET", "/customer/list", lambda w: ("/customer/list", {}), "AAARRRR"),
]


def check(r: requests.Response, want: str, caller: str, row: Row) -> None:
    where = f"{row.method} {row.route} as {caller}: {r.status_code} {r.text[:300]}"
    if want == "A":
        assert r.status_code == 200, where
        return
    err = r.json()["error"]
    if want == "R":
        assert (r.status_code, err["type"]) == (401, "auth_error"), where
        assert "Only proxy admin can be used" in err["message"], where
    elif want == "V":
        assert (r.status_code, err["type"]) == (403, "auth_error"), where
        assert err["message"].startswith("user not allowed to access this route, role= proxy_admin_viewer"), where
    elif want == "F":
        assert (r.status_code, err["type"]) == (403, "auth_error"), where
    elif want == "U":
        # An endpoint's own 401 (LiteLLM's words for organizations: "Only admins can create orgs").
        assert (r.status_code, err["type"]) == (401, "auth_error"), where
    elif want == "X":
        assert r.status_code == 400, where
    else:
        raise AssertionError(f"unknown expectation {want}")


@pytest.mark.parametrize("row", MATRIX, ids=[f"{r.method} {r.route} #{i}" for i, r in enumerate(MATRIX)])
def test_role_matrix(world, row):
    for caller, want in zip(CALLERS, row.expect):
        path, kw = row.build(world)
        check(call(world.gw, row.method, path, world.keys[caller], **kw), want, caller, row)
    # No key, and a key that does not exist: LiteLLM's 401s, whatever the route.
    path, kw = row.build(world)
    r = call(world.gw, row.method, path, None, **kw)
    assert (r.status_code, r.json()["error"]["type"]) == (401, "auth_error"), r.text
    assert "No api key passed in" in r.json()["error"]["message"]
    r = call(world.gw, row.method, path, "sk-" + "q" * 22, **kw)
    assert (r.status_code, r.json()["error"]["type"]) == (401, "token_not_found_in_db"), r.text


# Where management routes live: every route /routes lists under these prefixes needs a MATRIX row.
MANAGEMENT_PREFIXES = (
    "/key/",
    "/v2/key/",
    "/user/",
    "/team/",
    "/spend/",
    "/global/",
    "/model/",
    "/budget/",
    "/end_user/",
    "/customer/",
    "/organization/",
    "/config/",
    "/active/",
    "/get/",
    "/settings",
)


def test_every_management_route_is_in_the_matrix(rgw):
    served = {
        r["path"]
        for r in requests.get(rgw.url + "/routes", timeout=10).json()["routes"]
        if r["path"].startswith(MANAGEMENT_PREFIXES)
    }
    assert "/key/generate" in served and "/model/info" in served, served
    missing = sorted(served - {row.route for row in MATRIX})
    assert not missing, f"add a MATRIX row for {missing}"


# --- self-service ---


def refused(r: requests.Response, status: int = 403, kind: str = "auth_error") -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["type"] == kind, r.text


def test_an_internal_user_manages_its_own_keys_and_no_one_elses(world):
    gw = world.gw
    me = world.user("internal_user")
    mine = world.key(user_id=me)

    # Generate: the key is its own, whatever it leaves out.
    r = call(gw, "POST", "/key/generate", mine, json={"key_alias": uid("own"), "max_budget": 5})
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["user_id"] == me
    assert chat(gw, new["key"]).status_code == 200

    # List: its keys, no one else's.
    r = call(gw, "GET", "/key/list", mine, params={"return_full_object": "true", "size": 100})
    assert r.status_code == 200, r.text
    listed = r.json()
    assert {k["user_id"] for k in listed["keys"]} == {me}, listed
    assert {k["token"] for k in listed["keys"]} >= {new["token"]} and listed["total_count"] == 2
    r = call(gw, "GET", "/key/list", mine, params={"user_id": world.victim})
    assert r.status_code == 200 and r.json()["keys"] == [], r.text

    # Update, info, regenerate, block, delete: its own key.
    r = call(gw, "POST", "/key/update", mine, json={"key": new["key"], "metadata": {"owner": "me"}, "max_budget": 7})
    assert r.status_code == 200, r.text
    r = call(gw, "GET", "/key/info", mine, params={"key": new["key"]})
    assert r.status_code == 200 and r.json()["info"]["max_budget"] == 7, r.text
    r = call(gw, "POST", "/key/regenerate", mine, json={"key": new["key"]})
    assert r.status_code == 200, r.text
    fresh = r.json()["key"]
    assert chat(gw, new["key"]).status_code == 401
    assert chat(gw, fresh).status_code == 200
    r = call(gw, "POST", "/key/block", mine, json={"key": fresh})
    assert r.status_code == 200 and r.json()["blocked"] is True, r.text
    # Lifting a block is an admin's, through either route.
    refused(call(gw, "POST", "/key/unblock", mine, json={"key": fresh}))
    refused(call(gw, "POST", "/key/update", mine, json={"key": fresh, "blocked": False}))
    # Nor may an owner zero its key's spend (and so its budget).
    refused(call(gw, "POST", "/key/update", mine, json={"key": fresh, "spend": 0}))
    refused(call(gw, "POST", "/key/generate", mine, json={"spend": 0}))
    r = call(gw, "POST", "/key/delete", mine, json={"keys": [fresh]})
    assert r.status_code == 200, r.text
    assert chat(gw, fresh).status_code == 401

    # Someone else's key: refused on every route, and left as it was.
    other = world.victim_fresh_key()
    refused(call(gw, "GET", "/key/info", mine, params={"key": other}))
    refused(call(gw, "POST", "/key/update", mine, json={"key": other, "max_budget": 0}))
    refused(call(gw, "POST", "/key/regenerate", mine, json={"key": other}))
    refused(call(gw, "POST", f"/key/{other}/regenerate", mine, json={}))
    refused(call(gw, "POST", "/key/block", mine, json={"key": other}))
    refused(call(gw, "POST", "/key/delete", mine, json={"keys": [other]}))
    # All or nothing: its own key in the same request is not deleted either.
    refused(call(gw, "POST", "/key/delete", mine, json={"keys": [mine, other]}))
    assert chat(gw, other).status_code == 200
    assert chat(gw, mine).status_code == 200
    # A key that is not there gets the same answer as someone else's.
    refused(call(gw, "GET", "/key/info", mine, params={"key": "sk-" + "n" * 22}))
    refused(call(gw, "POST", "/key/delete", mine, json={"keys": ["sk-" + "n" * 22]}))

    # It cannot give its key away or make one for someone else.
    r = call(gw, "POST", "/key/generate", mine, json={"user_id": world.victim})
    refused(r)
    assert "User can only create keys for themselves" in r.json()["error"]["message"]
    own = call(gw, "POST", "/key/generate", mine, json={}).json()["key"]
    refused(call(gw, "POST", "/key/update", mine, json={"key": own, "user_id": world.victim}))

    # Its user and spend, nobody else's.
    r = call(gw, "GET", "/user/info", mine)
    assert r.status_code == 200 and r.json()["user_id"] == me, r.text
    refused(call(gw, "GET", "/user/info", mine, params={"user_id": world.victim}))


def test_an_internal_users_spend_routes_show_its_own_spend(world):
    gw = world.gw
    me = world.user("internal_user")
    mine = world.key(user_id=me)
    assert chat(gw, mine).status_code == 200
    assert chat(gw, world.victim_key).status_code == 200
    deadline = time.time() + 10
    while True:
        rows = call(gw, "GET", "/spend/logs", mine).json()
        if rows or time.time() > deadline:
            break
        time.sleep(0.2)
    assert rows and {row["user"] for row in rows} == {me}, rows
    users = call(gw, "GET", "/spend/users", mine).json()
    assert [u["user_id"] for u in users] == [me]
    keys = call(gw, "GET", "/spend/keys", mine).json()
    assert {k["user_id"] for k in keys} == {me}
    spend = call(gw, "GET", "/global/spend", mine).json()
    assert spend["spend"] == pytest.approx(users[0]["spend"]) and spend["spend"] > 0
    # The proxy admin viewer sees everyone's.
    all_users = call(gw, "GET", "/spend/users", world.keys["proxy_admin_viewer"]).json()
    assert {me, world.victim} <= {u["user_id"] for u in all_users}


def test_viewers_read_and_change_nothing(world):
    gw = world.gw
    viewer = world.keys["proxy_admin_viewer"]
    r = call(gw, "GET", "/key/list", viewer, params={"size": 100, "user_id": world.victim})
    assert r.status_code == 200 and r.json()["total_count"] >= 1, r.text
    r = call(gw, "GET", "/user/info", viewer, params={"user_id": world.victim})
    assert r.status_code == 200, r.text
    r = call(gw, "GET", "/user/info", viewer)
    assert r.status_code == 200 and r.json()["user_id"] == world.users["proxy_admin_viewer"], r.text
    r = call(gw, "POST", "/key/update", viewer, json={"key": world.victim_key, "max_budget": 0})
    refused(r)
    assert r.json()["error"]["message"] == (
        "user not allowed to access this route, role= proxy_admin_viewer. Trying to access: /key/update"
    )

    iviewer = world.keys["internal_user_viewer"]
    r = call(gw, "GET", "/key/list", iviewer, params={"return_full_object": "true"})
    assert r.status_code == 200, r.text
    assert {k["user_id"] for k in r.json()["keys"]} == {world.users["internal_user_viewer"]}
    r = call(gw, "GET", "/key/info", iviewer)
    assert r.status_code == 200, r.text
    for method, path, body in [
        ("POST", "/key/generate", {}),
        ("POST", "/key/update", {"key": iviewer, "max_budget": 100}),
        ("POST", "/key/delete", {"keys": [iviewer]}),
        ("POST", "/key/regenerate", {"key": iviewer}),
    ]:
        r = call(gw, method, path, iviewer, json=body)
        refused(r, 401)
        assert "Your role=internal_user_viewer" in r.json()["error"]["message"], r.text
    assert chat(gw, iviewer).status_code == 200


def test_a_team_admin_manages_its_teams_keys_and_members(world):
    gw = world.gw
    admin_key = world.keys["team_admin"]
    # A key for the team, for a member of it.
    r = call(gw, "POST", "/key/generate", admin_key, json={"team_id": world.team, "user_id": world.victim})
    assert r.status_code == 200, r.text
    team_key = r.json()
    assert (team_key["team_id"], team_key["user_id"]) == (world.team, world.victim)
    # Not for someone outside the team.
    r = call(gw, "POST", "/key/generate", admin_key, json={"team_id": world.team, "user_id": world.users["internal_user"]})
    assert r.status_code == 400 and "not assigned to team" in r.json()["error"]["message"], r.text
    r = call(gw, "GET", "/key/list", admin_key, params={"team_id": world.team, "size": 100})
    assert r.status_code == 200 and team_key["token"] in r.json()["keys"], r.text
    r = call(gw, "POST", "/key/update", admin_key, json={"key": team_key["key"], "tpm_limit": 1000})
    assert r.status_code == 200, r.text
    r = call(gw, "POST", "/key/delete", admin_key, json={"keys": [team_key["key"]]})
    assert r.status_code == 200, r.text
    # Its team's members.
    newcomer = world.user()
    r = call(gw, "POST", "/team/member_add", admin_key, json={"team_id": world.team, "member": {"role": "user", "user_id": newcomer}})
    assert r.status_code == 200, r.text
    r = call(gw, "POST", "/team/member_delete", admin_key, json={"team_id": world.team, "user_id": newcomer})
    assert r.status_code == 200, r.text
    # Another team is not its.
    other = world.fresh_team()
    refused(call(gw, "POST", "/team/member_add", admin_key, json={"team_id": other, "member": {"role": "user", "user_id": newcomer}}))
    refused(call(gw, "POST", "/key/generate", admin_key, json={"team_id": other}), 400, "bad_request_error")

    # A plain member may not make the team's keys or change its members (LiteLLM's default
    # team member permissions: /key/info and /key/health).
    member_key = world.key(user_id=world.victim)
    r = call(gw, "POST", "/key/generate", member_key, json={"team_id": world.team})
    refused(r, 401, "team_member_permission_error")
    refused(call(gw, "POST", "/team/member_add", member_key, json={"team_id": world.team, "member": {"role": "user", "user_id": newcomer}}))


# --- the proxy-wide budget's user ---


def proxy_budget_row(gw) -> dict:
    r = requests.get(gw.url + "/user/info", headers=ADMIN, params={"user_id": "litellm-proxy-budget"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["user_info"]


def test_the_proxy_budget_user_shows_the_proxys_budget_and_spend_and_resets(rgw):
    row = proxy_budget_row(rgw)
    assert row["max_budget"] == PROXY_BUDGET
    assert row["budget_duration"] == f"{PROXY_BUDGET_PERIOD_S}s"
    assert row["budget_reset_at"] is not None
    listed = requests.get(rgw.url + "/user/list", headers=ADMIN, params={"page_size": 100}, timeout=10).json()
    assert "litellm-proxy-budget" in [u["user_id"] for u in listed["users"]]

    # Start right after a reset, so the period does not end between the call and the look.
    def reset_at(row: dict) -> float:
        from datetime import datetime

        return datetime.fromisoformat(row["budget_reset_at"].replace("Z", "+00:00")).timestamp()

    first = reset_at(proxy_budget_row(rgw))
    deadline = time.time() + 3 * PROXY_BUDGET_PERIOD_S
    while reset_at(proxy_budget_row(rgw)) == first and time.time() < deadline:
        time.sleep(0.1)
    row = proxy_budget_row(rgw)
    assert reset_at(row) > first, "the proxy budget's period never ended"
    r = chat(rgw, MASTER_KEY)
    assert r.status_code == 200, r.text
    cost = float(r.headers["x-litellm-response-cost"])
    # The new period holds this call alone; where the budget is shared through Redis, every
    # replica's view agrees within a sync (100 ms).
    settle = time.time() + 2
    row = proxy_budget_row(rgw)
    while row["spend"] != pytest.approx(cost) and time.time() < settle:
        time.sleep(0.05)
        row = proxy_budget_row(rgw)
    assert row["spend"] == pytest.approx(cost), row
    # The next period starts from zero.
    ended = reset_at(row)
    while reset_at(proxy_budget_row(rgw)) == ended and time.time() < deadline + PROXY_BUDGET_PERIOD_S:
        time.sleep(0.1)
    row = proxy_budget_row(rgw)
    assert reset_at(row) > ended and row["spend"] == 0, row
