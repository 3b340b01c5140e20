// Portfolio reads and writes over the typed client. Every write invalidates the portfolio's
// reads: the ledger is the only truth, so summary, history and curve all move together.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, authFetch, data } from "../api/client";
import { errorFrom, toApiError } from "../api/errors";
import type { components } from "../api/schema";
import { attachmentName, type CorrectionBody, type Range, type TradeBody } from "./model";

export type Portfolio = components["schemas"]["PortfolioOut"];
export type Summary = components["schemas"]["PortfolioSummaryOut"];
export type Transaction = components["schemas"]["TransactionOut"];
export type Performance = components["schemas"]["PerformanceOut"];

const ALL = ["portfolios"] as const;
const key = (id: string) => ["portfolio", id] as const;
const path = (id: string) => ({ params: { path: { portfolio_id: id } } });

export function usePortfolios() {
  return useQuery({ queryKey: ALL, queryFn: () => data(api.GET("/api/v1/portfolios")) });
}

export function useSummary(id: string) {
  return useQuery({ queryKey: [...key(id), "summary"], queryFn: () => data(api.GET("/api/v1/portfolios/{portfolio_id}/summary", path(id))), refetchInterval: 15_000 });
}

export function useTransactions(id: string) {
  return useQuery({
    queryKey: [...key(id), "transactions"],
    queryFn: () => data(api.GET("/api/v1/portfolios/{portfolio_id}/transactions", { params: { path: { portfolio_id: id }, query: { limit: 200 } } })),
  });
}

export function usePerformance(id: string, range: Range) {
  return useQuery({
    queryKey: [...key(id), "performance", range],
    queryFn: () => data(api.GET("/api/v1/portfolios/{portfolio_id}/performance", { params: { path: { portfolio_id: id }, query: { range } } })),
  });
}

function useRefresh(id: string) {
  const client = useQueryClient();
  return () => client.invalidateQueries({ queryKey: key(id) });
}

export function useCreatePortfolio() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: { name: string; starting_cash?: string }) => data(api.POST("/api/v1/portfolios", { body: { ...body, base_currency: "USDT", is_default: false } })),
    onSuccess: () => client.invalidateQueries({ queryKey: ALL }),
  });
}

export function useRenamePortfolio(id: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (name: string) => data(api.PATCH("/api/v1/portfolios/{portfolio_id}", { ...path(id), body: { name } })),
    onSuccess: () => client.invalidateQueries({ queryKey: ALL }),
  });
}

/** Deletes a portfolio and its ledger (the server makes the oldest remaining one the default). */
export function useDeletePortfolio(id: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: async () => {
      const { response, error } = await api.DELETE("/api/v1/portfolios/{portfolio_id}", path(id));
      if (!response.ok) throw toApiError(response, error);
    },
    onSuccess: async () => {
      client.removeQueries({ queryKey: key(id) });
      await client.invalidateQueries({ queryKey: ALL });
    },
  });
}

export function useTrade(id: string) {
  const refresh = useRefresh(id);
  return useMutation({
    // one key per submitted order: a retried request (a flaky network) books it once
    mutationFn: ({ body, idempotencyKey }: { body: TradeBody; idempotencyKey: string }) =>
      data(api.POST("/api/v1/portfolios/{portfolio_id}/transactions", { params: { path: { portfolio_id: id }, header: { "Idempotency-Key": idempotencyKey } }, body })),
    onSuccess: refresh,
  });
}

export function useCorrectTransaction(id: string) {
  const refresh = useRefresh(id);
  return useMutation({
    mutationFn: ({ txId, body }: { txId: string; body: CorrectionBody }) =>
      data(api.PATCH("/api/v1/portfolios/{portfolio_id}/transactions/{tx_id}", { params: { path: { portfolio_id: id, tx_id: txId } }, body })),
    onSuccess: refresh,
  });
}

export function useDeleteTransaction(id: string) {
  const refresh = useRefresh(id);
  return useMutation({
    mutationFn: async (txId: string) => {
      const { response, error } = await api.DELETE("/api/v1/portfolios/{portfolio_id}/transactions/{tx_id}", { params: { path: { portfolio_id: id, tx_id: txId } } });
      if (!response.ok) throw toApiError(response, error);
    },
    onSuccess: refresh,
  });
}

export function useImport(id: string) {
  const refresh = useRefresh(id);
  return useMutation({
    // the body is the file's text as is: openapi-fetch would JSON-encode a string
    mutationFn: async (file: Blob) => {
      const response = await authFetch(
        new Request(new URL(`/api/v1/portfolios/${encodeURIComponent(id)}/import`, window.location.origin), {
          method: "POST",
          headers: { "Content-Type": "text/csv" },
          body: await readText(file),
        }),
      );
      if (!response.ok) throw await errorFrom(response);
      return (await response.json()) as components["schemas"]["ImportOut"];
    },
    onSuccess: refresh,
  });
}

/** A file's text (FileReader rather than Blob.text(), which jsdom's File lacks). */
function readText(file: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(typeof reader.result === "string" ? reader.result : "");
    reader.onerror = () => reject(reader.error ?? new Error("The file could not be read"));
    reader.readAsText(file);
  });
}

/** Downloads the ledger as CSV (with the bearer token, so not a plain link). */
export async function downloadExport(id: string): Promise<void> {
  const response = await authFetch(new Request(new URL(`/api/v1/portfolios/${encodeURIComponent(id)}/export`, window.location.origin)));
  if (!response.ok) throw await errorFrom(response);
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = attachmentName(response.headers.get("Content-Disposition"), `portfolio-${id}.csv`);
  document.body.append(link);
  link.click();
  link.remove();
  URL.revokeObjectURL(url);
}
