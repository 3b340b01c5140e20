// The browser side of Web Push (service worker registration, PushManager, Notification) is
// a small in-memory double here; the end-to-end test runs the opt-in in Chromium.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

import { setTokens } from "../api/tokens";
import { keyBytes } from "./push";
import { PUSH_TEXT, PushOptIn } from "./PushOptIn";

// A P-256 public key as the server gives it (65 bytes, uncompressed point, base64url).
const VAPID = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM";
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

const subscriptionJson = { endpoint: "https://push.example.test/send/abc", expirationTime: null, keys: { p256dh: "BP".padEnd(87, "x"), auth: "a".repeat(22) } };

interface Browser {
  permission: NotificationPermission;
  answer: NotificationPermission;
  subscribed: boolean;
  subscribeKeys: Uint8Array[];
  unsubscribed: number;
}

function fakeBrowser(browser: Browser) {
  const subscription = {
    endpoint: subscriptionJson.endpoint,
    toJSON: () => subscriptionJson,
    unsubscribe: () => {
      browser.subscribed = false;
      browser.unsubscribed += 1;
      return Promise.resolve(true);
    },
  };
  const pushManager = {
    getSubscription: () => Promise.resolve(browser.subscribed ? subscription : null),
    subscribe: (options: { applicationServerKey: Uint8Array }) => {
      browser.subscribeKeys.push(options.applicationServerKey);
      browser.subscribed = true;
      return Promise.resolve(subscription);
    },
  };
  const registration = { pushManager };
  vi.stubGlobal("isSecureContext", true);
  vi.stubGlobal("PushManager", function PushManager() {});
  const notification = Object.defineProperties(function Notification() {}, {
    permission: { get: () => browser.permission },
    requestPermission: {
      value: () => {
        browser.permission = browser.answer;
        return Promise.resolve(browser.answer);
      },
    },
  });
  vi.stubGlobal("Notification", notification);
  Object.defineProperty(navigator, "serviceWorker", {
    configurable: true,
    value: {
      register: (url: string) => (url === "/sw.js" ? Promise.resolve(registration) : Promise.reject(new Error(url))),
      ready: Promise.resolve(registration),
      getRegistration: () => Promise.resolve(registration),
    },
  });
}

function serve(vapid: string | null) {
  const calls: string[] = [];
  const posted: unknown[] = [];
  let settings = { in_app: true, email: false, web_push: false, email_verified: false, available: ["web_push"] };
  vi.stubGlobal(
    "fetch",
    vi.fn(async (request: Request) => {
      const url = new URL(request.url);
      calls.push(`${request.method} ${url.pathname}${url.search}`);
      if (url.pathname === "/api/v1/push-subscriptions/vapid-public-key") {
        return vapid ? json({ public_key: vapid }) : json({ error: { code: "not_found", message: "Web Push is not enabled on this server" } }, 404);
      }
      if (url.pathname === "/api/v1/push-subscriptions" && request.method === "POST") {
        posted.push(await request.json());
        return json({ status: "subscribed" }, 201);
      }
      if (url.pathname === "/api/v1/push-subscriptions" && request.method === "DELETE") return new Response(null, { status: 204 });
      if (url.pathname === "/api/v1/users/me/notification-settings") {
        if (request.method === "PUT") settings = { ...settings, ...((await request.json()) as object) };
        return json(settings);
      }
      return json({ error: { code: "not_found", message: url.pathname } }, 404);
    }),
  );
  setTokens({ access_token: "a", refresh_token: "r" });
  render(
    <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
      <PushOptIn />
    </QueryClientProvider>,
  );
  return { calls, posted, settings: () => settings };
}

afterEach(() => {
  vi.unstubAllGlobals();
  Reflect.deleteProperty(navigator, "serviceWorker");
  setTokens(null);
});

it("subscribes with the server's key, registers the subscription, switches the channel on, and undoes it", async () => {
  const browser: Browser = { permission: "default", answer: "granted", subscribed: false, subscribeKeys: [], unsubscribed: 0 };
  fakeBrowser(browser);
  const server = serve(VAPID);
  expect(await screen.findByText(PUSH_TEXT.off)).toBeInTheDocument();
  await userEvent.click(screen.getByRole("button", { name: "Enable browser notifications" }));
  expect(await screen.findByText(PUSH_TEXT.on)).toBeInTheDocument();
  expect(browser.subscribeKeys).toEqual([keyBytes(VAPID)]);
  expect(server.posted).toEqual([subscriptionJson]);
  expect(server.settings().web_push).toBe(true);

  await userEvent.click(screen.getByRole("button", { name: "Turn off browser notifications" }));
  expect(await screen.findByText(PUSH_TEXT.off)).toBeInTheDocument();
  expect(server.calls).toContain(`DELETE /api/v1/push-subscriptions?endpoint=${encodeURIComponent(subscriptionJson.endpoint)}`);
  expect(browser.unsubscribed).toBe(1);
});

it("says so when the user refuses permission, and does not subscribe", async () => {
  const browser: Browser = { permission: "default", answer: "denied", subscribed: false, subscribeKeys: [], unsubscribed: 0 };
  fakeBrowser(browser);
  const server = serve(VAPID);
  await userEvent.click(await screen.findByRole("button", { name: "Enable browser notifications" }));
  expect(await screen.findByRole("alert")).toHaveTextContent("Notifications are blocked for this site");
  expect(await screen.findByText(PUSH_TEXT.denied)).toBeInTheDocument();
  expect(browser.subscribeKeys).toEqual([]);
  expect(server.posted).toEqual([]);
});

it("names a server without Web Push, and a browser without it", async () => {
  fakeBrowser({ permission: "default", answer: "granted", subscribed: false, subscribeKeys: [], unsubscribed: 0 });
  serve(null);
  expect(await screen.findByText(PUSH_TEXT["server-off"])).toBeInTheDocument();
  expect(screen.queryByRole("button", { name: "Enable browser notifications" })).toBeNull();
});

it("names a browser without the Push API", async () => {
  serve(VAPID); // jsdom: no service worker, no PushManager
  expect(await screen.findByText(PUSH_TEXT.unsupported)).toBeInTheDocument();
});

it("decodes the base64url key to the 65-byte point", () => {
  const bytes = keyBytes(VAPID);
  expect(bytes).toHaveLength(65);
  expect(bytes[0]).toBe(4); // uncompressed point
});
