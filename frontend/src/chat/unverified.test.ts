import { unverifiedSpans } from "./unverified";

describe("unverifiedSpans", () => {
  it("uses explicit spans and drops ones outside the text or overlapping", () => {
    const spans = unverifiedSpans("abcdefghij", {
      unverified: [
        { start: 5, end: 8, reason: "later" },
        { start: 0, end: 2, reason: "first" },
        { start: 1, end: 3, reason: "overlaps" },
        { start: 8, end: 40, reason: "outside" },
      ],
    });
    expect(spans).toEqual([
      { start: 0, end: 2, reason: "first" },
      { start: 5, end: 8, reason: "later" },
    ]);
  });

  it("locates today's unverified claims by their text, in order", () => {
    const content = "BTC $1 and ETH $1.";
    const spans = unverifiedSpans(content, { grounding: { unverified_claims: [{ text: "$1" }, { text: "$1" }] } });
    expect(spans.map((s) => s.start)).toEqual([4, 15]);
  });

  it("is empty when nothing is unverified", () => {
    expect(unverifiedSpans("text", {})).toEqual([]);
  });
});
