// Calls to sluice's management API, made as the signed-in session: the session cookie goes with
// every same-origin request, and the CSRF token in a header is what makes the server accept it.

let csrf = "";

export function setCsrf(token) {
  csrf = token || "";
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The message a person reads from an error answer (OpenAI's envelope, or FastAPI's `detail`).
function messageOf(status, data) {
  if (data && typeof data === "object") {
    if (data.error && data.error.message) return String(data.error.message);
    if (data.detail) return typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
  }
  return `The server answered ${status}.`;
}

export async function api(method, path, body) {
  const init = { method, headers: { "x-sluice-csrf": csrf }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const answer = await fetch(path, init);
  const text = await answer.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!answer.ok) throw new ApiError(answer.status, messageOf(answer.status, data));
  return data;
}

export const get = (path, params) => api("GET", withQuery(path, params));
export const post = (path, body) => api("POST", path, body === undefined ? {} : body);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path, body) => api("DELETE", path, body);

export function withQuery(path, params) {
  if (!params) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

// The session: who is signed in (`signed_in: false` when no one is).
export async function session() {
  const who = await api("GET", "/ui/session");
  setCsrf(who && who.csrf_token);
  return who;
}

export async function signIn(credentials) {
  const who = await api("POST", "/ui/login", credentials);
  setCsrf(who.csrf_token);
  return who;
}

export async function signOut() {
  await api("POST", "/ui/logout");
  setCsrf("");
}
