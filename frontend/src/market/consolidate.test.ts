import { applyUpdate, applyUpdates, median, reage, TickBuffer, type Tickers, type WireTicker } from "./consolidate";

const NOW = Date.parse("2026-01-01T00:00:00Z");
const empty: Tickers = { source: "replay", generated_at: new Date(NOW).toISOString(), stale_after_seconds: 60, divergence_percent: 1, tickers: [], missing: ["BTC/USDT"] };

function wire(exchange: string, last: string, at = NOW): WireTicker {
  return { exchange, symbol: "BTC/USDT", last, bid: last, ask: last, change_pct: "1.5", high: last, low: last, base_volume: "10", quote_volume: "1000", event_time: at, received_at: at };
}

describe("consolidation of live updates", () => {
  it("adds a new symbol from its first update and takes it off the missing list", () => {
    const next = applyUpdate(empty, wire("binance", "100"), NOW);
    expect(next.tickers).toHaveLength(1);
    expect(next.tickers[0]).toMatchObject({ symbol: "BTC/USDT", price: "100", stale: false, diverged: false });
    expect(next.missing).toEqual([]);
  });

  it("takes the median of the exchanges and flags a disagreement above the threshold", () => {
    let snapshot = applyUpdate(empty, wire("binance", "100"), NOW);
    snapshot = applyUpdate(snapshot, wire("gateio", "100.5"), NOW);
    expect(snapshot.tickers[0]).toMatchObject({ price: "100.25", diverged: false });
    snapshot = applyUpdate(snapshot, wire("gateio", "102"), NOW);
    expect(snapshot.tickers[0]?.diverged).toBe(true);
  });

  it("turns a symbol stale once no exchange reported within the window, and fresh again on an update", () => {
    const snapshot = applyUpdate(empty, wire("binance", "100"), NOW);
    const later = reage(snapshot, NOW + 61_000);
    expect(later.tickers[0]?.stale).toBe(true);
    const back = applyUpdate(later, wire("binance", "101", NOW + 62_000), NOW + 62_000);
    expect(back.tickers[0]).toMatchObject({ stale: false, price: "101" });
  });

  it("ignores a stale exchange's price while a fresh one exists", () => {
    let snapshot = applyUpdate(empty, wire("gateio", "90", NOW - 120_000), NOW);
    snapshot = applyUpdate(snapshot, wire("binance", "100"), NOW);
    expect(snapshot.tickers[0]).toMatchObject({ price: "100", stale: false, diverged: false });
  });

  it("median of an even count is the mean of the middle two", () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});

describe("batches of streamed ticks", () => {
  const other = (last: string): WireTicker => ({ ...wire("binance", last), symbol: "ETH/USDT" });

  it("gives the same rows as applying the ticks one by one", () => {
    const updates = [wire("binance", "100"), other("10"), wire("gateio", "101"), wire("binance", "102")];
    const batched = applyUpdates(empty, updates, NOW);
    const oneByOne = updates.reduce((s, u) => applyUpdate(s, u, NOW), empty);
    expect(batched.tickers).toEqual(oneByOne.tickers);
    expect(batched.tickers.map((t) => t.symbol)).toEqual(["BTC/USDT", "ETH/USDT"]);
  });

  it("keeps the rows of symbols without a tick as the same objects", () => {
    const before = applyUpdates(empty, [wire("binance", "100"), other("10")], NOW);
    const after = applyUpdates(before, [other("11")], NOW);
    expect(after.tickers[0]).toBe(before.tickers[0]);
    expect(after.tickers[1]).not.toBe(before.tickers[1]);
  });

  it("buffers only the latest tick of each exchange and symbol, and empties on drain", () => {
    const buffer = new TickBuffer();
    buffer.add(wire("binance", "100"));
    buffer.add(other("10"));
    buffer.add(wire("gateio", "101"));
    buffer.add(wire("binance", "102"));
    expect(buffer.drain().map((u) => `${u.symbol} ${u.exchange} ${u.last}`)).toEqual(["ETH/USDT binance 10", "BTC/USDT gateio 101", "BTC/USDT binance 102"]);
    expect(buffer.drain()).toEqual([]);
  });
});
