import type { LiveAnswer, ToolCall } from "./events";
import { Markdown } from "./Markdown";
import type { Message } from "./queries";
import { unverifiedSpans } from "./unverified";

const STATUS_TEXT: Record<string, string> = {
  stopped: "Stopped.",
  incomplete: "This answer is incomplete.",
  failed: "The answer failed.",
  interrupted: "The connection dropped.",
};

export function ToolChips({ tools }: { tools: ToolCall[] }) {
  if (tools.length === 0) return null;
  return (
    <ul className="tool-chips" aria-label="Data Sage looked up">
      {tools.map((tool, index) => (
        <li key={index} className="chip">
          <span className="chip-name">{tool.name}</span>
          {tool.summary && <span> {tool.summary}</span>}
          {tool.duration_ms !== undefined && <span className="muted"> · {Math.round(tool.duration_ms)} ms</span>}
        </li>
      ))}
    </ul>
  );
}

function toolsOf(metadata: Record<string, unknown>): ToolCall[] {
  const tools = metadata.tools ?? metadata.tool_calls;
  if (!Array.isArray(tools)) return [];
  return tools.filter((t): t is ToolCall => typeof t === "object" && t !== null && typeof (t as ToolCall).name === "string");
}

export function StoredMessage({ message }: { message: Message }) {
  if (message.role === "user") {
    return (
      <article className="msg user" aria-label="You asked">
        <p className="plain">{message.content}</p>
      </article>
    );
  }
  const spans = unverifiedSpans(message.content, message.metadata);
  return (
    <article className={`msg assistant ${message.status}`} aria-label="Sage answered">
      <ToolChips tools={toolsOf(message.metadata)} />
      <Markdown text={message.content} unverified={spans} />
      {message.status !== "complete" && <p className="meta error">{STATUS_TEXT[message.status] ?? `Status: ${message.status}`}</p>}
    </article>
  );
}

export function LiveMessage({
  answer,
  showQuestion,
  onRetry,
  onEdit,
}: {
  answer: LiveAnswer;
  showQuestion: boolean;
  onRetry: () => void;
  onEdit: () => void;
}) {
  const streaming = answer.status === "sending" || answer.status === "streaming";
  return (
    <>
      {showQuestion ? (
        <article className="msg user" aria-label="You asked">
          <p className="plain">{answer.question}</p>
        </article>
      ) : null}
      {answer.status === "rejected" ? (
        <div className="inline-error" role="alert">
          <p>Not sent: {answer.error}</p>
          <button type="button" onClick={onRetry}>
            Retry
          </button>
          <button type="button" onClick={onEdit}>
            Edit question
          </button>
        </div>
      ) : (
        <article className={`msg assistant ${answer.status}`} aria-label="Sage is answering" aria-busy={streaming}>
          <ToolChips tools={answer.tools} />
          {answer.text ? <Markdown text={answer.text} unverified={answer.unverified} /> : streaming && <p className="muted typing">Thinking…</p>}
          {answer.note && <p className="meta">{answer.note}</p>}
          {STATUS_TEXT[answer.status] && (
            <div className="meta error" role={answer.status === "failed" ? "alert" : undefined}>
              {answer.error ?? STATUS_TEXT[answer.status]}{" "}
              {answer.status !== "stopped" && (
                <button type="button" className="link" onClick={onRetry}>
                  Ask again
                </button>
              )}
            </div>
          )}
        </article>
      )}
    </>
  );
}
