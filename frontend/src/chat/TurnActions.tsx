// Under the chat's last answer: regenerate it, edit the question and ask again, and the
// turn's earlier versions (the server keeps every replaced question and answer).
import { useState, type FormEvent } from "react";

import { describe, field } from "../api/errors";
import { MAX_MESSAGE_CHARS, useVersions, type Message } from "./queries";

export function TurnActions({
  chatId,
  question,
  answer,
  onRegenerate,
  onEdit,
}: {
  chatId: string;
  question: Message;
  answer: Message;
  onRegenerate: () => void;
  onEdit: (content: string) => void;
}) {
  const [editing, setEditing] = useState(false);
  const versions = useVersions(chatId, answer.id);
  const earlier = (versions.data?.items ?? []).filter((m) => Boolean(m.superseded_at));
  const answers = (versions.data?.items ?? []).filter((m) => m.role === "assistant").length;

  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const content = field(new FormData(event.currentTarget), "content").trim();
    if (!content || content.length > MAX_MESSAGE_CHARS) return;
    setEditing(false);
    onEdit(content);
  };

  return (
    <div className="turn-actions">
      {editing ? (
        <form className="form" onSubmit={submit}>
          <label>
            Edit your last question
            <textarea name="content" defaultValue={question.content} maxLength={MAX_MESSAGE_CHARS} rows={3} required autoFocus />
          </label>
          <div className="form-row">
            <button type="submit" className="primary">
              Save and ask again
            </button>
            <button type="button" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <div className="form-row">
          <button type="button" onClick={onRegenerate}>
            Regenerate
          </button>
          <button type="button" onClick={() => setEditing(true)}>
            Edit question
          </button>
        </div>
      )}
      {versions.isError && <p className="small error">{describe(versions.error)}</p>}
      {earlier.length > 0 && (
        <details className="versions">
          <summary>
            {answers > 1 ? `${answers} answers` : "Earlier versions"} to this turn; showing the latest
          </summary>
          <ol>
            {earlier.map((m) => (
              <li key={m.id}>
                <span className="muted small">
                  {m.role === "user" ? "Asked" : "Answered"} {new Date(m.created_at).toLocaleString()}
                </span>
                <p className="plain">{m.content}</p>
              </li>
            ))}
          </ol>
        </details>
      )}
    </div>
  );
}
