// One inbox entry, in the inbox page and the bell's panel: title, body, time, read state,
// and *Mark read* (after which focus stays on the entry, since the button goes away).
import { useRef } from "react";

import { describe } from "../api/errors";
import type { Notification } from "./model";
import { useMarkRead } from "./queries";

export function InboxItem({ notification: n }: { notification: Notification }) {
  const markRead = useMarkRead();
  const item = useRef<HTMLLIElement>(null);
  const unread = n.read_at === null;
  return (
    <li ref={item} className={unread ? "inbox-item unread" : "inbox-item"} tabIndex={-1} aria-label={`${unread ? "Unread" : "Read"}: ${n.title}`}>
      <div>
        <p className="inbox-title">{n.title}</p>
        {n.body && <p>{n.body}</p>}
        <p className="inbox-meta">
          <time dateTime={n.created_at}>{new Date(n.created_at).toLocaleString()}</time>
          {unread ? " · unread" : " · read"}
        </p>
        {markRead.isError && <p className="error" role="alert">{describe(markRead.error)}</p>}
      </div>
      {unread && (
        <button
          type="button"
          aria-label={`Mark read: ${n.title}`}
          disabled={markRead.isPending}
          // the button goes away: keep the keyboard on this entry
          onClick={() => markRead.mutate(n.id, { onSuccess: () => item.current?.focus() })}
        >
          Mark read
        </button>
      )}
    </li>
  );
}
