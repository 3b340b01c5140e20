import { expect, test, type Page } from "@playwright/test";

import { expectAccessible, registerThroughTheForm, shot } from "./support";

// The replayed session moves SOL/USDT by at least 0.2 % within any 30 s (measured over the
// recording), so two alerts 0.03 % either side of the current price are crossed within
// seconds; whichever fires first is the one the journey follows.
const SYMBOL = "SOL/USDT";
const BAND = 0.0003;

async function bearer(page: Page): Promise<Record<string, string>> {
  const raw = await page.evaluate(() => sessionStorage.getItem("sage.tokens"));
  const tokens = JSON.parse(raw ?? "{}") as { access_token?: string };
  expect(tokens.access_token).toBeTruthy();
  return { Authorization: `Bearer ${tokens.access_token}` };
}

test("an alert fires on the replayed prices: a toast, the bell's count, the inbox entry, marked read", async ({ page }) => {
  test.setTimeout(180_000);
  await registerThroughTheForm(page);
  await expect(page.getByRole("button", { name: "Notifications, none unread" })).toBeVisible();

  // The alerts themselves go through the API: the journey under test is what the app does
  // when one fires (the alerts page has its own journey).
  const headers = await bearer(page);
  const tickers = (await (await page.request.get("/api/v1/market/tickers")).json()) as { tickers: { symbol: string; price: string }[] };
  const price = Number(tickers.tickers.find((t) => t.symbol === SYMBOL)?.price);
  expect(price).toBeGreaterThan(0);
  const ids: string[] = [];
  for (const [kind, threshold] of [
    ["price_above", price * (1 + BAND)],
    ["price_below", price * (1 - BAND)],
  ] as const) {
    const created = await page.request.post("/api/v1/alerts", {
      headers,
      data: { kind, symbol: SYMBOL, threshold: threshold.toFixed(4), repeat: "once", cooldown_seconds: 3600 },
    });
    expect(created.status()).toBe(201);
    ids.push(((await created.json()) as { id: string }).id);
  }

  // Live: the stream brings a toast into the polite region, and the bell counts it.
  const toasts = page.getByRole("region", { name: "New notifications" });
  const toast = toasts.getByTestId("toast").first();
  await expect(toast).toContainText(`Alert: ${SYMBOL}`, { timeout: 120_000 });
  await expect(page.getByRole("button", { name: /^Notifications, [12] unread$/ })).toBeVisible();
  await shot(page, "notification-toast");
  const title = (await toast.locator(".toast-title").textContent()) ?? "";
  // no more firings from here on: the counts below stay put
  for (const id of ids) expect((await page.request.delete(`/api/v1/alerts/${id}`, { headers })).status()).toBe(204);

  // The bell's panel: the latest notifications, unread first; focus goes into it, Escape
  // closes it and returns focus to the bell.
  const bell = page.getByRole("button", { name: /^Notifications, [12] unread$/ });
  await bell.click();
  const panel = page.getByRole("dialog", { name: "Notifications" });
  await expect(panel).toBeFocused();
  await expect(bell).toHaveAttribute("aria-expanded", "true");
  await expect(panel.getByRole("listitem", { name: `Unread: ${title}` })).toBeVisible();
  await expect(panel.getByRole("link", { name: /^See all notifications/ })).toBeVisible();
  await shot(page, "notification-panel");
  await expectAccessible(page);
  await page.keyboard.press("Escape");
  await expect(panel).toBeHidden();
  await expect(bell).toBeFocused();
  await expect(bell).toHaveAttribute("aria-expanded", "false");

  await toast.getByRole("link", { name: "Open inbox" }).click();
  await expect(page).toHaveURL(/\/notifications$/);
  await expect(page.getByRole("heading", { name: "Notifications", level: 1 })).toBeFocused();
  const entry = page.getByRole("listitem", { name: `Unread: ${title}` });
  await expect(entry).toContainText(`now `);
  await expect(toasts.getByTestId("toast")).toHaveCount(0); // opened: that toast is done
  await shot(page, "notifications");
  await expectAccessible(page);

  await entry.getByRole("button", { name: `Mark read: ${title}` }).click();
  await expect(page.getByRole("listitem", { name: `Read: ${title}` })).toBeFocused();
  // the other alert may have fired too before it was deleted: mark the rest read at once
  const markAll = page.getByRole("button", { name: "Mark all read" });
  if (await markAll.isEnabled()) await markAll.click();
  await expect(page.getByText(/^Nothing unread/)).toBeVisible();
  await expect(page.getByRole("button", { name: "Notifications, none unread" })).toBeVisible();

  // Read state is the server's: a reload shows the same.
  await page.reload();
  await expect(page.getByRole("listitem", { name: `Read: ${title}` })).toBeVisible();
  await expect(page.getByRole("button", { name: /^Mark read/ })).toHaveCount(0);
  // ... and so does the bell's panel, whose "see all" leads back to the inbox
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Market" }).click();
  await page.getByRole("button", { name: "Notifications, none unread" }).click();
  await expect(panel.getByRole("listitem", { name: `Read: ${title}` })).toBeVisible();
  await expect(panel.getByRole("button", { name: "Mark all read" })).toBeDisabled();
  await panel.getByRole("link", { name: /^See all notifications/ }).click();
  await expect(page).toHaveURL(/\/notifications$/);
  await expect(panel).toBeHidden();
});

test("account: notification channels, and the browser-notification opt-in where the browser cannot subscribe", async ({ page, context }) => {
  await context.grantPermissions(["notifications"]);
  await registerThroughTheForm(page);
  await page.getByRole("link", { name: "Account" }).click();
  await expect(page.getByRole("heading", { name: "Notification channels" })).toBeVisible();
  await expect(page.getByRole("checkbox", { name: /In the app/ })).toBeChecked();
  // The embedded default sends no email (no SMTP) but has VAPID keys (made on first start).
  await expect(page.getByText("This server does not send email.")).toBeVisible();
  await expect(page.getByRole("checkbox", { name: "Email" })).toBeDisabled();
  await expect(page.getByRole("checkbox", { name: "Browser push" })).toBeEnabled();
  await expect(page.getByText(/tokens used/)).toBeVisible();
  await expectAccessible(page);

  // Playwright's contexts are incognito, where Chromium refuses every push subscription
  // (crbug.com/41124656), and CI has no route to a push service anyway: the journey checks
  // that the refusal is said plainly and nothing is registered with the server. The
  // subscribe-and-register path itself is covered by PushOptIn.test.tsx.
  await expect(page.locator("[data-push-state]")).toHaveText("Browser notifications are off on this device.");
  const registered: string[] = [];
  page.on("request", (r) => {
    if (r.url().endsWith("/api/v1/push-subscriptions")) registered.push(r.method());
  });
  await page.getByRole("button", { name: "Enable browser notifications" }).click();
  await expect(page.getByRole("alert")).toContainText("The browser's push service refused the subscription");
  await expect(page.locator("[data-push-state]")).toHaveText("Browser notifications are off on this device.");
  expect(registered).toEqual([]);
  // the service worker that would show pushed notifications is registered and active
  expect(await page.evaluate(async () => (await navigator.serviceWorker.getRegistration("/sw.js"))?.active?.state)).toBe("activated");
  await shot(page, "account-notifications");
  await expectAccessible(page);
});
