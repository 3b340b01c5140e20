import { render, screen } from "@testing-library/react";

import { newAnswer } from "./events";
import { LiveMessage, StoredMessage } from "./MessageView";
import type { Message } from "./queries";

const stored = (over: Partial<Message>): Message => ({
  id: "m1",
  seq: 2,
  role: "assistant",
  content: "BTC is at $150,000.",
  status: "complete",
  reply_to_id: "u1",
  metadata: {},
  usage: null,
  created_at: "2026-01-01T00:00:00Z",
  ...over,
});

describe("messages", () => {
  it("show the tools the model called as chips while it answers", () => {
    const answer = { ...newAnswer("c1", "q", "m1"), tools: [{ name: "get_candles", summary: "BTC 1h, last 7 days", duration_ms: 12 }] };
    render(<LiveMessage answer={answer} showQuestion={false} onRetry={() => undefined} onEdit={() => undefined} />);
    const chips = screen.getByRole("list", { name: "Data Sage looked up" });
    expect(chips).toHaveTextContent("get_candles");
    expect(chips).toHaveTextContent("BTC 1h, last 7 days");
    expect(chips).toHaveTextContent("12 ms");
  });

  it("underline a stored answer's unverified figures from its metadata spans", () => {
    render(<StoredMessage message={stored({ metadata: { unverified: [{ start: 10, end: 18, reason: "BTC is at $97,000" }] } })} />);
    expect(screen.getByTitle("Unverified: BTC is at $97,000")).toHaveTextContent("$150,000");
  });

  it("show stored tool calls and mark an unfinished answer", () => {
    render(<StoredMessage message={stored({ status: "stopped", metadata: { tools: [{ name: "get_price" }] } })} />);
    expect(screen.getByText("get_price")).toBeInTheDocument();
    expect(screen.getByText("Stopped.")).toBeInTheDocument();
  });

  it("offer Retry and Edit, with the question, when it was refused before the stream", () => {
    const answer = { ...newAnswer("c1", "my question"), status: "rejected" as const, error: "Too many questions" };
    render(<LiveMessage answer={answer} showQuestion onRetry={() => undefined} onEdit={() => undefined} />);
    expect(screen.getByText("my question")).toBeInTheDocument();
    expect(screen.getByRole("alert")).toHaveTextContent("Not sent: Too many questions");
    expect(screen.getByRole("button", { name: "Retry" })).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Edit question" })).toBeInTheDocument();
  });
});
