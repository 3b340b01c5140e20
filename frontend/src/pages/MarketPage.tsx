import { memo } from "react";
import { Link } from "react-router";

import { describe } from "../api/errors";
import { StatusBadges, StreamBadge } from "../components/Badges";
import { FearGreedCard } from "../components/FearGreedCard";
import { Sparkline } from "../components/Sparkline";
import { formatPct, formatPrice, formatVolume, symbolToPath } from "../market/consolidate";
import { useMarketStream, useTickers } from "../market/hooks";

export function MarketPage() {
  const tickers = useTickers();
  const stream = useMarketStream();
  const snapshot = tickers.data;
  return (
    <div className="page market">
      <section className="card grow" aria-labelledby="watchlist-title">
        <div className="card-head">
          <h1 id="watchlist-title">Market</h1>
          {snapshot && snapshot.source !== "live" && <span className="badge">{snapshot.source}</span>}
          <StreamBadge state={stream} />
        </div>
        {tickers.isPending && <p className="muted watchlist-loading">Loading prices…</p>}
        {tickers.isError && <p className="error" role="alert">{describe(tickers.error)}</p>}
        {snapshot && (
          <div className="table-scroll">
            <table className="watchlist">
              <caption className="sr-only">Consolidated prices across exchanges, updated live</caption>
              <thead>
                <tr>
                  <th scope="col">Symbol</th>
                  <th scope="col" className="num">Price</th>
                  <th scope="col" className="num">24h</th>
                  <th scope="col" className="hide-narrow">Last hour</th>
                  <th scope="col" className="num hide-narrow">Spread</th>
                  <th scope="col" className="num hide-narrow">Volume 24h</th>
                </tr>
              </thead>
              <tbody>
                {snapshot.tickers.map((t) => (
                  <WatchRow
                    key={t.symbol}
                    symbol={t.symbol}
                    price={t.price}
                    change={t.change_pct_24h}
                    stale={t.stale}
                    diverged={t.diverged}
                    spread={t.spread_pct}
                    volume={Object.values(t.exchanges).reduce((sum, e) => sum + Number(e.quote_volume), 0)}
                  />
                ))}
              </tbody>
            </table>
            {snapshot.tickers.length === 0 && <p className="muted">No market data yet.</p>}
            {snapshot.missing.length > 0 && <p className="muted small">Waiting for data: {snapshot.missing.join(", ")}</p>}
          </div>
        )}
      </section>
      <aside>
        <FearGreedCard />
      </aside>
    </div>
  );
}

interface RowProps {
  symbol: string;
  price: string;
  change: string | null;
  stale: boolean;
  diverged: boolean;
  spread: string;
  volume: number;
}

/** One watchlist row, from the figures it shows only: a batch of ticks re-renders the rows
 * whose figures changed, not the table. */
const WatchRow = memo(function WatchRow({ symbol, price, change, stale, diverged, spread, volume }: RowProps) {
  const pct = Number(change);
  return (
    <tr data-symbol={symbol}>
      <th scope="row">
        <Link to={`/market/${symbolToPath(symbol)}`}>{symbol}</Link> <StatusBadges stale={stale} diverged={diverged} />
      </th>
      <td className="num price">{formatPrice(price)}</td>
      <td className={`num ${pct > 0 ? "up" : pct < 0 ? "down" : ""}`}>{formatPct(change)}</td>
      <td className="hide-narrow">
        <Sparkline symbol={symbol} price={price} />
      </td>
      <td className="num hide-narrow">{Number(spread).toFixed(3)}%</td>
      <td className="num hide-narrow">{formatVolume(volume)}</td>
    </tr>
  );
});
