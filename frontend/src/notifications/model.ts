// The notification state the bell, the inbox and the toasts share, as pure functions over
// the server's types: the server's inbox is the truth, live events only get ahead of it
// until the next refetch.
import type { components } from "../api/schema";

export type Notification = components["schemas"]["NotificationOut"];
export type NotificationPage = components["schemas"]["NotificationPage"];

/** A notification as the stream sends it (the inbox row, without delivery states). */
export interface LiveNotification {
  id: number;
  kind: string;
  title: string;
  body: string;
  data: Record<string, unknown>;
  created_at: string;
}

/** The stream's `data` as a LiveNotification, or null when it is not one (never throws). */
export function parseLive(raw: string): LiveNotification | null {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const v = value as Record<string, unknown>;
  if (typeof v.id !== "number" || typeof v.title !== "string") return null;
  return {
    id: v.id,
    kind: typeof v.kind === "string" ? v.kind : "",
    title: v.title,
    body: typeof v.body === "string" ? v.body : "",
    data: typeof v.data === "object" && v.data !== null ? (v.data as Record<string, unknown>) : {},
    created_at: typeof v.created_at === "string" ? v.created_at : new Date().toISOString(),
  };
}

/** What the bell shows: the unread count and the newest id the count already includes. */
export interface UnreadSummary {
  unread: number;
  newestId: number;
}

export function summaryOf(page: NotificationPage): UnreadSummary {
  return { unread: page.unread, newestId: page.items.reduce((max, n) => Math.max(max, n.id), 0) };
}

/** A live notification counted once: ids only grow, so one at or below `newestId` is
 * already in the count (a stream replaying after Last-Event-ID, or the refetch won). */
export function countLive(summary: UnreadSummary, id: number): UnreadSummary {
  if (id <= summary.newestId) return summary;
  return { unread: summary.unread + 1, newestId: id };
}

/** The first inbox page with a live notification on top (unread, newest), once. */
export function prependLive(page: NotificationPage, live: LiveNotification): NotificationPage {
  if (page.items.some((n) => n.id === live.id)) return page;
  const item: Notification = { ...live, read_at: null, deliveries: [] };
  return { ...page, items: [item, ...page.items], total: page.total + 1, unread: page.unread + 1 };
}

/** The page after marking one notification read (now), or every one when `id` is null. */
export function markRead(page: NotificationPage, id: number | null, now = new Date().toISOString()): NotificationPage {
  let marked = 0;
  const items = page.items.map((n) => {
    if (n.read_at !== null || (id !== null && n.id !== id)) return n;
    marked += 1;
    return { ...n, read_at: now };
  });
  return { ...page, items, unread: id === null ? 0 : Math.max(0, page.unread - marked) };
}

// -- toasts ----------------------------------------------------------------------------------
export const MAX_TOASTS = 3;

export interface Toast {
  id: number;
  title: string;
  body: string;
}

/** Toasts on screen: newest last, each notification once, at most MAX_TOASTS (the oldest
 * goes; it stays in the inbox). */
export function pushToast(toasts: readonly Toast[], toast: Toast): Toast[] {
  if (toasts.some((t) => t.id === toast.id)) return [...toasts];
  return [...toasts, toast].slice(-MAX_TOASTS);
}

export function dismissToast(toasts: readonly Toast[], id: number): Toast[] {
  return toasts.filter((t) => t.id !== id);
}
