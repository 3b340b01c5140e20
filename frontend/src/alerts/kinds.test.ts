import { ApiError } from "../api/errors";
import { alertBody, draftOf, EMPTY_DRAFT, fieldErrors, formatCooldown, KIND_NAMES, KINDS, patchBody, stateOf, type Alert } from "./kinds";

const alert: Alert = {
  id: "a1",
  kind: "change_pct",
  condition: null,
  symbol: "ETH/USDT",
  threshold: "5",
  direction: "down",
  window: "4h",
  repeat: "every",
  cooldown_seconds: 900,
  note: "dip",
  status: "active",
  fire_count: 0,
  created_at: "2026-12-05T10:00:00Z",
  triggered_at: null,
  triggered_price: null,
  portfolio_id: null,
};

describe("alertBody", () => {
  it("sends only the fields a price alert takes", () => {
    expect(alertBody({ ...EMPTY_DRAFT, kind: "price_below", symbol: " eth/usdt ", threshold: "1800.5", direction: "down", window: "5m" })).toEqual({
      ok: true,
      body: { kind: "price_below", symbol: "ETH/USDT", threshold: "1800.5", repeat: "once", cooldown_seconds: 3600, note: null },
    });
  });

  it("sends direction and window for a percentage move", () => {
    const checked = alertBody({ ...EMPTY_DRAFT, kind: "change_pct", symbol: "BTC/USDT", threshold: "3", direction: "up", window: "24h", repeat: "every", cooldownSeconds: 900, note: " big move " });
    expect(checked).toEqual({
      ok: true,
      body: { kind: "change_pct", symbol: "BTC/USDT", direction: "up", window: "24h", threshold: "3", repeat: "every", cooldown_seconds: 900, note: "big move" },
    });
  });

  it("sends no symbol for a Fear & Greed alert, whatever the symbol field still holds", () => {
    const checked = alertBody({ ...EMPTY_DRAFT, kind: "fear_greed_below", symbol: "BTC/USDT", threshold: "20" });
    expect(checked.ok && checked.body).toEqual({ kind: "fear_greed_below", threshold: "20", repeat: "once", cooldown_seconds: 3600, note: null });
  });

  it("sends the chosen portfolio and no symbol for a portfolio alert, and asks for one when none is chosen", () => {
    const checked = alertBody({ ...EMPTY_DRAFT, kind: "portfolio_return_below", symbol: "BTC/USDT", threshold: "10", portfolioId: "p-1" });
    expect(checked.ok && checked.body).toEqual({ kind: "portfolio_return_below", portfolio_id: "p-1", threshold: "10", repeat: "once", cooldown_seconds: 3600, note: null });
    expect(alertBody({ ...EMPTY_DRAFT, kind: "portfolio_value_below", threshold: "9000" })).toEqual({ ok: false, errors: { portfolio_id: "Choose a portfolio." } });
  });

  it("names each field to fix before sending", () => {
    expect(alertBody({ ...EMPTY_DRAFT, kind: "price_above", symbol: "  ", threshold: "1e5" })).toEqual({
      ok: false,
      errors: { threshold: "Enter a number, like 100000.", symbol: "Choose a symbol." },
    });
    expect(alertBody({ ...EMPTY_DRAFT, kind: "fear_greed_above", symbol: "", threshold: "" })).toEqual({ ok: false, errors: { threshold: "Enter a number, like 75." } });
  });

  it("has an entry for every kind the API accepts", () => {
    expect(KIND_NAMES).toEqual(["price_above", "price_below", "change_pct", "fear_greed_above", "fear_greed_below", "portfolio_value_above", "portfolio_value_below", "portfolio_return_below"]);
  });
});

describe("patchBody", () => {
  it("sends only what changed", () => {
    const draft = { ...draftOf(alert), threshold: "7.5", cooldownSeconds: 3600 };
    expect(patchBody(alert, draft)).toEqual({ ok: true, body: { threshold: "7.5", cooldown_seconds: 3600 } });
  });

  it("sends nothing for an unchanged alert, even when the level is written differently", () => {
    expect(patchBody(alert, { ...draftOf(alert), threshold: "5.0" })).toEqual({ ok: true, body: {} });
  });

  it("clears an emptied note with null and switches the repeat mode", () => {
    expect(patchBody(alert, { ...draftOf(alert), note: "  ", repeat: "once" })).toEqual({ ok: true, body: { repeat: "once", note: null } });
  });

  it("refuses a level that is not a number", () => {
    expect(patchBody(alert, { ...draftOf(alert), threshold: "five" })).toEqual({ ok: false, errors: { threshold: "Enter a number, like 5." } });
  });
});

describe("fieldErrors", () => {
  const refused = (details: unknown[]) => new ApiError(422, "validation_error", "Invalid alert: threshold", null, details);

  it("puts each 422 detail under its field, joining two for one field", () => {
    const error = refused([
      { field: "threshold", in: "body", message: "a Fear & Greed value from 1 to 99" },
      { field: "cooldown_seconds", in: "body", message: "from 60 to 604800 seconds" },
      { field: "threshold.decimal", in: "body", message: "Input should be greater than 0" },
    ]);
    expect(fieldErrors(error, ["threshold", "cooldown_seconds"])).toEqual({
      threshold: "a Fear & Greed value from 1 to 99; Input should be greater than 0",
      cooldown_seconds: "from 60 to 604800 seconds",
    });
  });

  it("keeps the message for the whole form when no field is one the form shows", () => {
    expect(fieldErrors(refused([{ field: "portfolio_id", message: "unknown" }]), ["threshold"])).toEqual({ "": "Invalid alert: threshold" });
    expect(fieldErrors(new ApiError(429, "rate_limited", "Too many requests"), ["threshold"])).toEqual({ "": "Too many requests" });
  });
});

describe("describing alerts", () => {
  it("reads each kind as one line", () => {
    expect(KINDS.price_above.describe({ symbol: "BTC/USDT", threshold: "100000", direction: null, window: null })).toBe("BTC/USDT above 100,000.00");
    expect(KINDS.change_pct.describe(alert)).toBe("ETH/USDT down 5 % within 4h");
    expect(KINDS.change_pct.describe({ ...alert, direction: "either" })).toBe("ETH/USDT up or down 5 % within 4h");
    expect(KINDS.fear_greed_below.describe({ symbol: null, threshold: "20", direction: null, window: null })).toBe("Fear & Greed below 20");
  });

  it("says cooldowns and states in words", () => {
    expect(formatCooldown(900)).toBe("15 minutes");
    expect(formatCooldown(7200)).toBe("2 hours");
    expect(formatCooldown(90)).toBe("90 seconds");
    expect(stateOf({ status: "paused" })).toEqual({ label: "paused", tone: "warn" });
    expect(stateOf({ status: "triggered" })).toEqual({ label: "triggered", tone: "ok" });
  });
});
