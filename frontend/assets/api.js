// The API client: base URL, bearer tokens (refreshed once on a 401), and Sage's error shape
// {"error": {"code", "message", "details"}} turned into ApiError.

const base = (window.SAGE_CONFIG?.apiBaseUrl ?? "").replace(/\/$/, "");
const TOKENS = "sage.tokens";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export const url = (path) => `${base}${path}`;

export const session = {
  get tokens() {
    const raw = sessionStorage.getItem(TOKENS);
    return raw ? JSON.parse(raw) : null;
  },
  set tokens(value) {
    if (value) sessionStorage.setItem(TOKENS, JSON.stringify(value));
    else sessionStorage.removeItem(TOKENS);
  },
};

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: a proxy's error page
  }
  const error = body?.error ?? {};
  const retry = response.headers.get("Retry-After");
  const message = error.message ?? `${response.status} ${response.statusText}`;
  return new ApiError(response.status, error.code ?? "http_error", retry ? `${message} (retry in ${retry} s)` : message, error.details);
}

// A refresh token is single-use: presenting it twice makes the server revoke the whole
// session. Requests that hit a 401 together therefore share one refresh.
let refreshing = null;

function refresh() {
  refreshing ??= (async () => {
    const tokens = session.tokens;
    if (!tokens?.refresh_token) return false;
    const response = await fetch(url("/api/v1/auth/refresh"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: tokens.refresh_token }),
    });
    if (response.ok) {
      session.tokens = await response.json();
    } else if (response.status !== 429 && response.status < 500) {
      // The session is over (expired, revoked): app.js shows the login form again.
      session.tokens = null;
      window.dispatchEvent(new Event("sage:signed-out"));
    }
    return response.ok;
  })()
    .catch(() => false) // Sage unreachable: keep the tokens, the caller sees the 401
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

// fetch() with auth; resolves to the Response (callers stream or parse it), throws ApiError.
export async function request(path, { method = "GET", body, headers = {}, signal } = {}) {
  const send = () => {
    const auth = session.tokens ? { Authorization: `Bearer ${session.tokens.access_token}` } : {};
    const json = body === undefined ? {} : { "Content-Type": "application/json" };
    return fetch(url(path), {
      method,
      signal,
      headers: { ...json, ...auth, ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  };
  const sent = session.tokens?.access_token;
  let response = await send();
  if (response.status === 401 && sent && session.tokens) {
    // Another request may have refreshed the tokens while this one was in flight.
    if (session.tokens.access_token !== sent || (await refresh())) response = await send();
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

export async function json(path, options) {
  const response = await request(path, options);
  return response.status === 204 ? null : response.json();
}
