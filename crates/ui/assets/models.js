// The models page: every deployment the key may call; an admin also sees each one's state in
// the router, and adds, edits and deletes stored ones when store_model_in_db is on.

import { get, post } from "./api.js";
import { h, field, table, say, guarded, formValues, confirmInPage } from "./dom.js";
import { fmtInt } from "./report.js";

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

  // A deployment's health check (`/health?model_id=`): a real call of its mode, so run when
  // asked, not on every load; the last result stays in the cell.
  function healthCell(m) {
    const id = info(m).id;
    if (!id) return "";
    const result = h("span");
    const check = h("button", { type: "button", "aria-label": `Check health of ${m.model_name} ${String(id).slice(0, 12)}`,
      on: { click: () => guarded(async () => {
        check.disabled = true;
        try {
          const r = await get("/health", { model_id: id });
          const bad = (r.unhealthy_endpoints || [])[0];
          // The error in the badge's title and accessible name: the table is wide enough.
          const why = bad && String(bad.error || "no error was given").slice(0, 500);
          result.replaceChildren(" ", bad
            ? h("span.badge.bad", { title: why, "aria-label": `unhealthy: ${why}` }, "unhealthy")
            : r.healthy_count ? h("span.badge.ok", {}, "healthy") : h("span.muted", {}, "no health check model"));
        } finally {
          check.disabled = false;
        }
      }) } }, "Check");
    return h("span", {}, check, result);
  }

  async function load() {
    const answer = await get("/v1/model/info");
    const rows = answer.data || [];
    // An admin also sees each deployment's state in the router (cooldown, traffic).
    const live = who.admin ? await get("/ui/api/live") : null;
    const state = new Map(((live && live.deployments) || []).map((d) => [d.id, d]));
    const columns = [
      { title: "Model name", cell: (m) => m.model_name },
      { title: "Provider", cell: provider },
      { title: "Upstream model", wrap: true, cell: (m) => p(m).model || "" },
      { title: "API base", wrap: true, cell: (m) => p(m).api_base || "" },
      { title: "RPM", num: true, cell: (m) => p(m).rpm ?? "" },
      { title: "TPM", num: true, cell: (m) => p(m).tpm ?? "" },
      { title: "Input $/1M tok", num: true, cell: (m) => perMillion(info(m).input_cost_per_token) },
      { title: "Output $/1M tok", num: true, cell: (m) => perMillion(info(m).output_cost_per_token) },
      { title: "ID", wrap: true, cell: (m) => h("span", { title: info(m).id || "" }, String(info(m).id || "").slice(0, 12)) },
      { title: "Source", cell: (m) => (info(m).db_model ? "database" : "config") },
    ];
    if (live) {
      columns.push(
        { title: "State", cell: (m) => {
          const d = state.get(info(m).id);
          if (!d) return "";
          return d.cooling_down ? h("span.badge.bad", {}, `cooling down, ${d.cooldown_left_s} s left`) : h("span.badge.ok", {}, "in rotation");
        } },
        { title: "Requests (last min)", num: true, cell: (m) => fmtInt((state.get(info(m).id) || {}).requests_last_minute) },
        { title: "Health", cell: healthCell });
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
