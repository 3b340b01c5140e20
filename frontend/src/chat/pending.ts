// Answers still streaming when the page goes away: remembered per chat (sessionStorage) so a
// reload or a return to the chat resumes them through the resume endpoint.
export interface Pending {
  messageId: string;
  question: string;
}

const KEY = "sage.pending-answers";

function all(): Record<string, Pending> {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) ?? "{}") as Record<string, Pending>;
  } catch {
    return {};
  }
}

export function getPending(chatId: string): Pending | null {
  return all()[chatId] ?? null;
}

export function setPending(chatId: string, pending: Pending | null): void {
  const map = all();
  if (pending) map[chatId] = pending;
  else delete map[chatId];
  sessionStorage.setItem(KEY, JSON.stringify(map));
}

export interface StoredMessage {
  id: string;
  status: string;
}

export type ResumeDecision = { kind: "none" } | { kind: "forget" } | { kind: "resume"; messageId: string; lastEventId: string | null };

/**
 * What to do when a chat is shown. `live` is the answer this page is still tracking (text
 * so far in memory), `pending` what was remembered across a reload, `stored` the messages
 * the server has for the chat.
 *  - an answer in memory that lost its connection resumes after its last event (no text is
 *    repeated);
 *  - after a reload nothing is in memory: resume from the start, unless the server already
 *    stored the answer (then it is simply shown, and the note is dropped).
 */
export function decideResume(
  live: { status: string; messageId: string | null; lastEventId: string | null } | null,
  pending: Pending | null,
  stored: StoredMessage[],
): ResumeDecision {
  if (live) {
    if (live.status === "interrupted" && live.messageId) return { kind: "resume", messageId: live.messageId, lastEventId: live.lastEventId };
    return { kind: "none" };
  }
  if (!pending) return { kind: "none" };
  const saved = stored.find((m) => m.id === pending.messageId);
  if (saved && saved.status !== "streaming") return { kind: "forget" };
  return { kind: "resume", messageId: pending.messageId, lastEventId: null };
}
