// One answer as it streams: a pure reducer over the answer's SSE events
// (`message`, `delta`, `tool`, `done`, `error`), so the state logic is testable without a server.
import type { SseEvent } from "../api/sse";
import { unverifiedSpans, type UnverifiedSpan } from "./unverified";

/** A tool the model called while answering (the chat's `tool` event). */
export interface ToolCall {
  name: string;
  summary?: string;
  arguments?: unknown;
  duration_ms?: number;
}

export type AnswerStatus =
  | "sending" // the question is on its way; nothing accepted yet
  | "streaming"
  | "complete"
  | "stopped"
  | "incomplete" // the server ended it early (deadline, disconnect) and stored what it had
  | "failed" // an `error` event: the model or the server failed
  | "interrupted" // our connection dropped without an end: resumable
  | "rejected"; // refused before the stream (4xx/5xx): nothing stored, the question is offered back

export interface LiveAnswer {
  chatId: string;
  question: string;
  messageId: string | null;
  userMessageId: string | null;
  text: string;
  lastEventId: string | null;
  status: AnswerStatus;
  tools: ToolCall[];
  unverified: UnverifiedSpan[];
  error: string | null;
  note: string | null;
  /** stored messages this answer replaces (a regenerated answer, an edited question and its answer): hidden while it is shown */
  replaces: string[];
}

export function newAnswer(chatId: string, question: string, messageId: string | null = null): LiveAnswer {
  return {
    chatId,
    question,
    messageId,
    userMessageId: null,
    text: "",
    lastEventId: null,
    status: messageId ? "streaming" : "sending",
    tools: [],
    unverified: [],
    error: null,
    note: null,
    replaces: [],
  };
}

export const isFinished = (status: AnswerStatus): boolean => !["sending", "streaming"].includes(status);

function parse(data: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(data);
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

const str = (value: unknown): string | null => (typeof value === "string" ? value : null);

function describeDone(data: Record<string, unknown>): string | null {
  const parts: string[] = [];
  if (data.cached === true) parts.push("from cache");
  if (data.offline === true) parts.push("offline model");
  return parts.length ? parts.join(" · ") : null;
}

export function applyEvent(answer: LiveAnswer, event: SseEvent): LiveAnswer {
  const data = parse(event.data);
  const next: LiveAnswer = { ...answer, lastEventId: event.id ?? answer.lastEventId };
  switch (event.event) {
    case "message":
      return {
        ...next,
        status: "streaming",
        messageId: str(data.assistant_message_id) ?? answer.messageId,
        userMessageId: str(data.user_message_id) ?? answer.userMessageId,
      };
    case "delta":
      return { ...next, status: "streaming", text: answer.text + (str(data.text) ?? "") };
    case "tool":
      return {
        ...next,
        tools: [
          ...answer.tools,
          {
            name: str(data.name) ?? "tool",
            summary: str(data.summary) ?? str(data.result_summary) ?? undefined,
            arguments: data.arguments,
            duration_ms: typeof data.duration_ms === "number" ? data.duration_ms : undefined,
          },
        ],
      };
    case "done": {
      const status = str(data.status);
      return {
        ...next,
        status: status === "stopped" || status === "incomplete" ? status : "complete",
        unverified: unverifiedSpans(answer.text, data),
        note: describeDone(data),
      };
    }
    case "error": {
      const status = str(data.status);
      return {
        ...next,
        status: status === "stopped" ? "stopped" : status === "incomplete" ? "incomplete" : "failed",
        error: str(data.message) ?? str(data.code) ?? "The answer failed.",
      };
    }
    default:
      return next;
  }
}
