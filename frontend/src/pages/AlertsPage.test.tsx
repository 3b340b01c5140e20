import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

import type { Alert } from "../alerts/kinds";
import { setTokens } from "../api/tokens";
import { AlertsPage } from "./AlertsPage";

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

const existing: Alert = {
  id: "a1",
  kind: "price_above",
  condition: "above",
  symbol: "BTC/USDT",
  threshold: "120000",
  direction: null,
  window: null,
  repeat: "once",
  cooldown_seconds: 3600,
  note: "take profit",
  status: "active",
  fire_count: 2,
  created_at: "2026-12-01T10:00:00Z",
  triggered_at: "2026-12-04T08:30:00Z",
  triggered_price: "120100.5",
  portfolio_id: null,
};

interface Call {
  method: string;
  path: string;
  body: unknown;
}

function serve(respond: (call: Call) => Response | null = () => null) {
  const calls: Call[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (request: Request) => {
      const url = new URL(request.url);
      const text = request.method === "GET" ? "" : await request.text();
      const call = { method: request.method, path: url.pathname + url.search, body: text ? (JSON.parse(text) as unknown) : null };
      calls.push(call);
      const answer = respond(call);
      if (answer) return answer;
      if (url.pathname === "/api/v1/alerts" && request.method === "GET") return json([existing]);
      if (url.pathname === "/api/v1/market/tickers") return json({ tickers: [] });
      if (url.pathname === "/api/v1/market/symbols")
        return json({ query: url.searchParams.get("q"), quote: null, catalog_size: 3, symbols: [{ symbol: "SOL/USDT", base: "SOL", quote: "USDT", name: "Solana", exchanges: ["binance"], always_on: false }] });
      return json({ error: { code: "not_found", message: "no" } }, 404);
    }),
  );
  return calls;
}

function renderPage() {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <AlertsPage />
    </QueryClientProvider>,
  );
}

const created = (body: Partial<Alert>, extra: { already_triggered?: boolean; message?: string } = {}) =>
  json({ ...existing, id: "new", fire_count: 0, triggered_at: null, triggered_price: null, note: null, ...body, ...extra }, 201);

beforeEach(() => setTokens({ access_token: "a", refresh_token: "r" }));
afterEach(() => vi.unstubAllGlobals());

describe("AlertsPage", () => {
  it("lists an alert with its state, fire count, last trigger and note", async () => {
    serve();
    renderPage();
    const item = await screen.findByRole("listitem", { name: "BTC/USDT above 120,000.00" });
    expect(within(item).getByText("active")).toBeInTheDocument();
    expect(within(item).getByText("take profit")).toBeInTheDocument();
    expect(item).toHaveTextContent(/Fired 2 times; last .* at 120,100.50/);
  });

  it("creates a percentage-move alert on a symbol picked from the catalog search", async () => {
    const calls = serve((c) => (c.method === "POST" ? created({ kind: "change_pct", symbol: "SOL/USDT", threshold: "5", direction: "down", window: "4h" }) : null));
    renderPage();
    const form = screen.getByRole("form", { name: "New alert" });
    await userEvent.selectOptions(within(form).getByLabelText("Alert when"), "change_pct");
    const symbol = within(form).getByLabelText("Symbol");
    await userEvent.clear(symbol);
    await userEvent.type(symbol, "sol");
    await userEvent.click(await within(form).findByRole("button", { name: /SOL\/USDT/ }));
    expect(symbol).toHaveValue("SOL/USDT");
    await userEvent.selectOptions(within(form).getByLabelText("Direction"), "down");
    await userEvent.selectOptions(within(form).getByLabelText("Within"), "4h");
    await userEvent.type(within(form).getByLabelText("Change (%)"), "5");
    await userEvent.selectOptions(within(form).getByLabelText("Repeat"), "every");
    await userEvent.selectOptions(within(form).getByLabelText("Cooldown"), "900");
    await userEvent.click(within(form).getByRole("button", { name: "Create alert" }));
    expect(await screen.findByText("Alert created: SOL/USDT down 5 % within 4h.")).toBeInTheDocument();
    expect(calls.find((c) => c.path.startsWith("/api/v1/market/symbols"))?.path).toMatch(/q=s/);
    expect(calls.find((c) => c.method === "POST")?.body).toEqual({ kind: "change_pct", symbol: "SOL/USDT", direction: "down", window: "4h", threshold: "5", repeat: "every", cooldown_seconds: 900, note: null });
  });

  it("shows the server's reason next to the field it names, keeping what was typed", async () => {
    serve((c) =>
      c.method === "POST"
        ? json({ error: { code: "validation_error", message: "Invalid alert: threshold", details: [{ field: "threshold", in: "body", message: "a Fear & Greed value from 1 to 99", type: "value_error" }] } }, 422)
        : null,
    );
    renderPage();
    const form = screen.getByRole("form", { name: "New alert" });
    await userEvent.selectOptions(within(form).getByLabelText("Alert when"), "fear_greed_above");
    expect(within(form).queryByLabelText("Symbol")).not.toBeInTheDocument();
    const level = within(form).getByLabelText("Index value (1–99)");
    await userEvent.type(level, "150");
    await userEvent.click(within(form).getByRole("button", { name: "Create alert" }));
    await vi.waitFor(() => expect(level).toHaveAttribute("aria-invalid", "true"));
    expect(level).toHaveAccessibleDescription("a Fear & Greed value from 1 to 99");
    expect(level).toHaveValue("150");
  });

  it("refuses a level that is not a number before sending anything", async () => {
    const calls = serve();
    renderPage();
    const form = screen.getByRole("form", { name: "New alert" });
    await userEvent.type(within(form).getByLabelText("Price"), "lots");
    await userEvent.click(within(form).getByRole("button", { name: "Create alert" }));
    expect(within(form).getByLabelText("Price")).toHaveAccessibleDescription("Enter a number, like 100000.");
    expect(calls.some((c) => c.method === "POST")).toBe(false);
  });

  it("says when the condition already holds at creation", async () => {
    const message = "BTC/USDT is already above 1,000 (now 97,000); the alert fires on the next crossing.";
    serve((c) => (c.method === "POST" ? created({ threshold: "1000" }, { already_triggered: true, message }) : null));
    renderPage();
    const form = screen.getByRole("form", { name: "New alert" });
    await userEvent.type(within(form).getByLabelText("Price"), "1000");
    await userEvent.click(within(form).getByRole("button", { name: "Create alert" }));
    expect(await screen.findByText(message)).toBeInTheDocument();
  });

  it("pauses an alert, and edits it sending only what changed", async () => {
    const calls = serve((c) => (c.method === "PATCH" ? json({ ...existing, already_triggered: false }) : null));
    renderPage();
    await userEvent.click(await screen.findByRole("button", { name: "Pause BTC/USDT above 120,000.00" }));
    await vi.waitFor(() => expect(calls.filter((c) => c.method === "PATCH")).toHaveLength(1));
    expect(calls.find((c) => c.method === "PATCH")).toEqual({ method: "PATCH", path: "/api/v1/alerts/a1", body: { paused: true } });

    await userEvent.click(screen.getByRole("button", { name: "Edit BTC/USDT above 120,000.00" }));
    const form = screen.getByRole("form", { name: "Edit BTC/USDT above 120,000.00" });
    expect(within(form).queryByLabelText("Alert when")).not.toBeInTheDocument();
    const level = within(form).getByLabelText("Price");
    await userEvent.clear(level);
    await userEvent.type(level, "125000");
    await userEvent.clear(within(form).getByLabelText("Note (optional)"));
    await userEvent.click(within(form).getByRole("button", { name: "Save" }));
    await vi.waitFor(() => expect(screen.queryByRole("form", { name: /^Edit/ })).not.toBeInTheDocument());
    expect(calls.filter((c) => c.method === "PATCH")[1]).toEqual({ method: "PATCH", path: "/api/v1/alerts/a1", body: { threshold: "125000", note: null } });
  });

  it("deletes only after a confirmation", async () => {
    const calls = serve((c) => (c.method === "DELETE" ? new Response(null, { status: 204 }) : null));
    renderPage();
    await userEvent.click(await screen.findByRole("button", { name: "Delete BTC/USDT above 120,000.00" }));
    await userEvent.click(screen.getByRole("button", { name: "Keep" }));
    expect(calls.some((c) => c.method === "DELETE")).toBe(false);
    await userEvent.click(screen.getByRole("button", { name: "Delete BTC/USDT above 120,000.00" }));
    await userEvent.click(within(screen.getByRole("alertdialog")).getByRole("button", { name: "Delete" }));
    await vi.waitFor(() => expect(calls.find((c) => c.method === "DELETE")?.path).toBe("/api/v1/alerts/a1"));
  });
});
