// Web Push opt-in: the service worker (public/sw.js) shows what the server pushes; this
// subscribes the browser with the server's VAPID key and tells the server, or undoes both.
import { api, authFetch } from "../api/client";
import { errorFrom, toApiError } from "../api/errors";

export type PushState =
  | "unsupported" // no service worker / Push API / Notification (or not a secure context)
  | "server-off" // this server has no VAPID key: Web Push is not configured
  | "denied" // the user (or policy) blocked notifications for this site
  | "off" // allowed or not yet asked, and this browser is not subscribed
  | "on"; // subscribed

export const SW_URL = "/sw.js";

export function pushSupported(): boolean {
  return window.isSecureContext && "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

/** The base64url VAPID key as the bytes `applicationServerKey` takes. */
export function keyBytes(base64url: string): Uint8Array<ArrayBuffer> {
  const base64 = base64url.replaceAll("-", "+").replaceAll("_", "/").padEnd(Math.ceil(base64url.length / 4) * 4, "=");
  const raw = atob(base64);
  const bytes = new Uint8Array(new ArrayBuffer(raw.length));
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

/** The server's VAPID public key, or null when Web Push is not enabled there (404). */
export async function vapidPublicKey(): Promise<string | null> {
  const { data, error, response } = await api.GET("/api/v1/push-subscriptions/vapid-public-key");
  if (response.status === 404) return null;
  if (!data) throw toApiError(response, error);
  return data.public_key;
}

async function existingSubscription(): Promise<PushSubscription | null> {
  const registration = await navigator.serviceWorker.getRegistration(SW_URL);
  return (await registration?.pushManager.getSubscription()) ?? null;
}

/** Where this browser stands (never asks for permission). */
export async function pushState(): Promise<PushState> {
  if (!pushSupported()) return "unsupported";
  if ((await vapidPublicKey()) === null) return "server-off";
  if (Notification.permission === "denied") return "denied";
  return (await existingSubscription()) ? "on" : "off";
}

export class PushRefused extends Error {}

/** Asks for permission, subscribes with the server's key and registers the subscription. */
export async function enablePush(): Promise<void> {
  if (!pushSupported()) throw new PushRefused("This browser cannot receive push notifications.");
  // Asked first, straight from the click: browsers ignore a request that is not a user gesture.
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    throw new PushRefused(
      permission === "denied" ? "Notifications are blocked for this site; allow them in the browser's site settings." : "Permission was not given.",
    );
  }
  const key = await vapidPublicKey();
  if (key === null) throw new PushRefused("Web Push is not enabled on this server.");
  const registration = await navigator.serviceWorker.register(SW_URL);
  await navigator.serviceWorker.ready;
  let subscription: PushSubscription;
  try {
    subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new PushRefused(`The browser's push service refused the subscription (${reason}).`);
  }
  const response = await authFetch(
    new Request(new URL("/api/v1/push-subscriptions", window.location.origin), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(subscription.toJSON()),
    }),
  );
  if (!response.ok) {
    await subscription.unsubscribe(); // the server would never use it
    throw await errorFrom(response);
  }
}

/** Tells the server to forget this browser, then drops the subscription. */
export async function disablePush(): Promise<void> {
  const subscription = await existingSubscription();
  if (!subscription) return;
  const { response, error } = await api.DELETE("/api/v1/push-subscriptions", { params: { query: { endpoint: subscription.endpoint } } });
  // 404: the server already forgot it (it drops subscriptions the push service refuses)
  if (!response.ok && response.status !== 404) throw toApiError(response, error);
  await subscription.unsubscribe();
}
