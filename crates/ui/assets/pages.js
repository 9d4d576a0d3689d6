// The pages other than keys: dashboard, models, spend, logs, teams and users. Each reads only
// the management API routes its key may call; what a key may not see is never asked for.

import { get, post } from "./api.js";
import { h, field, table, money, when, keyName, say, guarded, formValues, confirmInPage } from "./dom.js";
import { columns, bars } from "./chart.js";

const DAY_MS = 86400000;
const isoDay = (d) => d.toISOString().slice(0, 10);
const fmtInt = (n) => Number(n || 0).toLocaleString();

// Whether the session may read the whole proxy's spend logs (LiteLLM gives them to admins and
// to users' keys; a key of no user reads its own spend from its key row).
const LOG_READERS = ["internal_user", "internal_user_viewer", "proxy_admin_viewer"];
const readsLogs = (who) => who.admin || (!!who.user_id && LOG_READERS.includes(who.user_role || "internal_user"));

function tile(label, value) {
  return h("div.tile", {}, h("div.value", {}, value), h("div.label", {}, label));
}

// Daily activity (LiteLLM's /user/daily/activity) over `days` days: per day, model, key, user.
async function activity(days) {
  const end = new Date();
  const start = new Date(end.getTime() - (days - 1) * DAY_MS);
  return get("/user/daily/activity", { start_date: isoDay(start), end_date: isoDay(end), page_size: 1000 });
}

// Sums one breakdown (e.g. "models") over the days of an activity answer.
function sumBreakdown(answer, part, label) {
  const out = new Map();
  for (const day of answer.results || []) {
    for (const [name, entry] of Object.entries((day.breakdown || {})[part] || {})) {
      const key = label ? label(name, entry) : name;
      out.set(key, (out.get(key) || 0) + Number((entry.metrics || {}).spend || 0));
    }
  }
  return [...out].map(([label, value]) => ({ label: label || "(none)", value }));
}

const keyLabel = (token, entry) => ((entry.metadata || {}).key_alias) || `${String(token).slice(0, 10)}…`;

// The live figures of /ui/api/live (an admin's): traffic over the last minute and deployments
// cooling down, from the router's own counters.
const ms = (v) => (v == null ? "—" : `${Number(v).toFixed(0)} ms`);

// The q-quantile (0..1) of sorted numbers, nearest rank.
function quantile(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

// Latency percentiles of the most recent logged requests (start to end, as the spend log has them).
async function recentLatencies(n) {
  const rows = await get("/spend/logs", { summarize: "false", page: 1, page_size: n });
  const took = (rows || []).map((r) => new Date(r.endTime) - new Date(r.startTime)).filter((v) => v >= 0).sort((a, b) => a - b);
  return { count: took.length, p50: quantile(took, 0.5), p99: quantile(took, 0.99) };
}

function liveSection(live, recent) {
  const cooling = (live.deployments || []).filter((d) => d.cooling_down);
  return h("section", { "aria-label": "Live" },
    h("h2", {}, "Live (last minute)"),
    h("div.tiles", {},
      tile("Requests/s", Number(live.requests_per_second || 0).toFixed(2)),
      tile("In flight", fmtInt(live.in_flight)),
      tile("Upstream error rate", `${(100 * Number(live.error_ratio || 0)).toFixed(1)}%`),
      tile(`p50 latency (last ${recent.count} logged)`, ms(recent.p50)),
      tile(`p99 latency (last ${recent.count} logged)`, ms(recent.p99)),
      tile("Cooling down", fmtInt(cooling.length))),
    h("h2", {}, "Deployments cooling down"),
    cooling.length
      ? table([
        { title: "Model", cell: (d) => d.model_name },
        { title: "Deployment", cell: (d) => String(d.id).slice(0, 12) },
        { title: "API base", cell: (d) => d.api_base || "" },
        { title: "Back in", num: true, cell: (d) => `${d.cooldown_left_s} s` },
      ], cooling)
      : h("p.muted", {}, "None: every deployment is in rotation."));
}

export async function dashboardPage(main, { who, onLeave }) {
  main.append(h("h1", {}, "Dashboard"));
  const body = h("div");
  main.append(body);
  async function refresh() {
    const live = who.admin ? await get("/ui/api/live") : null;
    const recent = who.admin ? await recentLatencies(200) : null;
    const today = await activity(1);
    const m = today.metadata || {};
    const requests = Number(m.total_api_requests || 0);
    const errorRate = requests ? (100 * Number(m.total_failed_requests || 0)) / requests : 0;
    const models = await get("/v1/model/info");
    body.replaceChildren(
      live ? liveSection(live, recent) : "",
      h("h2", {}, "Today"),
      h("section.tiles", { "aria-label": "Today" },
        tile("Spend today", money(m.total_spend)),
        tile("Requests today", fmtInt(requests)),
        tile("Error rate today", `${errorRate.toFixed(1)}%`),
        tile("Tokens today", fmtInt(m.total_tokens)),
        tile("Deployments", fmtInt((models.data || []).length))),
      h("h2", {}, "Top models today"),
      bars("Spend by model today", sumBreakdown(today, "model_groups"), money, 5),
      h("h2", {}, "Top keys today"),
      bars("Spend by key today", sumBreakdown(today, "api_keys", keyLabel), money, 5),
      h("p.muted", {}, `Updated ${new Date().toLocaleTimeString()}; refreshed every 5 seconds.`));
  }
  await refresh();
  const timer = setInterval(() => guarded(refresh), 5000);
  onLeave(() => clearInterval(timer));
}

export async function modelsPage(main, { who }) {
  const editable = who.admin && who.store_model_in_db;
  const panel = h("div");
  const list = h("div");
  main.append(h("h1", {}, "Models"));
  if (editable) {
    main.append(h("div.toolbar", {}, h("button.primary", { type: "button", on: { click: () => openForm(null) } }, "Add model")));
  }
  main.append(panel, list);
  const p = (m) => m.litellm_params || {};
  const info = (m) => m.model_info || {};
  const provider = (m) => p(m).custom_llm_provider || (String(p(m).model || "").includes("/") ? String(p(m).model).split("/")[0] : "openai");

  async function load() {
    const answer = await get("/v1/model/info");
    const rows = answer.data || [];
    // An admin also sees each deployment's state in the router (cooldown, traffic).
    const live = who.admin ? await get("/ui/api/live") : null;
    const state = new Map(((live && live.deployments) || []).map((d) => [d.id, d]));
    const columns = [
      { title: "Model name", cell: (m) => m.model_name },
      { title: "Provider", cell: provider },
      { title: "Upstream model", cell: (m) => p(m).model || "" },
      { title: "API base", cell: (m) => p(m).api_base || "" },
      { title: "RPM", num: true, cell: (m) => p(m).rpm ?? "" },
      { title: "TPM", num: true, cell: (m) => p(m).tpm ?? "" },
      { title: "Input $/1M tok", num: true, cell: (m) => perMillion(info(m).input_cost_per_token) },
      { title: "Output $/1M tok", num: true, cell: (m) => perMillion(info(m).output_cost_per_token) },
      { title: "ID", cell: (m) => h("span", { title: info(m).id || "" }, String(info(m).id || "").slice(0, 12)) },
      { title: "Source", cell: (m) => (info(m).db_model ? "database" : "config") },
    ];
    if (live) {
      columns.push(
        { title: "State", cell: (m) => {
          const d = state.get(info(m).id);
          if (!d) return "";
          return d.cooling_down ? h("span.badge.bad", {}, `cooling down, ${d.cooldown_left_s} s left`) : h("span.badge.ok", {}, "in rotation");
        } },
        { title: "Requests (last min)", num: true, cell: (m) => fmtInt((state.get(info(m).id) || {}).requests_last_minute) });
    }
    if (editable) {
      columns.push({ title: "Actions", cell: (m) => (info(m).db_model ? h("div.row-actions", {},
        h("button", { type: "button", "aria-label": `Edit model ${m.model_name}`, on: { click: () => openForm(m) } }, "Edit"),
        h("button.danger", { type: "button", "aria-label": `Delete model ${m.model_name}`, on: { click: () =>
          confirmInPage(panel, `Delete model ${m.model_name}? Requests for it stop being routed here.`, () => guarded(async () => {
            await post("/model/delete", { id: info(m).id });
            say("Deleted");
            await load();
          })) } }, "Delete")) : "") });
    }
    list.replaceChildren(
      h("p.muted", {}, `${rows.length} deployments. Credentials are never shown.${editable ? "" : " Models are added in config.yaml (or through the API with store_model_in_db on)."}`),
      rows.length ? table(columns, rows) : h("p.muted", {}, "No models this key may call."));
  }

  function openForm(m) {
    const editing = !!m;
    const error = h("p.error", { role: "alert" });
    const form = h("form.card", { "aria-label": editing ? `Edit model ${m.model_name}` : "Add model" },
      h("h2", {}, editing ? `Edit model ${m.model_name}` : "Add model"),
      h("div.fields", {},
        field("Model name", "model_name", { required: !editing, value: editing ? m.model_name : "" }),
        field("Provider/model (e.g. openai/gpt-4o)", "model", { required: !editing, value: editing ? p(m).model || "" : "" }),
        field("API base", "api_base", { value: editing ? p(m).api_base || "" : "" }),
        field(editing ? "API key (empty: unchanged)" : "API key", "api_key", { type: "password", autocomplete: "new-password" }),
        field("RPM", "rpm", { type: "number", min: "0", step: "1", value: editing ? p(m).rpm ?? "" : "" }),
        field("TPM", "tpm", { type: "number", min: "0", step: "1", value: editing ? p(m).tpm ?? "" : "" })),
      error,
      h("div.row-actions", {},
        h("button.primary", { type: "submit" }, editing ? "Save" : "Add"),
        h("button", { type: "button", on: { click: () => panel.replaceChildren() } }, "Cancel")));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const v = formValues(form);
      const params = {};
      for (const k of ["model", "api_base", "api_key"]) if (v[k]) params[k] = v[k];
      for (const k of ["rpm", "tpm"]) if (v[k] !== "") params[k] = Number(v[k]);
      try {
        if (editing) {
          await post("/model/update", { model_info: { id: info(m).id }, model_name: v.model_name || undefined, litellm_params: params });
        } else {
          await post("/model/new", { model_name: v.model_name, litellm_params: params });
        }
        panel.replaceChildren();
        say(editing ? "Saved" : "Added");
        await load();
      } catch (err) {
        error.textContent = err.message;
      }
    });
    panel.replaceChildren(form);
  }

  await load();
}

const perMillion = (v) => (v == null ? "" : (Number(v) * 1e6).toFixed(2));

export async function spendPage(main, { who }) {
  main.append(h("h1", {}, "Spend"));
  const range = h("form.toolbar", { "aria-label": "Range" },
    h("label", {}, "Days", h("select", { name: "days" }, [7, 30, 90].map((d) => h("option", { value: String(d), selected: d === 30 }, `Last ${d} days`)))),
    h("button", { type: "submit" }, "Show"));
  const body = h("div");
  main.append(range, body);
  range.addEventListener("submit", (e) => {
    e.preventDefault();
    guarded(() => draw(Number(formValues(range).days)));
  });
  async function draw(days) {
    const answer = await activity(days);
    const m = answer.metadata || {};
    const byDay = new Map((answer.results || []).map((d) => [d.date, Number((d.metrics || {}).spend || 0)]));
    const points = [];
    for (let i = days - 1; i >= 0; i--) {
      const d = isoDay(new Date(Date.now() - i * DAY_MS));
      points.push({ label: d.slice(5), value: byDay.get(d) || 0 });
    }
    const parts = [
      h("section.tiles", { "aria-label": "Totals" },
        tile("Total spend", money(m.total_spend)),
        tile("Requests", fmtInt(m.total_api_requests)),
        tile("Failed requests", fmtInt(m.total_failed_requests)),
        tile("Tokens", fmtInt(m.total_tokens))),
      h("h2", {}, "Spend by day"), columns("Spend by day", points, money),
      h("h2", {}, "By model"), bars("Spend by model", sumBreakdown(answer, "model_groups"), money),
      h("h2", {}, "By key"), bars("Spend by key", sumBreakdown(answer, "api_keys", keyLabel), money),
    ];
    if (who.admin || who.user_id) parts.push(h("h2", {}, "By user"), bars("Spend by user", sumBreakdown(answer, "entities"), money));
    if (who.admin) {
      const end = isoDay(new Date());
      const start = isoDay(new Date(Date.now() - (days - 1) * DAY_MS));
      const teams = await get("/global/spend/report", { group_by: "team", start_date: start, end_date: end });
      const customers = await get("/global/spend/report", { group_by: "customer", start_date: start, end_date: end });
      parts.push(
        h("h2", {}, "By team"), bars("Spend by team", sumGroups(teams, "teams", (t) => t.team_name), money),
        h("h2", {}, "By end user"), bars("Spend by end user", sumGroups(customers, "customers", (c) => c.customer || "(none)"), money));
    }
    body.replaceChildren(...parts);
  }
  await draw(30);
}

function sumGroups(days, part, name) {
  const out = new Map();
  for (const day of days || []) {
    for (const g of day[part] || []) out.set(name(g), (out.get(name(g)) || 0) + Number(g.total_spend || 0));
  }
  return [...out].map(([label, value]) => ({ label, value }));
}

const LOG_PAGE = 50;

export async function logsPage(main, { who }) {
  main.append(h("h1", {}, "Logs"));
  if (!readsLogs(who)) {
    const info = await get("/key/info");
    const k = info.info || {};
    main.append(h("p", {}, `The management API gives request logs to admins and to users' keys. This key (${keyName(k)}) has spent ${money(k.spend)} so far.`));
    return;
  }
  const state = { page: 1 };
  const filters = h("form.toolbar", { role: "search", "aria-label": "Filter logs" },
    field("Key (sk-… or hash)", "api_key"),
    field("Team ID", "team_id"),
    who.admin ? field("User ID", "user_id") : null,
    field("Model", "model"),
    h("label", {}, "Status", h("select", { name: "status" },
      h("option", { value: "" }, "any"), h("option", { value: "success" }, "success"), h("option", { value: "failure" }, "failure"))),
    field("Request ID", "request_id"),
    field("From", "start_date", { type: "date" }),
    field("To", "end_date", { type: "date" }),
    h("button", { type: "submit" }, "Filter"));
  const list = h("div");
  main.append(h("p.muted", {}, "Newest first. Select a row to see its details."), filters, list);
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    state.page = 1;
    guarded(load);
  });
  async function load() {
    const f = formValues(filters);
    // Both dates or neither: with both the API would summarise; ask for rows.
    const rows = await get("/spend/logs", { ...f, summarize: "false", page: state.page, page_size: LOG_PAGE });
    const aliases = await keyAliases(rows || []);
    const table_ = table([
      { title: "Time", cell: (r) => when(r.startTime) },
      { title: "Status", cell: (r) => h(r.status === "success" ? "span.badge.ok" : "span.badge.bad", {}, r.status || "") },
      { title: "Model", cell: (r) => r.model_group || r.model || "" },
      { title: "Key", cell: (r) => aliases.get(r.api_key) || `${String(r.api_key || "").slice(0, 10)}…` },
      { title: "Team", cell: (r) => r.team_id || "" },
      { title: "Tokens", num: true, cell: (r) => fmtInt(r.total_tokens) },
      { title: "Cost", num: true, cell: (r) => money(r.spend) },
      { title: "Latency", num: true, cell: (r) => `${Math.max(0, new Date(r.endTime) - new Date(r.startTime))} ms` },
    ], rows || [], toggleDetails);
    list.replaceChildren(
      (rows || []).length ? table_ : h("p.muted", {}, "No requests match."),
      h("nav.pager", { "aria-label": "Pages of logs" },
        h("button", { type: "button", disabled: state.page <= 1, on: { click: () => { state.page--; guarded(load); } } }, "Newer"),
        h("span", {}, `Page ${state.page}`),
        h("button", { type: "button", disabled: (rows || []).length < LOG_PAGE, on: { click: () => { state.page++; guarded(load); } } }, "Older")));
  }
  function toggleDetails(r, tr) {
    const next = tr.nextElementSibling;
    if (next && next.classList.contains("details")) {
      next.remove();
      tr.setAttribute("aria-expanded", "false");
      return;
    }
    const facts = {
      request_id: r.request_id, response_id: r.response_id, call_type: r.call_type, status: r.status,
      model: r.model, model_group: r.model_group, deployment: r.model_id, provider: r.custom_llm_provider,
      api_base: r.api_base, prompt_tokens: r.prompt_tokens, completion_tokens: r.completion_tokens,
      total_tokens: r.total_tokens, cost: r.spend, start: r.startTime, end: r.endTime,
      user: r.user, team_id: r.team_id, end_user: r.end_user, tags: r.request_tags, metadata: r.metadata,
    };
    const cell = h("td", { colSpan: 8 }, h("pre", { "aria-label": "Request details" }, JSON.stringify(facts, null, 2)));
    tr.after(h("tr.details", {}, cell));
    tr.setAttribute("aria-expanded", "true");
  }
  await load();
}

// The aliases of the keys that made `rows`, read in one call (/v2/key/info answers only the
// keys the session may see; the master key has no key row).
async function keyAliases(rows) {
  const tokens = [...new Set(rows.map((r) => r.api_key).filter(Boolean))];
  const out = new Map();
  if (!tokens.length) return out;
  const answer = await post("/v2/key/info", { keys: tokens });
  for (const k of (answer && answer.info) || []) if (k.key_alias) out.set(k.token, k.key_alias);
  return out;
}

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
        h("label", {}, "Member role", h("select", { name: "role" }, h("option", { value: "user" }, "user"), h("option", { value: "admin" }, "admin")))),
      h("div.row-actions", {}, h("button.primary", { type: "submit" }, "Save"), h("button", { type: "button", on: { click: () => panel.replaceChildren() } }, "Cancel")));
    f.addEventListener("submit", (e) => {
      e.preventDefault();
      const v = formValues(f);
      guarded(async () => {
        if (v.max_budget !== "") await post("/team/update", { team_id: t.team_id, max_budget: Number(v.max_budget) });
        if (v.member) await post("/team/member_add", { team_id: t.team_id, member: { user_id: v.member, role: v.role } });
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

export async function organizationsPage(main) {
  main.append(h("h1", {}, "Organizations"));
  const list = h("div");
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
  main.append(form, list);
  async function load() {
    const orgs = (await get("/organization/list")) || [];
    list.replaceChildren(orgs.length ? table([
      { title: "Alias", cell: (o) => o.organization_alias || "" },
      { title: "Organization ID", cell: (o) => o.organization_id },
      { title: "Teams", cell: (o) => (o.teams || []).map((t) => t.team_alias || t.team_id).join(", ") },
      { title: "Members", cell: (o) => (o.members || []).map((m) => `${m.user_id} (${m.user_role || "member"})`).join(", ") },
      { title: "Spend", num: true, cell: (o) => money(o.spend) },
      { title: "Budget", num: true, cell: (o) => { const b = (o.litellm_budget_table || {}).max_budget; return b == null ? "—" : money(b); } },
    ], orgs) : h("p.muted", {}, "No organizations yet."));
  }
  await load();
}
