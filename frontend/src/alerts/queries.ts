// Alert reads and writes over the typed client, and the symbol search the form uses.
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";

import { api, data } from "../api/client";
import { toApiError } from "../api/errors";
import type { AlertBody, AlertPatch } from "./kinds";

const ALERTS = ["alerts"] as const;

export function useAlerts() {
  // state, fire count and last trigger change on the server's schedule, not ours
  return useQuery({ queryKey: ALERTS, queryFn: () => data(api.GET("/api/v1/alerts")), refetchInterval: 10_000 });
}

export function useCreateAlert() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: AlertBody) => data(api.POST("/api/v1/alerts", { body })),
    onSuccess: () => client.invalidateQueries({ queryKey: ALERTS }),
  });
}

/** Edit, pause (`paused: true`) or resume (`paused: false`) one alert. */
export function useUpdateAlert(id: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: AlertPatch) => data(api.PATCH("/api/v1/alerts/{alert_id}", { params: { path: { alert_id: id } }, body })),
    onSuccess: () => client.invalidateQueries({ queryKey: ALERTS }),
  });
}

export function useDeleteAlert(id: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: async () => {
      const { response, error } = await api.DELETE("/api/v1/alerts/{alert_id}", { params: { path: { alert_id: id } } });
      if (!response.ok) throw toApiError(response, error);
    },
    onSuccess: () => client.invalidateQueries({ queryKey: ALERTS }),
  });
}

/** `value`, once it has stopped changing for `ms`. */
export function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

/** Pairs from the market catalog matching what was typed (base, quote or name). */
export function useSymbolSearch(text: string) {
  const q = useDebounced(text.trim(), 250);
  return useQuery({
    queryKey: ["market", "symbols", q],
    queryFn: () => data(api.GET("/api/v1/market/symbols", { params: { query: { q, limit: 8 } } })),
    enabled: q.length > 0,
    staleTime: 5 * 60_000, // the catalog changes rarely
    placeholderData: keepPreviousData,
  });
}
