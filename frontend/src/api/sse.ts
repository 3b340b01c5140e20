// Server-Sent Events read from a fetch() Response: POST bodies and an Authorization header
// are needed for answers, which EventSource cannot send. Parsing (CR, LF and CRLF line
// ends, split anywhere across chunks; comments; multi-line data) is eventsource-parser's.
import { createParser, type EventSourceMessage } from "eventsource-parser";

export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/** Feed decoded text in any chunking; returns the events each chunk completes. */
export function sseDecoder(): (chunk: string) => SseEvent[] {
  let ready: SseEvent[] = [];
  const parser = createParser({
    onEvent(message: EventSourceMessage) {
      ready.push({ id: message.id, event: message.event ?? "message", data: message.data });
    },
  });
  return (chunk: string) => {
    parser.feed(chunk);
    const out = ready;
    ready = [];
    return out;
  };
}

/** The response's events; `signal` cancels the read at once (also where fetch's own abort
 * does not reach the body, as with a service worker or a test double). */
export async function* readEventStream(response: Response, signal?: AbortSignal): AsyncGenerator<SseEvent> {
  if (!response.body) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const decode = sseDecoder();
  const cancel = () => void reader.cancel().catch(() => undefined);
  signal?.addEventListener("abort", cancel);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      yield* decode(value);
    }
  } finally {
    signal?.removeEventListener("abort", cancel);
    reader.releaseLock();
  }
}
