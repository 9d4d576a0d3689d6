// The logs page: the spend logs newest first, filtered and paged on the server, each row
// opening its details.

import { get, post } from "./api.js";
import { h, field, table, money, when, guarded, formValues } from "./dom.js";
import { fmtInt } from "./report.js";

const LOG_PAGE = 50;

export async function logsPage(main, { who }) {
  main.append(h("h1", {}, "Logs"));
  // Every session reads logs: the API narrows a non-admin's to its user's (its key's, for a
  // key of no user) and refuses a filter naming anyone else's.
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
    const cell = h("td", { colSpan: 8 }, failureOf(r), h("pre", { "aria-label": "Request details" }, JSON.stringify(facts, null, 2)));
    tr.after(h("tr.details", {}, cell));
    tr.setAttribute("aria-expanded", "true");
  }
  await load();
}

// What went wrong, for a failed row: LiteLLM's `metadata.error_information` (its exception
// class, status and message), shown above the row's facts; nothing for a success.
function failureOf(r) {
  const e = r.status === "failure" && r.metadata && r.metadata.error_information;
  if (!e) return null;
  const code = e.error_code ? ` (${e.error_code})` : "";
  return h("p.error", { "aria-label": "Error" },
    h("strong", {}, `${e.error_class || "Error"}${code}`), ": ", e.error_message || "no message was recorded");
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
