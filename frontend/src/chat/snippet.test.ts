import { snippetParts } from "./snippet";

describe("snippetParts", () => {
  it("splits the marked words from the text around them", () => {
    expect(snippetParts("the <b>bitcoin</b> price and <b>ETH</b>")).toEqual([
      { text: "the ", mark: false },
      { text: "bitcoin", mark: true },
      { text: " price and ", mark: false },
      { text: "ETH", mark: true },
    ]);
  });

  it("keeps any other markup as plain text", () => {
    expect(snippetParts('<img src=x onerror="alert(1)"> <b>hi</b>')).toEqual([
      { text: '<img src=x onerror="alert(1)"> ', mark: false },
      { text: "hi", mark: true },
    ]);
  });

  it("returns a snippet without marks whole", () => {
    expect(snippetParts("no match here")).toEqual([{ text: "no match here", mark: false }]);
    expect(snippetParts("")).toEqual([]);
  });
});
