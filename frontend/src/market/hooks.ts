import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";

import { api, data } from "../api/client";
import type { components } from "../api/schema";
import { applyUpdate, reage, type Tickers, type WireTicker } from "./consolidate";

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

/** Applies /market/stream's ticker events to the cached snapshot while mounted. */
export function useMarketStream(): StreamState {
  const client = useQueryClient();
  const [state, setState] = useState<StreamState>("connecting");
  useEffect(() => {
    const source = new EventSource("/api/v1/market/stream");
    source.onopen = () => {
      setState("live");
    };
    source.onerror = () => {
      setState("reconnecting"); // EventSource retries by itself
    };
    source.addEventListener("ticker", (event: MessageEvent<string>) => {
      const update = JSON.parse(event.data) as WireTicker;
      client.setQueryData<Tickers>(TICKERS, (old) => (old ? applyUpdate(old, update, Date.now()) : old));
    });
    const timer = window.setInterval(() => {
      client.setQueryData<Tickers>(TICKERS, (old) => (old ? reage(old, Date.now()) : old));
    }, 5_000);
    return () => {
      source.close();
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
