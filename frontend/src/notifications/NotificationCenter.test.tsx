import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router";

import { setTokens } from "../api/tokens";
import { Bell, bellLabel, NotificationCenter, Toasts } from "./NotificationCenter";
import { clearToasts, showToast } from "./live";

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
  const bell = await screen.findByRole("link", { name: "Notifications, 3 unread" });
  expect(bell).toHaveAttribute("href", "/notifications");
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
  expect(await screen.findByRole("link", { name: "Notifications, none unread" })).toBeInTheDocument();
  act(() => release());
  expect(await screen.findByRole("link", { name: "Notifications, 1 unread" })).toBeInTheDocument();
  expect(within(screen.getByRole("status")).getByText("Alert: SOL/USDT above 192.87")).toBeInTheDocument();

  unread = 4; // as if another session read and received some; sign-in clears the cache
  act(() => client.clear());
  expect(await screen.findByRole("link", { name: "Notifications, 4 unread" })).toBeInTheDocument();
  unmount();
});
