// The watchlist kept live from /market/stream: each `ticker` event is one exchange's
// ticker; the consolidated row is recomputed the way the server does it (median of the
// fresh exchanges, stale when none reported recently, diverged when they disagree by more
// than the server's threshold), so badges change without waiting for the next poll.
import type { components } from "../api/schema";

export type Ticker = components["schemas"]["TickerOut"];
export type Tickers = components["schemas"]["TickersOut"];
export type ExchangeTicker = components["schemas"]["ExchangeTickerOut"];

/** One exchange's ticker as /market/stream sends it (times in epoch milliseconds). */
export interface WireTicker {
  exchange: string;
  symbol: string;
  last: string;
  bid: string;
  ask: string;
  change_pct: string;
  high: string;
  low: string;
  base_volume: string;
  quote_volume: string;
  event_time: number;
  received_at: number;
}

export function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function exchangeFrom(wire: WireTicker, now: number, staleAfter: number): ExchangeTicker {
  const age = Math.max(0, (now - wire.received_at) / 1000);
  return {
    exchange: wire.exchange,
    last: wire.last,
    bid: wire.bid,
    ask: wire.ask,
    change_pct: wire.change_pct,
    high: wire.high,
    low: wire.low,
    base_volume: wire.base_volume,
    quote_volume: wire.quote_volume,
    event_time: new Date(wire.event_time).toISOString(),
    received_at: new Date(wire.received_at).toISOString(),
    age_seconds: age,
    stale: age > staleAfter,
  };
}

/** The consolidated row from its exchanges at time `now` (epoch ms). */
export function consolidate(symbol: string, exchanges: Record<string, ExchangeTicker>, now: number, snapshot: Pick<Tickers, "stale_after_seconds" | "divergence_percent">): Ticker {
  const all = Object.values(exchanges).map((e) => {
    const age = Math.max(0, (now - Date.parse(e.received_at)) / 1000);
    return { ...e, age_seconds: age, stale: age > snapshot.stale_after_seconds };
  });
  const fresh = all.filter((e) => !e.stale);
  const basis = fresh.length ? fresh : all;
  const prices = basis.map((e) => Number(e.last));
  const low = Math.min(...prices);
  const spread = prices.length > 1 && low > 0 ? ((Math.max(...prices) - low) / low) * 100 : 0;
  const newest = Math.max(...all.map((e) => Date.parse(e.received_at)));
  return {
    symbol,
    price: String(median(prices)),
    change_pct_24h: basis.length ? String(median(basis.map((e) => Number(e.change_pct)))) : null,
    as_of: new Date(newest).toISOString(),
    age_seconds: Math.max(0, (now - newest) / 1000),
    stale: fresh.length === 0,
    diverged: fresh.length > 1 && spread > snapshot.divergence_percent,
    spread_pct: spread.toFixed(4),
    exchanges: Object.fromEntries(all.map((e) => [e.exchange, e])),
  };
}

/** The snapshot with one exchange's update applied (a new symbol is added in order).
 * Rows of other symbols keep their identity, so memoized rows skip re-rendering. */
export function applyUpdate(snapshot: Tickers, update: WireTicker, now: number): Tickers {
  return applyUpdates(snapshot, [update], now);
}

/** The snapshot with a batch of updates applied in order: one new snapshot for the whole
 * batch, each touched symbol consolidated once, untouched rows kept as they were. */
export function applyUpdates(snapshot: Tickers, updates: readonly WireTicker[], now: number): Tickers {
  if (updates.length === 0) return snapshot;
  const touched = new Map<string, Record<string, ExchangeTicker>>();
  for (const update of updates) {
    const exchanges = touched.get(update.symbol) ?? { ...(snapshot.tickers.find((t) => t.symbol === update.symbol)?.exchanges ?? {}) };
    exchanges[update.exchange] = exchangeFrom(update, now, snapshot.stale_after_seconds);
    touched.set(update.symbol, exchanges);
  }
  const rows = new Map([...touched].map(([symbol, exchanges]) => [symbol, consolidate(symbol, exchanges, now, snapshot)]));
  const tickers = snapshot.tickers.map((t) => rows.get(t.symbol) ?? t);
  const known = new Set(snapshot.tickers.map((t) => t.symbol));
  const added = [...rows.values()].filter((row) => !known.has(row.symbol));
  return {
    ...snapshot,
    tickers: added.length ? [...tickers, ...added].sort((a, b) => a.symbol.localeCompare(b.symbol)) : tickers,
    missing: snapshot.missing.filter((s) => !touched.has(s)),
  };
}

/** Ticks buffered for one flush: the latest per (symbol, exchange), applied in one pass. */
export class TickBuffer {
  #latest = new Map<string, WireTicker>();

  add(update: WireTicker): void {
    const key = `${update.symbol}\u0000${update.exchange}`;
    this.#latest.delete(key); // re-inserted last: the batch keeps arrival order
    this.#latest.set(key, update);
  }

  /** The buffered ticks, oldest first; the buffer is empty afterwards. */
  drain(): WireTicker[] {
    const updates = [...this.#latest.values()];
    this.#latest.clear();
    return updates;
  }
}

/** Flags re-evaluated as time passes with no update (a silent feed turns stale). */
export function reage(snapshot: Tickers, now: number): Tickers {
  return { ...snapshot, tickers: snapshot.tickers.map((t) => consolidate(t.symbol, t.exchanges, now, snapshot)) };
}

/** BTC/USDT <-> BTC-USDT: the URL form of a symbol. */
export const symbolToPath = (symbol: string): string => symbol.replace("/", "-");
export const pathToSymbol = (path: string): string => path.replace("-", "/").toUpperCase();

// Intl.NumberFormat instances are built once: `toLocaleString(locale, options)` builds a
// new formatter on every call, which was most of the watchlist's render time.
const priceFormats = {
  large: new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }),
  unit: new Intl.NumberFormat("en-US", { minimumFractionDigits: 0, maximumFractionDigits: 4 }),
  small: new Intl.NumberFormat("en-US", { minimumFractionDigits: 0, maximumFractionDigits: 6 }),
};
const volumeFormat = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 2 });

export function formatPrice(value: number | string | null | undefined): string {
  const n = Number(value);
  if (value === null || value === undefined || !Number.isFinite(n)) return "–";
  return (n >= 100 ? priceFormats.large : n >= 1 ? priceFormats.unit : priceFormats.small).format(n);
}

export function formatPct(value: number | string | null | undefined): string {
  const n = Number(value);
  if (value === null || value === undefined || !Number.isFinite(n)) return "–";
  return `${n > 0 ? "+" : ""}${n.toFixed(2)}%`;
}

export function formatVolume(value: number | string): string {
  const n = Number(value);
  if (!Number.isFinite(n)) return "–";
  return volumeFormat.format(n);
}
