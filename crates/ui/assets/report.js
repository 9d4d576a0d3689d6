// What the dashboard and the spend page share: the daily activity of the last days, summed by
// one of its breakdowns, and the figure tiles.

import { get } from "./api.js";
import { h } from "./dom.js";

export const DAY_MS = 86400000;
export const isoDay = (d) => d.toISOString().slice(0, 10);
export const fmtInt = (n) => Number(n || 0).toLocaleString();

export function tile(label, value) {
  return h("div.tile", {}, h("div.value", {}, value), h("div.label", {}, label));
}

// Daily activity (LiteLLM's /user/daily/activity) over `days` days: per day, model, key, user.
export async function activity(days) {
  const end = new Date();
  const start = new Date(end.getTime() - (days - 1) * DAY_MS);
  return get("/user/daily/activity", { start_date: isoDay(start), end_date: isoDay(end), page_size: 1000 });
}

// Sums one breakdown (e.g. "models") over the days of an activity answer.
export function sumBreakdown(answer, part, label) {
  const out = new Map();
  for (const day of answer.results || []) {
    for (const [name, entry] of Object.entries((day.breakdown || {})[part] || {})) {
      const key = label ? label(name, entry) : name;
      out.set(key, (out.get(key) || 0) + Number((entry.metrics || {}).spend || 0));
    }
  }
  return [...out].map(([label, value]) => ({ label: label || "(none)", value }));
}

export const keyLabel = (token, entry) => ((entry.metadata || {}).key_alias) || `${String(token).slice(0, 10)}…`;
