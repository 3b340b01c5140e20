import { useQueryClient, type InfiniteData } from "@tanstack/react-query";
import { useEffect, useLayoutEffect, useRef, useState } from "react";

import { describe } from "../api/errors";
import { ask, editAndRerun, getLiveAnswer, onAnswerFinished, regenerate, resume, retry, stop, useLiveAnswer } from "./answers";
import { Composer } from "./Composer";
import { LiveMessage, StoredMessage } from "./MessageView";
import { decideResume, getPending, setPending } from "./pending";
import { chatsKey, flatten, messagesKey, useMessages, type MessagePage } from "./queries";
import { TurnActions } from "./TurnActions";

const drafts = new Map<string, string>(); // per chat, kept while the app is open

export function ChatView({ chatId }: { chatId: string }) {
  const client = useQueryClient();
  const messages = useMessages(chatId);
  const live = useLiveAnswer(chatId);
  const [draft, setDraftState] = useState(() => drafts.get(chatId) ?? "");
  const scroller = useRef<HTMLDivElement>(null);
  const stuckToBottom = useRef(true);
  const stored = flatten(messages.data?.pages);
  const storedIds = new Set(stored.map((m) => m.id));

  const setDraft = (text: string) => {
    drafts.set(chatId, text);
    setDraftState(text);
  };

  // A finished answer is reloaded from the server (stored text, grounding, status).
  useEffect(
    () =>
      onAnswerFinished((finished) => {
        void client.invalidateQueries({ queryKey: messagesKey(finished) });
        void client.invalidateQueries({ queryKey: chatsKey });
      }),
    [client],
  );

  // Resume an answer that was streaming when the page reloaded, or that lost its connection.
  const loaded = messages.isSuccess;
  useEffect(() => {
    if (!loaded) return;
    const current = getLiveAnswer(chatId);
    const stored = flatten(client.getQueryData<InfiniteData<MessagePage>>(messagesKey(chatId))?.pages);
    const decision = decideResume(current, getPending(chatId), stored);
    if (decision.kind === "forget") setPending(chatId, null);
    if (decision.kind === "resume") {
      const question = current?.question ?? getPending(chatId)?.question ?? "";
      void resume(chatId, decision.messageId, question, decision.lastEventId);
    }
  }, [chatId, loaded, client]);

  // Follow the newest text unless the reader scrolled up.
  useLayoutEffect(() => {
    const element = scroller.current;
    if (element && stuckToBottom.current) element.scrollTop = element.scrollHeight;
  });

  const showLive = live && !(live.messageId && storedIds.has(live.messageId) && live.status !== "streaming");
  const streaming = live?.status === "sending" || live?.status === "streaming";
  // A regenerated answer or an edited question replaces stored messages: hide those while it shows.
  const replaced = new Set(showLive && live.status !== "rejected" ? live.replaces : []);
  const shown = stored.filter((m) => !replaced.has(m.id));
  const lastAnswer = shown.at(-1);
  const lastQuestion = shown.at(-2);
  const lastTurn =
    !showLive && !streaming && lastAnswer?.role === "assistant" && lastQuestion?.role === "user" && lastAnswer.reply_to_id === lastQuestion.id
      ? { question: lastQuestion, answer: lastAnswer }
      : null;

  const send = (text: string) => {
    setDraft("");
    stuckToBottom.current = true;
    void ask(chatId, text);
  };

  return (
    <section className="chat-view" aria-label="Conversation">
      <div
        className="messages"
        ref={scroller}
        role="log"
        aria-label="Messages"
        tabIndex={0}
        onScroll={(e) => {
          const el = e.currentTarget;
          stuckToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        }}
        aria-relevant="additions text"
      >
        {messages.hasNextPage && (
          <button type="button" className="load-older" disabled={messages.isFetchingNextPage} onClick={() => void messages.fetchNextPage()}>
            {messages.isFetchingNextPage ? "Loading…" : "Load older messages"}
          </button>
        )}
        {messages.isPending && <p className="muted">Loading messages…</p>}
        {messages.isError && (
          <p className="error" role="alert">
            {describe(messages.error)}{" "}
            <button type="button" className="link" onClick={() => void messages.refetch()}>
              Retry
            </button>
          </p>
        )}
        {messages.isSuccess && stored.length === 0 && !showLive && <p className="muted">Ask anything about the market: prices, movers, sentiment, your portfolio.</p>}
        {shown.map((m) => (
          <StoredMessage key={m.id} message={m} />
        ))}
        {lastTurn && (
          <TurnActions
            chatId={chatId}
            question={lastTurn.question}
            answer={lastTurn.answer}
            onRegenerate={() => {
              stuckToBottom.current = true;
              void regenerate(chatId, lastTurn.question.id, lastTurn.answer.id, lastTurn.question.content);
            }}
            onEdit={(content) => {
              stuckToBottom.current = true;
              void editAndRerun(chatId, lastTurn.question.id, lastTurn.answer.id, content);
            }}
          />
        )}
        {showLive && (
          <LiveMessage
            answer={live}
            showQuestion={!live.userMessageId || !storedIds.has(live.userMessageId)}
            onRetry={() => {
              void retry(chatId, live.question);
            }}
            onEdit={() => {
              setDraft(draft ? `${draft}\n${live.question}` : live.question);
            }}
          />
        )}
      </div>
      <Composer
        disabled={false}
        streaming={streaming}
        draft={draft}
        onDraft={setDraft}
        onSend={send}
        onStop={() => {
          void stop(chatId);
        }}
      />
    </section>
  );
}
