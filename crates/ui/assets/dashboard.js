// The dashboard: for admins the last minute's traffic and the deployments cooling down, for
// everyone today's spend and top models and keys; refreshed every 5 seconds.

import { get } from "./api.js";
import { h, table, money, guarded } from "./dom.js";
import { bars } from "./chart.js";
import { activity, sumBreakdown, keyLabel, tile, fmtInt } from "./report.js";

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

// The live figures of /ui/api/live (an admin's): traffic over the last minute and deployments
// cooling down, from the router's own counters.
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
