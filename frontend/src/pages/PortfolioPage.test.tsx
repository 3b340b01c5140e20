import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

import { setTokens } from "../api/tokens";
import { PortfolioPage } from "./PortfolioPage";

// lightweight-charts draws on a canvas jsdom does not have; the curve's data is tested in model.test.ts
vi.mock("../components/EquityChart", () => ({ EquityChart: ({ label }: { label: string }) => <div role="img" aria-label={label} /> }));

const ID = "22222222-2222-4222-8222-222222222222";
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

const summary = {
  as_of: "2026-12-05T12:00:00Z",
  base_currency: "USDT",
  cash: "5000",
  fees_paid: "5",
  holdings_cost: "5000",
  holdings_value: "5500",
  name: "Default",
  net_deposits: "10000",
  portfolio_id: ID,
  priced_all: true,
  realized_pnl: "0",
  total_return: "495",
  total_return_pct: "4.95",
  total_value: "10500",
  unrealized_pnl: "500",
  positions: [
    { symbol: "BTC/USDT", quantity: "0.05", average_cost: "100000", cost: "5000", price: "110000", price_as_of: null, value: "5500", pnl: "500", pnl_pct: "10", weight_pct: "52.38", stale: false, diverged: false },
  ],
};

const portfolio = { id: ID, name: "Default", base_currency: "USDT", starting_cash: "10000", is_default: true, created_at: "2026-12-01T00:00:00Z" };

const buy = { id: "t1", portfolio_id: ID, kind: "buy", symbol: "BTC/USDT", quantity: "0.05", price: "100000", fee: "5", executed_at: "2026-12-01T09:30:00Z", note: null, created_at: null };

interface Call {
  method: string;
  path: string;
  type: string | null;
  body: string;
}

function serve(importResponse: () => Response) {
  const calls: Call[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (request: Request) => {
      const path = new URL(request.url).pathname;
      calls.push({ method: request.method, path, type: request.headers.get("Content-Type"), body: request.method === "GET" ? "" : await request.text() });
      if (path === `/api/v1/portfolios/${ID}` && request.method === "PATCH") return json({ ...portfolio, name: "Long term" });
      if (path === `/api/v1/portfolios/${ID}` && request.method === "DELETE") return new Response(null, { status: 204 });
      if (path === "/api/v1/portfolios") return json([portfolio]);
      if (path.endsWith("/summary")) return json(summary);
      if (path.endsWith("/transactions")) return json([buy]);
      if (request.method === "PATCH") return json({ ...buy, price: "95000" });
      if (path.endsWith("/performance")) return json({ points: [], range: "1m", resolution: "1h", start: "", end: "", complete: true, missing: [], benchmark_symbol: "BTC/USDT", benchmark_return_pct: null, max_drawdown_pct: null, time_weighted_return_pct: null });
      if (path.endsWith("/import")) return importResponse();
      if (path === "/api/v1/market/tickers") return json({ tickers: [] });
      return json({ error: { code: "not_found", message: "no" } }, 404);
    }),
  );
  return calls;
}

function renderPage() {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <PortfolioPage />
    </QueryClientProvider>,
  );
}

beforeEach(() => setTokens({ access_token: "a", refresh_token: "r" }));
afterEach(() => vi.unstubAllGlobals());

describe("PortfolioPage", () => {
  it("shows each position with its value, P&L and weight, and the totals", async () => {
    serve(() => json({ booked: 0, skipped: 0 }));
    renderPage();
    const row = await screen.findByRole("row", { name: /BTC\/USDT/ });
    expect(within(row).getByText("5,500.00")).toBeInTheDocument();
    expect(within(row).getByText("+500.00 (+10.00%)")).toHaveClass("up");
    expect(within(row).getByText("52.4%")).toBeInTheDocument();
    expect(screen.getByText("+495.00 (+4.95%)")).toBeInTheDocument();
  });

  it("sends an imported file as text/csv and lists the rows it was rejected for", async () => {
    const calls = serve(() =>
      json({ error: { code: "import_rejected", message: "The file has bad rows", details: [{ row: 3, message: "unknown symbol FOO/USDT" }] } }, 422),
    );
    renderPage();
    const input = await screen.findByLabelText(/Import trades/);
    await userEvent.upload(input, new File(["Date(UTC),Pair\n"], "trades.csv", { type: "text/csv" }));
    expect(await screen.findByText("Row 3: unknown symbol FOO/USDT")).toBeInTheDocument();
    const sent = calls.find((c) => c.path.endsWith("/import"));
    expect(sent).toMatchObject({ method: "POST", type: "text/csv", body: "Date(UTC),Pair\n" });
  });

  it("shows how many trades an import booked", async () => {
    serve(() => json({ booked: 4, skipped: 1 }));
    renderPage();
    await userEvent.upload(await screen.findByLabelText(/Import trades/), new File(["x"], "t.csv", { type: "text/csv" }));
    expect(await screen.findByText("Imported 4 trades, 1 already there.")).toBeInTheDocument();
  });

  it("corrects a transaction's price, sending only what changed", async () => {
    const calls = serve(() => json({ booked: 0, skipped: 0 }));
    renderPage();
    await userEvent.click(await screen.findByRole("button", { name: /^Edit buy 0.05 BTC\/USDT/ }));
    const form = screen.getByRole("form", { name: /^Correct buy 0.05 BTC\/USDT/ });
    const price = within(form).getByLabelText("Price");
    await userEvent.clear(price);
    await userEvent.type(price, "95000");
    await userEvent.click(within(form).getByRole("button", { name: "Save correction" }));
    await vi.waitFor(() => expect(screen.queryByRole("form", { name: /^Correct/ })).not.toBeInTheDocument());
    expect(calls.find((c) => c.method === "PATCH")).toEqual({ method: "PATCH", path: `/api/v1/portfolios/${ID}/transactions/t1`, type: "application/json", body: JSON.stringify({ price: "95000" }) });
  });

  it("renames the portfolio on show", async () => {
    const calls = serve(() => json({ booked: 0, skipped: 0 }));
    renderPage();
    await userEvent.click(await screen.findByRole("button", { name: "Rename Default" }));
    const form = screen.getByRole("form", { name: "Rename Default" });
    const name = within(form).getByLabelText("New name");
    await userEvent.clear(name);
    await userEvent.type(name, "Long term");
    await userEvent.click(within(form).getByRole("button", { name: "Save name" }));
    await vi.waitFor(() => expect(screen.queryByRole("form", { name: "Rename Default" })).not.toBeInTheDocument());
    expect(calls.find((c) => c.method === "PATCH")).toEqual({ method: "PATCH", path: `/api/v1/portfolios/${ID}`, type: "application/json", body: JSON.stringify({ name: "Long term" }) });
  });

  it("deletes the portfolio only after a confirmation that says what goes with it", async () => {
    const calls = serve(() => json({ booked: 0, skipped: 0 }));
    renderPage();
    await userEvent.click(await screen.findByRole("button", { name: "Delete Default" }));
    const dialog = screen.getByRole("alertdialog", { name: "Delete Default?" });
    expect(dialog).toHaveTextContent("with all its trades? This cannot be undone; your oldest other portfolio becomes the default.");
    await userEvent.click(within(dialog).getByRole("button", { name: "Keep" }));
    expect(calls.some((c) => c.method === "DELETE")).toBe(false);
    await userEvent.click(screen.getByRole("button", { name: "Delete Default" }));
    await userEvent.click(within(screen.getByRole("alertdialog")).getByRole("button", { name: "Delete portfolio" }));
    await vi.waitFor(() => expect(calls.find((c) => c.method === "DELETE")?.path).toBe(`/api/v1/portfolios/${ID}`));
  });
});
