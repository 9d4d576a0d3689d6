"""Organizations through LiteLLM's management API: the lifecycle of an organization and its
members, teams inside an organization, the organization's budget stopping its teams' keys, and
who may manage an organization, against sluice on SQLite and on PostgreSQL (the `gw` fixture).
"""

from __future__ import annotations

import time
import uuid

import requests

from conftest import MASTER_KEY
from manage import admin, chat, generate, gw  # noqa: F401  (gw is a fixture)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_org(gw, **body) -> dict:
    body.setdefault("organization_alias", uid("org"))
    r = admin(gw, "POST", "/organization/new", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def as_key(gw, key: str, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, gw.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=10, **kw)


def cost_of_one(gw) -> float:
    r = chat(gw, MASTER_KEY)
    assert r.status_code == 200, r.text
    return float(r.headers["x-litellm-response-cost"])


def test_organization_lifecycle(gw):
    org = new_org(gw, models=["fake-openai-endpoint"], max_budget=10, rpm_limit=5, budget_duration="30d",
                  metadata={"tier": "gold"}, tags=["a"])
    org_id = org["organization_id"]
    budget = org["litellm_budget_table"]
    assert org["budget_id"] == budget["budget_id"]
    assert (budget["max_budget"], budget["rpm_limit"], budget["budget_duration"]) == (10, 5, "30d")
    assert budget["budget_reset_at"] is not None
    assert org["models"] == ["fake-openai-endpoint"] and org["spend"] == 0
    assert org["metadata"] == {"tier": "gold", "tags": ["a"]}
    assert org["created_by"] == "default_user_id"

    # A second organization shares the first one's budget by id.
    shared = new_org(gw, budget_id=org["budget_id"])
    assert shared["litellm_budget_table"]["max_budget"] == 10
    assert admin(gw, "POST", "/organization/new", json={"organization_alias": "x", "budget_id": "nope"}).status_code == 400
    assert admin(gw, "POST", "/organization/new", json={"models": []}).status_code == 422
    r = admin(gw, "POST", "/organization/new", json={"organization_alias": "x", "max_budget": -1})
    assert r.status_code == 400 and "max_budget cannot be negative" in r.text

    # Members: a new user is made for an unknown id; one already in is refused.
    user = uid("user")
    r = admin(gw, "POST", "/organization/member_add",
              json={"organization_id": org_id, "member": [{"role": "internal_user", "user_id": user}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["organization_id"] == org_id
    assert body["updated_users"][0]["user_id"] == user
    assert body["updated_organization_memberships"][0]["user_role"] == "internal_user"
    assert admin(gw, "GET", "/user/info", params={"user_id": user}).status_code == 200
    again = admin(gw, "POST", "/organization/member_add",
                  json={"organization_id": org_id, "member": {"role": "internal_user", "user_id": user}})
    assert again.status_code == 400, again.text
    # A list with one member already in adds none of them (the members list below has only `user`).
    mixed = admin(gw, "POST", "/organization/member_add", json={"organization_id": org_id, "member": [
        {"role": "internal_user", "user_id": uid("fresh")}, {"role": "internal_user", "user_id": user}]})
    assert mixed.status_code == 400, mixed.text
    bad_role = admin(gw, "POST", "/organization/member_add",
                     json={"organization_id": org_id, "member": {"role": "boss", "user_id": user}})
    assert bad_role.status_code == 400
    missing = admin(gw, "POST", "/organization/member_add",
                    json={"organization_id": "nope", "member": {"role": "internal_user", "user_id": user}})
    assert missing.status_code == 404

    r = admin(gw, "PATCH", "/organization/member_update",
              json={"organization_id": org_id, "user_id": user, "role": "org_admin", "max_budget_in_organization": 3})
    assert r.status_code == 200, r.text
    assert r.json()["user_role"] == "org_admin"
    assert r.json()["litellm_budget_table"]["max_budget"] == 3
    r = admin(gw, "PATCH", "/organization/member_update", json={"organization_id": org_id, "user_id": "ghost"})
    assert r.status_code == 404

    # Info and list show the budget, members and teams.
    team = admin(gw, "POST", "/team/new", json={"organization_id": org_id, "models": ["fake-openai-endpoint"]}).json()
    r = admin(gw, "GET", "/organization/info", params={"organization_id": org_id})
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["litellm_budget_table"]["max_budget"] == 10
    assert [(m["user_id"], m["user_role"]) for m in info["members"]] == [(user, "org_admin")]
    assert [t["team_id"] for t in info["teams"]] == [team["team_id"]]
    assert admin(gw, "GET", "/organization/info", params={"organization_id": "nope"}).status_code == 404
    r = admin(gw, "POST", "/organization/info", json={"organizations": [org_id]})
    assert r.status_code == 200 and r.json()[0]["litellm_budget_table"]["max_budget"] == 10
    assert admin(gw, "POST", "/organization/info", json={"organizations": []}).status_code == 400
    listed = {o["organization_id"]: o for o in admin(gw, "GET", "/organization/list").json()}
    assert {org_id, shared["organization_id"]} <= set(listed)
    assert listed[org_id]["teams"][0]["team_id"] == team["team_id"]
    by_alias = admin(gw, "GET", "/organization/list", params={"org_alias": org["organization_alias"].upper()}).json()
    assert [o["organization_id"] for o in by_alias] == [org_id]

    # Update: plain fields, metadata merged, budget fields (flat or nested) to the budget row.
    r = admin(gw, "PATCH", "/organization/update",
              json={"organization_id": org_id, "organization_alias": "renamed", "metadata": {"region": "eu"},
                    "litellm_budget_table": {"max_budget": 20}, "tpm_limit": 1000})
    assert r.status_code == 200, r.text
    up = r.json()
    assert up["organization_alias"] == "renamed"
    assert up["metadata"] == {"tier": "gold", "tags": ["a"], "region": "eu"}
    assert (up["litellm_budget_table"]["max_budget"], up["litellm_budget_table"]["tpm_limit"]) == (20, 1000)
    assert admin(gw, "PATCH", "/organization/update", json={"organization_id": "nope"}).status_code == 404

    # Member delete answers the membership removed.
    r = admin(gw, "DELETE", "/organization/member_delete", json={"organization_id": org_id, "user_id": user})
    assert r.status_code == 200 and r.json()["user_id"] == user
    assert admin(gw, "DELETE", "/organization/member_delete",
                 json={"organization_id": org_id, "user_id": user}).status_code == 404

    # Delete, as LiteLLM: the organization's teams and their keys go with it.
    key = generate(gw, team_id=team["team_id"])["key"]
    assert chat(gw, key).status_code == 200
    r = admin(gw, "DELETE", "/organization/delete", json={"organization_ids": [org_id]})
    assert r.status_code == 200, r.text
    assert [o["organization_id"] for o in r.json()] == [org_id]
    assert admin(gw, "GET", "/organization/info", params={"organization_id": org_id}).status_code == 404
    assert admin(gw, "GET", "/team/info", params={"team_id": team["team_id"]}).status_code == 404
    assert chat(gw, key).status_code == 401
    assert admin(gw, "DELETE", "/organization/delete", json={"organization_ids": [org_id]}).status_code == 404
    assert admin(gw, "GET", "/organization/info",
                 params={"organization_id": shared["organization_id"]}).status_code == 200


def test_team_in_organization_checks(gw):
    org = new_org(gw, models=["fake-openai-endpoint"], max_budget=5)
    org_id = org["organization_id"]
    r = admin(gw, "POST", "/team/new", json={"organization_id": "nope"})
    assert r.status_code == 400 and "Organization not found" in r.text
    r = admin(gw, "POST", "/team/new", json={"organization_id": org_id, "models": ["other-model"]})
    assert r.status_code == 400 and "not in organization's allowed models" in r.text
    r = admin(gw, "POST", "/team/new", json={"organization_id": org_id, "max_budget": 6})
    assert r.status_code == 400 and "exceeds organization's max_budget" in r.text
    ok = admin(gw, "POST", "/team/new", json={"organization_id": org_id, "models": ["fake-openai-endpoint"], "max_budget": 5})
    assert ok.status_code == 200, ok.text
    team_id = ok.json()["team_id"]
    r = admin(gw, "POST", "/team/update", json={"team_id": team_id, "max_budget": 7})
    assert r.status_code == 400 and "exceeds organization's max_budget" in r.text
    # An organization that allows every model takes any team models.
    open_org = new_org(gw)
    r = admin(gw, "POST", "/team/new", json={"organization_id": open_org["organization_id"], "models": ["other-model"]})
    assert r.status_code == 200, r.text


def test_organization_budget_stops_its_team_keys_and_counts_their_spend(gw):
    cost = cost_of_one(gw)
    org = new_org(gw, max_budget=cost * 2.5)
    org_id = org["organization_id"]
    teams = [admin(gw, "POST", "/team/new", json={"organization_id": org_id}).json()["team_id"] for _ in range(2)]
    keys = [generate(gw, team_id=t)["key"] for t in teams]
    # Three calls spread over two teams reach the organization's budget: the next is refused.
    codes = [chat(gw, keys[i % 2]).status_code for i in range(3)]
    assert codes == [200, 200, 200], codes
    for key in keys:
        r = chat(gw, key)
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["type"] == "budget_exceeded"
        assert f"Budget has been exceeded! Organization={org_id}" in err["message"]
    # A key outside the organization is not touched.
    assert chat(gw, generate(gw)["key"]).status_code == 200
    # The spend is written to the organization's row.
    deadline = time.monotonic() + 10
    while True:
        info = admin(gw, "GET", "/organization/info", params={"organization_id": org_id}).json()
        listed = [o for o in admin(gw, "GET", "/organization/list").json() if o["organization_id"] == org_id]
        if abs(info["spend"] - cost * 3) < 1e-9 and listed:
            break
        assert time.monotonic() < deadline, info
        time.sleep(0.25)
    # Raising the budget lets the keys go on.
    r = admin(gw, "PATCH", "/organization/update", json={"organization_id": org_id, "max_budget": cost * 100})
    assert r.status_code == 200, r.text
    assert chat(gw, keys[0]).status_code == 200
    # A blocked organization stops its teams' keys until it is unblocked.
    assert admin(gw, "PATCH", "/organization/update", json={"organization_id": org_id, "blocked": True}).status_code == 200
    r = chat(gw, keys[1])
    assert r.status_code == 401 and f"Organization={org_id} is blocked" in r.text, r.text
    assert admin(gw, "PATCH", "/organization/update", json={"organization_id": org_id, "blocked": False}).status_code == 200
    assert chat(gw, keys[1]).status_code == 200


def user_key(gw, role: str = "internal_user") -> tuple[str, str]:
    user = uid("u")
    r = admin(gw, "POST", "/user/new", json={"user_id": user, "user_role": role})
    assert r.status_code == 200, r.text
    return user, generate(gw, user_id=user)["key"]


def test_org_admins_manage_their_organization_and_others_are_refused(gw):
    org_id = new_org(gw)["organization_id"]
    other_org = new_org(gw)["organization_id"]
    boss, boss_key = user_key(gw)
    member, member_key = user_key(gw)
    outsider, outsider_key = user_key(gw)
    r = admin(gw, "POST", "/organization/member_add", json={"organization_id": org_id, "member": [
        {"role": "org_admin", "user_id": boss}, {"role": "internal_user", "user_id": member}]})
    assert r.status_code == 200, r.text

    # The org admin adds, updates and removes members, and creates teams in the organization.
    newbie = uid("new")
    r = as_key(gw, boss_key, "POST", "/organization/member_add",
               json={"organization_id": org_id, "member": {"role": "internal_user", "user_id": newbie}})
    assert r.status_code == 200, r.text
    r = as_key(gw, boss_key, "PATCH", "/organization/member_update",
               json={"organization_id": org_id, "user_id": newbie, "role": "internal_user_viewer"})
    assert r.status_code == 200, r.text
    r = as_key(gw, boss_key, "DELETE", "/organization/member_delete", json={"organization_id": org_id, "user_id": newbie})
    assert r.status_code == 200, r.text
    r = as_key(gw, boss_key, "POST", "/team/new", json={"organization_id": org_id})
    assert r.status_code == 200, r.text
    assert as_key(gw, boss_key, "GET", "/organization/info", params={"organization_id": org_id}).status_code == 200

    # ... but not in another organization (403), nor outside one, nor as a proxy admin would.
    r = as_key(gw, boss_key, "POST", "/organization/member_add",
               json={"organization_id": other_org, "member": {"role": "internal_user", "user_id": newbie}})
    assert r.status_code == 403, r.text
    assert as_key(gw, boss_key, "POST", "/team/new", json={"organization_id": other_org}).status_code == 401
    assert as_key(gw, boss_key, "POST", "/team/new", json={}).status_code == 401
    r = as_key(gw, boss_key, "POST", "/organization/new", json={"organization_alias": "mine"})
    assert r.status_code == 401 and "Only admins can create orgs" in r.text
    r = as_key(gw, boss_key, "DELETE", "/organization/delete", json={"organization_ids": [org_id]})
    assert r.status_code == 401 and "Only proxy admins can delete organizations" in r.text

    # A plain member and an outsider may not manage the organization.
    for key in (member_key, outsider_key):
        r = as_key(gw, key, "POST", "/organization/member_add",
                   json={"organization_id": org_id, "member": {"role": "org_admin", "user_id": outsider}})
        assert r.status_code == 401, r.text
        assert as_key(gw, key, "POST", "/team/new", json={"organization_id": org_id}).status_code == 401
        r = as_key(gw, key, "DELETE", "/organization/member_delete", json={"organization_id": org_id, "user_id": boss})
        assert r.status_code == 401, r.text
    # Non-admins list only the organizations they belong to.
    assert [o["organization_id"] for o in as_key(gw, member_key, "GET", "/organization/list").json()] == [org_id]
    assert as_key(gw, outsider_key, "GET", "/organization/list").json() == []
