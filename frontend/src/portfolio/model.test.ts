import { describe, expect, it } from "vitest";

import { ApiError } from "../api/errors";
import { attachmentName, correctionBody, equitySeries, formatMoney, formatSigned, importErrors, toLocalInput, tone, tradeBody, type TradeForm } from "./model";

const form = (patch: Partial<TradeForm>): TradeForm => ({ side: "buy", symbol: "BTC/USDT", quantity: "0.5", price: "", executedAt: "", ...patch });

describe("tradeBody", () => {
  it("sends a market order without price or time", () => {
    expect(tradeBody(form({}))).toEqual({ kind: "buy", symbol: "BTC/USDT", quantity: "0.5" });
  });

  it("records a past trade with its price and the local time as an ISO instant", () => {
    const now = new Date("2026-12-05T12:00:00Z");
    const body = tradeBody(form({ side: "sell", price: "90000.5", executedAt: "2026-12-01T09:30" }), now);
    expect(body).toEqual({ kind: "sell", symbol: "BTC/USDT", quantity: "0.5", price: "90000.5", executed_at: new Date("2026-12-01T09:30").toISOString() });
  });

  it("refuses a trade dated in the future", () => {
    const now = new Date("2026-12-05T12:00:00Z");
    expect(tradeBody(form({ price: "1", executedAt: "2027-01-01T00:00" }), now)).toMatch(/future/);
  });

  it("refuses a time without a price, since a market order fills now", () => {
    expect(tradeBody(form({ executedAt: "2026-12-01T09:30" }))).toMatch(/market order fills now/);
  });

  it.each(["", "0", "-1", "1e3", "abc", "1."])("refuses the quantity %j", (quantity) => {
    expect(tradeBody(form({ quantity }))).toMatch(/quantity/);
  });

  it("refuses a zero price", () => {
    expect(tradeBody(form({ price: "0" }))).toMatch(/price/);
  });
});

describe("equitySeries", () => {
  it("sorts points, skips unknown values and keeps the benchmark aligned by time", () => {
    const series = equitySeries([
      { at: "2026-12-02T00:00:00Z", value: "110", benchmark_value: "105", net_deposits: "100" },
      { at: "2026-12-01T00:00:00Z", value: "100", benchmark_value: "100", net_deposits: "100" },
      { at: "2026-12-03T00:00:00Z", value: null, benchmark_value: "99", net_deposits: "100" },
    ]);
    const t = (iso: string) => Date.parse(iso) / 1000;
    expect(series.value).toEqual([
      { time: t("2026-12-01T00:00:00Z"), value: 100 },
      { time: t("2026-12-02T00:00:00Z"), value: 110 },
    ]);
    expect(series.benchmark.map((p) => p.value)).toEqual([100, 105, 99]);
  });

  it("keeps one point per second (the chart requires increasing times)", () => {
    const series = equitySeries([
      { at: "2026-12-01T00:00:00.100Z", value: "1", benchmark_value: null, net_deposits: "0" },
      { at: "2026-12-01T00:00:00.900Z", value: "2", benchmark_value: null, net_deposits: "0" },
    ]);
    expect(series.value).toEqual([{ time: Date.parse("2026-12-01T00:00:00Z") / 1000, value: 2 }]);
    expect(series.benchmark).toEqual([]);
  });
});

describe("importErrors", () => {
  it("lists the rows a rejected file names", () => {
    const error = new ApiError(422, "import_rejected", "2 rows are invalid", null, [
      { row: 3, message: "unknown symbol FOO/USDT" },
      { row: 7, message: "sells more than held" },
    ]);
    expect(importErrors(error)).toEqual([
      { row: 3, message: "unknown symbol FOO/USDT" },
      { row: 7, message: "sells more than held" },
    ]);
  });

  it("falls back to the error's message when there are no row details", () => {
    expect(importErrors(new ApiError(415, "unsupported_media_type", "Send the file as text/csv"))).toEqual([{ row: null, message: "Send the file as text/csv" }]);
  });
});

describe("formatting", () => {
  it("formats money with two decimals and signs profits", () => {
    expect(formatMoney("12345.678")).toBe("12,345.68");
    expect(formatMoney(null)).toBe("–");
    expect(formatSigned("12.5")).toBe("+12.50");
    expect(formatSigned("-3")).toBe("-3.00");
  });

  it("colours gains and losses, not zero or unknown", () => {
    expect([tone("1"), tone("-0.01"), tone("0"), tone(null)]).toEqual(["up", "down", "", ""]);
  });

  it("reads the download's file name", () => {
    expect(attachmentName('attachment; filename="portfolio-1.csv"', "x.csv")).toBe("portfolio-1.csv");
    expect(attachmentName(null, "x.csv")).toBe("x.csv");
  });
});

describe("correctionBody", () => {
  const tx = { quantity: "0.5", price: "100.00", fee: "0.05", executed_at: "2026-12-01T09:30:00Z" };
  const unchanged = { quantity: "0.50", price: "100", fee: "0.050", executedAt: toLocalInput(tx.executed_at) };
  const now = new Date("2026-12-05T12:00:00Z");

  it("sends only the fields that changed", () => {
    expect(correctionBody(tx, { ...unchanged, price: "95.5" }, now)).toEqual({ price: "95.5" });
    const earlier = toLocalInput("2026-11-30T08:00:00Z");
    expect(correctionBody(tx, { ...unchanged, quantity: "1", executedAt: earlier }, now)).toEqual({ quantity: "1", executed_at: new Date(earlier).toISOString() });
  });

  it("says so when nothing changed (equal numbers written differently)", () => {
    expect(correctionBody(tx, unchanged, now)).toBe("Nothing was changed.");
  });

  it("ignores the price of a deposit, which has none", () => {
    expect(correctionBody({ ...tx, price: null }, { ...unchanged, price: "", quantity: "200" }, now)).toEqual({ quantity: "200" });
  });

  it("refuses a bad quantity, a negative fee or a time in the future", () => {
    expect(correctionBody(tx, { ...unchanged, quantity: "0" }, now)).toMatch(/quantity/);
    expect(correctionBody(tx, { ...unchanged, fee: "-1" }, now)).toMatch(/fee/);
    expect(correctionBody(tx, { ...unchanged, executedAt: "2027-01-01T00:00" }, now)).toMatch(/future/);
  });
});
