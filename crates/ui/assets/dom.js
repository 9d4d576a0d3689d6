// Building the page: elements made with createElement and text set with textContent only, so no
// data from the API is ever read as HTML.

// h("tag.class", {attr: value, on: {click: fn}}, ...children); strings become text nodes.
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag);
  if (classes.length) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "on") {
      for (const [event, fn] of Object.entries(v)) el.addEventListener(event, fn);
    } else if (k === "value") {
      el.value = String(v);
    } else if (k === "text") {
      el.textContent = String(v);
    } else if (k in el && typeof v !== "string") {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// A labelled input: <label>Name <input name=...></label>.
export function field(label, name, attrs) {
  const input = h((attrs && attrs.tag) || "input", { name, ...attrs, tag: undefined });
  return h("label", {}, label, input);
}

export function table(columns, rows, onRow) {
  const head = h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : undefined }, c.title)));
  const body = rows.map((row) => {
    // `wrap`: a column of long unbroken text (addresses, ids) that may break anywhere to fit.
    const tr = h("tr", {}, columns.map((c) => h("td", { class: c.num ? "num" : c.wrap ? "wrap" : undefined }, c.cell(row))));
    if (onRow) {
      tr.className = "clickable";
      tr.tabIndex = 0;
      tr.addEventListener("click", () => onRow(row, tr));
      tr.addEventListener("keydown", (e) => {
        if (e.key === "Enter") onRow(row, tr);
      });
    }
    return tr;
  });
  return h("table", {}, h("thead", {}, head), h("tbody", {}, body));
}

export function money(v) {
  const n = Number(v || 0);
  // Cents for dollars; three significant digits below a dollar, where calls are priced.
  return n > 0 && n < 1 ? `$${Number(n.toPrecision(3))}` : `$${n.toFixed(2)}`;
}

export function when(v) {
  if (!v) return "";
  const d = new Date(v);
  return isNaN(d) ? String(v) : d.toLocaleString();
}

// The key as a person may see it: never a raw key, only its alias or the hash's start.
export function keyName(k) {
  return k.key_alias || k.key_name || (k.token ? `${String(k.token).slice(0, 10)}…` : "");
}

export function say(message, isError) {
  const status = document.getElementById("status");
  status.replaceChildren(h(isError ? "span.error" : "span", {}, message));
  clearTimeout(say.timer);
  say.timer = setTimeout(() => status.replaceChildren(), isError ? 8000 : 3000);
}

// Runs `fn`, showing its error to the person instead of losing it.
export async function guarded(fn) {
  try {
    return await fn();
  } catch (e) {
    say(e.message || String(e), true);
    return undefined;
  }
}

export function formValues(form) {
  const out = {};
  for (const [k, v] of new FormData(form).entries()) out[k] = typeof v === "string" ? v.trim() : v;
  return out;
}

// A confirmation inside the page (a browser dialog can be switched off, and is not styled).
export function confirmInPage(container, question, action) {
  const box = h("div.card", { role: "alertdialog", "aria-label": question },
    h("p", {}, question),
    h("div.row-actions", {},
      h("button.danger", { type: "button", on: { click: async () => { box.remove(); await action(); } } }, "Yes, delete"),
      h("button", { type: "button", on: { click: () => box.remove() } }, "Cancel")));
  container.prepend(box);
  box.querySelector("button").focus();
}
