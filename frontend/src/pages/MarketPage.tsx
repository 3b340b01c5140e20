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
        {tickers.isPending && <p className="muted">Loading prices…</p>}
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
                {snapshot.tickers.map((t) => {
                  const change = Number(t.change_pct_24h);
                  const volume = Object.values(t.exchanges).reduce((sum, e) => sum + Number(e.quote_volume), 0);
                  return (
                    <tr key={t.symbol} data-symbol={t.symbol}>
                      <th scope="row">
                        <Link to={`/market/${symbolToPath(t.symbol)}`}>{t.symbol}</Link> <StatusBadges stale={t.stale} diverged={t.diverged} />
                      </th>
                      <td className="num price">{formatPrice(t.price)}</td>
                      <td className={`num ${change > 0 ? "up" : change < 0 ? "down" : ""}`}>{formatPct(t.change_pct_24h)}</td>
                      <td className="hide-narrow">
                        <Sparkline symbol={t.symbol} price={t.price} />
                      </td>
                      <td className="num hide-narrow">{Number(t.spread_pct).toFixed(3)}%</td>
                      <td className="num hide-narrow">{formatVolume(volume)}</td>
                    </tr>
                  );
                })}
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
