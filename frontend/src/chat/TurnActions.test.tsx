import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router";

import { setTokens } from "../api/tokens";
import { forgetAnswer } from "./answers";
import { ChatView } from "./ChatView";

const CHAT = "33333333-3333-4333-8333-333333333333";
const encoder = new TextEncoder();
const json = (body: unknown) => new Response(JSON.stringify(body), { headers: { "Content-Type": "application/json" } });

/** An answer stream that sends its text and then stays open (the answer is still running). */
function openStream(text: string, questionId: string): Response {
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent) return new Promise<void>(() => undefined);
      sent = true;
      controller.enqueue(
        encoder.encode(`id: 1-0\nevent: message\ndata: {"assistant_message_id":"m2","user_message_id":"${questionId}"}\n\nid: 2-0\nevent: delta\ndata: {"text":"${text}"}\n\n`),
      );
    },
  });
  return new Response(body, { headers: { "Content-Type": "text/event-stream" } });
}

const base = { status: "complete", metadata: {}, superseded_at: null, created_at: "2026-12-01T00:00:00Z" };
const question = { ...base, id: "u1", seq: 1, role: "user", content: "How is BTC?", reply_to_id: null };
const answer = { ...base, id: "m1", seq: 2, role: "assistant", content: "Stored answer", reply_to_id: "u1" };
const older = { ...base, id: "m0", seq: 2, role: "assistant", content: "An older answer", reply_to_id: "u1", superseded_at: "2026-12-01T00:01:00Z" };

const calls: { method: string; path: string; body: string }[] = [];

function serve() {
  calls.length = 0;
  vi.stubGlobal(
    "fetch",
    vi.fn(async (request: Request) => {
      const path = new URL(request.url).pathname;
      calls.push({ method: request.method, path, body: request.method === "POST" ? await request.text() : "" });
      if (path.endsWith("/regenerate")) return openStream("Fresh answer", "u1") // the same question;
      if (path.endsWith("/edit")) return openStream("Answer to the edit", "u2") // the edited question is a new message;
      if (path.endsWith("/versions")) return json({ items: [question, older, answer] });
      return json({ items: [answer, question], next_before: null });
    }),
  );
}

function renderChat() {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <MemoryRouter>
        <ChatView chatId={CHAT} />
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

beforeEach(() => {
  forgetAnswer(CHAT);
  sessionStorage.clear();
  setTokens({ access_token: "a", refresh_token: "r" });
  serve();
});
afterEach(() => {
  forgetAnswer(CHAT); // ends the open stream
  vi.unstubAllGlobals();
});

describe("the last turn", () => {
  it("shows the turn's earlier answers", async () => {
    renderChat();
    expect(await screen.findByText(/^2 answers to this turn/)).toBeInTheDocument();
    expect(screen.getByText("An older answer")).toBeInTheDocument();
  });

  it("regenerates the last answer in place of the stored one, keeping the question once", async () => {
    renderChat();
    await userEvent.click(await screen.findByRole("button", { name: "Regenerate" }));
    expect(await screen.findByText("Fresh answer")).toBeInTheDocument();
    expect(screen.queryByText("Stored answer")).not.toBeInTheDocument();
    expect(screen.getAllByText("How is BTC?")).toHaveLength(1);
    expect(calls).toContainEqual({ method: "POST", path: `/api/v1/chats/${CHAT}/messages/m1/regenerate`, body: "" });
    // no regenerate or edit while an answer runs
    expect(screen.queryByRole("button", { name: "Regenerate" })).not.toBeInTheDocument();
  });

  it("edits the last question and asks it again, replacing the old exchange", async () => {
    renderChat();
    await userEvent.click(await screen.findByRole("button", { name: "Edit question" }));
    const box = screen.getByLabelText("Edit your last question");
    expect(box).toHaveValue("How is BTC?");
    await userEvent.clear(box);
    await userEvent.type(box, "How is ETH?");
    await userEvent.click(screen.getByRole("button", { name: "Save and ask again" }));
    expect(await screen.findByText("Answer to the edit")).toBeInTheDocument();
    expect(screen.getByText("How is ETH?")).toBeInTheDocument();
    expect(screen.queryByText("How is BTC?")).not.toBeInTheDocument();
    expect(screen.queryByText("Stored answer")).not.toBeInTheDocument();
    expect(calls).toContainEqual({ method: "POST", path: `/api/v1/chats/${CHAT}/messages/u1/edit`, body: JSON.stringify({ content: "How is ETH?" }) });
  });
});
