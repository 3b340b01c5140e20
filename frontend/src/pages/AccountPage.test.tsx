import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen } from "@testing-library/react";

import { setTokens } from "../api/tokens";
import { UsageCard } from "./AccountPage";

const json = (body: unknown) => new Response(JSON.stringify(body), { headers: { "Content-Type": "application/json" } });

afterEach(() => vi.unstubAllGlobals());

it("shows today's tokens against the budget from /users/me/usage", async () => {
  setTokens({ access_token: "a", refresh_token: "r" });
  const paths: string[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn((request: Request) => {
      paths.push(new URL(request.url).pathname);
      return Promise.resolve(
        json({ day: "2026-12-05", tokens_used: 12500, daily_budget: 200000, remaining: 187500, input_tokens: 9000, output_tokens: 3500, cache_read_tokens: 4000, requests: 7, resets_at: "2026-12-06T00:00:00Z" }),
      );
    }),
  );
  render(
    <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
      <UsageCard />
    </QueryClientProvider>,
  );
  expect(await screen.findByText("12,500 of 200,000 tokens used (187,500 left)")).toBeInTheDocument();
  expect(screen.getByRole("meter", { name: "Tokens used today" })).toHaveAttribute("value", "12500");
  expect(screen.getByText("9,000 / 3,500 (4,000 read from cache)")).toBeInTheDocument();
  expect(paths).toEqual(["/api/v1/users/me/usage"]);
});
