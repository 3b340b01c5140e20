// The session's tokens. sessionStorage: they survive a reload (so an answer can resume)
// but not the tab; a refresh token is single-use, and tabs sharing one would revoke each
// other's session on their first concurrent refresh.
export interface Tokens {
  access_token: string;
  refresh_token: string;
}

const KEY = "sage.tokens";
const listeners = new Set<() => void>();

export function getTokens(): Tokens | null {
  const raw = sessionStorage.getItem(KEY);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as Tokens;
  } catch {
    return null;
  }
}

export function setTokens(tokens: Tokens | null): void {
  if (tokens) sessionStorage.setItem(KEY, JSON.stringify({ access_token: tokens.access_token, refresh_token: tokens.refresh_token }));
  else sessionStorage.removeItem(KEY);
  for (const listener of listeners) listener();
}

export function subscribeTokens(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
