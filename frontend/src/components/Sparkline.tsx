import { useMemo } from "react";

import { useCandles } from "../market/hooks";

/** The last hour of one-minute closes ending at the live price, as a small line
 * (decorative: the table states the figures). */
export function Sparkline({ symbol, price }: { symbol: string; price: string }) {
  const { data } = useCandles(symbol, "1m", 60);
  // sorted once per candles response, not on every live price
  const history = useMemo(
    () =>
      [...(data?.candles ?? [])]
        .sort((a, b) => Date.parse(a.start) - Date.parse(b.start))
        .map((c) => Number(c.close)),
    [data],
  );
  const closes = [...history, Number(price)].filter(Number.isFinite);
  if (closes.length < 2) return <span className="sparkline empty" aria-hidden="true" />;
  const low = Math.min(...closes);
  const high = Math.max(...closes);
  const range = high - low || 1;
  const points = closes.map((v, i) => `${((i / (closes.length - 1)) * 100).toFixed(2)},${(28 - ((v - low) / range) * 26).toFixed(2)}`).join(" ");
  const rising = (closes.at(-1) ?? 0) >= (closes[0] ?? 0);
  return (
    <svg className={`sparkline ${rising ? "up" : "down"}`} viewBox="0 0 100 30" preserveAspectRatio="none" aria-hidden="true" focusable="false">
      <polyline points={points} fill="none" strokeWidth="2" vectorEffect="non-scaling-stroke" />
    </svg>
  );
}
