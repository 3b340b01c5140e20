// The user's notification stream (`/notifications/stream`), kept open while signed in and
// resumed after its last event id (`Last-Event-ID`), so a dropped connection or a reload
// misses nothing and repeats nothing; and the toasts it raises. Both live outside React:
// the stream does not restart when a page re-renders.
import { useSyncExternalStore } from "react";

import { authFetch } from "../api/client";
import { readEventStream } from "../api/sse";
import { getTokens } from "../api/tokens";
import { dismissToast, parseLive, pushToast, type LiveNotification, type Toast } from "./model";

// sessionStorage, as the tokens: the tab that reloads resumes where it was.
const LAST_ID_KEY = "sage.notifications.last-id";
// Reconnect delays (ms) after a dropped or refused stream; the last one repeats.
const BACKOFF = [1_000, 2_000, 5_000, 15_000, 30_000];

export function lastEventId(): string | null {
  return sessionStorage.getItem(LAST_ID_KEY);
}

export interface StreamOptions {
  onNotification: (notification: LiveNotification) => void;
  /** Waits between reconnects (a test passes one that resolves at once). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Follows the stream until `signal` aborts or the session ends. */
export async function followNotifications(signal: AbortSignal, options: StreamOptions): Promise<void> {
  const sleep = options.sleep ?? defaultSleep;
  let failures = 0;
  while (!signal.aborted && getTokens()) {
    const headers: Record<string, string> = { Accept: "text/event-stream" };
    const last = lastEventId();
    if (last) headers["Last-Event-ID"] = last;
    try {
      const response = await authFetch(new Request(new URL("/api/v1/notifications/stream", window.location.origin), { headers, signal }));
      if (response.ok) {
        for await (const event of readEventStream(response, signal)) {
          failures = 0;
          if (event.event !== "notification") continue;
          const notification = parseLive(event.data);
          if (!notification) continue;
          sessionStorage.setItem(LAST_ID_KEY, event.id ?? String(notification.id));
          options.onNotification(notification);
        }
      } else {
        await response.body?.cancel();
      }
    } catch {
      // network error or abort: the loop condition decides
    }
    if (signal.aborted) return;
    await sleep(BACKOFF[Math.min(failures, BACKOFF.length - 1)] ?? 30_000, signal);
    failures += 1;
  }
}

/** A new session starts from "now" (the server sends only new ones without an id). */
export function forgetLastEventId(): void {
  sessionStorage.removeItem(LAST_ID_KEY);
}

// -- toasts ----------------------------------------------------------------------------------
let toasts: readonly Toast[] = [];
const listeners = new Set<() => void>();

function setToasts(next: readonly Toast[]): void {
  toasts = next;
  for (const listener of listeners) listener();
}

export function showToast(notification: LiveNotification): void {
  setToasts(pushToast(toasts, { id: notification.id, title: notification.title, body: notification.body }));
}

export function closeToast(id: number): void {
  setToasts(dismissToast(toasts, id));
}

export function clearToasts(): void {
  setToasts([]);
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function useToasts(): readonly Toast[] {
  return useSyncExternalStore(subscribe, () => toasts);
}
