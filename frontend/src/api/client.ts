// The typed API client: openapi-fetch over the generated schema, with bearer auth and one
// shared refresh on a 401.
import createClient from "openapi-fetch";

import { toApiError } from "./errors";
import type { paths } from "./schema";
import { getTokens, setTokens, type Tokens } from "./tokens";

// A refresh token is single-use: presenting it twice makes the server revoke the whole
// session, so requests that hit a 401 together share one refresh.
let refreshing: Promise<boolean> | null = null;

export function refreshOnce(): Promise<boolean> {
  refreshing ??= (async () => {
    const tokens = getTokens();
    if (!tokens) return false;
    const response = await fetch("/api/v1/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: tokens.refresh_token }),
    });
    if (response.ok) {
      setTokens((await response.json()) as Tokens);
    } else if (response.status !== 429 && response.status < 500) {
      setTokens(null); // expired or revoked: the app shows the sign-in page
    }
    return response.ok;
  })()
    .catch(() => false) // Sage unreachable: keep the tokens, the caller sees the 401
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

function withAuth(request: Request): Request {
  const tokens = getTokens();
  const copy = request.clone();
  if (tokens) copy.headers.set("Authorization", `Bearer ${tokens.access_token}`);
  return copy;
}

/** fetch() with the bearer token; a 401 refreshes the session once and retries. */
export async function authFetch(input: Request): Promise<Response> {
  const retry = input.clone();
  const response = await fetch(withAuth(input));
  if (response.status !== 401 || !getTokens()) return response;
  if (!(await refreshOnce())) return response;
  return fetch(withAuth(retry));
}

export const api = createClient<paths>({ baseUrl: window.location.origin, fetch: authFetch });

/** The data of an openapi-fetch result, or its error as an ApiError. */
export async function data<T>(result: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data: body, error, response } = await result;
  if (!response.ok) throw toApiError(response, error);
  return body as T;
}
