import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";

import { api, data } from "../api/client";
import type { components } from "../api/schema";
import { applyUpdates, reage, TickBuffer, type Tickers, type WireTicker } from "./consolidate";

export type Interval = NonNullable<NonNullable<import("../api/schema").operations["candles_api_v1_market_candles__symbol__get"]["parameters"]["query"]>["interval"]>;
export const INTERVALS: readonly Interval[] = ["1m", "5m", "15m", "1h", "4h", "1d"];
export type Candles = components["schemas"]["CandlesOut"];
export type FearGreed = components["schemas"]["FearGreedResponse"];

const TICKERS = ["market", "tickers"] as const;

export function useTickers() {
  return useQuery({
    queryKey: TICKERS,
    queryFn: () => data(api.GET("/api/v1/market/tickers")),
    refetchInterval: 60_000, // the stream keeps it live; the poll re-syncs with the server's view
  });
}

export type StreamState = "connecting" | "live" | "reconnecting";

/** How often streamed ticks reach the cache (and so React): every tick of every exchange
 * re-rendered the page 10+ times a second, which on a slow phone is a page that never
 * goes quiet. Within one window only each exchange's latest tick per symbol is kept. */
export const STREAM_FLUSH_MS = 500;

/** Applies /market/stream's ticker events to the cached snapshot while mounted, in batches
 * of STREAM_FLUSH_MS. The stream opens once the browser is idle after the first render, so
 * the first paint does not compete with the burst of current tickers the stream starts with. */
export function useMarketStream(): StreamState {
  const client = useQueryClient();
  const [state, setState] = useState<StreamState>("connecting");
  useEffect(() => {
    let source: EventSource | undefined;
    let flushTimer: number | undefined;
    const buffer = new TickBuffer();
    const flush = () => {
      flushTimer = undefined;
      const updates = buffer.drain();
      client.setQueryData<Tickers>(TICKERS, (old) => (old ? applyUpdates(old, updates, Date.now()) : old));
    };
    const connect = () => {
      source = new EventSource("/api/v1/market/stream");
      source.onopen = () => {
        setState("live");
      };
      source.onerror = () => {
        setState("reconnecting"); // EventSource retries by itself
      };
      source.addEventListener("ticker", (event: MessageEvent<string>) => {
        buffer.add(JSON.parse(event.data) as WireTicker);
        flushTimer ??= window.setTimeout(flush, STREAM_FLUSH_MS);
      });
    };
    let cancelConnect: () => void;
    if (typeof window.requestIdleCallback === "function") {
      const id = window.requestIdleCallback(connect, { timeout: 1_000 });
      cancelConnect = () => {
        window.cancelIdleCallback(id);
      };
    } else {
      const id = window.setTimeout(connect, 0); // no requestIdleCallback (Safari)
      cancelConnect = () => {
        window.clearTimeout(id);
      };
    }
    const timer = window.setInterval(() => {
      client.setQueryData<Tickers>(TICKERS, (old) => (old ? reage(old, Date.now()) : old));
    }, 5_000);
    return () => {
      cancelConnect();
      source?.close();
      window.clearTimeout(flushTimer);
      window.clearInterval(timer);
    };
  }, [client]);
  return state;
}

export function useCandles(symbol: string, interval: Interval, limit: number) {
  return useQuery({
    queryKey: ["market", "candles", symbol, interval, limit],
    queryFn: () => data(api.GET("/api/v1/market/candles/{symbol}", { params: { path: { symbol }, query: { interval, limit } } })),
    refetchInterval: 30_000,
  });
}

export function useFearGreed() {
  return useQuery({
    queryKey: ["market", "fear-greed"],
    queryFn: () => data(api.GET("/api/v1/market/fear-greed")),
    refetchInterval: 300_000,
  });
}
