import { expect, test } from "@playwright/test";

import { expectAccessible, shot, signInQuickly } from "./support";

test("create a price alert, see its state, delete it with confirmation", async ({ page }) => {
  await signInQuickly(page);
  await page.goto("/alerts");
  await expect(page.getByRole("heading", { name: "Alerts", level: 1 })).toBeVisible();
  await expect(page.getByText(/^Now /)).toBeVisible();
  await page.getByLabel("Symbol").selectOption("ETH/USDT");
  await page.getByLabel("When the price is").selectOption("below");
  await page.getByLabel("Level").fill("1000");
  await page.getByRole("button", { name: "Create alert" }).click();
  const item = page.locator(".alert-item").filter({ hasText: "ETH/USDT" });
  await expect(item).toContainText("below 1,000");
  await expect(item).toContainText("waiting");
  await shot(page, "alerts");
  await expectAccessible(page);

  await item.getByRole("button", { name: /Delete the alert ETH\/USDT/ }).click();
  await item.getByRole("button", { name: "Keep" }).click();
  await expect(item).toBeVisible();
  await item.getByRole("button", { name: /Delete the alert ETH\/USDT/ }).click();
  await item.getByRole("button", { name: "Delete", exact: true }).click();
  await expect(page.locator(".alert-item")).toHaveCount(0);
  await expect(page.getByText("No alerts yet.")).toBeVisible();
});

test("an alert with a bad level gets the server's reason, and the form keeps what was typed", async ({ page }) => {
  await signInQuickly(page);
  await page.goto("/alerts");
  await page.getByLabel("Level").fill("0");
  await page.getByRole("button", { name: "Create alert" }).click();
  await expect(page.getByRole("alert")).toBeVisible();
  await expect(page.getByLabel("Level")).toHaveValue("0");
});
