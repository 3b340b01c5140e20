// The inbox: unread first, newest first, PAGE_SIZE at a time; mark one or all read.
import { useEffect, useRef } from "react";

import { describe } from "../api/errors";
import { InboxItem } from "../notifications/InboxItem";
import { useInbox, useMarkAllRead } from "../notifications/queries";
import "../notifications/notifications.css";

export function NotificationsPage() {
  const inbox = useInbox();
  const markAll = useMarkAllRead();
  const heading = useRef<HTMLHeadingElement>(null);
  // Opened from the bell or a toast: start reading at the page's heading.
  useEffect(() => {
    heading.current?.focus();
  }, []);
  const pages = inbox.data?.pages ?? [];
  const items = pages.flatMap((p) => p.items);
  const unread = pages[0]?.unread ?? 0;
  const total = pages[0]?.total ?? 0;
  return (
    <section className="page narrow-wide" aria-labelledby="inbox-heading">
      <div className="card-head">
        <h1 id="inbox-heading" ref={heading} tabIndex={-1} style={{ marginRight: "auto" }}>
          Notifications
        </h1>
        <button type="button" onClick={() => markAll.mutate()} disabled={markAll.isPending || unread === 0}>
          Mark all read
        </button>
      </div>
      {inbox.data && (
        <p className="muted" role="status">
          {unread === 0 ? "Nothing unread" : `${unread} unread`} · {total} in all
        </p>
      )}
      {inbox.isPending && <p className="muted">Loading…</p>}
      {inbox.isError && <p className="error" role="alert">{describe(inbox.error)}</p>}
      {markAll.isError && <p className="error" role="alert">{describe(markAll.error)}</p>}
      <div className="card">
        {inbox.data && items.length === 0 && <p className="muted">No notifications yet. Alerts you create on the Alerts page arrive here.</p>}
        <ul className="inbox" aria-label="Inbox">
          {items.map((n) => (
            <InboxItem key={n.id} notification={n} />
          ))}
        </ul>
        {inbox.hasNextPage && (
          <button type="button" onClick={() => void inbox.fetchNextPage()} disabled={inbox.isFetchingNextPage}>
            {inbox.isFetchingNextPage ? "Loading…" : "Show older"}
          </button>
        )}
      </div>
    </section>
  );
}
