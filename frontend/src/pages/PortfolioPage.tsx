// Shadow portfolios (paper trading): pick or create one, see what it holds and how it did,
// buy or sell at market or record a past trade, import/export its ledger as CSV.
import { useMemo, useState, type FormEvent } from "react";

import { describe, field } from "../api/errors";
import { EquityChart } from "../components/EquityChart";
import { formatPct, formatPrice } from "../market/consolidate";
import { useTickers } from "../market/hooks";
import { PortfolioActions } from "../portfolio/PortfolioActions";
import { correctionBody, equitySeries, formatMoney, formatQuantity, formatSigned, importErrors, RANGES, toLocalInput, tone, tradeBody, type Range } from "../portfolio/model";
import {
  downloadExport,
  useCorrectTransaction,
  useCreatePortfolio,
  useDeleteTransaction,
  useImport,
  usePerformance,
  usePortfolios,
  useSummary,
  useTrade,
  useTransactions,
  type Transaction,
} from "../portfolio/queries";

export function PortfolioPage() {
  const portfolios = usePortfolios();
  const [chosen, setChosen] = useState<string | null>(null);
  const list = portfolios.data ?? [];
  const current = list.find((p) => p.id === chosen) ?? list.find((p) => p.is_default) ?? list[0];

  return (
    <div className="page portfolio">
      <div className="card-head">
        <h1>Portfolio</h1>
        {list.length > 0 && current && (
          <label className="inline-form">
            <span className="sr-only">Portfolio</span>
            <select aria-label="Portfolio" value={current.id} onChange={(e) => setChosen(e.target.value)}>
              {list.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.name}
                  {p.is_default ? " (default)" : ""}
                </option>
              ))}
            </select>
          </label>
        )}
        {current && <PortfolioActions key={current.id} portfolio={current} onDeleted={() => setChosen(null)} />}
      </div>
      <p className="muted small">Paper trading: nothing here touches an exchange.</p>
      {portfolios.isPending && <p className="muted" role="status">Loading…</p>}
      {portfolios.isError && <p className="error" role="alert">{describe(portfolios.error)}</p>}
      {current && <PortfolioView key={current.id} id={current.id} currency={current.base_currency} />}
      <NewPortfolio onCreated={setChosen} />
    </div>
  );
}

function PortfolioView({ id, currency }: { id: string; currency: string }) {
  return (
    <div className="portfolio-grid">
      <div className="column">
        <SummaryCard id={id} currency={currency} />
        <PerformanceCard id={id} />
        <TransactionsCard id={id} />
      </div>
      <div className="column">
        <TradeCard id={id} />
        <ImportExportCard id={id} />
      </div>
    </div>
  );
}

function SummaryCard({ id, currency }: { id: string; currency: string }) {
  const summary = useSummary(id);
  const s = summary.data;
  return (
    <section className="card" aria-labelledby="summary-head">
      <h2 id="summary-head">Summary</h2>
      {summary.isError && <p className="error" role="alert">{describe(summary.error)}</p>}
      {s && (
        <>
          <dl className="facts summary">
            <dt>Total value</dt>
            <dd>
              {formatMoney(s.total_value)} {currency}
            </dd>
            <dt>Cash</dt>
            <dd>{formatMoney(s.cash)}</dd>
            <dt>Unrealized P&amp;L</dt>
            <dd className={tone(s.unrealized_pnl)}>{formatSigned(s.unrealized_pnl)}</dd>
            <dt>Realized P&amp;L</dt>
            <dd className={tone(s.realized_pnl)}>{formatSigned(s.realized_pnl)}</dd>
            <dt>Total return</dt>
            <dd className={tone(s.total_return)}>
              {formatSigned(s.total_return)} ({formatPct(s.total_return_pct)})
            </dd>
            <dt>Fees paid</dt>
            <dd>{formatMoney(s.fees_paid)}</dd>
          </dl>
          {!s.priced_all && <p className="badge warn">A holding has no fresh price and is left out of the totals.</p>}
          {s.positions.length === 0 ? (
            <p className="muted">No positions yet.</p>
          ) : (
            <div className="table-scroll">
              <table aria-label="Positions">
                <thead>
                  <tr>
                    <th scope="col">Symbol</th>
                    <th scope="col" className="num">Quantity</th>
                    <th scope="col" className="num">Avg cost</th>
                    <th scope="col" className="num">Price</th>
                    <th scope="col" className="num">Value</th>
                    <th scope="col" className="num">Unrealized P&amp;L</th>
                    <th scope="col" className="num">Weight</th>
                  </tr>
                </thead>
                <tbody>
                  {s.positions.map((p) => (
                    <tr key={p.symbol}>
                      <th scope="row">
                        {p.symbol} {p.stale && <span className="badge warn">stale</span>} {p.diverged && <span className="badge warn">diverged</span>}
                      </th>
                      <td className="num">{formatQuantity(p.quantity)}</td>
                      <td className="num">{formatPrice(p.average_cost)}</td>
                      <td className="num">{formatPrice(p.price)}</td>
                      <td className="num">{formatMoney(p.value)}</td>
                      <td className={`num ${tone(p.pnl)}`}>
                        {formatSigned(p.pnl)} ({formatPct(p.pnl_pct)})
                      </td>
                      <td className="num">{p.weight_pct === null ? "–" : `${Number(p.weight_pct).toFixed(1)}%`}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </section>
  );
}

function TradeCard({ id }: { id: string }) {
  const tickers = useTickers();
  const trade = useTrade(id);
  const [symbol, setSymbol] = useState("BTC/USDT");
  const [side, setSide] = useState<"buy" | "sell">("buy");
  const [invalid, setInvalid] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const price = tickers.data?.tickers.find((t) => t.symbol === symbol)?.price;

  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const body = tradeBody({ side, symbol, quantity: field(data, "quantity"), price: field(data, "price"), executedAt: field(data, "executed_at") });
    setDone(null);
    if (typeof body === "string") {
      setInvalid(body);
      return;
    }
    setInvalid(null);
    trade.mutate(
      { body, idempotencyKey: crypto.randomUUID() },
      {
        onSuccess: (tx) => {
          setDone(`${tx.kind === "buy" ? "Bought" : "Sold"} ${formatQuantity(tx.quantity)} ${tx.symbol ?? ""} at ${formatPrice(tx.price)}`);
          form.reset();
        },
      },
    );
  };

  return (
    <form className="card form" onSubmit={submit} aria-labelledby="trade-head">
      <h2 id="trade-head">Trade</h2>
      <div className="form-row">
        <label>
          Side
          <select value={side} onChange={(e) => setSide(e.target.value === "sell" ? "sell" : "buy")}>
            <option value="buy">Buy</option>
            <option value="sell">Sell</option>
          </select>
        </label>
        <label>
          Symbol
          <select value={symbol} onChange={(e) => setSymbol(e.target.value)}>
            {(tickers.data?.tickers.map((t) => t.symbol) ?? ["BTC/USDT"]).map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Quantity
          <input name="quantity" inputMode="decimal" required autoComplete="off" />
        </label>
      </div>
      <details>
        <summary>Record a past trade (price and time)</summary>
        <div className="form-row">
          <label>
            Price (blank: market)
            <input name="price" inputMode="decimal" autoComplete="off" placeholder={price ? formatPrice(price).replaceAll(",", "") : ""} />
          </label>
          <label>
            Executed at (your time)
            <input name="executed_at" type="datetime-local" />
          </label>
        </div>
      </details>
      {price && <p className="muted small">Market price now {formatPrice(price)}</p>}
      {invalid && <p className="error" role="alert">{invalid}</p>}
      {trade.isError && <p className="error" role="alert">{describe(trade.error)}</p>}
      {done && <p className="up" role="status">{done}</p>}
      <button type="submit" className="primary" disabled={trade.isPending}>
        {side === "buy" ? "Buy" : "Sell"}
      </button>
    </form>
  );
}

function PerformanceCard({ id }: { id: string }) {
  const [range, setRange] = useState<Range>("1m");
  const performance = usePerformance(id, range);
  const series = useMemo(() => equitySeries(performance.data?.points ?? []), [performance.data]);
  const p = performance.data;
  return (
    <section className="card" aria-labelledby="performance-head">
      <div className="card-head">
        <h2 id="performance-head">Value vs BTC</h2>
        <div className="intervals" role="group" aria-label="Range">
          {RANGES.map((value) => (
            <button key={value} type="button" aria-pressed={range === value} onClick={() => setRange(value)}>
              {value}
            </button>
          ))}
        </div>
      </div>
      {performance.isError && <p className="error" role="alert">{describe(performance.error)}</p>}
      {p && (
        <p className="small">
          Return <span className={tone(p.time_weighted_return_pct)}>{formatPct(p.time_weighted_return_pct)}</span> (time-weighted) · BTC{" "}
          <span className={tone(p.benchmark_return_pct)}>{formatPct(p.benchmark_return_pct)}</span> · max drawdown {formatPct(p.max_drawdown_pct)}
          {!p.complete && <span className="badge warn">some prices missing</span>}
        </p>
      )}
      <EquityChart value={series.value} benchmark={series.benchmark} label={`Portfolio value and BTC over ${range}`} />
    </section>
  );
}

function TransactionsCard({ id }: { id: string }) {
  const transactions = useTransactions(id);
  return (
    <section className="card" aria-labelledby="history-head">
      <h2 id="history-head">History</h2>
      {transactions.isError && <p className="error" role="alert">{describe(transactions.error)}</p>}
      <div className="table-scroll">
        <table aria-label="Transactions">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Kind</th>
              <th scope="col">Symbol</th>
              <th scope="col" className="num">Quantity</th>
              <th scope="col" className="num">Price</th>
              <th scope="col" className="num">Fee</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {transactions.data?.map((tx) => (
              <TransactionRow key={tx.id} id={id} tx={tx} />
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function TransactionRow({ id, tx }: { id: string; tx: Transaction }) {
  const remove = useDeleteTransaction(id);
  const [mode, setMode] = useState<"view" | "confirm" | "edit">("view");
  const label = `${tx.kind} ${formatQuantity(tx.quantity)} ${tx.symbol ?? ""} on ${new Date(tx.executed_at).toLocaleString()}`;
  return (
    <>
      <tr>
        <td>{new Date(tx.executed_at).toLocaleString()}</td>
        <td>{tx.kind}</td>
        <td>{tx.symbol ?? "–"}</td>
        <td className="num">{tx.symbol ? formatQuantity(tx.quantity) : formatMoney(tx.quantity)}</td>
        <td className="num">{formatPrice(tx.price)}</td>
        <td className="num">{formatMoney(tx.fee)}</td>
        <td>
          {mode === "confirm" ? (
            <span role="group" aria-label={`Delete ${label}?`}>
              <button type="button" className="danger" disabled={remove.isPending} onClick={() => remove.mutate(tx.id)}>
                Delete
              </button>{" "}
              <button type="button" autoFocus onClick={() => setMode("view")}>
                Keep
              </button>
            </span>
          ) : (
            <>
              <button type="button" aria-label={`Edit ${label}`} onClick={() => setMode(mode === "edit" ? "view" : "edit")}>
                Edit
              </button>{" "}
              <button type="button" aria-label={`Delete ${label}`} onClick={() => setMode("confirm")}>
                Delete
              </button>
            </>
          )}
          {remove.isError && <p className="error inline-error" role="alert">{describe(remove.error)}</p>}
        </td>
      </tr>
      {mode === "edit" && (
        <tr>
          <td colSpan={7}>
            <CorrectionForm id={id} tx={tx} label={label} onDone={() => setMode("view")} />
          </td>
        </tr>
      )}
    </>
  );
}

function CorrectionForm({ id, tx, label, onDone }: { id: string; tx: Transaction; label: string; onDone: () => void }) {
  const correct = useCorrectTransaction(id);
  const [invalid, setInvalid] = useState<string | null>(null);
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    const body = correctionBody(tx, { quantity: field(data, "quantity"), price: field(data, "price"), fee: field(data, "fee"), executedAt: field(data, "executed_at") });
    if (typeof body === "string") {
      setInvalid(body);
      return;
    }
    setInvalid(null);
    correct.mutate({ txId: tx.id, body }, { onSuccess: onDone });
  };
  return (
    <form className="form" onSubmit={submit} aria-label={`Correct ${label}`}>
      <div className="form-row">
        <label>
          Quantity
          <input name="quantity" inputMode="decimal" defaultValue={tx.quantity} required autoComplete="off" />
        </label>
        {tx.price !== null && (
          <label>
            Price
            <input name="price" inputMode="decimal" defaultValue={tx.price} required autoComplete="off" />
          </label>
        )}
        <label>
          Fee
          <input name="fee" inputMode="decimal" defaultValue={tx.fee} required autoComplete="off" />
        </label>
        <label>
          Executed at (your time)
          <input name="executed_at" type="datetime-local" defaultValue={toLocalInput(tx.executed_at)} required />
        </label>
      </div>
      {invalid && <p className="error" role="alert">{invalid}</p>}
      {correct.isError && <p className="error" role="alert">{describe(correct.error)}</p>}
      <div className="form-row">
        <button type="submit" className="primary" disabled={correct.isPending}>
          Save correction
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function ImportExportCard({ id }: { id: string }) {
  const upload = useImport(id);
  const [exportError, setExportError] = useState<string | null>(null);
  return (
    <section className="card form" aria-labelledby="csv-head">
      <h2 id="csv-head">CSV</h2>
      <label>
        Import trades (Binance trade history or a Sage export)
        <input
          type="file"
          accept=".csv,text/csv"
          disabled={upload.isPending}
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) upload.mutate(file);
            e.target.value = "";
          }}
        />
      </label>
      {upload.isPending && <p className="muted" role="status">Importing…</p>}
      {upload.data && (
        <p className="up" role="status">
          Imported {upload.data.booked} trade{upload.data.booked === 1 ? "" : "s"}
          {upload.data.skipped > 0 ? `, ${upload.data.skipped} already there` : ""}.
        </p>
      )}
      {upload.isError && (
        <div className="error" role="alert">
          <p>Nothing was imported:</p>
          <ul>
            {importErrors(upload.error).map((e, i) => (
              <li key={i}>{e.row === null ? e.message : `Row ${e.row}: ${e.message}`}</li>
            ))}
          </ul>
        </div>
      )}
      <button
        type="button"
        onClick={() => {
          setExportError(null);
          downloadExport(id).catch((error: unknown) => setExportError(describe(error)));
        }}
      >
        Export CSV
      </button>
      {exportError && <p className="error" role="alert">{exportError}</p>}
    </section>
  );
}

function NewPortfolio({ onCreated }: { onCreated: (id: string) => void }) {
  const create = useCreatePortfolio();
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const cash = field(data, "starting_cash").trim();
    create.mutate(
      { name: field(data, "name").trim(), ...(cash ? { starting_cash: cash } : {}) },
      {
        onSuccess: (p) => {
          form.reset();
          onCreated(p.id);
        },
      },
    );
  };
  return (
    <form className="card form" onSubmit={submit} aria-labelledby="new-portfolio-head">
      <h2 id="new-portfolio-head">New portfolio</h2>
      <div className="form-row">
        <label>
          Name
          <input name="name" required maxLength={100} autoComplete="off" />
        </label>
        <label>
          Starting cash (USDT)
          <input name="starting_cash" inputMode="decimal" pattern="[0-9]+([.][0-9]+)?" placeholder="10000" autoComplete="off" />
        </label>
      </div>
      {create.isError && <p className="error" role="alert">{describe(create.error)}</p>}
      <button type="submit" disabled={create.isPending}>
        Create portfolio
      </button>
    </form>
  );
}
