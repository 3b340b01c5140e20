// The header's bell and the live toasts: mounted once in the Layout; while signed in it
// follows the notification stream, which feeds both.
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { Link, useLocation } from "react-router";

import { describe } from "../api/errors";
import { useSignedIn } from "../auth/session";
import { InboxItem } from "./InboxItem";
import { clearToasts, closeToast, followNotifications, showToast, useToasts } from "./live";
import { applyLiveNotification, isSummaryKey, useInbox, useMarkAllRead, useUnreadSummary } from "./queries";
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

/** How many of the newest notifications the bell's panel lists (unread first). */
export const PANEL_SIZE = 6;

/** The bell: a button that opens a panel with the latest notifications (unread first),
 * *Mark read* per entry, *Mark all read* and a link to the whole inbox. The panel is a
 * non-modal dialog: opening moves focus into it; Escape closes it and returns focus to the
 * bell; a click outside, focus leaving it, or navigating closes it. */
export function Bell() {
  const summary = useUnreadSummary(true);
  const unread = summary.data?.unread;
  const { pathname } = useLocation();
  // open on the page it was opened on: navigating elsewhere closes it
  const [openOn, setOpenOn] = useState<string | null>(null);
  const open = openOn === pathname;
  const setOpen = (value: boolean) => {
    setOpenOn(value ? pathname : null);
  };
  const wrap = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (!open) return;
    const outside = (event: PointerEvent) => {
      if (event.target instanceof Node && !wrap.current?.contains(event.target)) setOpenOn(null);
    };
    document.addEventListener("pointerdown", outside);
    return () => document.removeEventListener("pointerdown", outside);
  }, [open]);
  const close = (refocus: boolean) => {
    setOpen(false);
    if (refocus) button.current?.focus();
  };
  return (
    <div
      ref={wrap}
      className="bell-wrap"
      onKeyDown={(event) => {
        if (event.key === "Escape" && open) {
          event.stopPropagation();
          close(true);
        }
      }}
      onBlur={(event) => {
        // focus moved to something outside (not nowhere, as when a clicked button goes away)
        if (open && event.relatedTarget instanceof Node && !event.currentTarget.contains(event.relatedTarget)) setOpen(false);
      }}
    >
      <button
        ref={button}
        type="button"
        className={open || pathname === "/notifications" ? "bell active" : "bell"}
        aria-label={bellLabel(unread)}
        aria-expanded={open}
        aria-controls={open ? "bell-panel" : undefined}
        onClick={() => setOpen(!open)}
      >
        <svg aria-hidden="true" viewBox="0 0 24 24" width="20" height="20" focusable="false">
          <path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z" />
        </svg>
        {unread !== undefined && unread > 0 && (
          <span className="bell-count" aria-hidden="true">
            {unread > 99 ? "99+" : unread}
          </span>
        )}
      </button>
      {open && <BellPanel onNavigate={() => close(false)} />}
    </div>
  );
}

function BellPanel({ onNavigate }: { onNavigate: () => void }) {
  const inbox = useInbox();
  const markAll = useMarkAllRead();
  const panel = useRef<HTMLDivElement>(null);
  useEffect(() => {
    panel.current?.focus();
  }, []);
  const first = inbox.data?.pages[0];
  const items = first?.items.slice(0, PANEL_SIZE) ?? [];
  const unread = first?.unread ?? 0;
  return (
    <div ref={panel} id="bell-panel" className="bell-panel" role="dialog" aria-labelledby="bell-panel-title" tabIndex={-1}>
      <div className="bell-panel-head">
        <h2 id="bell-panel-title">Notifications</h2>
        <button type="button" onClick={() => markAll.mutate()} disabled={markAll.isPending || unread === 0}>
          Mark all read
        </button>
      </div>
      {first && <p className="muted small">{unread === 0 ? "Nothing unread" : `${unread} unread`}</p>}
      {inbox.isPending && <p className="muted">Loading…</p>}
      {inbox.isError && <p className="error" role="alert">{describe(inbox.error)}</p>}
      {markAll.isError && <p className="error" role="alert">{describe(markAll.error)}</p>}
      {first && items.length === 0 && <p className="muted">No notifications yet.</p>}
      {items.length > 0 && (
        <ul className="inbox" aria-label="Latest notifications">
          {items.map((n) => (
            <InboxItem key={n.id} notification={n} />
          ))}
        </ul>
      )}
      <Link to="/notifications" className="bell-panel-all" onClick={onNavigate}>
        See all notifications{first ? ` (${first.total})` : ""}
      </Link>
    </div>
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
