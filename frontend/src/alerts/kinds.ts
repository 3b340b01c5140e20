// Every alert kind the API takes, as one table: the fields a kind asks for, how its level
// reads, and how an alert of it is described. The form, the request body and the list are
// all driven from here, so a new kind is one entry in KINDS (plus, when it asks for a new
// kind of input, one entry in FIELDS here and in the form's FIELD_INPUTS).
import { ApiError } from "../api/errors";
import type { components } from "../api/schema";
import { formatPrice } from "../market/consolidate";

export type Alert = components["schemas"]["AlertOut"];
export type AlertCreated = components["schemas"]["AlertCreated"];
export type AlertBody = components["schemas"]["AlertIn"];
export type AlertPatch = components["schemas"]["AlertPatch"];
export type Kind = components["schemas"]["Kind"];
export type Direction = components["schemas"]["Direction"];
export type Repeat = components["schemas"]["Repeat"];
export type Window = NonNullable<AlertBody["window"]>;

export const WINDOWS: readonly Window[] = ["5m", "1h", "4h", "24h"];
export const DIRECTIONS: readonly { value: Direction; label: string }[] = [
  { value: "either", label: "up or down" },
  { value: "up", label: "up" },
  { value: "down", label: "down" },
];
/** Cooldowns offered between two firings of a repeating alert (the API takes 60 s to 7 days). */
export const COOLDOWNS: readonly { seconds: number; label: string }[] = [
  { seconds: 300, label: "5 minutes" },
  { seconds: 900, label: "15 minutes" },
  { seconds: 3600, label: "1 hour" },
  { seconds: 4 * 3600, label: "4 hours" },
  { seconds: 24 * 3600, label: "1 day" },
  { seconds: 7 * 24 * 3600, label: "1 week" },
];
export const DEFAULT_COOLDOWN = 3600; // the API's default
export const NOTE_MAX = 280; // the API's limit

/** What the form holds, as typed: every kind's inputs, of which a kind sends its own. */
export interface Draft {
  kind: Kind;
  symbol: string;
  threshold: string;
  direction: Direction;
  window: Window;
  repeat: Repeat;
  cooldownSeconds: number;
  note: string;
  portfolioId: string;
}

export const EMPTY_DRAFT: Draft = { kind: "price_above", symbol: "BTC/USDT", threshold: "", direction: "either", window: "1h", repeat: "once", cooldownSeconds: DEFAULT_COOLDOWN, note: "", portfolioId: "" };

/** An input some kinds ask for (the level, repeat, cooldown and note every kind has). */
export type KindField = "symbol" | "direction" | "window" | "portfolio_id";

interface FieldSpec {
  /** The part of the request body this input makes. */
  body: (draft: Draft) => Partial<AlertBody>;
  /** A problem to show before sending, or null (ranges are the server's to judge). */
  check: (draft: Draft) => string | null;
}

export const FIELDS: Record<KindField, FieldSpec> = {
  symbol: {
    body: (d) => ({ symbol: d.symbol.trim().toUpperCase() }),
    check: (d) => (d.symbol.trim() ? null : "Choose a symbol."),
  },
  direction: { body: (d) => ({ direction: d.direction }), check: () => null },
  window: { body: (d) => ({ window: d.window }), check: () => null },
  portfolio_id: { body: (d) => ({ portfolio_id: d.portfolioId }), check: (d) => (d.portfolioId ? null : "Choose a portfolio.") },
};

export interface KindSpec {
  label: string;
  fields: readonly KindField[];
  /** The level's label in the form ("Price", "Change (%)", "Index value"). */
  level: string;
  /** What the level looks like, shown as the input's placeholder. */
  example: string;
  /** One line saying what an alert of this kind watches. */
  describe: (a: Pick<Alert, "symbol" | "threshold" | "direction" | "window">) => string;
  /** How a firing's recorded value reads (a price, or an index value). */
  formatValue: (value: string | null) => string;
}

const index = (value: string | null) => (value === null ? "–" : String(Number(value)));

export const KINDS: Record<Kind, KindSpec> = {
  price_above: {
    label: "Price rises above",
    fields: ["symbol"],
    level: "Price",
    example: "100000",
    describe: (a) => `${a.symbol ?? "?"} above ${formatPrice(a.threshold)}`,
    formatValue: formatPrice,
  },
  price_below: {
    label: "Price falls below",
    fields: ["symbol"],
    level: "Price",
    example: "90000",
    describe: (a) => `${a.symbol ?? "?"} below ${formatPrice(a.threshold)}`,
    formatValue: formatPrice,
  },
  change_pct: {
    label: "Price moves by a percentage",
    fields: ["symbol", "direction", "window"],
    level: "Change (%)",
    example: "5",
    describe: (a) => `${a.symbol ?? "?"} ${DIRECTIONS.find((d) => d.value === a.direction)?.label ?? "up or down"} ${index(a.threshold)} % within ${a.window ?? "?"}`,
    formatValue: formatPrice,
  },
  fear_greed_above: {
    label: "Fear & Greed rises above",
    fields: [],
    level: "Index value (1–99)",
    example: "75",
    describe: (a) => `Fear & Greed above ${index(a.threshold)}`,
    formatValue: index,
  },
  fear_greed_below: {
    label: "Fear & Greed falls below",
    fields: [],
    level: "Index value (1–99)",
    example: "25",
    describe: (a) => `Fear & Greed below ${index(a.threshold)}`,
    formatValue: index,
  },
  portfolio_value_above: {
    label: "Portfolio value rises above",
    fields: ["portfolio_id"],
    level: "Value (base currency)",
    example: "12000",
    describe: (a) => `Portfolio value above ${formatPrice(a.threshold)}`,
    formatValue: formatPrice,
  },
  portfolio_value_below: {
    label: "Portfolio value falls below",
    fields: ["portfolio_id"],
    level: "Value (base currency)",
    example: "9000",
    describe: (a) => `Portfolio value below ${formatPrice(a.threshold)}`,
    formatValue: formatPrice,
  },
  portfolio_return_below: {
    label: "Portfolio falls from its peak by",
    fields: ["portfolio_id"],
    level: "Drawdown from peak (%)",
    example: "10",
    describe: (a) => `Portfolio ${index(a.threshold)} % below its peak`,
    formatValue: formatPrice,
  },
};

export const KIND_NAMES = Object.keys(KINDS) as Kind[];

export function isKind(value: string): value is Kind {
  return Object.hasOwn(KINDS, value);
}

/** A kind's spec; an alert of a kind this build does not know still gets a readable line. */
export function kindOf(kind: string): KindSpec {
  if (isKind(kind)) return KINDS[kind];
  return { label: kind, fields: [], level: "Level", example: "", describe: (a) => `${kind} ${a.symbol ?? ""} ${a.threshold ?? ""}`.trim(), formatValue: formatPrice };
}

/** Problems keyed by field name ("threshold", "symbol", …; "" for the whole request). */
export type FieldErrors = Record<string, string>;
/** A request body, or what to fix before sending one. */
export type Checked<T> = { ok: true; body: T } | { ok: false; errors: FieldErrors };

const DECIMAL = /^\d+(\.\d+)?$/;

function common(draft: Draft): Pick<AlertBody, "threshold" | "repeat" | "cooldown_seconds" | "note"> {
  const note = draft.note.trim();
  return { threshold: draft.threshold.trim(), repeat: draft.repeat, cooldown_seconds: draft.cooldownSeconds, note: note || null };
}

function checkLevel(draft: Draft): string | null {
  return DECIMAL.test(draft.threshold.trim()) ? null : "Enter a number, like " + KINDS[draft.kind].example + ".";
}

/** The POST body for a draft: only the fields its kind takes; or what to fix first. */
export function alertBody(draft: Draft): Checked<AlertBody> {
  const spec = KINDS[draft.kind];
  const errors: FieldErrors = {};
  const level = checkLevel(draft);
  if (level) errors.threshold = level;
  let body: AlertBody = { kind: draft.kind, ...common(draft) };
  for (const name of spec.fields) {
    const problem = FIELDS[name].check(draft);
    if (problem) errors[name] = problem;
    body = { ...body, ...FIELDS[name].body(draft) };
  }
  return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, body };
}

/** A draft holding an alert's values, for editing it. */
export function draftOf(alert: Alert): Draft {
  return {
    kind: isKind(alert.kind) ? alert.kind : EMPTY_DRAFT.kind,
    symbol: alert.symbol ?? "",
    threshold: alert.threshold ?? "",
    direction: DIRECTIONS.find((d) => d.value === alert.direction)?.value ?? "either",
    window: WINDOWS.find((w) => w === alert.window) ?? "1h",
    repeat: alert.repeat === "every" ? "every" : "once",
    cooldownSeconds: alert.cooldown_seconds,
    note: alert.note ?? "",
    portfolioId: alert.portfolio_id ?? "",
  };
}

/** The PATCH body for an edited alert: only what changed (an emptied note is cleared: null). */
export function patchBody(alert: Alert, draft: Draft): Checked<AlertPatch> {
  const level = checkLevel(draft);
  if (level) return { ok: false, errors: { threshold: level } };
  const before = draftOf(alert);
  const patch: AlertPatch = {};
  const threshold = draft.threshold.trim();
  if (Number(threshold) !== Number(before.threshold)) patch.threshold = threshold;
  if (draft.repeat !== before.repeat) patch.repeat = draft.repeat;
  if (draft.cooldownSeconds !== before.cooldownSeconds) patch.cooldown_seconds = draft.cooldownSeconds;
  const note = draft.note.trim();
  if (note !== before.note) patch.note = note || null;
  return { ok: true, body: patch };
}

/**
 * A refused request's problems by field: a 422's details name the field ("threshold",
 * "cooldown_seconds", or a dotted path whose first part is the field); the rest (and any
 * other error) goes under "".
 */
export function fieldErrors(error: unknown, known: readonly string[]): FieldErrors {
  const errors: FieldErrors = {};
  if (error instanceof ApiError && error.status === 422) {
    for (const detail of error.details) {
      if (typeof detail !== "object" || detail === null) continue;
      const { field, message } = detail as { field?: unknown; message?: unknown };
      const name = typeof field === "string" ? field.split(".")[0] : "";
      const text = typeof message === "string" ? message : "";
      if (name && known.includes(name) && text) errors[name] = errors[name] ? `${errors[name]}; ${text}` : text;
    }
  }
  if (Object.keys(errors).length === 0) errors[""] = error instanceof Error ? error.message : String(error);
  return errors;
}

/** A cooldown as people say it: "1 hour", "90 minutes", "2 days". */
export function formatCooldown(seconds: number): string {
  const preset = COOLDOWNS.find((c) => c.seconds === seconds);
  if (preset) return preset.label;
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  if (seconds % 86400 === 0) return plural(seconds / 86400, "day");
  if (seconds % 3600 === 0) return plural(seconds / 3600, "hour");
  if (seconds % 60 === 0) return plural(seconds / 60, "minute");
  return plural(seconds, "second");
}

/** The alert's state as a word and a badge tone. */
export function stateOf(alert: Pick<Alert, "status">): { label: string; tone: "ok" | "warn" | "" } {
  if (alert.status === "paused") return { label: "paused", tone: "warn" };
  if (alert.status === "triggered") return { label: "triggered", tone: "ok" };
  if (alert.status === "active") return { label: "active", tone: "" };
  return { label: alert.status, tone: "" };
}
