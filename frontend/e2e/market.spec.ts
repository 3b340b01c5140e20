import { expect, test } from "@playwright/test";

import { expectAccessible, registerThroughTheForm, shot } from "./support";

test("register, watch prices move live, open a candlestick chart", async ({ page }) => {
  await registerThroughTheForm(page);
  await expectAccessible(page);

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Market" }).click();
  const btc = page.locator('tr[data-symbol="BTC/USDT"]');
  await expect(btc).toBeVisible();
  await expect(page.getByRole("status").filter({ hasText: "live" })).toBeVisible();
  const price = btc.locator("td.price");
  await expect(price).toHaveText(/\d/);
  const first = await price.textContent();
  // The replayed session moves prices; the stream must bring a new one without a reload.
  await expect(price).not.toHaveText(first ?? "", { timeout: 45_000 });
  await expect(btc.locator("svg.sparkline")).toBeVisible({ timeout: 45_000 });
  await expect(page.getByRole("heading", { name: "Fear & Greed" })).toBeVisible();
  await shot(page, "market");
  await expectAccessible(page);

  await btc.getByRole("link", { name: "BTC/USDT" }).click();
  await expect(page).toHaveURL(/\/market\/BTC-USDT$/);
  await expect(page.getByRole("heading", { name: "BTC/USDT", level: 1 })).toBeVisible();
  const chart = page.getByRole("img", { name: /BTC\/USDT 1m candlestick chart/ });
  await expect(chart.locator("canvas").first()).toBeVisible();
  await expect(page.getByRole("table").getByRole("rowheader", { name: "binance" })).toBeVisible();
  await page.getByRole("button", { name: "5m", exact: true }).click();
  await expect(page.getByRole("button", { name: "5m", exact: true })).toHaveAttribute("aria-pressed", "true");
  await expect(page.getByRole("img", { name: /BTC\/USDT 5m candlestick chart/ })).toBeVisible();
  await shot(page, "symbol");
  await expectAccessible(page);
});

test("a symbol page opened directly is served by the app (SPA fallback)", async ({ page }) => {
  await page.goto("/market/ETH-USDT");
  await expect(page.getByRole("heading", { name: "ETH/USDT", level: 1 })).toBeVisible();
});
