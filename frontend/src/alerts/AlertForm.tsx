// One form for creating and editing an alert. Which inputs show comes from the kind's entry
// in KINDS; a new kind of input is one entry in FIELD_INPUTS (and in kinds.ts's FIELDS).
import { useId, useState, type FormEvent, type ReactNode } from "react";

import { COOLDOWNS, DIRECTIONS, formatCooldown, KIND_NAMES, KINDS, NOTE_MAX, WINDOWS, isKind, type Draft, type FieldErrors, type KindField } from "./kinds";
import { SymbolInput } from "./SymbolInput";
import { usePortfolios } from "../portfolio/queries";

function PortfolioSelect(p: InputProps) {
  const portfolios = usePortfolios();
  return (
    <div className="field">
      <label htmlFor={`${p.id}-portfolio`}>Portfolio</label>
      <select id={`${p.id}-portfolio`} value={p.draft.portfolioId} onChange={(e) => p.set({ portfolioId: e.target.value })} {...p.described("portfolio_id")}>
        <option value="">{portfolios.isPending ? "Loading…" : "Choose a portfolio"}</option>
        {(portfolios.data ?? []).map((portfolio) => (
          <option key={portfolio.id} value={portfolio.id}>
            {portfolio.name}
          </option>
        ))}
      </select>
      {p.error("portfolio_id")}
    </div>
  );
}

interface InputProps {
  draft: Draft;
  set: (change: Partial<Draft>) => void;
  /** aria-invalid / aria-describedby for the input, when the field has a problem */
  described: (name: string) => { "aria-invalid"?: true; "aria-describedby"?: string };
  error: (name: string) => ReactNode;
  id: string;
}

const FIELD_INPUTS: Record<KindField, (p: InputProps) => ReactNode> = {
  symbol: (p) => <SymbolInput key="symbol" value={p.draft.symbol} onChange={(symbol) => p.set({ symbol })} described={p.described("symbol")} error={p.error("symbol")} />,
  direction: (p) => (
    <div className="field" key="direction">
      <label htmlFor={`${p.id}-direction`}>Direction</label>
      <select id={`${p.id}-direction`} value={p.draft.direction} onChange={(e) => p.set({ direction: DIRECTIONS.find((d) => d.value === e.target.value)?.value ?? "either" })} {...p.described("direction")}>
        {DIRECTIONS.map((d) => (
          <option key={d.value} value={d.value}>
            {d.label}
          </option>
        ))}
      </select>
      {p.error("direction")}
    </div>
  ),
  window: (p) => (
    <div className="field" key="window">
      <label htmlFor={`${p.id}-window`}>Within</label>
      <select id={`${p.id}-window`} value={p.draft.window} onChange={(e) => p.set({ window: WINDOWS.find((w) => w === e.target.value) ?? "1h" })} {...p.described("window")}>
        {WINDOWS.map((w) => (
          <option key={w}>{w}</option>
        ))}
      </select>
      {p.error("window")}
    </div>
  ),
  portfolio_id: (p) => <PortfolioSelect key="portfolio_id" {...p} />,
};

export interface AlertFormProps {
  initial: Draft;
  /** Editing: kind, symbol, direction and window are fixed (the API changes only the rest). */
  editing?: string;
  errors: FieldErrors;
  pending: boolean;
  submitLabel: string;
  onSubmit: (draft: Draft) => void;
  onCancel?: () => void;
  /** Shown under the inputs (e.g. the symbol's price now). */
  hint?: (draft: Draft) => ReactNode;
  labelledBy?: string;
  label?: string;
}

export function AlertForm({ initial, editing, errors, pending, submitLabel, onSubmit, onCancel, hint, labelledBy, label }: AlertFormProps) {
  const [draft, setDraft] = useState(initial);
  const id = useId();
  const set = (change: Partial<Draft>) => setDraft((d) => ({ ...d, ...change }));
  const errorId = (name: string) => `${id}-${name}-error`;
  const described = (name: string) => (errors[name] ? { "aria-invalid": true as const, "aria-describedby": errorId(name) } : {});
  const error = (name: string) =>
    errors[name] ? (
      <span className="field-error" id={errorId(name)}>
        {errors[name]}
      </span>
    ) : null;
  const spec = KINDS[draft.kind];
  const props: InputProps = { draft, set, described, error, id };

  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    onSubmit(draft);
  };

  return (
    <form className="form alert-form" onSubmit={submit} noValidate aria-labelledby={labelledBy} aria-label={label}>
      {editing ? (
        <p className="muted small">{editing}</p>
      ) : (
        <div className="form-row">
          <div className="field">
            <label htmlFor={`${id}-kind`}>Alert when</label>
            <select id={`${id}-kind`} value={draft.kind} onChange={(e) => isKind(e.target.value) && set({ kind: e.target.value })}>
              {KIND_NAMES.map((k) => (
                <option key={k} value={k}>
                  {KINDS[k].label}
                </option>
              ))}
            </select>
          </div>
          {spec.fields.map((name) => FIELD_INPUTS[name](props))}
        </div>
      )}
      <div className="form-row">
        <div className="field">
          <label htmlFor={`${id}-threshold`}>{spec.level}</label>
          <input id={`${id}-threshold`} value={draft.threshold} onChange={(e) => set({ threshold: e.target.value })} inputMode="decimal" autoComplete="off" placeholder={spec.example} {...described("threshold")} />
          {error("threshold")}
        </div>
        <div className="field">
          <label htmlFor={`${id}-repeat`}>Repeat</label>
          <select id={`${id}-repeat`} value={draft.repeat} onChange={(e) => set({ repeat: e.target.value === "every" ? "every" : "once" })} {...described("repeat")}>
            <option value="once">once</option>
            <option value="every">every time (with a cooldown)</option>
          </select>
          {error("repeat")}
        </div>
        {draft.repeat === "every" && (
          <div className="field">
            <label htmlFor={`${id}-cooldown`}>Cooldown</label>
            <select id={`${id}-cooldown`} value={draft.cooldownSeconds} onChange={(e) => set({ cooldownSeconds: Number(e.target.value) })} {...described("cooldown_seconds")}>
              {withCurrent(draft.cooldownSeconds).map((c) => (
                <option key={c.seconds} value={c.seconds}>
                  {c.label}
                </option>
              ))}
            </select>
            {error("cooldown_seconds")}
          </div>
        )}
      </div>
      <div className="field">
        <label htmlFor={`${id}-note`}>Note (optional)</label>
        <input id={`${id}-note`} value={draft.note} onChange={(e) => set({ note: e.target.value })} maxLength={NOTE_MAX} autoComplete="off" placeholder="Why this level matters" {...described("note")} />
        {error("note")}
      </div>
      {hint?.(draft)}
      {errors[""] && (
        <p className="error" role="alert">
          {errors[""]}
        </p>
      )}
      {Object.keys(errors).some((k) => k !== "") && (
        <p className="error" role="alert">
          Check the highlighted {Object.keys(errors).filter((k) => k !== "").length === 1 ? "field" : "fields"}.
        </p>
      )}
      <div className="form-actions">
        <button type="submit" className="primary" disabled={pending}>
          {submitLabel}
        </button>
        {onCancel && (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}

/** The cooldown presets, plus an alert's own value when it is not one of them. */
function withCurrent(seconds: number) {
  if (COOLDOWNS.some((c) => c.seconds === seconds)) return COOLDOWNS;
  return [...COOLDOWNS, { seconds, label: formatCooldown(seconds) }].sort((a, b) => a.seconds - b.seconds);
}
