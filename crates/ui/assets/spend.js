// The spend page: totals and spend by day, model, key and user (and, for admins, team and end
// user), drawn as SVG from the daily aggregates.

import { get } from "./api.js";
import { h, money, guarded, formValues } from "./dom.js";
import { columns, bars } from "./chart.js";
import { DAY_MS, isoDay, activity, sumBreakdown, keyLabel, tile, fmtInt } from "./report.js";

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
