// Price alerts on today's API (`/alerts`: above/below a level, fired once). The alerts
// issue adds kinds, repeat modes and the notification inbox; the generated types will show
// what changes.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";

import { api, data } from "../api/client";
import { describe, field, toApiError } from "../api/errors";
import type { components } from "../api/schema";
import { formatPrice } from "../market/consolidate";
import { useTickers } from "../market/hooks";

type Alert = components["schemas"]["AlertOut"];
type Condition = components["schemas"]["AlertIn"]["condition"];
const ALERTS = ["alerts"] as const;

export function AlertsPage() {
  const client = useQueryClient();
  const alerts = useQuery({ queryKey: ALERTS, queryFn: () => data(api.GET("/api/v1/alerts")), refetchInterval: 10_000 });
  const tickers = useTickers();
  const create = useMutation({
    mutationFn: (body: { symbol: string; condition: Condition; threshold: string }) =>
      data(
        api.POST("/api/v1/alerts", {
          body: {
            kind: body.condition === "below" ? "price_below" : "price_above",
            symbol: body.symbol,
            threshold: body.threshold,
            repeat: "once",
            cooldown_seconds: 3600,
          },
        }),
      ),
    onSuccess: () => client.invalidateQueries({ queryKey: ALERTS }),
  });
  const [symbol, setSymbol] = useState("BTC/USDT");
  const current = tickers.data?.tickers.find((t) => t.symbol === symbol);

  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    create.mutate({ symbol, condition: field(form, "condition") === "below" ? "below" : "above", threshold: field(form, "threshold") });
  };

  return (
    <div className="page narrow-wide">
      <h1>Alerts</h1>
      <form className="card form" onSubmit={submit} aria-labelledby="new-alert">
        <h2 id="new-alert">New price alert</h2>
        <div className="form-row">
          <label>
            Symbol
            <select value={symbol} onChange={(e) => setSymbol(e.target.value)}>
              {(tickers.data?.tickers.map((t) => t.symbol) ?? ["BTC/USDT"]).map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          </label>
          <label>
            When the price is
            <select name="condition" defaultValue="above">
              <option value="above">above</option>
              <option value="below">below</option>
            </select>
          </label>
          <label>
            Level
            <input name="threshold" inputMode="decimal" required pattern="[0-9]+([.][0-9]+)?" placeholder={current ? formatPrice(current.price).replaceAll(",", "") : "100000"} />
          </label>
        </div>
        {current && <p className="muted small">Now {formatPrice(current.price)}</p>}
        {create.isError && <p className="error" role="alert">{describe(create.error)}</p>}
        <button type="submit" className="primary" disabled={create.isPending}>
          Create alert
        </button>
      </form>
      <section className="card" aria-labelledby="your-alerts">
        <h2 id="your-alerts">Your alerts</h2>
        {alerts.isError && <p className="error" role="alert">{describe(alerts.error)}</p>}
        {alerts.data?.length === 0 && <p className="muted">No alerts yet.</p>}
        <ul className="alert-list">
          {alerts.data?.map((alert) => <AlertItem key={alert.id} alert={alert} />)}
        </ul>
      </section>
    </div>
  );
}

function AlertItem({ alert }: { alert: Alert }) {
  const client = useQueryClient();
  const [confirming, setConfirming] = useState(false);
  const remove = useMutation({
    mutationFn: async () => {
      const { response, error } = await api.DELETE("/api/v1/alerts/{alert_id}", { params: { path: { alert_id: alert.id } } });
      if (!response.ok) throw toApiError(response, error);
    },
  });
  const label = `${alert.symbol} ${alert.condition} ${formatPrice(alert.threshold)}`;
  return (
    <li className="alert-item">
      <span>
        <strong>{alert.symbol}</strong> {alert.condition} {formatPrice(alert.threshold)}{" "}
        {alert.triggered_at ? (
          <span className="badge ok">
            fired at {formatPrice(alert.triggered_price)} on {new Date(alert.triggered_at).toLocaleString()}
          </span>
        ) : (
          <span className="badge">waiting</span>
        )}
      </span>
      {confirming ? (
        <span role="alertdialog" aria-label={`Delete the alert ${label}?`}>
          <button
            type="button"
            className="danger"
            disabled={remove.isPending}
            onClick={() => {
              remove.mutate(undefined, { onSuccess: () => void client.invalidateQueries({ queryKey: ALERTS }) });
            }}
          >
            Delete
          </button>{" "}
          <button type="button" autoFocus onClick={() => setConfirming(false)}>
            Keep
          </button>
        </span>
      ) : (
        <button type="button" aria-label={`Delete the alert ${label}`} onClick={() => setConfirming(true)}>
          Delete
        </button>
      )}
      {remove.isError && <p className="error" role="alert">{describe(remove.error)}</p>}
    </li>
  );
}
