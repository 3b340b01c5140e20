import { setTokens } from "../api/tokens";
import { followNotifications, forgetLastEventId, lastEventId } from "./live";
import type { LiveNotification } from "./model";

function streamOf(text: string): Response {
  return new Response(
    new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(text));
        controller.close();
      },
    }),
    { headers: { "Content-Type": "text/event-stream" } },
  );
}

const frame = (id: number, title: string) =>
  `id: ${id}-0\nevent: notification\ndata: ${JSON.stringify({ id, kind: "price_above", title, body: "", data: {}, created_at: "2026-12-05T10:00:00Z" })}\n\n`;

afterEach(() => {
  vi.unstubAllGlobals();
  forgetLastEventId();
  setTokens(null);
});

it("reconnects after a dropped stream with the last event id, and stops when aborted", async () => {
  setTokens({ access_token: "a", refresh_token: "r" });
  const controller = new AbortController();
  const seen: LiveNotification[] = [];
  const requests: { path: string; lastId: string | null; auth: string | null }[] = [];
  const bodies = [
    streamOf(": keep-alive\n\n" + frame(41, "BTC above 97,500") + frame(42, "SOL below 190")),
    streamOf(frame(43, "ETH above 3,500")),
  ];
  vi.stubGlobal(
    "fetch",
    vi.fn((request: Request) => {
      requests.push({ path: new URL(request.url).pathname, lastId: request.headers.get("Last-Event-ID"), auth: request.headers.get("Authorization") });
      const body = bodies.shift();
      if (!body) controller.abort(); // the third connection: the test is over
      return Promise.resolve(body ?? streamOf(""));
    }),
  );
  const waits: number[] = [];
  await followNotifications(controller.signal, {
    onNotification: (n) => seen.push(n),
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
  });
  expect(seen.map((n) => n.title)).toEqual(["BTC above 97,500", "SOL below 190", "ETH above 3,500"]);
  expect(requests).toEqual([
    { path: "/api/v1/notifications/stream", lastId: null, auth: "Bearer a" },
    { path: "/api/v1/notifications/stream", lastId: "42-0", auth: "Bearer a" },
    { path: "/api/v1/notifications/stream", lastId: "43-0", auth: "Bearer a" },
  ]);
  expect(lastEventId()).toBe("43-0"); // a reload resumes from here
  expect(waits).toEqual([1000, 1000]);
});

it("backs off while the server refuses, and ends with the session", async () => {
  setTokens({ access_token: "a", refresh_token: "r" });
  let calls = 0;
  vi.stubGlobal(
    "fetch",
    vi.fn(() => {
      calls += 1;
      return Promise.resolve(new Response('{"error":{"code":"unavailable","message":"later"}}', { status: 503 }));
    }),
  );
  const waits: number[] = [];
  await followNotifications(new AbortController().signal, {
    onNotification: () => undefined,
    sleep: (ms) => {
      waits.push(ms);
      if (waits.length === 3) setTokens(null); // signed out: the loop ends
      return Promise.resolve();
    },
  });
  expect(waits).toEqual([1000, 2000, 5000]);
  expect(calls).toBe(3);
});
