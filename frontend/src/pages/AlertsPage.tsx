// Alerts: create one of every kind the API has (kinds.ts's table), see each alert's state,
// fire count and last trigger, edit, pause / resume and delete it.
import { useState } from "react";

import "../alerts/alerts.css";
import { AlertForm } from "../alerts/AlertForm";
import { AlertItem } from "../alerts/AlertItem";
import { alertBody, EMPTY_DRAFT, fieldErrors, KINDS, type Draft, type FieldErrors } from "../alerts/kinds";
import { useAlerts, useCreateAlert } from "../alerts/queries";
import { describe } from "../api/errors";
import { formatPrice } from "../market/consolidate";
import { useTickers } from "../market/hooks";

// every field a create request can be refused for, as the API names them
const CREATE_FIELDS = ["kind", "symbol", "portfolio_id", "threshold", "direction", "window", "repeat", "cooldown_seconds", "note"] as const;

export function AlertsPage() {
  const alerts = useAlerts();
  return (
    <div className="page narrow-wide">
      <h1>Alerts</h1>
      <NewAlert />
      <section className="card" aria-labelledby="your-alerts">
        <h2 id="your-alerts">Your alerts</h2>
        {alerts.isPending && (
          <p className="muted" role="status">
            Loading…
          </p>
        )}
        {alerts.isError && (
          <p className="error" role="alert">
            {describe(alerts.error)}
          </p>
        )}
        {alerts.data?.length === 0 && <p className="muted">No alerts yet.</p>}
        <ul className="alert-list">
          {alerts.data?.map((alert) => (
            <AlertItem key={alert.id} alert={alert} />
          ))}
        </ul>
      </section>
    </div>
  );
}

function NewAlert() {
  const create = useCreateAlert();
  const tickers = useTickers();
  const [errors, setErrors] = useState<FieldErrors>({});
  const [notice, setNotice] = useState<{ text: string; warn: boolean } | null>(null);
  // a new key empties the form after a successful create
  const [generation, setGeneration] = useState(0);

  const submit = (draft: Draft) => {
    setNotice(null);
    const checked = alertBody(draft);
    if (!checked.ok) {
      setErrors(checked.errors);
      return;
    }
    setErrors({});
    create.mutate(checked.body, {
      onSuccess: (result) => {
        const what = KINDS[draft.kind].describe(result);
        setNotice(result.already_triggered ? { text: result.message ?? `${what}: the condition already holds; the alert waits for the next crossing.`, warn: true } : { text: `Alert created: ${what}.`, warn: false });
        setGeneration((g) => g + 1);
      },
      onError: (error) => setErrors(fieldErrors(error, CREATE_FIELDS)),
    });
  };

  const now = (draft: Draft) => {
    if (!KINDS[draft.kind].fields.includes("symbol")) return null;
    const ticker = tickers.data?.tickers.find((t) => t.symbol === draft.symbol.trim().toUpperCase());
    return ticker ? <p className="muted small">Now {formatPrice(ticker.price)}</p> : null;
  };

  return (
    <section className="card" aria-labelledby="new-alert">
      <h2 id="new-alert">New alert</h2>
      <AlertForm key={generation} initial={EMPTY_DRAFT} labelledBy="new-alert" errors={errors} pending={create.isPending} submitLabel="Create alert" onSubmit={submit} hint={now} />
      {notice && (
        <p className={notice.warn ? "notice warn" : "notice up"} role="status">
          {notice.text}
        </p>
      )}
    </section>
  );
}
