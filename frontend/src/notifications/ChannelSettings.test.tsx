import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

import { setTokens } from "../api/tokens";
import { ChannelSettingsCard, channelChanges } from "./ChannelSettings";
import type { ChannelSettings } from "./queries";

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

afterEach(() => {
  vi.unstubAllGlobals();
  setTokens(null);
});

function serve(initial: ChannelSettings) {
  let saved = initial;
  const calls: { method: string; path: string; body: unknown }[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (request: Request) => {
      const path = new URL(request.url).pathname;
      const body: unknown = request.method === "PUT" ? await request.json() : null;
      calls.push({ method: request.method, path, body });
      if (path === "/api/v1/users/me/email/verify-request") return json({ status: "sent", email: "ada@example.com" }, 202);
      if (request.method === "PUT") saved = { ...saved, ...(body as Partial<ChannelSettings>) };
      return json(saved);
    }),
  );
  setTokens({ access_token: "a", refresh_token: "r" });
  render(
    <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
      <ChannelSettingsCard />
    </QueryClientProvider>,
  );
  return calls;
}

it("sends only a changed choice, and says it saved", async () => {
  const calls = serve({ in_app: true, email: false, web_push: false, email_verified: true, available: ["email", "web_push"] });
  const save = await screen.findByRole("button", { name: "Save channels" });
  expect(save).toBeDisabled(); // nothing changed yet
  expect(screen.getByRole("checkbox", { name: /In the app/ })).toBeChecked();
  expect(screen.getByRole("checkbox", { name: /In the app/ })).toBeDisabled();
  expect(screen.getByText("Your address is verified.")).toBeInTheDocument();
  await userEvent.click(screen.getByRole("checkbox", { name: "Email" }));
  await userEvent.click(save);
  expect(await screen.findByText("Saved.")).toBeInTheDocument();
  expect(screen.getByRole("checkbox", { name: "Email" })).toBeChecked();
  expect(calls.filter((c) => c.method === "PUT")).toEqual([{ method: "PUT", path: "/api/v1/users/me/notification-settings", body: { email: true, web_push: false } }]);
});

it("offers to send the verification email while the address is unverified", async () => {
  const calls = serve({ in_app: true, email: true, web_push: false, email_verified: false, available: ["email"] });
  expect(await screen.findByText(/not verified yet/)).toBeInTheDocument();
  expect(screen.getByRole("checkbox", { name: "Browser push" })).toBeDisabled();
  expect(screen.getByText("This server does not send push notifications.")).toBeInTheDocument();
  await userEvent.click(screen.getByRole("button", { name: "Send verification email" }));
  expect(await screen.findByText(/Sent to ada@example.com/)).toBeInTheDocument();
  expect(calls.map((c) => `${c.method} ${c.path}`)).toContain("POST /api/v1/users/me/email/verify-request");
});

it("says when the server sends neither email nor push", async () => {
  serve({ in_app: true, email: false, web_push: false, email_verified: false, available: [] });
  expect(await screen.findByText("This server does not send email.")).toBeInTheDocument();
  expect(screen.getByRole("checkbox", { name: "Email" })).toBeDisabled();
  expect(screen.queryByRole("button", { name: "Send verification email" })).toBeNull();
});

it("computes the change from the saved settings", () => {
  const saved = { in_app: true, email: true, web_push: false, email_verified: true, available: [] };
  expect(channelChanges(saved, true, false)).toBeNull();
  expect(channelChanges(saved, true, true)).toEqual({ email: true, web_push: true });
});
