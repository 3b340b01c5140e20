import { useSyncExternalStore } from "react";

import { api, authFetch } from "../api/client";
import { toApiError } from "../api/errors";
import { getTokens, setTokens, subscribeTokens } from "../api/tokens";

export function useSignedIn(): boolean {
  return useSyncExternalStore(subscribeTokens, () => getTokens() !== null);
}

export async function login(email: string, password: string): Promise<void> {
  const { data, error, response } = await api.POST("/api/v1/auth/login", { body: { email, password } });
  if (!data) throw toApiError(response, error);
  setTokens(data);
}

export async function register(email: string, password: string, displayName: string): Promise<void> {
  const { data, error, response } = await api.POST("/api/v1/auth/register", {
    body: { email, password, display_name: displayName.trim() || null },
  });
  if (!data) throw toApiError(response, error);
  await login(email, password); // registration returns the account; a session comes from login
}

/** Revokes the refresh token family where the server offers `POST /auth/logout`; the
 * tokens are dropped either way. */
export async function logout(): Promise<void> {
  const tokens = getTokens();
  if (tokens) {
    try {
      await authFetch(
        new Request(new URL("/api/v1/auth/logout", window.location.origin), {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: tokens.refresh_token }),
        }),
      );
    } catch {
      // offline: the tokens still go; they expire on their own
    }
  }
  setTokens(null);
}
