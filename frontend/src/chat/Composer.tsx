import { useId, type FormEvent, type KeyboardEvent } from "react";

import { counterState } from "./counter";

export function Composer({
  disabled,
  streaming,
  draft,
  onDraft,
  onSend,
  onStop,
}: {
  disabled: boolean;
  streaming: boolean;
  draft: string;
  onDraft: (text: string) => void;
  onSend: (text: string) => void;
  onStop: () => void;
}) {
  const id = useId();
  const counter = counterState(draft.length);
  const blank = draft.trim().length === 0;

  const submit = (event?: FormEvent) => {
    event?.preventDefault();
    if (blank || counter.over || disabled || streaming) return;
    onSend(draft);
  };
  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      submit();
    }
  };

  return (
    <form className="composer" onSubmit={submit}>
      <label htmlFor={id} className="sr-only">
        Your question
      </label>
      <textarea
        id={id}
        value={draft}
        rows={2}
        placeholder="Ask about the market… (Enter to send, Shift+Enter for a new line)"
        disabled={disabled}
        aria-invalid={counter.over}
        aria-describedby={`${id}-counter`}
        onChange={(e) => onDraft(e.target.value)}
        onKeyDown={onKeyDown}
      />
      <div className="composer-row">
        <span id={`${id}-counter`} className={`counter ${counter.over ? "error" : "muted"}`} aria-live="polite">
          {counter.visible ? counter.text : ""}
          {counter.over ? " — too long to send; shorten it" : ""}
        </span>
        {streaming ? (
          <button type="button" className="danger" onClick={onStop}>
            Stop
          </button>
        ) : (
          <button type="submit" className="primary" disabled={disabled || blank || counter.over}>
            Send
          </button>
        )}
      </div>
    </form>
  );
}
