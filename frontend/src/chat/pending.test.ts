import { decideResume, getPending, setPending } from "./pending";

describe("decideResume", () => {
  const pending = { messageId: "m1", question: "q" };

  it("resumes an answer that lost its connection after its last event", () => {
    expect(decideResume({ status: "interrupted", messageId: "m1", lastEventId: "7-120" }, pending, [])).toEqual({
      kind: "resume",
      messageId: "m1",
      lastEventId: "7-120",
    });
  });

  it("leaves an answer that is still streaming in this page alone", () => {
    expect(decideResume({ status: "streaming", messageId: "m1", lastEventId: "3-10" }, pending, [])).toEqual({ kind: "none" });
  });

  it("after a reload resumes from the start when the server has not stored the answer", () => {
    expect(decideResume(null, pending, [{ id: "u1", status: "complete" }])).toEqual({ kind: "resume", messageId: "m1", lastEventId: null });
  });

  it("after a reload forgets the note when the answer is already stored", () => {
    expect(decideResume(null, pending, [{ id: "m1", status: "incomplete" }])).toEqual({ kind: "forget" });
  });

  it("does nothing without a pending answer", () => {
    expect(decideResume(null, null, [])).toEqual({ kind: "none" });
  });
});

describe("pending answers", () => {
  it("are remembered per chat across reloads (sessionStorage) and can be cleared", () => {
    setPending("c1", { messageId: "m1", question: "q1" });
    setPending("c2", { messageId: "m2", question: "q2" });
    expect(getPending("c1")).toEqual({ messageId: "m1", question: "q1" });
    setPending("c1", null);
    expect(getPending("c1")).toBeNull();
    expect(getPending("c2")).toEqual({ messageId: "m2", question: "q2" });
  });
});
