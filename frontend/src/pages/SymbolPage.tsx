import { useState } from "react";
import { Link, useParams } from "react-router";

import { describe } from "../api/errors";
import { StatusBadges, StreamBadge } from "../components/Badges";
import { CandleChart } from "../components/CandleChart";
import { formatPct, formatPrice, formatVolume, pathToSymbol } from "../market/consolidate";
import { INTERVALS, useCandles, useMarketStream, useTickers, type Interval } from "../market/hooks";

export default function SymbolPage() {
  const symbol = pathToSymbol(useParams().symbol ?? "");
  const [interval, setInterval] = useState<Interval>("1m");
  const tickers = useTickers();
  const stream = useMarketStream();
  const candles = useCandles(symbol, interval, 200);
  const ticker = tickers.data?.tickers.find((t) => t.symbol === symbol);
  const change = Number(ticker?.change_pct_24h);

  return (
    <div className="page">
      <p>
        <Link to="/market">← All markets</Link>
      </p>
      <section className="card" aria-labelledby="symbol-title">
        <div className="card-head">
          <h1 id="symbol-title">{symbol}</h1>
          {ticker && <StatusBadges stale={ticker.stale} diverged={ticker.diverged} />}
          <StreamBadge state={stream} />
        </div>
        {ticker ? (
          <p className="headline">
            <span className="price">{formatPrice(ticker.price)}</span>{" "}
            <span className={change > 0 ? "up" : change < 0 ? "down" : ""}>{formatPct(ticker.change_pct_24h)} 24h</span>
          </p>
        ) : (
          tickers.isSuccess && <p className="muted">No price for {symbol} yet.</p>
        )}
        <div className="intervals" role="group" aria-label="Candle interval">
          {INTERVALS.map((value) => (
            <button key={value} type="button" aria-pressed={interval === value} onClick={() => setInterval(value)}>
              {value}
            </button>
          ))}
        </div>
        {candles.isError && <p className="error" role="alert">{describe(candles.error)}</p>}
        {candles.data && candles.data.candles.length === 0 && <p className="muted">No {interval} candles yet.</p>}
        <CandleChart candles={candles.data?.candles ?? []} label={`${symbol} ${interval} candlestick chart with volume`} />
      </section>
      {ticker && (
        <section className="card" aria-labelledby="exchanges-title">
          <h2 id="exchanges-title">Exchanges</h2>
          <div className="table-scroll">
            <table>
              <thead>
                <tr>
                  <th scope="col">Exchange</th>
                  <th scope="col" className="num">Last</th>
                  <th scope="col" className="num">Bid</th>
                  <th scope="col" className="num">Ask</th>
                  <th scope="col" className="num">Spread</th>
                  <th scope="col" className="num">Volume 24h</th>
                  <th scope="col">Status</th>
                </tr>
              </thead>
              <tbody>
                {Object.values(ticker.exchanges).map((e) => {
                  const bid = Number(e.bid);
                  const ask = Number(e.ask);
                  const spread = bid > 0 ? ((ask - bid) / bid) * 100 : NaN;
                  return (
                    <tr key={e.exchange}>
                      <th scope="row">{e.exchange}</th>
                      <td className="num">{formatPrice(e.last)}</td>
                      <td className="num">{formatPrice(e.bid)}</td>
                      <td className="num">{formatPrice(e.ask)}</td>
                      <td className="num">{Number.isFinite(spread) ? `${spread.toFixed(3)}%` : "–"}</td>
                      <td className="num">{formatVolume(e.base_volume)}</td>
                      <td>{e.stale ? <span className="badge warn">stale</span> : <span className="badge ok">fresh</span>}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        </section>
      )}
    </div>
  );
}
