// Candles and volume with lightweight-charts (only the symbol page imports this, so the
// library is in that page's lazily loaded chunk).
import { CandlestickSeries, ColorType, createChart, HistogramSeries, type IChartApi, type UTCTimestamp } from "lightweight-charts";
import { useEffect, useRef } from "react";

import type { Candles } from "../market/hooks";

const UP = "#26a69a";
const DOWN = "#ef5350";

export function CandleChart({ candles, label }: { candles: Candles["candles"]; label: string }) {
  const container = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const series = useRef<{ price: ReturnType<IChartApi["addSeries"]>; volume: ReturnType<IChartApi["addSeries"]> } | null>(null);

  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const instance = createChart(element, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "transparent" }, textColor: "#c9d1d9", attributionLogo: false },
      grid: { vertLines: { color: "#21262d" }, horzLines: { color: "#21262d" } },
      timeScale: { timeVisible: true, secondsVisible: false, barSpacing: 10, rightOffset: 4 },
      rightPriceScale: { borderColor: "#30363d" },
    });
    const price = instance.addSeries(CandlestickSeries, { upColor: UP, downColor: DOWN, wickUpColor: UP, wickDownColor: DOWN, borderVisible: false });
    const volume = instance.addSeries(HistogramSeries, {
      priceScaleId: "volume",
      priceFormat: { type: "volume" },
      lastValueVisible: false,
      priceLineVisible: false,
    });
    instance.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    chart.current = instance;
    series.current = { price, volume };
    return () => {
      instance.remove();
      chart.current = null;
      series.current = null;
    };
  }, []);

  useEffect(() => {
    if (!series.current) return;
    const time = (iso: string) => Math.floor(Date.parse(iso) / 1000) as UTCTimestamp;
    const sorted = [...candles].sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
    series.current.price.setData(sorted.map((c) => ({ time: time(c.start), open: Number(c.open), high: Number(c.high), low: Number(c.low), close: Number(c.close) })));
    series.current.volume.setData(
      sorted.map((c) => ({ time: time(c.start), value: Number(c.volume), color: Number(c.close) >= Number(c.open) ? `${UP}80` : `${DOWN}80` })),
    );
    // A few candles (a fresh install) keep their natural width instead of filling the chart.
    if (sorted.length >= 80) chart.current?.timeScale().fitContent();
    else chart.current?.timeScale().scrollToRealTime();
  }, [candles]);

  return <div ref={container} className="chart" role="img" aria-label={label} />;
}
