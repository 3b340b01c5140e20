import { readEventStream, sseDecoder } from "./sse";

describe("sseDecoder", () => {
  it("reads an event whose CRLF line ends are split across chunks", () => {
    const decode = sseDecoder();
    const chunks = ["id: 3-10\r", "\nevent: delta\r\ndata: {\"text\":", "\"hi\"}\r", "\n\r", "\n"];
    const events = chunks.flatMap((chunk) => decode(chunk));
    expect(events).toEqual([{ id: "3-10", event: "delta", data: '{"text":"hi"}' }]);
  });

  it("emits nothing until the blank line that ends an event", () => {
    const decode = sseDecoder();
    expect(decode("event: done\ndata: {}\n")).toEqual([]);
    expect(decode("\n")).toEqual([{ id: undefined, event: "done", data: "{}" }]);
  });

  it("ignores comments (keep-alives) and joins multi-line data", () => {
    const decode = sseDecoder();
    const events = decode(": keepalive\nretry: 3000\n\ndata: one\ndata: two\n\n");
    expect(events).toEqual([{ id: undefined, event: "message", data: "one\ntwo" }]);
  });

  it("accepts bare CR line ends (a CR at a chunk's end waits: it may be half of a CRLF)", () => {
    const decode = sseDecoder();
    const events = [...decode("event: delta\rdata: x\r\r"), ...decode("event: done\rdata: {}\r\r")];
    expect(events[0]).toEqual({ id: undefined, event: "delta", data: "x" });
  });
});

describe("readEventStream", () => {
  it("reads events from a streamed response body in arbitrary byte chunks, including split UTF-8", async () => {
    const bytes = new TextEncoder().encode('id: 1-0\nevent: delta\ndata: {"text":"비트코인"}\n\n');
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 5) controller.enqueue(bytes.slice(i, i + 5));
        controller.close();
      },
    });
    const events = [];
    for await (const event of readEventStream(new Response(body))) events.push(event);
    expect(events).toEqual([{ id: "1-0", event: "delta", data: '{"text":"비트코인"}' }]);
  });
});
