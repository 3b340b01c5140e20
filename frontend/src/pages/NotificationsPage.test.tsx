import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

import { setTokens } from "../api/tokens";
import type { Notification } from "../notifications/model";
import { PAGE_SIZE } from "../notifications/queries";
import { NotificationsPage } from "./NotificationsPage";

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
const note = (id: number, read: boolean): Notification => ({
  id,
  kind: "price_above",
  title: `Alert ${id}`,
  body: `Body ${id}`,
  data: {},
  created_at: "2026-12-05T10:00:00Z",
  read_at: read ? "2026-12-05T11:00:00Z" : null,
  deliveries: [],
});

afterEach(() => {
  vi.unstubAllGlobals();
  setTokens(null);
});

/** The server's inbox in memory: unread first, newest first, paged like the API. */
function fakeInbox(count: number, unread: number) {
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

function renderPage() {
  setTokens({ access_token: "a", refresh_token: "r" });
  render(
    <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
      <NotificationsPage />
    </QueryClientProvider>,
  );
}

it("lists unread first, marks one read and keeps focus on its entry", async () => {
  const calls = fakeInbox(3, 2);
  renderPage();
  const list = await screen.findByRole("list", { name: "Inbox" });
  expect(await within(list).findAllByRole("listitem")).toHaveLength(3);
  expect(screen.getByRole("heading", { name: "Notifications" })).toHaveFocus();
  expect(screen.getByText(/^2 unread/)).toBeInTheDocument();
  expect(within(list).getAllByRole("listitem").map((li) => li.getAttribute("aria-label"))).toEqual(["Unread: Alert 3", "Unread: Alert 2", "Read: Alert 1"]);
  await userEvent.click(screen.getByRole("button", { name: "Mark read: Alert 2" }));
  expect(await screen.findByText(/^1 unread/)).toBeInTheDocument();
  expect(screen.getByRole("listitem", { name: "Read: Alert 2" })).toHaveFocus();
  expect(screen.queryByRole("button", { name: "Mark read: Alert 2" })).toBeNull();
  expect(calls).toContain("POST /api/v1/notifications/2/read");
});

it("marks all read", async () => {
  const calls = fakeInbox(2, 2);
  renderPage();
  await userEvent.click(await screen.findByRole("button", { name: "Mark all read" }));
  expect(await screen.findByText(/^Nothing unread/)).toBeInTheDocument();
  expect(screen.getByRole("button", { name: "Mark all read" })).toBeDisabled();
  expect(screen.queryAllByRole("button", { name: /^Mark read/ })).toHaveLength(0);
  expect(calls).toContain("POST /api/v1/notifications/read-all");
});

it("pages through older notifications", async () => {
  const calls = fakeInbox(PAGE_SIZE + 5, 0);
  renderPage();
  const list = await screen.findByRole("list", { name: "Inbox" });
  expect(await within(list).findAllByRole("listitem")).toHaveLength(PAGE_SIZE);
  await userEvent.click(screen.getByRole("button", { name: "Show older" }));
  expect(await within(list).findAllByRole("listitem")).toHaveLength(PAGE_SIZE + 5);
  expect(screen.queryByRole("button", { name: "Show older" })).toBeNull();
  expect(calls).toContain(`GET /api/v1/notifications?limit=${PAGE_SIZE}&offset=${PAGE_SIZE}`);
});

it("shows an empty inbox as such", async () => {
  fakeInbox(0, 0);
  renderPage();
  expect(await screen.findByText(/No notifications yet/)).toBeInTheDocument();
});
