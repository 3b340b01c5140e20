// The inbox, the bell's count and the channel settings through TanStack Query. Every key
// starts with "notifications", so one invalidation refreshes all of them.
import { useInfiniteQuery, useMutation, useQuery, useQueryClient, type InfiniteData, type QueryClient } from "@tanstack/react-query";

import { api, data } from "../api/client";
import { toApiError } from "../api/errors";
import type { components } from "../api/schema";
import { countLive, markRead, prependLive, summaryOf, type LiveNotification, type NotificationPage, type UnreadSummary } from "./model";

export type ChannelSettings = components["schemas"]["ChannelsOut"];

export const NOTIFICATIONS = ["notifications"] as const;
const SUMMARY = [...NOTIFICATIONS, "summary"] as const;
const INBOX = [...NOTIFICATIONS, "inbox"] as const;
const SETTINGS = [...NOTIFICATIONS, "settings"] as const;
export const PAGE_SIZE = 20;

export function isSummaryKey(key: readonly unknown[]): boolean {
  return key.length === SUMMARY.length && key.every((part, i) => part === SUMMARY[i]);
}

function page(limit: number, offset: number): Promise<NotificationPage> {
  return data(api.GET("/api/v1/notifications", { params: { query: { limit, offset } } }));
}

/** The bell's unread count; the stream keeps it current, a slow poll corrects drift. */
export function useUnreadSummary(enabled: boolean) {
  return useQuery({
    queryKey: SUMMARY,
    queryFn: async (): Promise<UnreadSummary> => summaryOf(await page(1, 0)),
    enabled,
    refetchInterval: 120_000,
  });
}

/** The inbox, unread first and newest first, PAGE_SIZE at a time. */
export function useInbox() {
  return useInfiniteQuery({
    queryKey: INBOX,
    initialPageParam: 0,
    queryFn: ({ pageParam }) => page(PAGE_SIZE, pageParam),
    getNextPageParam: (last) => (last.offset + last.items.length < last.total ? last.offset + last.items.length : undefined),
  });
}

/** A live notification: counted and shown at once, then the server's view is fetched. */
export function applyLiveNotification(client: QueryClient, live: LiveNotification): void {
  client.setQueryData<UnreadSummary>(SUMMARY, (s) => (s ? countLive(s, live.id) : s));
  client.setQueryData<InfiniteData<NotificationPage, number>>(INBOX, (d) => {
    const [first, ...rest] = d?.pages ?? [];
    return d && first ? { ...d, pages: [prependLive(first, live), ...rest] } : d;
  });
  void client.invalidateQueries({ queryKey: NOTIFICATIONS });
}

function applyRead(client: QueryClient, id: number | null): void {
  client.setQueryData<InfiniteData<NotificationPage, number>>(INBOX, (d) => d && { ...d, pages: d.pages.map((p) => markRead(p, id)) });
  client.setQueryData<UnreadSummary>(SUMMARY, (s) => s && { ...s, unread: id === null ? 0 : Math.max(0, s.unread - 1) });
}

export function useMarkRead() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: async (id: number) => {
      const { response, error } = await api.POST("/api/v1/notifications/{notification_id}/read", { params: { path: { notification_id: id } } });
      if (!response.ok) throw toApiError(response, error);
    },
    onSuccess: (_, id) => applyRead(client, id),
    onSettled: () => client.invalidateQueries({ queryKey: NOTIFICATIONS }),
  });
}

export function useMarkAllRead() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: () => data(api.POST("/api/v1/notifications/read-all")),
    onSuccess: () => applyRead(client, null),
    onSettled: () => client.invalidateQueries({ queryKey: NOTIFICATIONS }),
  });
}

export function useChannelSettings() {
  return useQuery({ queryKey: SETTINGS, queryFn: () => data(api.GET("/api/v1/users/me/notification-settings")) });
}

export function useSaveChannels() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: { email: boolean; web_push: boolean }) => data(api.PUT("/api/v1/users/me/notification-settings", { body })),
    onSuccess: (saved) => client.setQueryData(SETTINGS, saved),
  });
}

export function useRequestVerification() {
  return useMutation({ mutationFn: () => data(api.POST("/api/v1/users/me/email/verify-request")) });
}
