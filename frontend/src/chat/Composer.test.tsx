import { fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";

import { Composer } from "./Composer";
import { counterState } from "./counter";

function Harness({ onSend, initial = "" }: { onSend: (text: string) => void; initial?: string }) {
  const [draft, setDraft] = useState(initial);
  return <Composer disabled={false} streaming={false} draft={draft} onDraft={setDraft} onSend={onSend} onStop={() => undefined} />;
}

describe("counterState", () => {
  it("appears from 80% of the limit and flags going over it", () => {
    expect(counterState(3199, 4000)).toMatchObject({ visible: false, over: false });
    expect(counterState(3200, 4000)).toMatchObject({ visible: true, over: false, text: "3,200 / 4,000" });
    expect(counterState(4000, 4000).over).toBe(false);
    expect(counterState(4001, 4000).over).toBe(true);
  });
});

describe("Composer", () => {
  it("sends with Enter and keeps Shift+Enter for new lines", () => {
    const sent: string[] = [];
    render(<Harness onSend={(t) => sent.push(t)} initial="hello" />);
    const box = screen.getByLabelText("Your question");
    fireEvent.keyDown(box, { key: "Enter", shiftKey: true });
    expect(sent).toEqual([]);
    fireEvent.keyDown(box, { key: "Enter" });
    expect(sent).toEqual(["hello"]);
  });

  it("shows the counter before the limit and refuses to send over it, keeping the text", () => {
    const sent: string[] = [];
    render(<Harness onSend={(t) => sent.push(t)} initial={"x".repeat(3500)} />);
    expect(screen.getByText("3,500 / 4,000")).toBeInTheDocument();
    const box = screen.getByLabelText("Your question");
    fireEvent.change(box, { target: { value: "x".repeat(4001) } });
    expect(screen.getByText(/too long to send/)).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Send" })).toBeDisabled();
    fireEvent.keyDown(box, { key: "Enter" });
    expect(sent).toEqual([]);
    expect(box).toHaveValue("x".repeat(4001));
  });

  it("shows a Stop button instead of Send while an answer streams", () => {
    const stops: number[] = [];
    render(<Composer disabled={false} streaming draft="" onDraft={() => undefined} onSend={() => undefined} onStop={() => stops.push(1)} />);
    fireEvent.click(screen.getByRole("button", { name: "Stop" }));
    expect(stops).toEqual([1]);
    expect(screen.queryByRole("button", { name: "Send" })).toBeNull();
  });
});
