import { expect, test, type Page } from "@playwright/test";

import { expectAccessible, shot, signInQuickly } from "./support";

async function newChat(page: Page) {
  await page.goto("/chat");
  await page.getByRole("button", { name: "New chat" }).click();
  await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}$/);
}

const QUESTION = "Give me a market overview: prices, movers and sentiment";
let asked = 0;
/** Each test asks its own question: an identical one would come from the answer cache at once. */
const question = () => {
  asked += 1;
  return `${QUESTION} (question ${asked} of run ${process.pid})`;
};

test("ask a question and see the answer stream in, rendered as markdown", async ({ page }) => {
  await signInQuickly(page);
  await newChat(page);
  await expectAccessible(page);
  const text = question();
  await page.getByLabel("Your question").fill(text);
  await page.getByLabel("Your question").press("Enter");
  await expect(page.getByRole("article", { name: "You asked" })).toHaveText(text);
  // While it streams: the Stop button, and text arriving.
  await expect(page.getByRole("button", { name: "Stop" })).toBeVisible();
  const answer = page.getByRole("article", { name: /Sage (is answering|answered)/ }).last();
  await expect(answer.locator(".markdown p").first()).toBeVisible();
  await expect(page.getByRole("button", { name: "Send" })).toBeVisible({ timeout: 60_000 });
  await expect(answer).toContainText("BTC/USDT");
  await expect(answer.locator(".meta.error")).toHaveCount(0);
  await shot(page, "chat");
  await expectAccessible(page);
});

test("stop an answer: the partial text stays, marked stopped", async ({ page }) => {
  await signInQuickly(page);
  await newChat(page);
  await page.getByLabel("Your question").fill(question());
  await page.getByRole("button", { name: "Send" }).click();
  const answer = page.getByRole("article", { name: /Sage is answering/ });
  await expect(answer.locator(".markdown")).toContainText(/\w+/);
  await page.getByRole("button", { name: "Stop" }).click();
  await expect(page.getByRole("button", { name: "Send" })).toBeVisible();
  const stopped = page.locator("article.msg.assistant").last();
  await expect(stopped).toContainText(/Stopped|incomplete/);
  const partial = (await stopped.locator(".markdown").textContent()) ?? "";
  expect(partial.length).toBeGreaterThan(0);
  // Nothing more arrives after the stop.
  await page.reload();
  await expect(page.locator("article.msg.assistant").last()).toContainText(/Stopped|incomplete|stopped/);
  await shot(page, "chat-stopped");
});

test("reload mid-answer: the answer comes back without losing what was shown", async ({ page }) => {
  await signInQuickly(page);
  await newChat(page);
  await page.getByLabel("Your question").fill(question());
  await page.getByRole("button", { name: "Send" }).click();
  const answer = page.getByRole("article", { name: /Sage is answering/ });
  await expect(answer.locator(".markdown")).toContainText(/\w+ \w+ \w+/);
  const before = ((await answer.locator(".markdown").textContent()) ?? "").trim();
  await page.reload();
  // Resumed through the resume endpoint (or, once stored, from the saved message).
  const after = page.locator("article.msg.assistant").last();
  await expect(after.locator(".markdown")).toBeVisible();
  await expect.poll(async () => ((await after.locator(".markdown").textContent()) ?? "").trim().startsWith(before.slice(0, 20))).toBe(true);
  await expect(page.getByRole("button", { name: "Send" })).toBeVisible({ timeout: 60_000 });
  await shot(page, "chat-resumed");
});

test("rename and delete a chat, with confirmation", async ({ page }) => {
  await signInQuickly(page);
  await newChat(page);
  const list = page.getByRole("navigation", { name: "Chats" });
  await list.getByRole("button", { name: /^Rename/ }).first().click();
  await list.getByRole("textbox").fill("BTC research");
  await list.getByRole("button", { name: "Save" }).click();
  await expect(list.getByRole("link", { name: "BTC research" })).toBeVisible();
  await list.getByRole("button", { name: "Delete BTC research" }).click();
  await expect(list.getByRole("alertdialog")).toContainText("cannot be undone");
  await expectAccessible(page);
  await list.getByRole("button", { name: "Cancel" }).click();
  await expect(list.getByRole("link", { name: "BTC research" })).toBeVisible();
  await list.getByRole("button", { name: "Delete BTC research" }).click();
  await list.getByRole("button", { name: "Delete", exact: true }).click();
  await expect(list.getByRole("link", { name: "BTC research" })).toHaveCount(0);
  await expect(page).toHaveURL(/\/chat$/);
});

test("account page shows the profile and logs out", async ({ page }) => {
  await signInQuickly(page);
  await page.goto("/account");
  await expect(page.getByRole("heading", { name: "Account" })).toBeVisible();
  await expect(page.getByText(/@example\.com/)).toBeVisible();
  await expect(page.getByText(/^[\d,]+ of [\d,]+ tokens used \([\d,]+ left\)$/)).toBeVisible();
  await expectAccessible(page);
  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto("/chat");
  await expect(page).toHaveURL(/\/login$/);
});

test.describe("phone", () => {
  test.use({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });

  test("market and chat fit a 375 px screen, the composer stays on screen", async ({ page }) => {
    await signInQuickly(page);
    await page.goto("/market");
    await expect(page.locator('tr[data-symbol="BTC/USDT"]')).toBeVisible();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await shot(page, "phone-market");
    await expectAccessible(page);
    await newChat(page);
    await page.getByLabel("Your question").fill(question());
    await page.getByRole("button", { name: "Send" }).click();
    await expect(page.getByRole("button", { name: "Send" })).toBeVisible({ timeout: 60_000 });
    await expect(page.getByLabel("Your question")).toBeInViewport();
    await expect(page.locator("article.msg.assistant").last()).toBeInViewport();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await shot(page, "phone-chat");
    await expectAccessible(page);
  });
});

test("regenerate the last answer, edit the question and ask again, then find the chat by a word", async ({ page }) => {
  await signInQuickly(page);
  await newChat(page);
  const word = `kiwi${process.pid}x${Date.now().toString(36)}`;
  await page.getByLabel("Your question").fill(`Give me a market overview, codeword ${word}`);
  await page.getByRole("button", { name: "Send" }).click();
  await expect(page.getByRole("button", { name: "Regenerate" })).toBeVisible({ timeout: 60_000 });

  await page.getByRole("button", { name: "Regenerate" }).click();
  await expect(page.getByRole("button", { name: "Stop" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Regenerate" })).toBeVisible({ timeout: 60_000 });
  await expect(page.getByText(/^2 answers to this turn/)).toBeVisible();
  await expect(page.getByRole("article", { name: "You asked" })).toHaveCount(1);

  await page.getByRole("button", { name: "Edit question" }).click();
  await page.getByLabel("Edit your last question").fill(`How is BTC doing? codeword ${word}`);
  await page.getByRole("button", { name: "Save and ask again" }).click();
  await expect(page.getByRole("article", { name: "You asked" })).toHaveText(`How is BTC doing? codeword ${word}`);
  await expect(page.getByRole("button", { name: "Regenerate" })).toBeVisible({ timeout: 60_000 });
  await expect(page.getByRole("article", { name: "You asked" })).toHaveCount(1);
  await expectAccessible(page);

  const list = page.getByRole("navigation", { name: "Chats" });
  await list.getByLabel("Search chats").fill(word);
  await expect(list.getByRole("list", { name: "Search results" }).getByRole("link").first()).toContainText(word);
});
