import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router";

import { setTokens } from "../api/tokens";
import { Bell, bellLabel, NotificationCenter, PANEL_SIZE, Toasts } from "./NotificationCenter";
import { clearToasts, showToast } from "./live";
import { fakeInbox } from "../test/fakeInbox";

const json = (body: unknown) => new Response(JSON.stringify(body), { headers: { "Content-Type": "application/json" } });

afterEach(() => {
  vi.unstubAllGlobals();
  act(() => clearToasts());
  setTokens(null);
});

function wrap(ui: React.ReactNode) {
  return render(
    <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
      <MemoryRouter>{ui}</MemoryRouter>
    </QueryClientProvider>,
  );
}

it("names the unread count on the bell, read from the inbox", async () => {
  setTokens({ access_token: "a", refresh_token: "r" });
  const urls: string[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn((request: Request) => {
      urls.push(request.url);
      return Promise.resolve(json({ items: [], total: 9, unread: 3, limit: 1, offset: 0 }));
    }),
  );
  wrap(<Bell />);
  const bell = await screen.findByRole("button", { name: "Notifications, 3 unread" });
  expect(bell).toHaveAttribute("aria-expanded", "false");
  expect(bell).toHaveTextContent("3");
  expect(new URL(urls[0] ?? "").search).toBe("?limit=1&offset=0");
  expect(bellLabel(0)).toBe("Notifications, none unread");
  expect(bellLabel(undefined)).toBe("Notifications");
});

it("announces live notifications in a polite region and dismisses them", async () => {
  wrap(<Toasts />);
  const region = screen.getByRole("status");
  expect(region).toHaveAttribute("aria-live", "polite");
  act(() => showToast({ id: 5, kind: "price_above", title: "BTC/USDT above 97,500", body: "Now 97,512", data: {}, created_at: "" }));
  act(() => showToast({ id: 5, kind: "price_above", title: "BTC/USDT above 97,500", body: "Now 97,512", data: {}, created_at: "" }));
  expect(within(region).getAllByText("BTC/USDT above 97,500")).toHaveLength(1);
  expect(within(region).getByRole("link", { name: "Open inbox" })).toHaveAttribute("href", "/notifications");
  await userEvent.click(within(region).getByRole("button", { name: "Dismiss: BTC/USDT above 97,500" }));
  expect(within(region).queryByText("BTC/USDT above 97,500")).toBeNull();
});

it("follows the stream while signed in: a live notification is toasted and counted; a cleared cache refetches the count", async () => {
  setTokens({ access_token: "a", refresh_token: "r" });
  let unread = 0;
  const frame = `id: 8-0\nevent: notification\ndata: ${JSON.stringify({ id: 8, kind: "alert", title: "Alert: SOL/USDT above 192.87", body: "now 192.99.", data: {}, created_at: "2026-12-05T10:00:00Z" })}\n\n`;
  let release = () => undefined as void;
  vi.stubGlobal(
    "fetch",
    vi.fn((request: Request) => {
      const url = new URL(request.url);
      if (url.pathname === "/api/v1/notifications/stream") {
        // stays open (until the test unmounts), with one notification once the test says so
        return Promise.resolve(
          new Response(
            new ReadableStream({
              start(controller) {
                release = () => {
                  unread = 1;
                  controller.enqueue(new TextEncoder().encode(frame));
                };
              },
            }),
          ),
        );
      }
      return Promise.resolve(json({ items: [], total: unread, unread, limit: 1, offset: 0 }));
    }),
  );
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  const { unmount } = render(
    <QueryClientProvider client={client}>
      <MemoryRouter>
        <NotificationCenter />
      </MemoryRouter>
    </QueryClientProvider>,
  );
  expect(await screen.findByRole("button", { name: "Notifications, none unread" })).toBeInTheDocument();
  act(() => release());
  expect(await screen.findByRole("button", { name: "Notifications, 1 unread" })).toBeInTheDocument();
  expect(within(screen.getByRole("status")).getByText("Alert: SOL/USDT above 192.87")).toBeInTheDocument();

  unread = 4; // as if another session read and received some; sign-in clears the cache
  act(() => client.clear());
  expect(await screen.findByRole("button", { name: "Notifications, 4 unread" })).toBeInTheDocument();
  unmount();
});

/** The server's inbox (src/test/fakeInbox.ts), signed in; returns the requests it received. */
function signedInInbox(count: number, unread: number): string[] {
  setTokens({ access_token: "a", refresh_token: "r" });
  return fakeInbox(count, unread);
}

it("the bell opens a panel of the latest notifications, unread first, with focus in it; Escape closes it and focus returns to the bell", async () => {
  signedInInbox(10, 3);
  wrap(
    <>
      <Bell />
      <button type="button">elsewhere</button>
    </>,
  );
  const bell = await screen.findByRole("button", { name: "Notifications, 3 unread" });
  await userEvent.click(bell);
  expect(bell).toHaveAttribute("aria-expanded", "true");
  const panel = screen.getByRole("dialog", { name: "Notifications" });
  expect(bell).toHaveAttribute("aria-controls", panel.id);
  expect(panel).toHaveFocus();
  const list = await within(panel).findByRole("list", { name: "Latest notifications" });
  expect(within(list).getAllByRole("listitem").map((li) => li.getAttribute("aria-label"))).toEqual(["Unread: Alert 10", "Unread: Alert 9", "Unread: Alert 8", "Read: Alert 7", "Read: Alert 6", "Read: Alert 5"]);
  expect(PANEL_SIZE).toBe(6);
  expect(within(panel).getByRole("link", { name: "See all notifications (10)" })).toHaveAttribute("href", "/notifications");

  await userEvent.keyboard("{Escape}");
  expect(screen.queryByRole("dialog")).toBeNull();
  expect(bell).toHaveFocus();
  expect(bell).toHaveAttribute("aria-expanded", "false");
});

it("marks one notification read from the panel (focus stays on it) and then all; the bell's count follows", async () => {
  const calls = signedInInbox(4, 2);
  wrap(<Bell />);
  await userEvent.click(await screen.findByRole("button", { name: "Notifications, 2 unread" }));
  const panel = screen.getByRole("dialog", { name: "Notifications" });
  await userEvent.click(await within(panel).findByRole("button", { name: "Mark read: Alert 4" }));
  expect(await within(panel).findByRole("listitem", { name: "Read: Alert 4" })).toHaveFocus();
  expect(await screen.findByRole("button", { name: "Notifications, 1 unread" })).toBeInTheDocument();

  await userEvent.click(within(panel).getByRole("button", { name: "Mark all read" }));
  expect(await within(panel).findByText("Nothing unread")).toBeInTheDocument();
  expect(await screen.findByRole("button", { name: "Notifications, none unread" })).toBeInTheDocument();
  expect(within(panel).getByRole("button", { name: "Mark all read" })).toBeDisabled();
  expect(calls.filter((call) => call.startsWith("POST"))).toEqual([
    "POST /api/v1/notifications/4/read",
    "POST /api/v1/notifications/read-all",
  ]);
});

it("closes the panel on a click outside it or when focus moves out of it, without taking focus back", async () => {
  signedInInbox(1, 1);
  wrap(
    <>
      <Bell />
      <button type="button">elsewhere</button>
    </>,
  );
  const bell = await screen.findByRole("button", { name: "Notifications, 1 unread" });
  await userEvent.click(bell);
  expect(screen.getByRole("dialog", { name: "Notifications" })).toBeInTheDocument();
  await userEvent.click(screen.getByText("elsewhere"));
  expect(screen.queryByRole("dialog")).toBeNull();
  expect(screen.getByText("elsewhere")).toHaveFocus();

  await userEvent.click(bell);
  const panel = screen.getByRole("dialog", { name: "Notifications" });
  await within(panel).findByRole("button", { name: "Mark read: Alert 1" });
  await userEvent.tab(); // Mark all read
  await userEvent.tab(); // Mark read: Alert 1
  await userEvent.tab(); // See all notifications
  expect(within(panel).getByRole("link", { name: /See all notifications/ })).toHaveFocus();
  await userEvent.tab(); // out of the panel
  expect(screen.queryByRole("dialog")).toBeNull();
  expect(screen.getByText("elsewhere")).toHaveFocus();
});
