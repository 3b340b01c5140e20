/** The server's notification inbox in memory for component tests: unread first, newest first,
 * paged like the API, with mark read / mark all read; every request is recorded. */
import { vi } from "vitest";

import type { Notification } from "../notifications/model";

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

export const note = (id: number, read: boolean): Notification => ({
  id,
  kind: "price_above",
  title: `Alert ${id}`,
  body: `Body ${id}`,
  data: {},
  created_at: "2026-12-05T10:00:00Z",
  read_at: read ? "2026-12-05T11:00:00Z" : null,
  deliveries: [],
});

/** Stubs `fetch` with an inbox of `count` notifications, `unread` of them unread (the newest).
 * Returns the requests made, as "METHOD /path?query". */
export function fakeInbox(count: number, unread: number): string[] {
  const items = Array.from({ length: count }, (_, i) => note(count - i, i >= unread));
  const calls: string[] = [];
  const sorted = () => [...items].sort((a, b) => Number(a.read_at !== null) - Number(b.read_at !== null) || b.id - a.id);
  vi.stubGlobal(
    "fetch",
    vi.fn((request: Request) => {
      const url = new URL(request.url);
      calls.push(`${request.method} ${url.pathname}${url.search}`);
      const read = /^\/api\/v1\/notifications\/(\d+)\/read$/.exec(url.pathname);
      if (request.method === "POST" && read) {
        const item = items.find((n) => n.id === Number(read[1]));
        if (item) item.read_at = "2026-12-05T12:00:00Z";
        return Promise.resolve(new Response(null, { status: 204 }));
      }
      if (request.method === "POST" && url.pathname === "/api/v1/notifications/read-all") {
        const marked = items.filter((n) => n.read_at === null).length;
        for (const n of items) n.read_at ??= "2026-12-05T12:00:00Z";
        return Promise.resolve(json({ marked }));
      }
      const limit = Number(url.searchParams.get("limit"));
      const offset = Number(url.searchParams.get("offset"));
      return Promise.resolve(json({ items: sorted().slice(offset, offset + limit), total: items.length, unread: items.filter((n) => n.read_at === null).length, limit, offset }));
    }),
  );
  return calls;
}
