import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

import { setTokens } from "../api/tokens";
import { PAGE_SIZE } from "../notifications/queries";
import { fakeInbox } from "../test/fakeInbox";
import { NotificationsPage } from "./NotificationsPage";


afterEach(() => {
  vi.unstubAllGlobals();
  setTokens(null);
});


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
