// The portfolio's value against the same money held in BTC (lightweight-charts; only the
// lazily loaded portfolio page imports this).
import { ColorType, createChart, LineSeries, type IChartApi, type ISeriesApi } from "lightweight-charts";
import { useEffect, useRef } from "react";

import type { SeriesPoint } from "../portfolio/model";

export function EquityChart({ value, benchmark, label }: { value: SeriesPoint[]; benchmark: SeriesPoint[]; label: string }) {
  const container = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const series = useRef<{ value: ISeriesApi<"Line">; benchmark: ISeriesApi<"Line"> } | null>(null);

  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const instance = createChart(element, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "transparent" }, textColor: "#c9d1d9", attributionLogo: false },
      grid: { vertLines: { color: "#21262d" }, horzLines: { color: "#21262d" } },
      timeScale: { timeVisible: true, secondsVisible: false },
      rightPriceScale: { borderColor: "#30363d" },
    });
    series.current = {
      value: instance.addSeries(LineSeries, { color: "#58a6ff", lineWidth: 2, title: "Portfolio" }),
      benchmark: instance.addSeries(LineSeries, { color: "#d29922", lineWidth: 1, lineStyle: 2, title: "BTC" }),
    };
    chart.current = instance;
    return () => {
      instance.remove();
      chart.current = null;
      series.current = null;
    };
  }, []);

  useEffect(() => {
    series.current?.value.setData(value);
    series.current?.benchmark.setData(benchmark);
    chart.current?.timeScale().fitContent();
  }, [value, benchmark]);

  return <div ref={container} className="chart equity" role="img" aria-label={label} />;
}
