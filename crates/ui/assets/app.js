// The admin UI's entry: finds who is signed in, draws the page the address names, and keeps
// links inside the app (history API), so every page can be linked to and reloaded.

import { session, signIn, signOut, ApiError } from "./api.js";
import { h, say, formValues } from "./dom.js";
import { keysPage } from "./keys.js";
import { dashboardPage } from "./dashboard.js";
import { modelsPage } from "./models.js";
import { spendPage } from "./spend.js";
import { logsPage } from "./logs.js";
import { teamsPage, usersPage, organizationsPage } from "./people.js";

const PAGES = {
  "": dashboardPage,
  keys: keysPage,
  teams: teamsPage,
  users: usersPage,
  organizations: organizationsPage,
  models: modelsPage,
  spend: spendPage,
  logs: logsPage,
};

// The pages of the proxy's admins: anyone else gets a notice, and the page asks the API nothing
// (the API would refuse it anyway).
const ADMIN_PAGES = new Set(["teams", "users", "organizations"]);

let who = null;
// Anything a page left running (a refresh timer) is stopped before the next page draws.
let cleanup = [];

function pageName() {
  return location.pathname.replace(/^\/ui\/?/, "").replace(/\/$/, "");
}

export function go(path) {
  history.pushState({}, "", path);
  render();
}

async function render() {
  for (const stop of cleanup) stop();
  cleanup = [];
  const main = document.getElementById("main");
  const name = pageName();
  if (!who || !who.signed_in) {
    showSignedIn(false);
    main.replaceChildren(loginForm(name === "login" ? "" : name));
    document.title = "Sign in · sluice";
    return;
  }
  if (name === "login") {
    history.replaceState({}, "", "/ui");
    return render();
  }
  showSignedIn(true);
  const draw = PAGES[name];
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === location.pathname) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  main.replaceChildren();
  if (!draw) {
    main.append(h("h1", {}, "Not found"), h("p", {}, "No page at this address."));
    return;
  }
  if (ADMIN_PAGES.has(name) && !who.admin) {
    const title = name[0].toUpperCase() + name.slice(1);
    main.append(h("h1", {}, title), h("p.muted", {}, "Only the proxy's admins see this page. Sign in with the master key or an admin's key."));
    document.title = `${title} · sluice`;
    return;
  }
  try {
    await draw(main, { who, onLeave: (stop) => cleanup.push(stop) });
  } catch (e) {
    // A 401 is the session's end only when the session says so (the key was deleted, blocked
    // or expired); otherwise it is a route this key may not call, shown as it is.
    if (e instanceof ApiError && e.status === 401) {
      const now = await session().catch(() => null);
      if (!now || !now.signed_in) {
        who = null;
        return render();
      }
    }
    main.append(h("p.error", { role: "alert" }, e.message || String(e)));
  }
  const heading = main.querySelector("h1");
  document.title = `${heading ? heading.textContent : "sluice"} · sluice`;
}

function showSignedIn(on) {
  document.getElementById("nav").hidden = !on;
  document.getElementById("signout").hidden = !on;
  const label = !on ? "" : who.key_alias ? `Key: ${who.key_alias}` : who.admin ? "Admin" : `Key ${who.user_id || ""}`;
  document.getElementById("who").textContent = label;
  for (const a of document.querySelectorAll("#nav a[data-admin]")) a.hidden = !(on && who.admin);
}

function loginForm(next) {
  const error = h("p.error", { role: "alert" });
  const form = h("form.card.login", { "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in to sluice"),
    h("label", {}, "Master key or virtual key",
      h("input", { name: "key", type: "password", autocomplete: "current-password", placeholder: "sk-…" })),
    h("details", {},
      h("summary", {}, "Sign in with a user name (UI_USERNAME / UI_PASSWORD)"),
      h("label", {}, "User name", h("input", { name: "username", autocomplete: "username" })),
      h("label", {}, "Password", h("input", { name: "password", type: "password", autocomplete: "current-password" }))),
    error,
    h("button.primary", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = formValues(form);
    const credentials = v.key ? { key: v.key } : { username: v.username, password: v.password };
    try {
      who = await signIn(credentials);
      history.replaceState({}, "", next ? `/ui/${next}` : "/ui");
      render();
    } catch (err) {
      error.textContent = err.message;
    }
  });
  return form;
}

document.addEventListener("click", (e) => {
  const a = e.target.closest && e.target.closest("a[href^='/ui']");
  if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  e.preventDefault();
  go(a.getAttribute("href"));
});

window.addEventListener("popstate", render);

document.getElementById("signout").addEventListener("click", async () => {
  try {
    await signOut();
  } catch (e) {
    say(e.message, true);
  }
  who = null;
  history.pushState({}, "", "/ui/login");
  render();
});

(async () => {
  try {
    who = await session();
  } catch (e) {
    who = null;
    say(e.message, true);
  }
  render();
})();
