import { setTokens } from "../api/tokens";
import { ask, getLiveAnswer, resume, stop } from "./answers";
import { getPending } from "./pending";

const encoder = new TextEncoder();

/** A response whose body streams `chunks`, then ends (or errors, or stays open). */
function streamed(chunks: string[], end: "close" | "error" | "hang" = "close"): Response {
  const queue = [...chunks];
  // One chunk per read, so an error comes after the chunks were read (erroring a stream
  // discards what is still queued), as when a connection drops mid-answer.
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = queue.shift();
      if (chunk !== undefined) controller.enqueue(encoder.encode(chunk));
      else if (end === "close") controller.close();
      else if (end === "error") controller.error(new TypeError("network error"));
      else return new Promise<void>(() => undefined); // hang: the server is still thinking
    },
  });
  return new Response(body, { headers: { "Content-Type": "text/event-stream" } });
}

const requests: Request[] = [];
function serve(handler: (request: Request) => Response | Promise<Response>) {
  requests.length = 0;
  vi.stubGlobal(
    "fetch",
    vi.fn((input: Request) => {
      requests.push(input);
      return Promise.resolve(handler(input));
    }),
  );
}

beforeEach(() => {
  sessionStorage.clear();
  setTokens({ access_token: "access", refresh_token: "refresh" });
});
afterEach(() => {
  vi.unstubAllGlobals();
});

describe("asking", () => {
  it("streams the answer into the store with the bearer token, then forgets the pending note", async () => {
    serve(() =>
      streamed([
        'id: 1-0\nevent: message\ndata: {"assistant_message_id":"m1","user_message_id":"u1"}\n\n',
        'id: 2-5\nevent: delta\ndata: {"text":"Hello"}\n\n',
        'id: 3-5\nevent: done\ndata: {"status":"complete"}\n\n',
      ]),
    );
    await ask("c1", "hi");
    expect(requests[0]?.headers.get("Authorization")).toBe("Bearer access");
    expect(await requests[0]?.clone().json()).toEqual({ content: "hi" });
    expect(getLiveAnswer("c1")).toMatchObject({ status: "complete", text: "Hello", messageId: "m1" });
    expect(getPending("c1")).toBeNull();
  });

  it("keeps the question when the server refuses it before the stream", async () => {
    serve(() => new Response(JSON.stringify({ error: { code: "rate_limited", message: "Too many questions" } }), { status: 429, headers: { "Retry-After": "30" } }));
    await ask("c2", "my long question");
    expect(getLiveAnswer("c2")).toMatchObject({ status: "rejected", question: "my long question", error: "Too many questions (try again in 30 s)" });
  });

  it("marks an answer whose connection dropped as resumable and remembers it", async () => {
    serve(() =>
      streamed(['id: 1-0\nevent: message\ndata: {"assistant_message_id":"m3"}\n\n', 'id: 2-3\nevent: delta\ndata: {"text":"abc"}\n\n'], "error"),
    );
    await ask("c3", "q");
    expect(getLiveAnswer("c3")).toMatchObject({ status: "interrupted", text: "abc", lastEventId: "2-3" });
    expect(getPending("c3")).toEqual({ messageId: "m3", question: "q" });
  });
});

describe("resuming", () => {
  it("continues after the last event with Last-Event-ID, without repeating text", async () => {
    serve(() =>
      streamed(['id: 1-0\nevent: message\ndata: {"assistant_message_id":"m4"}\n\n', 'id: 2-3\nevent: delta\ndata: {"text":"abc"}\n\n'], "error"),
    );
    await ask("c4", "q");
    serve(() => streamed(['id: 3-6\nevent: delta\ndata: {"text":"def"}\n\n', 'id: 4-6\nevent: done\ndata: {"status":"complete"}\n\n']));
    await resume("c4", "m4", "q", "2-3");
    expect(requests[0]?.url).toMatch(/\/api\/v1\/chats\/c4\/messages\/m4\/stream$/);
    expect(requests[0]?.headers.get("Last-Event-ID")).toBe("2-3");
    expect(getLiveAnswer("c4")).toMatchObject({ text: "abcdef", status: "complete" });
  });

  it("after a reload starts from the beginning (no Last-Event-ID)", async () => {
    serve(() => streamed(['id: 1-0\nevent: message\ndata: {"assistant_message_id":"m5"}\n\n', 'id: 2-3\nevent: delta\ndata: {"text":"all"}\n\n', 'id: 3-3\nevent: done\ndata: {"status":"complete"}\n\n']));
    await resume("c5", "m5", "q", null);
    expect(requests[0]?.headers.get("Last-Event-ID")).toBeNull();
    expect(getLiveAnswer("c5")).toMatchObject({ text: "all", status: "complete" });
  });
});

describe("stopping", () => {
  it("asks the server to stop the message, aborts the stream and keeps the partial text", async () => {
    let streamRequest: Request | null = null;
    serve((request) => {
      if (request.url.endsWith("/stop")) return new Response(null, { status: 404 });
      streamRequest = request;
      return streamed(['id: 1-0\nevent: message\ndata: {"assistant_message_id":"m6"}\n\n', 'id: 2-4\nevent: delta\ndata: {"text":"part"}\n\n'], "hang");
    });
    const answering = ask("c6", "q");
    await vi.waitFor(() => {
      expect(getLiveAnswer("c6")?.text).toBe("part");
    });
    await stop("c6");
    await answering;
    expect(requests.map((r) => `${r.method} ${new URL(r.url).pathname}`)).toContain("POST /api/v1/chats/c6/messages/m6/stop");
    expect((streamRequest as Request | null)?.signal.aborted).toBe(true);
    expect(getLiveAnswer("c6")).toMatchObject({ status: "stopped", text: "part" });
    expect(getPending("c6")).toBeNull();
  });
});
