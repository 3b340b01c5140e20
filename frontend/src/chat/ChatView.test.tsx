import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen } from "@testing-library/react";
import { MemoryRouter } from "react-router";

import { setTokens } from "../api/tokens";
import { forgetAnswer } from "./answers";
import { ChatView } from "./ChatView";
import { getPending, setPending } from "./pending";

const CHAT = "11111111-1111-4111-8111-111111111111";
const encoder = new TextEncoder();

function sse(text: string): Response {
  return new Response(
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode(text));
        controller.close();
      },
    }),
    { headers: { "Content-Type": "text/event-stream" } },
  );
}

const json = (body: unknown) => new Response(JSON.stringify(body), { headers: { "Content-Type": "application/json" } });

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

const question = { id: "u1", seq: 1, role: "user", content: "How is BTC?", status: "complete", reply_to_id: null, metadata: {}, created_at: "2026-01-01T00:00:00Z" };

beforeEach(() => {
  forgetAnswer(CHAT); // answers live in a module-level store: a new page load starts with none
  sessionStorage.clear();
  setTokens({ access_token: "a", refresh_token: "r" });
});
afterEach(() => {
  vi.unstubAllGlobals();
});

describe("ChatView after a reload", () => {
  it("resumes an answer that was streaming from its start and shows it", async () => {
    setPending(CHAT, { messageId: "m1", question: "How is BTC?" });
    const urls: string[] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn((request: Request) => {
        urls.push(new URL(request.url).pathname);
        if (request.url.includes("/stream")) {
          return Promise.resolve(
            sse(
              'id: 1-0\nevent: message\ndata: {"assistant_message_id":"m1","user_message_id":"u1"}\n\n' +
                'id: 2-9\nevent: delta\ndata: {"text":"BTC is **up**"}\n\n' +
                'id: 3-9\nevent: done\ndata: {"status":"complete"}\n\n',
            ),
          );
        }
        return Promise.resolve(json({ items: [question], next_before: null }));
      }),
    );
    renderChat();
    expect(await screen.findByText("up", { selector: "strong" })).toBeInTheDocument();
    expect(urls).toContain(`/api/v1/chats/${CHAT}/messages/m1/stream`);
    expect(getPending(CHAT)).toBeNull();
    // The question was stored already: it is shown once.
    expect(screen.getAllByText("How is BTC?")).toHaveLength(1);
  });

  it("shows an answer the server already stored, without resuming", async () => {
    setPending(CHAT, { messageId: "m1", question: "How is BTC?" });
    const answer = { ...question, id: "m1", seq: 2, role: "assistant", content: "Stored answer", status: "incomplete", reply_to_id: "u1" };
    const urls: string[] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn((request: Request) => {
        urls.push(new URL(request.url).pathname);
        return Promise.resolve(json({ items: [answer, question], next_before: null }));
      }),
    );
    renderChat();
    expect(await screen.findByText("Stored answer")).toBeInTheDocument();
    expect(screen.getByText("This answer is incomplete.")).toBeInTheDocument();
    expect(urls.some((u) => u.endsWith("/stream"))).toBe(false);
    expect(getPending(CHAT)).toBeNull();
  });

  it("offers to load older messages when the page says there are more", async () => {
    vi.stubGlobal("fetch", vi.fn(() => Promise.resolve(json({ items: [question], next_before: 1 }))));
    renderChat();
    expect(await screen.findByRole("button", { name: "Load older messages" })).toBeInTheDocument();
  });
});
