// The dashboard, refreshed every 5 seconds: for admins the gateway's live in-process figures
// (last minute's traffic, latency percentiles and errors; today's spend, top models and keys;
// deployments cooling down); for a key holder or user their own day, as the API shows it them.

import { get } from "./api.js";
import { h, table, money, guarded } from "./dom.js";
import { bars } from "./chart.js";
import { activity, sumBreakdown, keyLabel, tile, fmtInt } from "./report.js";

const ms = (v) => (v == null ? "—" : `${Number(v).toFixed(0)} ms`);
const pct = (part, whole) => `${(whole ? (100 * Number(part || 0)) / whole : 0).toFixed(1)}%`;

// An admin's figures, all from /ui/api/live: the gateway's in-process counters (last minute's
// traffic and latency percentiles, today's spend by model and key) and the router's cooldowns.
function liveSection(live) {
  const cooling = (live.deployments || []).filter((d) => d.cooling_down);
  const today = live.today || {};
  const since = new Date(1000 * Number(live.counting_since_unix_s || 0));
  const midnight = new Date();
  midnight.setUTCHours(0, 0, 0, 0);
  const sinceNote = since > midnight ? ` (since ${since.toLocaleTimeString()}, when this gateway started)` : "";
  const ranked = (rows, label) => rows.map((r) => ({ label: r[label], value: Number(r.spend || 0) }));
  return h("div", {},
    h("section", { "aria-label": "Live" },
      h("h2", {}, `Live (last ${live.window_s || 60} seconds)`),
      h("div.tiles", {},
        tile("Requests/s", Number(live.requests_per_second || 0).toFixed(2)),
        tile("In flight", fmtInt(live.in_flight)),
        tile("Error rate", pct(live.failures_last_minute, live.requests_last_minute)),
        tile("p50 latency", ms(live.p50_ms)),
        tile("p99 latency", ms(live.p99_ms)),
        tile("Cooling down", fmtInt(cooling.length))),
      h("h2", {}, "Deployments cooling down"),
      cooling.length
        ? table([
          { title: "Model", cell: (d) => d.model_name },
          { title: "Deployment", cell: (d) => String(d.id).slice(0, 12) },
          { title: "API base", cell: (d) => d.api_base || "" },
          { title: "Back in", num: true, cell: (d) => `${d.cooldown_left_s} s` },
        ], cooling)
        : h("p.muted", {}, "None: every deployment is in rotation.")),
    h("h2", {}, `Today${sinceNote}`),
    h("section.tiles", { "aria-label": "Today" },
      tile("Spend today", money(today.spend)),
      tile("Requests today", fmtInt(today.requests)),
      tile("Error rate today", pct(today.failures, today.requests)),
      tile("Deployments", fmtInt((live.deployments || []).length))),
    h("h2", {}, "Top models today"),
    topTable("Top models today", "Model", "model", live.top_models || [], "No traffic yet today."),
    bars("Spend by model today", ranked(live.top_models || [], "model"), money, 5),
    h("h2", {}, "Top keys today"),
    topTable("Top keys today", "Key", "key", live.top_keys || [], "No traffic with a virtual key yet today (the master key's is in the totals)."));
}

function topTable(label, title, field, rows, none) {
  if (!rows.length) return h("p.muted", { "aria-label": label }, none);
  const t = table([
    { title, cell: (r) => r[field] },
    { title: "Requests", num: true, cell: (r) => fmtInt(r.requests) },
    { title: "Errors", num: true, cell: (r) => fmtInt(r.failures) },
    { title: "Spend", num: true, cell: (r) => money(r.spend) },
  ], rows);
  t.setAttribute("aria-label", label);
  return t;
}

// A key holder's or user's own day, from the spend they may read (the API's daily activity).
async function ownSection() {
  const today = await activity(1);
  const m = today.metadata || {};
  const requests = Number(m.total_api_requests || 0);
  const models = await get("/v1/model/info");
  return h("div", {},
    h("h2", {}, "Today"),
    h("section.tiles", { "aria-label": "Today" },
      tile("Spend today", money(m.total_spend)),
      tile("Requests today", fmtInt(requests)),
      tile("Error rate today", pct(m.total_failed_requests, requests)),
      tile("Tokens today", fmtInt(m.total_tokens)),
      tile("Models", fmtInt((models.data || []).length))),
    h("h2", {}, "Top models today"),
    bars("Spend by model today", sumBreakdown(today, "model_groups"), money, 5),
    h("h2", {}, "Top keys today"),
    bars("Spend by key today", sumBreakdown(today, "api_keys", keyLabel), money, 5));
}

export async function dashboardPage(main, { who, onLeave }) {
  main.append(h("h1", {}, "Dashboard"));
  const body = h("div");
  main.append(body);
  async function refresh() {
    const section = who.admin ? liveSection(await get("/ui/api/live")) : await ownSection();
    body.replaceChildren(section, h("p.muted", {}, `Updated ${new Date().toLocaleTimeString()}; refreshed every 5 seconds.`));
  }
  await refresh();
  const timer = setInterval(() => guarded(refresh), 5000);
  onLeave(() => clearInterval(timer));
}
