// "Enable browser notifications": the service worker shows pushed alerts while the app is
// closed. Each state the browser or server can be in gets its own sentence.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, data } from "../api/client";
import { describe } from "../api/errors";
import { NOTIFICATIONS } from "./queries";
import { disablePush, enablePush, pushState, type PushState } from "./push";

const PUSH_STATE = [...NOTIFICATIONS, "push-state"] as const;

export const PUSH_TEXT: Record<PushState, string> = {
  unsupported: "This browser cannot receive push notifications (it needs service workers and the Push API over HTTPS).",
  "server-off": "Browser notifications are not enabled on this server (it has no VAPID key).",
  denied: "Notifications are blocked for this site. Allow them in the browser’s site settings, then reload.",
  off: "Browser notifications are off on this device.",
  on: "Browser notifications are on for this device.",
};

/** Subscribing this browser also switches the web push channel on (asking for browser
 * notifications means wanting alerts there). */
async function enableWithChannel(): Promise<void> {
  await enablePush();
  const settings = await data(api.GET("/api/v1/users/me/notification-settings"));
  if (!settings.web_push && settings.available.includes("web_push")) {
    await data(api.PUT("/api/v1/users/me/notification-settings", { body: { email: settings.email, web_push: true } }));
  }
}

export function PushOptIn({ state: given }: { state?: () => Promise<PushState> }) {
  const client = useQueryClient();
  const state = useQuery({ queryKey: PUSH_STATE, queryFn: given ?? pushState, staleTime: Infinity });
  const refresh = () => client.invalidateQueries({ queryKey: NOTIFICATIONS });
  const enable = useMutation({ mutationFn: enableWithChannel, onSettled: refresh });
  const disable = useMutation({ mutationFn: disablePush, onSettled: refresh });
  const busy = enable.isPending || disable.isPending;
  const s = state.data;
  return (
    <div className="card" aria-labelledby="push-heading" role="group">
      <h2 id="push-heading">Browser notifications</h2>
      {state.isPending && <p className="muted">Checking this browser…</p>}
      {state.isError && <p className="error" role="alert">{describe(state.error)}</p>}
      {s && (
        <p role="status" data-push-state={s}>
          {PUSH_TEXT[s]}
        </p>
      )}
      {s === "off" && (
        <button type="button" className="primary" disabled={busy} onClick={() => enable.mutate()}>
          Enable browser notifications
        </button>
      )}
      {s === "on" && (
        <button type="button" disabled={busy} onClick={() => disable.mutate()}>
          Turn off browser notifications
        </button>
      )}
      {enable.isError && <p className="error" role="alert">{describe(enable.error)}</p>}
      {disable.isError && <p className="error" role="alert">{describe(disable.error)}</p>}
    </div>
  );
}
