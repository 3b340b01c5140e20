import { expect, test, type Page } from "@playwright/test";

import { expectAccessible, shot, signInQuickly } from "./support";

const newAlert = (page: Page) => page.getByRole("form", { name: "New alert" });

test("create a price alert on a searched symbol, edit it, pause and resume it, delete it with confirmation", async ({ page }) => {
  await signInQuickly(page);
  await page.goto("/alerts");
  await expect(page.getByRole("heading", { name: "Alerts", level: 1 })).toBeVisible();
  await expect(page.getByText("No alerts yet.")).toBeVisible();
  const form = newAlert(page);
  await expect(form.getByText(/^Now /)).toBeVisible(); // BTC/USDT's price from the replayed market

  await form.getByLabel("Alert when").selectOption("price_below");
  await form.getByLabel("Symbol").fill("eth");
  await form.getByRole("list", { name: "Matching symbols" }).getByRole("button", { name: /^ETH\/USDT/ }).click();
  await expect(form.getByLabel("Symbol")).toHaveValue("ETH/USDT");
  await form.getByLabel("Price").fill("1000");
  await form.getByLabel("Note (optional)").fill("buy the dip");
  await form.getByRole("button", { name: "Create alert" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Alert created: ETH/USDT below 1,000" })).toBeVisible();

  const item = page.getByRole("listitem", { name: "ETH/USDT below 1,000" });
  await expect(item).toContainText("active");
  await expect(item).toContainText("buy the dip");
  await expect(item).toContainText("Not fired yet");
  await shot(page, "alerts");
  await expectAccessible(page);

  // edit: a new level and repeat with a cooldown
  await item.getByRole("button", { name: "Edit ETH/USDT below 1,000" }).click();
  const edit = page.getByRole("form", { name: "Edit ETH/USDT below 1,000" });
  await edit.getByLabel("Price").fill("1200");
  await edit.getByLabel("Repeat").selectOption("every");
  await edit.getByLabel("Cooldown").selectOption({ label: "4 hours" });
  await expectAccessible(page);
  await edit.getByRole("button", { name: "Save" }).click();
  const edited = page.getByRole("listitem", { name: "ETH/USDT below 1,200" });
  await expect(edited).toContainText("repeats, cooldown 4 hours");

  await edited.getByRole("button", { name: "Pause ETH/USDT below 1,200" }).click();
  await expect(edited).toContainText("paused");
  await edited.getByRole("button", { name: "Resume ETH/USDT below 1,200" }).click();
  await expect(edited.getByText("active", { exact: true })).toBeVisible();

  await edited.getByRole("button", { name: "Delete ETH/USDT below 1,200" }).click();
  await edited.getByRole("button", { name: "Keep" }).click();
  await expect(edited).toBeVisible();
  await edited.getByRole("button", { name: "Delete ETH/USDT below 1,200" }).click();
  await edited.getByRole("button", { name: "Delete", exact: true }).click();
  await expect(page.locator(".alert-item")).toHaveCount(0);
  await expect(page.getByText("No alerts yet.")).toBeVisible();
});

test("every other kind: a percentage move, Fear & Greed, and a level that already holds", async ({ page }) => {
  await signInQuickly(page);
  await page.goto("/alerts");
  const form = newAlert(page);

  await form.getByLabel("Alert when").selectOption("change_pct");
  await form.getByLabel("Direction").selectOption("up");
  await form.getByLabel("Within").selectOption("4h");
  await form.getByLabel("Change (%)").fill("5");
  await form.getByLabel("Repeat").selectOption("every");
  await form.getByLabel("Cooldown").selectOption({ label: "15 minutes" });
  await form.getByRole("button", { name: "Create alert" }).click();
  await expect(page.getByRole("listitem", { name: "BTC/USDT up 5 % within 4h" })).toContainText("repeats, cooldown 15 minutes");

  await form.getByLabel("Alert when").selectOption("fear_greed_below");
  await expect(form.getByLabel("Symbol")).toHaveCount(0);
  await form.getByLabel("Index value (1–99)").fill("5");
  await form.getByRole("button", { name: "Create alert" }).click();
  await expect(page.getByRole("listitem", { name: "Fear & Greed below 5" })).toContainText("active");

  // BTC is far above 1 on the replayed market: the server creates it and says it did not fire
  await form.getByLabel("Alert when").selectOption("price_above");
  await form.getByLabel("Price").fill("1");
  await form.getByRole("button", { name: "Create alert" }).click();
  await expect(page.getByRole("status").filter({ hasText: /BTC\/USDT above 1 is already true now, so it did not fire/ })).toBeVisible();
  await expect(page.locator(".alert-item")).toHaveCount(3);
  await expectAccessible(page);
});

test("a refused level gets the server's reason next to the field, and the form keeps what was typed", async ({ page }) => {
  await signInQuickly(page);
  await page.goto("/alerts");
  const form = newAlert(page);
  await form.getByLabel("Alert when").selectOption("fear_greed_above");
  const level = form.getByLabel("Index value (1–99)");
  await level.fill("150");
  await form.getByRole("button", { name: "Create alert" }).click();
  await expect(level).toHaveAttribute("aria-invalid", "true");
  await expect(level).toHaveAccessibleDescription("a Fear & Greed value from 1 to 99");
  await expect(level).toHaveValue("150");
  await expect(page.getByText("No alerts yet.")).toBeVisible();
  await expectAccessible(page);
});
