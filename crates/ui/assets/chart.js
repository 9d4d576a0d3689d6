// Charts drawn as inline SVG (no chart library): vertical bars over time, horizontal bars by name.

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = String(text);
  return el;
}

function wrap(title, root) {
  const figure = document.createElement("figure");
  figure.className = "chart";
  figure.setAttribute("role", "img");
  figure.setAttribute("aria-label", title);
  root.setAttribute("aria-hidden", "true");
  figure.append(root);
  return figure;
}

// points: [{label, value}], in order (e.g. by day).
export function columns(title, points, format) {
  const w = 760, hgt = 220, left = 60, right = 16, bottom = 28, top = 10;
  const highest = Math.max(...points.map((p) => p.value), 0);
  const max = highest || 1;
  const root = svg("svg", { viewBox: `0 0 ${w} ${hgt}` });
  root.append(svg("line", { class: "axis", x1: left, y1: hgt - bottom, x2: w - right, y2: hgt - bottom }));
  if (highest > 0) root.append(svg("text", { x: 4, y: top + 10 }, format(highest)));
  root.append(svg("text", { x: 4, y: hgt - bottom }, format(0)));
  const slot = (w - left - right) / Math.max(points.length, 1);
  points.forEach((p, i) => {
    const barH = ((hgt - bottom - top) * p.value) / max;
    const x = left + i * slot + slot * 0.15;
    const bar = svg("rect", { class: "bar", x, y: hgt - bottom - barH, width: slot * 0.7, height: Math.max(barH, 0) });
    bar.append(svg("title", {}, `${p.label}: ${format(p.value)}`));
    root.append(bar);
    const every = Math.ceil(points.length / 16);
    if ((points.length - 1 - i) % every === 0) {
      root.append(svg("text", { x: x + slot * 0.35, y: hgt - 10, "text-anchor": "middle" }, p.label));
    }
  });
  return wrap(title, root);
}

// items: [{label, value}], drawn largest first (at most `limit`).
export function bars(title, items, format, limit = 10) {
  const shown = [...items].sort((a, b) => b.value - a.value).slice(0, limit);
  const row = 24, w = 760, labelW = 220, valueW = 90;
  const root = svg("svg", { viewBox: `0 0 ${w} ${Math.max(shown.length, 1) * row + 6}` });
  const max = Math.max(...shown.map((s) => s.value), 0) || 1;
  shown.forEach((s, i) => {
    const y = i * row + 4;
    const label = s.label.length > 32 ? `${s.label.slice(0, 31)}…` : s.label;
    root.append(svg("text", { x: 0, y: y + 14 }, label));
    const bar = svg("rect", { class: "bar", x: labelW, y, width: ((w - labelW - valueW) * s.value) / max, height: row - 8 });
    bar.append(svg("title", {}, `${s.label}: ${format(s.value)}`));
    root.append(bar);
    root.append(svg("text", { x: w - valueW + 6, y: y + 14 }, format(s.value)));
  });
  if (!shown.length) root.append(svg("text", { x: 0, y: 16 }, "Nothing in this range."));
  return wrap(title, root);
}
