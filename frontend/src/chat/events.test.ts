import { applyEvent, newAnswer, type LiveAnswer } from "./events";

const run = (answer: LiveAnswer, events: [string, unknown, string?][]) =>
  events.reduce((a, [event, data, id]) => applyEvent(a, { event, data: JSON.stringify(data), id }), answer);

describe("applyEvent", () => {
  it("builds the answer from message, delta and done events, keeping the last event id", () => {
    const answer = run(newAnswer("c1", "price?"), [
      ["message", { assistant_message_id: "m1", user_message_id: "u1" }, "1-0"],
      ["delta", { text: "BTC is " }, "2-7"],
      ["delta", { text: "**$97,000**" }, "3-18"],
      ["done", { status: "complete", offline: true, grounding: { unverified_claims: [] } }, "4-18"],
    ]);
    expect(answer).toMatchObject({ messageId: "m1", userMessageId: "u1", text: "BTC is **$97,000**", status: "complete", lastEventId: "4-18", note: "offline model" });
  });

  it("collects tool events as calls, in order", () => {
    const answer = run(newAnswer("c1", "q", "m1"), [
      ["tool", { name: "get_candles", summary: "BTC 1h, last 7 days", duration_ms: 12.4 }, "2-0"],
      ["tool", { name: "calculate", arguments: { expression: "1+1" } }, "3-0"],
    ]);
    expect(answer.tools).toEqual([
      { name: "get_candles", summary: "BTC 1h, last 7 days", arguments: undefined, duration_ms: 12.4 },
      { name: "calculate", summary: undefined, arguments: { expression: "1+1" }, duration_ms: undefined },
    ]);
  });

  it("takes unverified figure spans from the done event", () => {
    const answer = run(newAnswer("c1", "q", "m1"), [
      ["delta", { text: "BTC is at $150,000." }, "2-19"],
      ["done", { status: "complete", unverified: [{ start: 10, end: 18, reason: "BTC is at $97,000" }] }, "3-19"],
    ]);
    expect(answer.unverified).toEqual([{ start: 10, end: 18, reason: "BTC is at $97,000" }]);
  });

  it("turns an error event into a failed answer with the server's message", () => {
    const answer = run(newAnswer("c1", "q", "m1"), [["error", { status: "failed", code: "model_error", message: "The model is overloaded" }, "2-0"]]);
    expect(answer).toMatchObject({ status: "failed", error: "The model is overloaded" });
  });

  it("keeps a stopped answer's status", () => {
    const answer = run(newAnswer("c1", "q", "m1"), [["done", { status: "stopped" }, "5-40"]]);
    expect(answer.status).toBe("stopped");
  });

  it("survives a malformed data line without losing text", () => {
    const answer = applyEvent({ ...newAnswer("c1", "q", "m1"), text: "kept" }, { event: "delta", data: "not json", id: "9-4" });
    expect(answer.text).toBe("kept");
  });
});
