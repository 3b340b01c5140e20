import { expect, test } from "@playwright/test";

import { expectAccessible, shot, signInQuickly } from "./support";

test("buy at market, see the position and its P&L, then undo the trade from the history", async ({ page }) => {
  await signInQuickly(page);
  await page.goto("/portfolio");
  await expect(page.getByRole("heading", { name: "Portfolio", level: 1 })).toBeVisible();
  await expect(page.getByText("No positions yet.")).toBeVisible();
  await expect(page.getByText(/^Market price now /)).toBeVisible();

  await page.getByLabel("Quantity").fill("0.01");
  await page.getByRole("button", { name: "Buy", exact: true }).click();
  await expect(page.getByRole("status").filter({ hasText: /^Bought 0.01 BTC\/USDT at / })).toBeVisible();

  const position = page.getByRole("table", { name: "Positions" }).getByRole("row", { name: /BTC\/USDT/ });
  await expect(position).toBeVisible();
  await expect(position.getByRole("cell").first()).toHaveText("0.01");
  // unrealized P&L: a signed amount and its percentage (the fee makes a fresh buy's total return negative)
  await expect(position.getByRole("cell").nth(4)).toHaveText(/^[+-]?[\d,]+\.\d\d \([+-]?\d+\.\d\d%\)$/);
  await expect(page.locator(".facts.summary")).toContainText("Fees paid");
  const history = page.getByRole("table", { name: "Transactions" });
  await expect(history.getByRole("row")).toHaveCount(3); // header, the starting deposit, the buy
  await shot(page, "portfolio");
  await expectAccessible(page);

  // correct the buy's fee: every figure is derived from the ledger, so fees paid follow
  await history.getByRole("button", { name: /^Edit buy 0.01 BTC\/USDT/ }).click();
  const correction = page.getByRole("form", { name: /^Correct buy 0.01 BTC\/USDT/ });
  await correction.getByLabel("Fee").fill("0");
  await correction.getByRole("button", { name: "Save correction" }).click();
  await expect(correction).toHaveCount(0);
  await expect(page.locator(".facts.summary dd").last()).toHaveText("0.00");

  await history.getByRole("button", { name: /^Delete buy 0.01 BTC\/USDT/ }).click();
  await history.getByRole("button", { name: "Delete", exact: true }).click();
  await expect(history.getByRole("row")).toHaveCount(2);
  await expect(page.getByText("No positions yet.")).toBeVisible();
});

test("a trade with a bad quantity is refused before it is sent, keeping what was typed", async ({ page }) => {
  await signInQuickly(page);
  await page.goto("/portfolio");
  await page.getByLabel("Quantity").fill("0");
  await page.getByRole("button", { name: "Buy", exact: true }).click();
  await expect(page.getByRole("alert")).toHaveText("Enter a quantity above zero.");
  await expect(page.getByLabel("Quantity")).toHaveValue("0");
});

test("create a second portfolio, rename it, and delete it after a confirmation", async ({ page }) => {
  await signInQuickly(page);
  await page.goto("/portfolio");
  await expect(page.getByRole("heading", { name: "Summary" })).toBeVisible();
  await page.getByRole("form", { name: "New portfolio" }).getByLabel("Name").fill("Swing");
  await page.getByRole("button", { name: "Create portfolio" }).click();
  const chooser = page.getByRole("combobox", { name: "Portfolio" });
  await expect(chooser.locator("option:checked")).toHaveText("Swing");

  await page.getByRole("button", { name: "Rename Swing" }).click();
  const rename = page.getByRole("form", { name: "Rename Swing" });
  await rename.getByLabel("New name").fill("Swing trades");
  await rename.getByRole("button", { name: "Save name" }).click();
  await expect(chooser.locator("option:checked")).toHaveText("Swing trades");

  await page.getByRole("button", { name: "Delete Swing trades" }).click();
  const confirm = page.getByRole("alertdialog", { name: "Delete Swing trades?" });
  await expect(confirm).toContainText("with all its trades? This cannot be undone");
  await expectAccessible(page);
  await confirm.getByRole("button", { name: "Keep" }).click();
  await expect(chooser.locator("option")).toHaveCount(2);
  await page.getByRole("button", { name: "Delete Swing trades" }).click();
  await page.getByRole("alertdialog").getByRole("button", { name: "Delete portfolio" }).click();
  await expect(chooser.locator("option")).toHaveCount(1);
  await expect(chooser.locator("option:checked")).toHaveText(/\(default\)$/);
});
