// Answers being streamed, kept outside React so they keep streaming while the user looks at
// another chat or page; components follow them with useSyncExternalStore.
import { useSyncExternalStore } from "react";

import { authFetch } from "../api/client";
import { describe, errorFrom } from "../api/errors";
import { readEventStream } from "../api/sse";
import { applyEvent, isFinished, newAnswer, type LiveAnswer } from "./events";
import { setPending } from "./pending";

let answers: ReadonlyMap<string, LiveAnswer> = new Map();
const controllers = new Map<string, AbortController>();
const listeners = new Set<() => void>();
const finishedListeners = new Set<(chatId: string) => void>();

function put(chatId: string, answer: LiveAnswer | null): void {
  const next = new Map(answers);
  if (answer) next.set(chatId, answer);
  else next.delete(chatId);
  answers = next;
  for (const listener of listeners) listener();
}

function update(chatId: string, change: (answer: LiveAnswer) => LiveAnswer): void {
  const current = answers.get(chatId);
  if (current) put(chatId, change(current));
}

export function useLiveAnswer(chatId: string | undefined): LiveAnswer | null {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => (chatId ? (answers.get(chatId) ?? null) : null),
  );
}

export function getLiveAnswer(chatId: string): LiveAnswer | null {
  return answers.get(chatId) ?? null;
}

/** Called when an answer ends (to reload the stored messages). */
export function onAnswerFinished(listener: (chatId: string) => void): () => void {
  finishedListeners.add(listener);
  return () => finishedListeners.delete(listener);
}

export function forgetAnswer(chatId: string): void {
  lastStart.delete(chatId);
  controllers.get(chatId)?.abort();
  controllers.delete(chatId);
  put(chatId, null);
}

const url = (path: string) => new URL(path, window.location.origin);

async function follow(chatId: string, request: Request, controller: AbortController): Promise<void> {
  try {
    const response = await authFetch(request);
    if (!response.ok) {
      const error = await errorFrom(response);
      update(chatId, (a) => ({ ...a, status: a.messageId ? "failed" : "rejected", error: describe(error) }));
      return;
    }
    for await (const event of readEventStream(response, controller.signal)) {
      update(chatId, (a) => applyEvent(a, event));
      const answer = answers.get(chatId);
      if (answer?.messageId && !isFinished(answer.status)) setPending(chatId, { messageId: answer.messageId, question: answer.question });
    }
    // The stream ended: with a terminal event, or cut short (a proxy, a restart).
    update(chatId, (a) => (isFinished(a.status) ? a : { ...a, status: "interrupted" }));
  } catch (error) {
    if (controller.signal.aborted) return; // stopped or forgotten on purpose
    update(chatId, (a) =>
      a.messageId ? { ...a, status: "interrupted" } : { ...a, status: "rejected", error: describe(error) },
    );
  } finally {
    if (controllers.get(chatId) === controller) controllers.delete(chatId);
    const answer = answers.get(chatId);
    if (answer && answer.status !== "interrupted") setPending(chatId, null);
    for (const listener of finishedListeners) listener(chatId);
  }
}

/** The last request started per chat, so Retry repeats it (a new question, a regenerate, an edit). */
const lastStart = new Map<string, () => Promise<void>>();

function start(chatId: string, answer: LiveAnswer, path: string, body: unknown): Promise<void> {
  const run = () => {
    controllers.get(chatId)?.abort();
    const controller = new AbortController();
    controllers.set(chatId, controller);
    put(chatId, answer);
    const request = new Request(url(path), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
    });
    return follow(chatId, request, controller);
  };
  lastStart.set(chatId, run);
  return run();
}

export function ask(chatId: string, question: string): Promise<void> {
  return start(chatId, newAnswer(chatId, question), `/api/v1/chats/${chatId}/messages`, { content: question });
}

/** A new answer to the chat's last question (`answerId`: its latest answer, kept as a version). */
export function regenerate(chatId: string, questionId: string, answerId: string, question: string): Promise<void> {
  const answer = { ...newAnswer(chatId, question), userMessageId: questionId, replaces: [answerId] };
  return start(chatId, answer, `/api/v1/chats/${chatId}/messages/${answerId}/regenerate`, undefined);
}

/** Replace the chat's last question with `content` and answer it; the previous exchange stays as a version. */
export function editAndRerun(chatId: string, questionId: string, answerId: string | null, content: string): Promise<void> {
  const answer = { ...newAnswer(chatId, content), replaces: answerId ? [questionId, answerId] : [questionId] };
  return start(chatId, answer, `/api/v1/chats/${chatId}/messages/${questionId}/edit`, { content });
}

/** Repeat the chat's last request (or ask `question` again when there is none in this page load). */
export function retry(chatId: string, question: string): Promise<void> {
  return (lastStart.get(chatId) ?? (() => ask(chatId, question)))();
}

/** Continue an answer after `lastEventId` (or from its start, when the page has none of it). */
export function resume(chatId: string, messageId: string, question: string, lastEventId: string | null): Promise<void> {
  controllers.get(chatId)?.abort();
  const controller = new AbortController();
  controllers.set(chatId, controller);
  const current = answers.get(chatId);
  const base = lastEventId && current?.messageId === messageId ? current : newAnswer(chatId, question, messageId);
  put(chatId, { ...base, status: "streaming", error: null });
  const headers: Record<string, string> = { Accept: "text/event-stream" };
  if (lastEventId && base === current) headers["Last-Event-ID"] = lastEventId;
  const request = new Request(url(`/api/v1/chats/${chatId}/messages/${messageId}/stream`), { headers, signal: controller.signal });
  return follow(chatId, request, controller);
}

/** Stop the answer: ask the server to stop it (where it offers the stop endpoint), and drop the stream. */
export async function stop(chatId: string): Promise<void> {
  const answer = answers.get(chatId);
  if (answer?.messageId) {
    try {
      await authFetch(new Request(url(`/api/v1/chats/${chatId}/messages/${answer.messageId}/stop`), { method: "POST" }));
    } catch {
      // unreachable: aborting the stream below still ends it
    }
  }
  controllers.get(chatId)?.abort();
  controllers.delete(chatId);
  update(chatId, (a) => (isFinished(a.status) ? a : { ...a, status: "stopped" }));
  setPending(chatId, null);
  for (const listener of finishedListeners) listener(chatId);
}
