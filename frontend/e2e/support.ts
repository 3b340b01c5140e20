import AxeBuilder from "@axe-core/playwright";
import { expect, type Page } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const SHOTS = join(import.meta.dirname, "screenshots");
mkdirSync(SHOTS, { recursive: true });

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

/** axe-core on the current page: no serious or critical violation. */
export async function expectAccessible(page: Page): Promise<void> {
  const results = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`)).toEqual([]);
}

let counter = 0;
export function newEmail(): string {
  counter += 1;
  return `e2e-${Date.now().toString(36)}-${counter}@example.com`;
}

export const PASSWORD = "correct horse battery";

/** Registers through the form (the real journey) and lands on the chat page. */
export async function registerThroughTheForm(page: Page, email = newEmail()): Promise<string> {
  await page.goto("/login");
  await page.getByRole("button", { name: "Create an account" }).click();
  await page.getByLabel("Email").fill(email);
  await page.getByLabel(/Display name/).fill("E2E investor");
  await page.getByLabel(/^Password/).fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/chat$/);
  return email;
}

/** Signs in a fresh user through the API, for journeys that do not test registration. */
export async function signInQuickly(page: Page): Promise<void> {
  const email = newEmail();
  const registered = await page.request.post("/api/v1/auth/register", { data: { email, password: PASSWORD } });
  expect(registered.status()).toBe(201);
  const login = await page.request.post("/api/v1/auth/login", { data: { email, password: PASSWORD } });
  const tokens = (await login.json()) as { access_token: string; refresh_token: string };
  await page.addInitScript((value) => {
    // once per tab, as a sign-in would: a later log-out must stick
    if (sessionStorage.getItem("e2e.signed-in")) return;
    sessionStorage.setItem("e2e.signed-in", "1");
    sessionStorage.setItem("sage.tokens", value);
  }, JSON.stringify(tokens));
}
