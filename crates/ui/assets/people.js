// Teams, users and organizations: list, create and edit through the management API (admins).

import { get, post, patch, del } from "./api.js";
import { h, field, table, money, say, guarded, formValues } from "./dom.js";

export async function teamsPage(main) {
  main.append(h("h1", {}, "Teams"));
  const panel = h("div");
  const list = h("div");
  const form = h("form.card", { "aria-label": "Create team" },
    h("h2", {}, "Create team"),
    h("div.fields", {},
      field("Team alias", "team_alias", { required: true }),
      field("Max budget ($)", "max_budget", { type: "number", step: "any", min: "0" }),
      field("Models (comma-separated)", "models")),
    h("button.primary", { type: "submit" }, "Create team"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const v = formValues(form);
    const body = { team_alias: v.team_alias };
    if (v.max_budget) body.max_budget = Number(v.max_budget);
    if (v.models) body.models = v.models.split(",").map((m) => m.trim()).filter(Boolean);
    guarded(async () => {
      await post("/team/new", body);
      form.reset();
      say("Team created");
      await load();
    });
  });
  main.append(form, panel, list);
  async function load() {
    const answer = await get("/team/list");
    const teams = Array.isArray(answer) ? answer : answer.teams || [];
    list.replaceChildren(teams.length ? table([
      { title: "Alias", cell: (t) => t.team_alias || "" },
      { title: "Team ID", cell: (t) => t.team_id },
      { title: "Members", cell: (t) => (t.members_with_roles || []).map((m) => `${m.user_id || m.user_email} (${m.role})`).join(", ") },
      { title: "Spend", num: true, cell: (t) => money(t.spend) },
      { title: "Budget", num: true, cell: (t) => (t.max_budget == null ? "—" : money(t.max_budget)) },
      { title: "Actions", cell: (t) => h("button", { type: "button", "aria-label": `Edit team ${t.team_alias || t.team_id}`, on: { click: () => edit(t) } }, "Edit") },
    ], teams) : h("p.muted", {}, "No teams yet."));
  }
  function edit(t) {
    const name = t.team_alias || t.team_id;
    const members = (t.members_with_roles || []).filter((m) => m.user_id);
    const f = h("form.card", { "aria-label": `Edit team ${name}` },
      h("h2", {}, `Edit team ${name}`),
      members.length ? h("ul", { "aria-label": "Members" }, members.map((m) => h("li", {}, `${m.user_id} (${m.role}) `,
        h("button.danger", { type: "button", "aria-label": `Remove ${m.user_id} from ${name}`, on: { click: () => guarded(async () => {
          await post("/team/member_delete", { team_id: t.team_id, user_id: m.user_id });
          panel.replaceChildren();
          say("Removed");
          await load();
        }) } }, "Remove")))) : "",
      h("div.fields", {},
        field("Max budget ($)", "max_budget", { type: "number", step: "any", min: "0", value: t.max_budget ?? "" }),
        field("Add member (user ID)", "member"),
        h("label", {}, "Member role", h("select", { name: "role" }, h("option", { value: "user" }, "user"), h("option", { value: "admin" }, "admin"))),
        field("Member's budget in team ($)", "member_budget", { type: "number", step: "any", min: "0" })),
      h("div.row-actions", {}, h("button.primary", { type: "submit" }, "Save"), h("button", { type: "button", on: { click: () => panel.replaceChildren() } }, "Cancel")));
    f.addEventListener("submit", (e) => {
      e.preventDefault();
      const v = formValues(f);
      guarded(async () => {
        if (v.max_budget !== "") await post("/team/update", { team_id: t.team_id, max_budget: Number(v.max_budget) });
        if (v.member) await post("/team/member_add", { team_id: t.team_id, member: { user_id: v.member, role: v.role } });
        // A member's own budget: the one just added, or else the only one named in the list.
        if (v.member_budget !== "") {
          const who = v.member || (members.length === 1 ? members[0].user_id : "");
          if (!who) throw new Error("Name the member (user ID) whose budget in the team to set.");
          await post("/team/member_update", { team_id: t.team_id, user_id: who, max_budget_in_team: Number(v.member_budget) });
        }
        panel.replaceChildren();
        say("Saved");
        await load();
      });
    });
    panel.replaceChildren(f);
  }
  await load();
}

export async function usersPage(main) {
  main.append(h("h1", {}, "Users"));
  const list = h("div");
  const form = h("form.card", { "aria-label": "Create user" },
    h("h2", {}, "Create user"),
    h("div.fields", {},
      field("User ID", "user_id", { required: true }),
      field("Email", "user_email", { type: "email" }),
      h("label", {}, "Role", h("select", { name: "user_role" },
        ["internal_user", "internal_user_viewer", "proxy_admin", "proxy_admin_viewer"].map((r) => h("option", { value: r }, r)))),
      field("Max budget ($)", "max_budget", { type: "number", step: "any", min: "0" })),
    h("button.primary", { type: "submit" }, "Create user"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const v = formValues(form);
    const body = { user_id: v.user_id, user_role: v.user_role, auto_create_key: false };
    if (v.user_email) body.user_email = v.user_email;
    if (v.max_budget) body.max_budget = Number(v.max_budget);
    guarded(async () => {
      await post("/user/new", body);
      form.reset();
      say("User created");
      await load();
    });
  });
  const panel = h("div");
  main.append(form, panel, list);
  async function load() {
    const answer = await get("/user/list", { page: 1, page_size: 100 });
    const users = Array.isArray(answer) ? answer : answer.users || [];
    list.replaceChildren(users.length ? table([
      { title: "User ID", cell: (u) => u.user_id },
      { title: "Email", cell: (u) => u.user_email || "" },
      { title: "Role", cell: (u) => u.user_role || "" },
      { title: "Teams", cell: (u) => (u.teams || []).join(", ") },
      { title: "Spend", num: true, cell: (u) => money(u.spend) },
      { title: "Budget", num: true, cell: (u) => (u.max_budget == null ? "—" : money(u.max_budget)) },
      { title: "Actions", cell: (u) => h("button", { type: "button", "aria-label": `Edit user ${u.user_id}`, on: { click: () => edit(u) } }, "Edit") },
    ], users) : h("p.muted", {}, "No users yet."));
  }
  function edit(u) {
    const f = h("form.card", { "aria-label": `Edit user ${u.user_id}` },
      h("h2", {}, `Edit user ${u.user_id}`),
      h("div.fields", {},
        h("label", {}, "Role", h("select", { name: "user_role" },
          ["internal_user", "internal_user_viewer", "proxy_admin", "proxy_admin_viewer"].map((r) => h("option", { value: r, selected: r === u.user_role }, r)))),
        field("Max budget ($)", "max_budget", { type: "number", step: "any", min: "0", value: u.max_budget ?? "" })),
      h("div.row-actions", {}, h("button.primary", { type: "submit" }, "Save"), h("button", { type: "button", on: { click: () => panel.replaceChildren() } }, "Cancel")));
    f.addEventListener("submit", (e) => {
      e.preventDefault();
      const v = formValues(f);
      const body = { user_id: u.user_id, user_role: v.user_role };
      if (v.max_budget !== "") body.max_budget = Number(v.max_budget);
      guarded(async () => {
        await post("/user/update", body);
        panel.replaceChildren();
        say("Saved");
        await load();
      });
    });
    panel.replaceChildren(f);
  }
  await load();
}

const ORG_ROLES = ["internal_user", "org_admin", "internal_user_viewer"];

export async function organizationsPage(main) {
  main.append(h("h1", {}, "Organizations"));
  const list = h("div");
  const panel = h("div");
  const form = h("form.card", { "aria-label": "Create organization" },
    h("h2", {}, "Create organization"),
    h("div.fields", {},
      field("Organization alias", "organization_alias", { required: true }),
      field("Max budget ($)", "max_budget", { type: "number", step: "any", min: "0" }),
      field("Models (comma-separated)", "models")),
    h("button.primary", { type: "submit" }, "Create organization"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const v = formValues(form);
    const body = { organization_alias: v.organization_alias };
    if (v.max_budget) body.max_budget = Number(v.max_budget);
    if (v.models) body.models = v.models.split(",").map((m) => m.trim()).filter(Boolean);
    guarded(async () => {
      await post("/organization/new", body);
      form.reset();
      say("Organization created");
      await load();
    });
  });
  main.append(form, panel, list);
  const budgetOf = (o) => (o.litellm_budget_table || {}).max_budget;
  async function load() {
    const orgs = (await get("/organization/list")) || [];
    list.replaceChildren(orgs.length ? table([
      { title: "Alias", cell: (o) => o.organization_alias || "" },
      { title: "Organization ID", cell: (o) => o.organization_id },
      { title: "Teams", cell: (o) => (o.teams || []).map((t) => t.team_alias || t.team_id).join(", ") },
      { title: "Members", cell: (o) => (o.members || []).map((m) => `${m.user_id} (${m.user_role || "member"})`).join(", ") },
      { title: "Spend", num: true, cell: (o) => money(o.spend) },
      { title: "Budget", num: true, cell: (o) => (budgetOf(o) == null ? "—" : money(budgetOf(o))) },
      { title: "Actions", cell: (o) => h("button", { type: "button", "aria-label": `Edit organization ${o.organization_alias || o.organization_id}`, on: { click: () => edit(o) } }, "Edit") },
    ], orgs) : h("p.muted", {}, "No organizations yet."));
  }
  async function done(message) {
    panel.replaceChildren();
    say(message);
    await load();
  }
  function edit(o) {
    const id = o.organization_id;
    const name = o.organization_alias || id;
    const members = (o.members || []).filter((m) => m.user_id);
    const roleSelect = (label, name, current) => h("label", {}, label, h("select", { name },
      ORG_ROLES.map((r) => h("option", { value: r, selected: r === current }, r))));
    // One row per member: their role and budget in the organization, saved or removed in place.
    const memberRow = (m) => {
      const row = h("form.member", { "aria-label": `Member ${m.user_id}` },
        h("span.member-name", {}, m.user_id),
        roleSelect(`Role of ${m.user_id}`, "role", m.user_role),
        field(`Budget of ${m.user_id} in organization ($)`, "max_budget", { type: "number", step: "any", min: "0" }),
        h("button", { type: "submit", "aria-label": `Save member ${m.user_id}` }, "Save member"),
        h("button.danger", { type: "button", "aria-label": `Remove ${m.user_id} from ${name}`, on: { click: () => guarded(async () => {
          await del("/organization/member_delete", { organization_id: id, user_id: m.user_id });
          await done("Member removed");
        }) } }, "Remove"));
      row.addEventListener("submit", (e) => {
        e.preventDefault();
        const v = formValues(row);
        const body = { organization_id: id, user_id: m.user_id, role: v.role };
        if (v.max_budget !== "") body.max_budget_in_organization = Number(v.max_budget);
        guarded(async () => {
          await patch("/organization/member_update", body);
          await done("Member saved");
        });
      });
      return row;
    };
    const settings = h("form", { "aria-label": `Budget of ${name}` },
      h("div.fields", {},
        field("Organization alias", "organization_alias", { value: o.organization_alias || "" }),
        field("Max budget ($)", "max_budget", { type: "number", step: "any", min: "0", value: budgetOf(o) ?? "" })),
      h("button.primary", { type: "submit" }, "Save organization"));
    settings.addEventListener("submit", (e) => {
      e.preventDefault();
      const v = formValues(settings);
      const body = { organization_id: id };
      if (v.organization_alias) body.organization_alias = v.organization_alias;
      if (v.max_budget !== "") body.max_budget = Number(v.max_budget);
      guarded(async () => {
        await patch("/organization/update", body);
        await done("Organization saved");
      });
    });
    const add = h("form", { "aria-label": `Add member to ${name}` },
      h("h3", {}, "Add member"),
      h("div.fields", {},
        field("User ID", "user_id", { required: true }),
        roleSelect("Role", "role", "internal_user"),
        field("Budget in organization ($)", "max_budget", { type: "number", step: "any", min: "0" })),
      h("button.primary", { type: "submit" }, "Add member"));
    add.addEventListener("submit", (e) => {
      e.preventDefault();
      const v = formValues(add);
      guarded(async () => {
        await post("/organization/member_add", { organization_id: id, member: { user_id: v.user_id, role: v.role } });
        if (v.max_budget !== "") {
          await patch("/organization/member_update", { organization_id: id, user_id: v.user_id, max_budget_in_organization: Number(v.max_budget) });
        }
        await done("Member added");
      });
    });
    panel.replaceChildren(h("section.card", { "aria-label": `Edit organization ${name}` },
      h("h2", {}, `Edit organization ${name}`),
      settings,
      h("h3", {}, "Members"),
      members.length ? h("div.members", {}, members.map(memberRow)) : h("p.muted", {}, "No members yet."),
      add,
      h("div.row-actions", {}, h("button", { type: "button", on: { click: () => panel.replaceChildren() } }, "Close"))));
  }
  await load();
}
