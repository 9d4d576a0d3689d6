// The keys page: the keys the session may see (server-side pages of /key/list), search by alias,
// filters by team and user, and create / edit / block / regenerate / delete through the API.

import { get, post } from "./api.js";
import { h, field, table, money, when, keyName, say, guarded, formValues, confirmInPage } from "./dom.js";

const PAGE_SIZE = 25;

export async function keysPage(main, { who }) {
  // The API lets admins and internal users (a role unset or unknown reads as one) manage keys.
  const known = ["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer", "team", "customer", "org_admin"];
  const role = known.includes(who.user_role) ? who.user_role : "internal_user";
  const canWrite = who.admin || (!!who.user_id && role === "internal_user");
  const state = { page: 1, key_alias: "", team_id: "", user_id: "" };
  const list = h("div");
  const panel = h("div");
  const create = h("button.primary", { type: "button", hidden: !canWrite, on: { click: () => openForm(null) } }, "Create key");
  const filters = h("form.toolbar", { role: "search", "aria-label": "Filter keys" },
    field("Alias (exact)", "key_alias", { type: "search" }),
    field("Team ID", "team_id"),
    field("User ID", "user_id"),
    h("button", { type: "submit" }, "Search"));
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    Object.assign(state, formValues(filters), { page: 1 });
    load();
  });
  main.append(h("h1", {}, "Keys"), h("div.toolbar", {}, create), filters, panel, list);

  async function load() {
    const answer = await get("/key/list", {
      return_full_object: "true", page: state.page, size: PAGE_SIZE,
      key_alias: state.key_alias, team_id: state.team_id, user_id: state.user_id,
    });
    const keys = answer.keys || [];
    const columns = [
      { title: "Alias", cell: (k) => keyName(k) },
      { title: "Team", cell: (k) => k.team_id || "" },
      { title: "User", cell: (k) => k.user_id || "" },
      { title: "Spend", num: true, cell: (k) => money(k.spend) },
      { title: "Budget", num: true, cell: (k) => (k.max_budget == null ? "—" : money(k.max_budget)) },
      { title: "Models", cell: (k) => ((k.models || []).length ? k.models.join(", ") : "all") },
      { title: "Limits", cell: (k) => [k.rpm_limit && `${k.rpm_limit} rpm`, k.tpm_limit && `${k.tpm_limit} tpm`].filter(Boolean).join(", ") },
      { title: "Expires", cell: (k) => when(k.expires) || "never" },
      { title: "Status", cell: (k) => (k.blocked ? h("span.badge.bad", {}, "blocked") : h("span.badge.ok", {}, "active")) },
    ];
    if (canWrite) columns.push({ title: "Actions", cell: (k) => actions(k) });
    const pages = Math.max(answer.total_pages || 1, 1);
    list.replaceChildren(
      keys.length ? table(columns, keys) : h("p.muted", {}, "No keys match."),
      h("nav.pager", { "aria-label": "Pages of keys" },
        h("button", { type: "button", disabled: state.page <= 1, on: { click: () => { state.page--; load(); } } }, "Previous"),
        h("span", {}, `Page ${state.page} of ${pages} · ${answer.total_count || 0} keys`),
        h("button", { type: "button", disabled: state.page >= pages, on: { click: () => { state.page++; load(); } } }, "Next")));
  }

  function actions(k) {
    const name = keyName(k);
    return h("div.row-actions", {},
      h("button", { type: "button", "aria-label": `Edit ${name}`, on: { click: () => openForm(k) } }, "Edit"),
      k.blocked
        ? h("button", { type: "button", "aria-label": `Unblock ${name}`, on: { click: () => act("/key/unblock", { key: k.token }, "Unblocked") } }, "Unblock")
        : h("button", { type: "button", "aria-label": `Block ${name}`, on: { click: () => act("/key/block", { key: k.token }, "Blocked") } }, "Block"),
      h("button", { type: "button", "aria-label": `Regenerate ${name}`, on: { click: () => regenerate(k) } }, "Regenerate"),
      h("button.danger", { type: "button", "aria-label": `Delete ${name}`, on: { click: () =>
        confirmInPage(panel, `Delete key ${name}? Requests with it will be refused.`, () => act("/key/delete", { keys: [k.token] }, "Deleted")) } }, "Delete"));
  }

  async function act(path, body, done) {
    await guarded(async () => {
      await post(path, body);
      say(done);
      await load();
    });
  }

  async function regenerate(k) {
    await guarded(async () => {
      const answer = await post("/key/regenerate", { key: k.token });
      showSecret(`New key for ${keyName(k)}`, answer.key);
      await load();
    });
  }

  function showSecret(title, secret) {
    const copy = h("button", { type: "button", on: { click: async () => {
      try {
        await navigator.clipboard.writeText(secret);
        say("Copied");
      } catch {
        say("The browser refused the clipboard: select the key and copy it.", true);
      }
    } } }, "Copy key");
    panel.replaceChildren(h("section.card", { "aria-label": title },
      h("h2", {}, title),
      h("p", {}, "Copy it now: it is shown only once."),
      h("p.secret", { "data-testid": "new-key" }, secret),
      h("div.row-actions", {}, copy, h("button", { type: "button", on: { click: () => panel.replaceChildren() } }, "Done"))));
  }

  function openForm(k) {
    const editing = !!k;
    const v = (x) => (x === undefined || x === null ? "" : String(x));
    const error = h("p.error", { role: "alert" });
    const form = h("form.card", { "aria-label": editing ? `Edit key ${keyName(k)}` : "Create key" },
      h("h2", {}, editing ? `Edit key ${keyName(k)}` : "Create key"),
      h("div.fields", {},
        field("Alias", "key_alias", { value: v(k && k.key_alias) }),
        field("Models (comma-separated; empty: all)", "models", { value: k ? (k.models || []).join(", ") : "" }),
        field("Max budget ($)", "max_budget", { type: "number", step: "any", min: "0", value: v(k && k.max_budget) }),
        field("Budget period (e.g. 30d)", "budget_duration", { value: v(k && k.budget_duration) }),
        field("RPM limit", "rpm_limit", { type: "number", min: "0", step: "1", value: v(k && k.rpm_limit) }),
        field("TPM limit", "tpm_limit", { type: "number", min: "0", step: "1", value: v(k && k.tpm_limit) }),
        field(editing ? "Expires in (e.g. 7d; empty: unchanged)" : "Duration (e.g. 30d; empty: never expires)", "duration"),
        field("Team ID", "team_id", { value: v(k && k.team_id) }),
        field("User ID", "user_id", { value: v(k && k.user_id) }),
        field("Metadata (JSON object)", "metadata", { tag: "textarea", value: k && k.metadata ? JSON.stringify(k.metadata) : "" })),
      error,
      h("div.row-actions", {},
        h("button.primary", { type: "submit" }, editing ? "Save" : "Create"),
        h("button", { type: "button", on: { click: () => panel.replaceChildren() } }, "Cancel")));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      let body;
      try {
        body = keyBody(formValues(form), editing);
      } catch (err) {
        error.textContent = err.message;
        return;
      }
      try {
        if (editing) {
          await post("/key/update", { key: k.token, ...body });
          panel.replaceChildren();
          say("Saved");
        } else {
          const answer = await post("/key/generate", body);
          showSecret(`New key ${body.key_alias || ""}`.trim(), answer.key);
        }
        await load();
      } catch (err) {
        error.textContent = err.message;
      }
    });
    panel.replaceChildren(form);
    form.querySelector("input").focus();
  }

  await load();
}

// The form's fields as /key/generate and /key/update read them (empty fields are left out).
function keyBody(v, editing) {
  const body = {};
  const number = (name, integer) => {
    if (v[name] === "") return;
    const n = Number(v[name]);
    if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) throw new Error(`${name}: enter a number of 0 or more.`);
    body[name] = n;
  };
  for (const name of ["key_alias", "team_id", "user_id", "duration", "budget_duration"]) {
    if (v[name]) body[name] = v[name];
  }
  if (v.models) body.models = v.models.split(",").map((m) => m.trim()).filter(Boolean);
  else if (editing) body.models = [];
  number("max_budget", false);
  number("rpm_limit", true);
  number("tpm_limit", true);
  if (v.metadata) {
    let meta;
    try {
      meta = JSON.parse(v.metadata);
    } catch {
      throw new Error("Metadata must be a JSON object, e.g. {\"project\": \"x\"}.");
    }
    if (!meta || typeof meta !== "object" || Array.isArray(meta)) throw new Error("Metadata must be a JSON object.");
    body.metadata = meta;
  }
  return body;
}
