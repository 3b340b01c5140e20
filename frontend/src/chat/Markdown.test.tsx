import { render, screen } from "@testing-library/react";

import { Markdown } from "./Markdown";

describe("Markdown", () => {
  it("renders headings, emphasis, lists and tables", () => {
    const { container } = render(<Markdown text={"## Market\n\n**BTC** is up.\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |"} />);
    expect(screen.getByRole("heading", { level: 2, name: "Market" })).toBeInTheDocument();
    expect(container.querySelector("strong")?.textContent).toBe("BTC");
    expect(screen.getAllByRole("listitem")).toHaveLength(2);
    expect(screen.getByRole("table")).toBeInTheDocument();
  });

  it("never renders raw HTML from the answer", () => {
    const { container } = render(<Markdown text={'<img src=x onerror="alert(1)"><script>alert(2)</script>hello'} />);
    expect(container.querySelector("img")).toBeNull();
    expect(container.querySelector("script")).toBeNull();
    expect(container.textContent).toContain("hello");
  });

  it("drops javascript: links and opens safe links in a new tab without an opener", () => {
    const { container } = render(<Markdown text={"[bad](javascript:alert(1)) and [good](https://example.com)"} />);
    const links = [...container.querySelectorAll("a")];
    for (const link of links) expect(link.getAttribute("href") ?? "").not.toMatch(/^javascript:/i);
    const good = screen.getByRole("link", { name: "good" });
    expect(good).toHaveAttribute("href", "https://example.com");
    expect(good).toHaveAttribute("rel", expect.stringContaining("noopener"));
  });

  it("underlines unverified figures with the reason as their title, inside formatting too", () => {
    const text = "BTC is **at $150,000** today.";
    const start = text.indexOf("$150,000");
    render(<Markdown text={text} unverified={[{ start, end: start + 8, reason: "the price was $97,000" }]} />);
    const figure = screen.getByTitle("Unverified: the price was $97,000");
    expect(figure).toHaveTextContent("$150,000");
    expect(figure).toHaveClass("unverified");
    expect(figure.closest("strong")).not.toBeNull();
  });

  it("ignores a span that does not fall on plain text", () => {
    const { container } = render(<Markdown text={"plain"} unverified={[{ start: 50, end: 60, reason: "x" }]} />);
    expect(container.querySelector(".unverified")).toBeNull();
    expect(container.textContent).toBe("plain");
  });
});

describe("Markdown line breaks", () => {
  it("keeps a single newline as a line break", () => {
    const { container } = render(<Markdown text={"first line\nsecond line"} />);
    expect(container.querySelector("br")).not.toBeNull();
  });
});
