// The header's bell and the live toasts: mounted once in the Layout; while signed in it
// follows the notification stream, which feeds both.
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Link, NavLink } from "react-router";

import { useSignedIn } from "../auth/session";
import { clearToasts, closeToast, followNotifications, showToast, useToasts } from "./live";
import { applyLiveNotification, isSummaryKey, useUnreadSummary } from "./queries";
import "./notifications.css";

export function NotificationCenter() {
  const signedIn = useSignedIn();
  const client = useQueryClient();
  useEffect(() => {
    if (!signedIn) {
      clearToasts();
      return;
    }
    const controller = new AbortController();
    void followNotifications(controller.signal, {
      onNotification: (notification) => {
        applyLiveNotification(client, notification);
        showToast(notification);
      },
    });
    return () => controller.abort();
  }, [signedIn, client]);
  // Signing in clears the whole cache (the previous user's data) after the bell mounted;
  // a cleared query tells no one, so the bell starts over with a fresh one.
  const [generation, setGeneration] = useState(0);
  useEffect(
    () =>
      client.getQueryCache().subscribe((event) => {
        if (event.type === "removed" && isSummaryKey(event.query.queryKey as readonly unknown[])) setGeneration((g) => g + 1);
      }),
    [client],
  );
  return (
    <>
      {signedIn && <Bell key={generation} />}
      <Toasts />
    </>
  );
}

export function bellLabel(unread: number | undefined): string {
  if (unread === undefined) return "Notifications";
  if (unread === 0) return "Notifications, none unread";
  return `Notifications, ${unread} unread`;
}

export function Bell() {
  const summary = useUnreadSummary(true);
  const unread = summary.data?.unread;
  return (
    <NavLink to="/notifications" className="bell" aria-label={bellLabel(unread)}>
      <svg aria-hidden="true" viewBox="0 0 24 24" width="20" height="20" focusable="false">
        <path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z" />
      </svg>
      {unread !== undefined && unread > 0 && (
        <span className="bell-count" aria-hidden="true">
          {unread > 99 ? "99+" : unread}
        </span>
      )}
    </NavLink>
  );
}

/** Live notifications as toasts in a polite live region (always in the page, so screen
 * readers announce what is added). They stay until dismissed: no timer to beat. */
export function Toasts() {
  const toasts = useToasts();
  return (
    <section className="toasts" aria-label="New notifications">
      <div role="status" aria-live="polite" aria-relevant="additions">
        {toasts.map((toast) => (
          <div key={toast.id} className="toast" data-testid="toast">
            <p className="toast-title">{toast.title}</p>
            {toast.body && <p className="toast-body">{toast.body}</p>}
            <div className="toast-actions">
              <Link to="/notifications" onClick={() => closeToast(toast.id)}>
                Open inbox
              </Link>
              <button type="button" className="icon" aria-label={`Dismiss: ${toast.title}`} onClick={() => closeToast(toast.id)}>
                ✕
              </button>
            </div>
          </div>
        ))}
      </div>
    </section>
  );
}
