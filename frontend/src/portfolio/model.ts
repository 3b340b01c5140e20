// Pure pieces of the portfolio page: money formatting, the trade form's request body, the
// equity curve's series and an import's row errors. The server computes every figure; this
// only shapes what it sends.
import type { UTCTimestamp } from "lightweight-charts";

import { ApiError } from "../api/errors";
import type { components } from "../api/schema";

export type TradeBody = components["schemas"]["TransactionIn"];
type Point = components["schemas"]["PointOut"];

export const RANGES = ["1d", "1w", "1m", "3m", "1y", "all"] as const;
export type Range = (typeof RANGES)[number];

/** An amount in the base currency: two decimals, thousands separated ("–" when unknown). */
export function formatMoney(value: string | number | null | undefined): string {
  const n = Number(value);
  if (value === null || value === undefined || value === "" || !Number.isFinite(n)) return "–";
  return n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

/** A profit or loss with its sign ("+12.50", "-3.00"). */
export function formatSigned(value: string | number | null | undefined): string {
  const text = formatMoney(value);
  return Number(value) > 0 ? `+${text}` : text;
}

/** A quantity as held: up to 8 decimals, no trailing zeros. */
export function formatQuantity(value: string | number): string {
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  return n.toLocaleString("en-US", { maximumFractionDigits: 8 });
}

/** The CSS class of a P&L figure. */
export function tone(value: string | number | null | undefined): "up" | "down" | "" {
  const n = Number(value);
  if (value === null || value === undefined || !Number.isFinite(n) || n === 0) return "";
  return n > 0 ? "up" : "down";
}

export interface TradeForm {
  side: "buy" | "sell";
  symbol: string;
  quantity: string;
  /** blank: a market order at the current price, now */
  price: string;
  /** a `datetime-local` value (local time); only with a price */
  executedAt: string;
}

const DECIMAL = /^\d+(\.\d+)?$/;

/**
 * The body of `POST .../transactions`, or the reason the form cannot be sent. A blank price
 * is a market order; a price records a past trade, at the given local time (now if blank).
 */
export function tradeBody(form: TradeForm, now: Date = new Date()): TradeBody | string {
  const quantity = form.quantity.trim();
  if (!DECIMAL.test(quantity) || Number(quantity) <= 0) return "Enter a quantity above zero.";
  const body: TradeBody = { kind: form.side, symbol: form.symbol, quantity };
  const price = form.price.trim();
  if (price === "") {
    if (form.executedAt !== "") return "A market order fills now; enter a price to record a past trade.";
    return body;
  }
  if (!DECIMAL.test(price) || Number(price) <= 0) return "Enter a price above zero, or leave it blank for the market price.";
  body.price = price;
  if (form.executedAt !== "") {
    const at = new Date(form.executedAt); // datetime-local has no zone: the browser's local time
    if (Number.isNaN(at.getTime())) return "Enter the trade's date and time.";
    if (at.getTime() > now.getTime()) return "A recorded trade cannot be in the future.";
    body.executed_at = at.toISOString();
  }
  return body;
}

export interface SeriesPoint {
  time: UTCTimestamp;
  value: number;
}

/**
 * The portfolio's value and the same money held in BTC, as chart series: points without a
 * value (a held symbol had no candle then) are left out rather than drawn as zero, and
 * times are strictly increasing, as lightweight-charts requires.
 */
export function equitySeries(points: readonly Point[]): { value: SeriesPoint[]; benchmark: SeriesPoint[] } {
  const value: SeriesPoint[] = [];
  const benchmark: SeriesPoint[] = [];
  const sorted = [...points].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  const push = (list: SeriesPoint[], time: UTCTimestamp, raw: string | null) => {
    const n = Number(raw);
    if (raw === null || !Number.isFinite(n)) return;
    const last = list.at(-1);
    if (last && last.time === time) last.value = n;
    else list.push({ time, value: n });
  };
  for (const point of sorted) {
    const time = Math.floor(Date.parse(point.at) / 1000) as UTCTimestamp;
    push(value, time, point.value);
    push(benchmark, time, point.benchmark_value);
  }
  return { value, benchmark };
}

export interface RowError {
  row: number | null;
  message: string;
}

/** The rows an import was rejected for (422 `details`: `{row, message}`), else the error itself. */
export function importErrors(error: unknown): RowError[] {
  if (!(error instanceof ApiError)) return [{ row: null, message: error instanceof Error ? error.message : String(error) }];
  const rows: RowError[] = [];
  for (const detail of error.details) {
    if (typeof detail !== "object" || detail === null) continue;
    const { row, message } = detail as { row?: unknown; message?: unknown };
    if (typeof message !== "string") continue;
    rows.push({ row: typeof row === "number" ? row : null, message });
  }
  return rows.length > 0 ? rows : [{ row: null, message: error.message }];
}

/** The file name from a Content-Disposition header, else a default. */
export function attachmentName(header: string | null, fallback: string): string {
  const match = header ? /filename="?([^";]+)"?/i.exec(header) : null;
  return match?.[1] ?? fallback;
}

export type CorrectionBody = components["schemas"]["TransactionPatch"];

/** An ISO instant as a `datetime-local` value in the browser's time zone (minutes). */
export function toLocalInput(iso: string): string {
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export interface CorrectionForm {
  quantity: string;
  price: string;
  fee: string;
  /** a `datetime-local` value */
  executedAt: string;
}

/**
 * The body of `PATCH .../transactions/{id}`: only what the user changed, or the reason the
 * correction cannot be sent. A deposit or withdrawal has no price.
 */
export function correctionBody(
  tx: { quantity: string; price: string | null; fee: string; executed_at: string },
  form: CorrectionForm,
  now: Date = new Date(),
): CorrectionBody | string {
  const body: CorrectionBody = {};
  const quantity = form.quantity.trim();
  if (!DECIMAL.test(quantity) || Number(quantity) <= 0) return "Enter a quantity above zero.";
  if (Number(quantity) !== Number(tx.quantity)) body.quantity = quantity;
  if (tx.price !== null) {
    const price = form.price.trim();
    if (!DECIMAL.test(price) || Number(price) <= 0) return "Enter a price above zero.";
    if (Number(price) !== Number(tx.price)) body.price = price;
  }
  const fee = form.fee.trim();
  if (!DECIMAL.test(fee)) return "Enter a fee of zero or more.";
  if (Number(fee) !== Number(tx.fee)) body.fee = fee;
  if (form.executedAt !== toLocalInput(tx.executed_at)) {
    const at = new Date(form.executedAt);
    if (Number.isNaN(at.getTime())) return "Enter the date and time.";
    if (at.getTime() > now.getTime()) return "A transaction cannot be in the future.";
    body.executed_at = at.toISOString();
  }
  return Object.keys(body).length > 0 ? body : "Nothing was changed.";
}
