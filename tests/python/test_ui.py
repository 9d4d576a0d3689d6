"""The admin web UI at /ui in a real browser: Playwright for Python driving Debian's Chromium
(no browser download) against sluice on the embedded SQLite.

Signed in with the master key, a key made in the browser is found through the API, a configured
model is listed, the spend page draws its charts after traffic and a log row opens its details;
signed in with a virtual key, another key's alias appears on no page; signed out, no page shows
data. Across the whole run the browser's console shows no error and no answer is a 5xx.
Screenshots of every page are saved under the session's work dir (`screens/`), or under
`SLUICE_UI_SCREENS` when it is set.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from conftest import MASTER_KEY, closed_port, start_gateway
from manage import ADMIN, chat, keys_config

CHROMIUM = "/usr/bin/chromium"
PAGES = ["", "keys", "teams", "users", "organizations", "models", "spend", "logs"]

@pytest.fixture(scope="module")
def ui_gw(log_dir, mock):
    db = log_dir / f"ui-{uuid.uuid4().hex[:8]}.db"
    p = start_gateway(log_dir, "ui", keys_config(mock.url, f"sqlite://{db}"))
    yield p
    p.stop()


@pytest.fixture(scope="module")
def screens(log_dir) -> Path:
    """Where the screenshots go: `SLUICE_UI_SCREENS` (for a CI job to keep them), else the
    session's work dir; the path is printed at the end of the module."""
    d = Path(os.environ.get("SLUICE_UI_SCREENS") or log_dir / "screens")
    d.mkdir(parents=True, exist_ok=True)
    yield d
    print(f"\nUI screenshots: {d}")


class Watched:
    """A browser with every console error and every 5xx answer of the run collected."""

    def __init__(self, browser):
        self.browser = browser
        self.console_errors: list[str] = []
        self.server_errors: list[str] = []

    def page(self):
        context = self.browser.new_context()
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.console_errors.append(str(e)))
        page.on("response", lambda r: r.status >= 500 and self.server_errors.append(f"{r.status} {r.url}"))
        page.set_default_timeout(10_000)
        return page


@pytest.fixture(scope="module")
def watched():
    from playwright.sync_api import sync_playwright

    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/python-tests.sh does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        w = Watched(browser)
        yield w
        browser.close()
    assert not w.console_errors, f"console errors: {w.console_errors}"
    assert not w.server_errors, f"5xx answers: {w.server_errors}"


def new_key(gw, alias: str) -> str:
    r = requests.post(gw.url + "/key/generate", headers=ADMIN, json={"key_alias": alias}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["key"]


def sign_in(page, gw, key: str):
    page.goto(gw.url + "/ui/login")
    page.get_by_label("Master key or virtual key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Dashboard").wait_for()


def visit(page, gw, name: str, heading: str, screens: Path, shot: str):
    page.goto(f"{gw.url}/ui/{name}")
    page.get_by_role("heading", name=heading, exact=True).wait_for()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(screens / f"{shot}.png"), full_page=True)


def tile_value(page, label: str) -> str:
    """The figure of the dashboard tile labelled `label`."""
    tile = page.locator(".tile").filter(has=page.locator(".label", has_text=label))
    return tile.locator(".value").first.inner_text()


def test_signed_out_no_page_shows_data(ui_gw, watched, screens):
    alias = f"hidden-{uuid.uuid4().hex[:6]}"
    new_key(ui_gw, alias)
    page = watched.page()
    for name in PAGES:
        page.goto(f"{ui_gw.url}/ui/{name}")
        page.get_by_role("heading", name="Sign in to sluice").wait_for()
        page.wait_for_load_state("networkidle")
        assert alias not in page.content(), name
        assert page.get_by_role("navigation", name="Pages").is_hidden()
    page.screenshot(path=str(screens / "signed-out.png"), full_page=True)
    # Nor does the API answer a browser that is not signed in.
    r = page.request.get(ui_gw.url + "/key/list")
    assert r.status == 401
    page.context.close()


def test_admin_creates_a_key_sees_models_spend_and_logs(ui_gw, watched, screens):
    page = watched.page()
    sign_in(page, ui_gw, MASTER_KEY)
    page.screenshot(path=str(screens / "dashboard-empty.png"), full_page=True)

    # Create a key in the browser, and find it through the API.
    alias = f"made-in-ui-{uuid.uuid4().hex[:6]}"
    visit(page, ui_gw, "keys", "Keys", screens, "keys-before")
    page.get_by_role("button", name="Create key").click()
    page.get_by_label("Alias", exact=True).fill(alias)
    page.get_by_label("Max budget ($)").fill("5")
    page.get_by_label("Metadata (JSON object)").fill('{"made_by": "test_ui"}')
    page.get_by_role("button", name="Create", exact=True).click()
    raw = page.get_by_test_id("new-key").inner_text().strip()
    assert raw.startswith("sk-"), raw
    page.get_by_role("cell", name=alias, exact=True).wait_for()
    page.screenshot(path=str(screens / "keys-created.png"), full_page=True)
    info = requests.get(ui_gw.url + "/key/info", params={"key": raw}, headers=ADMIN, timeout=10)
    assert info.status_code == 200, info.text
    assert info.json()["info"]["key_alias"] == alias
    assert info.json()["info"]["max_budget"] == 5
    assert info.json()["info"]["metadata"]["made_by"] == "test_ui"

    # Found by its alias among the others.
    page.get_by_label("Alias (exact)").fill(alias)
    page.get_by_role("button", name="Search").click()
    page.get_by_text("Page 1 of 1 · 1 keys").wait_for()
    page.get_by_label("Alias (exact)").fill("")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("cell", name=alias, exact=True).wait_for()

    # Block it in the browser: the API sees it blocked.
    page.get_by_role("button", name=f"Block {alias}").click()
    page.get_by_role("button", name=f"Unblock {alias}").wait_for()
    assert requests.get(ui_gw.url + "/key/info", params={"key": raw}, headers=ADMIN, timeout=10).json()["info"]["blocked"]
    page.get_by_role("button", name=f"Unblock {alias}").click()
    page.get_by_role("button", name=f"Block {alias}").wait_for()

    # Edit it: the API sees the new budget.
    page.get_by_role("button", name=f"Edit {alias}").click()
    page.get_by_label("Max budget ($)").fill("7.5")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("cell", name="$7.50", exact=True).wait_for()
    assert requests.get(ui_gw.url + "/key/info", params={"key": raw}, headers=ADMIN, timeout=10).json()["info"]["max_budget"] == 7.5

    # Regenerate a second key: the old one stops working, the new one (shown once) works.
    doomed_alias = f"doomed-{uuid.uuid4().hex[:6]}"
    doomed = new_key(ui_gw, doomed_alias)
    page.reload()
    page.get_by_role("button", name=f"Regenerate {doomed_alias}").click()
    fresh = page.get_by_test_id("new-key").inner_text().strip()
    assert fresh.startswith("sk-") and fresh != doomed
    assert chat(ui_gw, doomed).status_code == 401
    assert chat(ui_gw, fresh).status_code == 200
    # Delete it, confirmed in the page.
    page.get_by_role("button", name=f"Delete {doomed_alias}").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Yes, delete").click()
    page.get_by_role("cell", name=doomed_alias, exact=True).wait_for(state="detached")
    gone = requests.get(ui_gw.url + "/key/info", params={"key": fresh}, headers=ADMIN, timeout=10)
    assert gone.status_code == 404, gone.text

    # A configured model.
    visit(page, ui_gw, "models", "Models", screens, "models")
    page.get_by_role("cell", name="fake-openai-endpoint", exact=True).first.wait_for()
    assert page.get_by_text("in rotation").count() == 4, "each deployment's cooldown state"

    # Traffic with the new key, then its spend charted and its logs listed.
    for _ in range(3):
        r = chat(ui_gw, raw)
        assert r.status_code == 200, r.text
    deadline_ok = False
    for _ in range(50):
        logs = requests.get(ui_gw.url + "/spend/logs", params={"api_key": raw, "summarize": "false"}, headers=ADMIN, timeout=10)
        if logs.status_code == 200 and len(logs.json()) >= 3:
            deadline_ok = True
            break
        page.wait_for_timeout(200)
    assert deadline_ok, "the spend logs were not written"

    visit(page, ui_gw, "spend", "Spend", screens, "spend")
    chart = page.get_by_role("img", name="Spend by day")
    chart.wait_for()
    assert chart.locator("rect.bar").count() >= 1
    by_key = page.get_by_role("img", name="Spend by key")
    assert alias in by_key.inner_text()

    visit(page, ui_gw, "logs", "Logs", screens, "logs")
    rows = page.locator("tbody tr.clickable")
    assert rows.count() >= 3
    rows.first.click()
    details = page.get_by_label("Request details")
    details.wait_for()
    assert "request_id" in details.inner_text()
    assert "fake-openai-endpoint" in details.inner_text()
    page.screenshot(path=str(screens / "logs-details.png"), full_page=True)
    # Filtered on the server: by a model with no traffic, then by status.
    page.get_by_label("Model").fill("other-model")
    page.get_by_role("button", name="Filter").click()
    page.get_by_text("No requests match.").wait_for()
    page.get_by_label("Model").fill("fake-openai-endpoint")
    page.get_by_label("Status").select_option("success")
    page.get_by_role("button", name="Filter").click()
    page.locator("tbody tr.clickable").first.wait_for()
    assert page.locator("tbody tr.clickable").count() >= 3

    visit(page, ui_gw, "", "Dashboard", screens, "dashboard")
    live = page.get_by_role("region", name="Live")
    live.wait_for()
    assert "Requests/s" in live.inner_text()
    assert "—" not in tile_value(page, "p50 latency"), "percentiles of the last minute's requests"
    assert "—" not in tile_value(page, "p99 latency")
    page.get_by_role("heading", name="Deployments cooling down").wait_for()
    assert alias in page.get_by_role("table", name="Top keys today").inner_text()
    assert "fake-openai-endpoint" in page.get_by_role("img", name="Spend by model today").inner_text()
    # Live: more traffic shows on the open page at its next refresh, without a reload.
    seen = int(tile_value(page, "Requests today").replace(",", ""))
    for _ in range(4):
        assert chat(ui_gw, raw).status_code == 200
    page.wait_for_function(
        "n => [...document.querySelectorAll('.tile')].some(t => t.querySelector('.label').textContent === 'Requests today'"
        " && Number(t.querySelector('.value').textContent.replace(/,/g, '')) >= n)",
        arg=seen + 4,
        timeout=8_000,
    )
    row = page.get_by_role("table", name="Top keys today").get_by_role("row").filter(has_text=alias)
    assert row.get_by_role("cell").nth(1).inner_text() == "7", "the key's 3 + 4 requests today"
    page.screenshot(path=str(screens / "dashboard-live.png"), full_page=True)
    visit(page, ui_gw, "teams", "Teams", screens, "teams-before")
    team = f"ui-team-{uuid.uuid4().hex[:6]}"
    page.get_by_label("Team alias").fill(team)
    page.get_by_label("Max budget ($)").fill("20")
    page.get_by_role("button", name="Create team").click()
    page.get_by_role("cell", name=team, exact=True).wait_for()
    page.screenshot(path=str(screens / "teams.png"), full_page=True)
    teams = requests.get(ui_gw.url + "/team/list", headers=ADMIN, timeout=10).json()
    assert any(t.get("team_alias") == team and t.get("max_budget") == 20 for t in teams), teams
    # Users: create one in the browser, then add it to the team as an admin member.
    user = f"ui-user-{uuid.uuid4().hex[:6]}"
    visit(page, ui_gw, "users", "Users", screens, "users-before")
    page.get_by_label("User ID").fill(user)
    page.get_by_label("Role").select_option("internal_user")
    page.get_by_role("button", name="Create user").click()
    page.get_by_role("cell", name=user, exact=True).wait_for()
    page.screenshot(path=str(screens / "users.png"), full_page=True)
    visit(page, ui_gw, "teams", "Teams", screens, "teams-again")
    page.get_by_role("button", name=f"Edit team {team}").click()
    page.get_by_label("Add member (user ID)").fill(user)
    page.get_by_label("Member role").select_option("admin")
    page.get_by_label("Member's budget in team ($)").fill("4")
    page.get_by_role("form", name=f"Edit team {team}").get_by_label("Max budget ($)").fill("30")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("cell", name=f"{user} (admin)").wait_for()
    teams = requests.get(ui_gw.url + "/team/list", headers=ADMIN, timeout=10).json()
    mine = next(t for t in teams if t.get("team_alias") == team)
    assert mine["max_budget"] == 30
    assert {"user_id": user, "role": "admin"}.items() <= next(m for m in mine["members_with_roles"] if m["user_id"] == user).items()
    info = requests.get(ui_gw.url + "/team/info", params={"team_id": mine["team_id"]}, headers=ADMIN, timeout=10).json()
    membership = next(m for m in info["team_memberships"] if m["user_id"] == user)
    assert membership["litellm_budget_table"]["max_budget"] == 4, membership
    page.screenshot(path=str(screens / "teams-member.png"), full_page=True)
    # Remove the member again.
    page.get_by_role("button", name=f"Edit team {team}").click()
    page.get_by_role("button", name=f"Remove {user} from {team}").click()
    page.get_by_role("cell", name=f"{user} (admin)").wait_for(state="detached")
    teams = requests.get(ui_gw.url + "/team/list", headers=ADMIN, timeout=10).json()
    mine = next(t for t in teams if t.get("team_alias") == team)
    assert all(m.get("user_id") != user for m in mine["members_with_roles"])
    # Edit the user's budget and role.
    visit(page, ui_gw, "users", "Users", screens, "users-again")
    page.get_by_role("button", name=f"Edit user {user}").click()
    edit_user = page.get_by_role("form", name=f"Edit user {user}")
    edit_user.get_by_label("Max budget ($)").fill("12")
    edit_user.get_by_label("Role").select_option("internal_user_viewer")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("cell", name="$12.00", exact=True).wait_for()
    info = requests.get(ui_gw.url + "/user/info", params={"user_id": user}, headers=ADMIN, timeout=10).json()
    assert info["user_info"]["max_budget"] == 12 and info["user_info"]["user_role"] == "internal_user_viewer", info

    # Organizations: create one in the browser, find it through the API.
    org = f"ui-org-{uuid.uuid4().hex[:6]}"
    visit(page, ui_gw, "organizations", "Organizations", screens, "organizations-before")
    page.get_by_label("Organization alias").fill(org)
    page.get_by_role("button", name="Create organization").click()
    page.get_by_role("cell", name=org, exact=True).wait_for()
    page.screenshot(path=str(screens / "organizations.png"), full_page=True)
    orgs = requests.get(ui_gw.url + "/organization/list", headers=ADMIN, timeout=10).json()
    mine = next(o for o in orgs if o.get("organization_alias") == org)
    org_id = mine["organization_id"]

    def org_info():
        r = requests.get(ui_gw.url + "/organization/info", params={"organization_id": org_id}, headers=ADMIN, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    # Its budget, then a member with a budget of their own, their role changed, then removed.
    page.get_by_role("button", name=f"Edit organization {org}").click()
    page.get_by_role("form", name=f"Budget of {org}").get_by_label("Max budget ($)").fill("50")
    page.get_by_role("button", name="Save organization").click()
    page.get_by_role("cell", name="$50.00", exact=True).wait_for()
    assert org_info()["litellm_budget_table"]["max_budget"] == 50
    page.get_by_role("button", name=f"Edit organization {org}").click()
    adding = page.get_by_role("form", name=f"Add member to {org}")
    adding.get_by_label("User ID").fill(user)
    adding.get_by_label("Role").select_option("org_admin")
    adding.get_by_label("Budget in organization ($)").fill("3")
    adding.get_by_role("button", name="Add member").click()
    page.get_by_role("cell", name=f"{user} (org_admin)").wait_for()
    member = next(m for m in org_info()["members"] if m["user_id"] == user)
    assert member["user_role"] == "org_admin" and member["budget_id"], member
    page.screenshot(path=str(screens / "organizations-member.png"), full_page=True)
    page.get_by_role("button", name=f"Edit organization {org}").click()
    row = page.get_by_role("form", name=f"Member {user}")
    row.get_by_label(f"Role of {user}").select_option("internal_user")
    row.get_by_label(f"Budget of {user} in organization ($)").fill("6")
    page.screenshot(path=str(screens / "organizations-edit.png"), full_page=True)
    row.get_by_role("button", name=f"Save member {user}").click()
    page.get_by_role("cell", name=f"{user} (internal_user)").wait_for()
    assert next(m for m in org_info()["members"] if m["user_id"] == user)["user_role"] == "internal_user"
    page.get_by_role("button", name=f"Edit organization {org}").click()
    page.get_by_role("button", name=f"Remove {user} from {org}").click()
    page.get_by_role("cell", name=f"{user} (internal_user)").wait_for(state="detached")
    assert all(m["user_id"] != user for m in org_info()["members"])

    # Sign out: the pages are the sign-in form again.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in to sluice").wait_for()
    page.goto(ui_gw.url + "/ui/keys")
    page.get_by_role("heading", name="Sign in to sluice").wait_for()
    assert alias not in page.content()
    page.context.close()


def test_an_internal_user_sees_its_own_keys_and_logs(ui_gw, watched, screens):
    user = f"internal-{uuid.uuid4().hex[:6]}"
    r = requests.post(ui_gw.url + "/user/new", headers=ADMIN, json={"user_id": user, "user_role": "internal_user"}, timeout=10)
    assert r.status_code == 200, r.text
    own = requests.post(ui_gw.url + "/key/generate", headers=ADMIN, json={"user_id": user, "key_alias": f"{user}-key"}, timeout=10)
    assert own.status_code == 200, own.text
    stranger = f"stranger-{uuid.uuid4().hex[:6]}"
    new_key(ui_gw, stranger)
    key = own.json()["key"]
    assert chat(ui_gw, key).status_code == 200
    page = watched.page()
    sign_in(page, ui_gw, key)
    visit(page, ui_gw, "keys", "Keys", screens, "internal-user-keys")
    page.get_by_role("cell", name=f"{user}-key", exact=True).wait_for()
    assert page.get_by_role("button", name="Create key").is_visible(), "an internal user makes its own keys"
    for _ in range(50):
        visit(page, ui_gw, "logs", "Logs", screens, "internal-user-logs")
        if page.locator("tbody tr.clickable").count() >= 1:
            break
        time.sleep(0.2)
    assert page.locator("tbody tr.clickable").count() == 1, "its one request, and no one else's"
    for name in PAGES:
        heading = (name or "dashboard").capitalize()
        visit(page, ui_gw, name, heading, screens, f"internal-user-{name or 'dashboard'}")
        assert stranger not in page.content(), name
    page.context.close()


def test_an_internal_user_viewer_reads_and_changes_nothing(ui_gw, watched, screens):
    user = f"viewer-{uuid.uuid4().hex[:6]}"
    r = requests.post(ui_gw.url + "/user/new", headers=ADMIN, json={"user_id": user, "user_role": "internal_user_viewer"}, timeout=10)
    assert r.status_code == 200, r.text
    own = requests.post(ui_gw.url + "/key/generate", headers=ADMIN, json={"user_id": user, "key_alias": f"{user}-key"}, timeout=10)
    assert own.status_code == 200, own.text
    page = watched.page()
    sign_in(page, ui_gw, own.json()["key"])
    visit(page, ui_gw, "keys", "Keys", screens, "viewer-keys")
    page.get_by_role("cell", name=f"{user}-key", exact=True).wait_for()
    assert page.get_by_role("button", name="Create key").is_hidden()
    assert page.get_by_role("button", name=f"Delete {user}-key").count() == 0
    visit(page, ui_gw, "logs", "Logs", screens, "viewer-logs")
    assert page.get_by_role("alert").count() == 0, "its own logs, read without an error"
    page.context.close()


def logged(gw, key: str, n: int) -> list[dict]:
    """The spend-log rows of `key` once there are at least `n` (they are written in batches)."""
    rows: list[dict] = []
    for _ in range(50):
        r = requests.get(gw.url + "/spend/logs", params={"api_key": key, "summarize": "false"}, headers=ADMIN, timeout=10)
        rows = r.json() if r.status_code == 200 else []
        if len(rows) >= n:
            return rows
        time.sleep(0.2)
    raise AssertionError(f"{n} spend-log rows were not written: {rows}")


def token_of(gw, key: str) -> str:
    r = requests.get(gw.url + "/key/info", params={"key": key}, headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["key"]


def test_a_virtual_key_sees_only_its_own(ui_gw, watched, screens):
    mine_alias = f"vk-mine-{uuid.uuid4().hex[:6]}"
    other_alias = f"vk-other-{uuid.uuid4().hex[:6]}"
    mine = new_key(ui_gw, mine_alias)
    other = new_key(ui_gw, other_alias)
    # Both keys have traffic: the virtual key's logs are its two calls, none of the other's three.
    for key in (mine, mine, other, other, other):
        assert chat(ui_gw, key).status_code == 200
    logged(ui_gw, mine, 2)
    logged(ui_gw, other, 3)
    other_token = token_of(ui_gw, other)
    page = watched.page()
    sign_in(page, ui_gw, mine)
    visit(page, ui_gw, "keys", "Keys", screens, "virtual-key-keys")
    page.get_by_role("cell", name=mine_alias, exact=True).wait_for()
    assert page.get_by_role("button", name="Create key").is_hidden()
    for name in PAGES:
        heading = (name or "dashboard").capitalize()
        visit(page, ui_gw, name, heading, screens, f"virtual-key-{name or 'dashboard'}")
        assert other_alias not in page.content(), name
        assert other_token[:10] not in page.content(), name
        assert mine_alias in page.locator("#who").inner_text()
    assert page.get_by_role("link", name="Users").is_hidden()
    # The logs page (visited last) lists its own two requests, named by its alias.
    rows = page.locator("tbody tr.clickable")
    assert rows.count() == 2, page.locator("main").inner_text()
    for i in range(2):
        assert rows.nth(i).get_by_role("cell").nth(3).inner_text() == mine_alias
    page.context.close()


def test_a_key_limited_to_one_model_sees_only_that_model(ui_gw, watched, screens):
    """`/model/info` and `/v1/model/info`, and the models page, narrowed to the key's models."""
    r = requests.post(ui_gw.url + "/key/generate", headers=ADMIN, json={"models": ["other-model"], "key_alias": "one-model"}, timeout=10)
    assert r.status_code == 200, r.text
    key = r.json()["key"]
    for path in ("/model/info", "/v1/model/info"):
        everything = requests.get(ui_gw.url + path, headers=ADMIN, timeout=10).json()["data"]
        assert {m["model_name"] for m in everything} >= {"fake-openai-endpoint", "other-model"}
        seen = requests.get(ui_gw.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert seen.status_code == 200, seen.text
        assert [m["model_name"] for m in seen.json()["data"]] == ["other-model"], path
    page = watched.page()
    sign_in(page, ui_gw, key)
    visit(page, ui_gw, "models", "Models", screens, "one-model-key-models")
    page.get_by_role("cell", name="other-model", exact=True).wait_for()
    assert page.get_by_role("cell", name="fake-openai-endpoint", exact=True).count() == 0
    page.context.close()


def today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


def test_keys_page_filters_by_team_and_user_copies_and_creates_a_key_with_limits(ui_gw, watched, screens):
    team = requests.post(ui_gw.url + "/team/new", headers=ADMIN, json={"team_alias": f"kf-{uuid.uuid4().hex[:6]}"}, timeout=10)
    assert team.status_code == 200, team.text
    team_id = team.json()["team_id"]
    user = f"kf-user-{uuid.uuid4().hex[:6]}"
    r = requests.post(ui_gw.url + "/user/new", headers=ADMIN, json={"user_id": user, "user_role": "internal_user"}, timeout=10)
    assert r.status_code == 200, r.text
    team_key, user_key = f"kf-team-key-{uuid.uuid4().hex[:6]}", f"kf-user-key-{uuid.uuid4().hex[:6]}"
    for body in ({"team_id": team_id, "key_alias": team_key}, {"user_id": user, "key_alias": user_key}):
        r = requests.post(ui_gw.url + "/key/generate", headers=ADMIN, json=body, timeout=10)
        assert r.status_code == 200, r.text

    page = watched.page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, ui_gw, MASTER_KEY)
    visit(page, ui_gw, "keys", "Keys", screens, "keys-filters")
    search = page.get_by_role("search", name="Filter keys")
    search.get_by_label("Team ID").fill(team_id)
    search.get_by_role("button", name="Search").click()
    page.get_by_text("Page 1 of 1 · 1 keys").wait_for()
    page.get_by_role("cell", name=team_key, exact=True).wait_for()
    assert page.get_by_role("cell", name=user_key, exact=True).count() == 0
    page.screenshot(path=str(screens / "keys-by-team.png"), full_page=True)
    search.get_by_label("Team ID").fill("")
    search.get_by_label("User ID").fill(user)
    search.get_by_role("button", name="Search").click()
    page.get_by_role("cell", name=user_key, exact=True).wait_for()
    assert page.get_by_role("cell", name=team_key, exact=True).count() == 0
    for cell in page.locator("tbody tr").all():
        assert cell.get_by_role("cell").nth(2).inner_text() == user, "every key listed is the user's"
    search.get_by_label("User ID").fill("")
    search.get_by_role("button", name="Search").click()

    # A key with models, rpm/tpm, a duration and a team, made in the browser, as the API reads it.
    alias = f"limited-{uuid.uuid4().hex[:6]}"
    page.get_by_role("button", name="Create key").click()
    form = page.get_by_role("form", name="Create key")
    form.get_by_label("Alias", exact=True).fill(alias)
    form.get_by_label("Models (comma-separated; empty: all)").fill("fake-openai-endpoint, other-model")
    form.get_by_label("RPM limit").fill("30")
    form.get_by_label("TPM limit").fill("3000")
    form.get_by_label("Duration (e.g. 30d; empty: never expires)").fill("7d")
    form.get_by_label("Team ID").fill(team_id)
    page.screenshot(path=str(screens / "keys-create-form.png"), full_page=True)
    form.get_by_role("button", name="Create", exact=True).click()
    raw = page.get_by_test_id("new-key").inner_text().strip()
    assert raw.startswith("sk-"), raw
    # Its copy button puts the key on the clipboard.
    page.get_by_role("button", name="Copy key").click()
    page.locator("#status").get_by_text("Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == raw
    page.get_by_role("cell", name=alias, exact=True).wait_for()
    info = requests.get(ui_gw.url + "/key/info", params={"key": raw}, headers=ADMIN, timeout=10).json()["info"]
    assert info["key_alias"] == alias
    assert info["models"] == ["fake-openai-endpoint", "other-model"]
    assert (info["rpm_limit"], info["tpm_limit"], info["team_id"]) == (30, 3000, team_id)
    expires = datetime.fromisoformat(info["expires"].replace("Z", "+00:00"))
    left = expires - datetime.now(timezone.utc)
    assert timedelta(days=6, hours=23) < left <= timedelta(days=7), info["expires"]
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=alias, exact=True))
    assert "30 rpm, 3000 tpm" in row.inner_text()
    page.screenshot(path=str(screens / "keys-created-limited.png"), full_page=True)
    page.context.close()


def test_models_page_shows_each_deployments_provider_and_api_base(ui_gw, mock, watched, screens):
    page = watched.page()
    sign_in(page, ui_gw, MASTER_KEY)
    visit(page, ui_gw, "models", "Models", screens, "models-columns")
    headers = [h.inner_text() for h in page.get_by_role("columnheader").all()]
    provider, api_base = headers.index("Provider"), headers.index("API base")
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="fake-openai-endpoint", exact=True))
    cells = row.get_by_role("cell")
    assert cells.nth(provider).inner_text() == "openai"
    assert cells.nth(api_base).inner_text() == mock.url + "/"
    page.context.close()


def test_spend_page_charts_team_model_and_end_user_with_totals(ui_gw, watched, screens):
    team_alias = f"spend-team-{uuid.uuid4().hex[:6]}"
    team = requests.post(ui_gw.url + "/team/new", headers=ADMIN, json={"team_alias": team_alias}, timeout=10)
    assert team.status_code == 200, team.text
    r = requests.post(ui_gw.url + "/key/generate", headers=ADMIN, json={"team_id": team.json()["team_id"]}, timeout=10)
    assert r.status_code == 200, r.text
    key = r.json()["key"]
    end_user = f"customer-{uuid.uuid4().hex[:6]}"
    for model in ("fake-openai-endpoint", "fake-openai-endpoint", "other-model"):
        assert chat(ui_gw, key, model=model, user=end_user).status_code == 200
    logged(ui_gw, key, 3)
    days = {"start_date": today(), "end_date": today()}
    for _ in range(50):
        customers = requests.get(ui_gw.url + "/global/spend/report", params={**days, "group_by": "customer"}, headers=ADMIN, timeout=10).json()
        if any(c["customer"] == end_user for d in customers for c in d["customers"]):
            break
        time.sleep(0.2)
    start = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 29 * 86400))
    totals = requests.get(
        ui_gw.url + "/user/daily/activity", params={"start_date": start, "end_date": today(), "page_size": 1000}, headers=ADMIN, timeout=10
    ).json()["metadata"]
    assert totals["total_api_requests"] >= 3

    page = watched.page()
    sign_in(page, ui_gw, MASTER_KEY)
    visit(page, ui_gw, "spend", "Spend", screens, "spend-breakdowns")
    assert team_alias in page.get_by_role("img", name="Spend by team").inner_text()
    by_model = page.get_by_role("img", name="Spend by model").inner_text()
    assert "fake-openai-endpoint" in by_model and "other-model" in by_model
    assert end_user in page.get_by_role("img", name="Spend by end user").inner_text()
    totals_tiles = page.get_by_role("region", name="Totals")
    figure = lambda label: totals_tiles.locator(".tile").filter(has=page.get_by_text(label, exact=True)).locator(".value").inner_text()
    assert figure("Requests") == f"{totals['total_api_requests']:,}"
    assert figure("Failed requests") == f"{totals['total_failed_requests']:,}"
    assert figure("Tokens") == f"{totals['total_tokens']:,}"
    assert figure("Total spend") not in ("$0.00", ""), "the traffic was priced"
    page.context.close()


def test_logs_page_filters_by_key_and_time_and_pages(ui_gw, watched, screens):
    from playwright.sync_api import expect

    alias = f"pager-{uuid.uuid4().hex[:6]}"
    key = new_key(ui_gw, alias)
    # One more than the page's 50 rows, beside another key's call the key filter leaves out.
    for _ in range(51):
        assert chat(ui_gw, key).status_code == 200
    assert chat(ui_gw, new_key(ui_gw, f"not-paged-{uuid.uuid4().hex[:6]}")).status_code == 200
    logged(ui_gw, key, 51)

    page = watched.page()
    sign_in(page, ui_gw, MASTER_KEY)
    visit(page, ui_gw, "logs", "Logs", screens, "logs-unfiltered")
    search = page.get_by_role("search", name="Filter logs")
    rows = page.locator("tbody tr.clickable")
    # Unfiltered, the newest row is the other key's (its call came last): the filtered table
    # has replaced it once the first row is the paged key's.
    expect(rows.first.get_by_role("cell").nth(3)).not_to_have_text(alias)
    search.get_by_label("Key (sk-… or hash)").fill(key)
    search.get_by_role("button", name="Filter").click()
    expect(rows.first.get_by_role("cell").nth(3)).to_have_text(alias)
    expect(rows).to_have_count(50)
    assert {r.get_by_role("cell").nth(3).inner_text() for r in rows.all()} == {alias}
    pager = page.get_by_role("navigation", name="Pages of logs")
    pager.get_by_role("button", name="Older").click()
    pager.get_by_text("Page 2", exact=True).wait_for()
    expect(rows).to_have_count(1)
    assert rows.first.get_by_role("cell").nth(3).inner_text() == alias
    assert pager.get_by_role("button", name="Older").is_disabled()
    page.screenshot(path=str(screens / "logs-page-2.png"), full_page=True)
    pager.get_by_role("button", name="Newer").click()
    pager.get_by_text("Page 1", exact=True).wait_for()
    expect(rows).to_have_count(50)

    # A time filter: from tomorrow nothing; today, the key's rows again.
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    search.get_by_label("From").fill(tomorrow)
    search.get_by_role("button", name="Filter").click()
    page.get_by_text("No requests match.").wait_for()
    search.get_by_label("From").fill(today())
    search.get_by_label("To").fill(today())
    search.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(50)
    page.screenshot(path=str(screens / "logs-by-key-today.png"), full_page=True)
    page.context.close()


def test_spend_logs_filter_by_team_model_and_status(ui_gw):
    """The logs page's filters: `/spend/logs?team_id=&model=&status=` give the matching rows only."""
    r = requests.post(ui_gw.url + "/team/new", headers=ADMIN, json={"team_alias": "logs-team"}, timeout=10)
    assert r.status_code == 200, r.text
    team_id = r.json()["team_id"]
    r = requests.post(ui_gw.url + "/key/generate", headers=ADMIN, json={"team_id": team_id}, timeout=10)
    assert r.status_code == 200, r.text
    in_team = r.json()["key"]
    outside = new_key(ui_gw, f"no-team-{uuid.uuid4().hex[:6]}")
    for key in (in_team, outside):
        assert chat(ui_gw, key).status_code == 200
    rows = []
    for _ in range(50):
        rows = requests.get(
            ui_gw.url + "/spend/logs", params={"team_id": team_id, "summarize": "false"}, headers=ADMIN, timeout=10
        ).json()
        if rows:
            break
        time.sleep(0.2)
    assert len(rows) == 1, rows
    assert rows[0]["team_id"] == team_id
    none = requests.get(
        ui_gw.url + "/spend/logs", params={"team_id": "no-such-team", "summarize": "false"}, headers=ADMIN, timeout=10
    ).json()
    assert none == []
    by_model = requests.get(
        ui_gw.url + "/spend/logs",
        params={"team_id": team_id, "model": "fake-openai-endpoint", "status": "success", "summarize": "false"},
        headers=ADMIN,
        timeout=10,
    ).json()
    assert len(by_model) == 1, by_model
    failed = requests.get(
        ui_gw.url + "/spend/logs", params={"team_id": team_id, "status": "failure", "summarize": "false"}, headers=ADMIN, timeout=10
    ).json()
    assert failed == []


@pytest.fixture(scope="module")
def models_gw(log_dir, mock):
    db = log_dir / f"ui-models-{uuid.uuid4().hex[:8]}.db"
    p = start_gateway(log_dir, "ui-models", keys_config(mock.url, f"sqlite://{db}", {"store_model_in_db": True}))
    yield p
    p.stop()


def stored_model(gw, name: str):
    data = requests.get(gw.url + "/v1/model/info", headers=ADMIN, timeout=10).json()["data"]
    return next((m for m in data if m["model_name"] == name), None)


def test_admin_adds_edits_and_deletes_a_stored_model(models_gw, mock, watched, screens):
    secret = f"sk-upstream-{uuid.uuid4().hex}"
    name = f"ui-model-{uuid.uuid4().hex[:6]}"
    page = watched.page()
    sign_in(page, models_gw, MASTER_KEY)
    visit(page, models_gw, "models", "Models", screens, "models-db-before")
    page.get_by_role("button", name="Add model").click()
    page.get_by_label("Model name").fill(name)
    page.get_by_label("Provider/model (e.g. openai/gpt-4o)").fill("openai/any")
    page.get_by_label("API base").fill(mock.url + "/")
    page.get_by_label("API key").fill(secret)
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_role("cell", name=name, exact=True).wait_for()
    assert secret not in page.content(), "a stored credential is never shown"
    assert chat(models_gw, MASTER_KEY, model=name).status_code == 200, "the added model is routed"

    page.get_by_role("button", name=f"Edit model {name}").click()
    page.get_by_label("RPM").fill("42")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("cell", name="42", exact=True).wait_for()
    page.screenshot(path=str(screens / "models-db.png"), full_page=True)
    assert stored_model(models_gw, name)["litellm_params"]["rpm"] == 42
    assert chat(models_gw, MASTER_KEY, model=name).status_code == 200, "its key was kept by the edit"

    page.get_by_role("button", name=f"Delete model {name}").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Yes, delete").click()
    page.get_by_role("cell", name=name, exact=True).wait_for(state="detached")
    assert stored_model(models_gw, name) is None

    # A deployment nothing can reach, beside a working one in the same group: the calls it
    # gets cool it down, and the models page and the dashboard say so.
    dead = requests.post(
        models_gw.url + "/model/new",
        headers=ADMIN,
        json={
            "model_name": "other-model",
            "litellm_params": {"model": "openai/any", "api_base": f"http://127.0.0.1:{closed_port()}/", "api_key": "x", "cooldown_time": 300},
        },
        timeout=10,
    )
    assert dead.status_code == 200, dead.text
    for _ in range(20):
        chat(models_gw, MASTER_KEY, model="other-model")
    visit(page, models_gw, "models", "Models", screens, "models-cooling")
    assert page.get_by_text("cooling down,").count() == 1
    # Each deployment's health check, run from its row: the dead one is unhealthy, saying why;
    # a working one healthy.
    data = requests.get(models_gw.url + "/v1/model/info", headers=ADMIN, timeout=10).json()["data"]
    dead_id = next(m["model_info"]["id"] for m in data if m["model_name"] == "other-model"
                   and m["litellm_params"].get("api_base", "").startswith("http://127.0.0.1:")
                   and mock.url not in m["litellm_params"].get("api_base", ""))
    ok_id = next(m["model_info"]["id"] for m in data if m["model_name"] == "fake-openai-endpoint")
    page.get_by_role("button", name=f"Check health of other-model {dead_id[:12]}").click()
    dead_row = page.get_by_role("row").filter(has=page.get_by_role("button", name=f"Check health of other-model {dead_id[:12]}"))
    unhealthy = dead_row.get_by_text("unhealthy", exact=True)
    unhealthy.wait_for()
    assert "APIConnectionError" in unhealthy.get_attribute("title")
    page.get_by_role("button", name=f"Check health of fake-openai-endpoint {ok_id[:12]}").click()
    ok_row = page.get_by_role("row").filter(has=page.get_by_role("button", name=f"Check health of fake-openai-endpoint {ok_id[:12]}"))
    ok_row.get_by_text("healthy", exact=True).wait_for()
    page.screenshot(path=str(screens / "models-health.png"), full_page=True)
    visit(page, models_gw, "", "Dashboard", screens, "dashboard-cooling")
    cooling = page.get_by_role("region", name="Live").get_by_role("table")
    assert "other-model" in cooling.inner_text()

    # The calls the dead deployment failed are logged (as LiteLLM logs them), and a failed row
    # opens on what went wrong.
    visit(page, models_gw, "logs", "Logs", screens, "logs-before-failures")
    search = page.get_by_role("search", name="Filter logs")
    search.get_by_label("Status").select_option("failure")
    search.get_by_role("button", name="Filter").click()
    rows = page.locator("tbody tr.clickable")
    rows.first.get_by_text("failure", exact=True).wait_for()
    assert {r.get_by_role("cell").nth(2).inner_text() for r in rows.all()} == {"other-model"}
    rows.first.click()
    error = page.get_by_label("Error", exact=True)
    error.wait_for()
    # LiteLLM's exception class (the last attempt's: a refused connection), the status, and the
    # message the client got.
    assert error.inner_text().startswith("APIConnectionError (500): "), error.inner_text()
    assert "api_base" in error.inner_text()
    page.screenshot(path=str(screens / "logs-failure-details.png"), full_page=True)
    page.context.close()
