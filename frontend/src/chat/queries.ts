import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, data } from "../api/client";
import { toApiError } from "../api/errors";
import type { components } from "../api/schema";

export type Chat = components["schemas"]["ChatOut"];
export type Message = components["schemas"]["MessageOut"];
export type MessagePage = components["schemas"]["MessagePage"];

/** The API's limit on a question (MessageIn.content max_length). */
export const MAX_MESSAGE_CHARS = 4000;
export const PAGE_SIZE = 30;

export const chatsKey = ["chats"] as const;
export const messagesKey = (chatId: string) => ["chats", chatId, "messages"] as const;

export function useChats() {
  return useQuery({ queryKey: chatsKey, queryFn: () => data(api.GET("/api/v1/chats", { params: { query: { limit: 100 } } })) });
}

export function useMessages(chatId: string) {
  return useInfiniteQuery({
    queryKey: messagesKey(chatId),
    initialPageParam: undefined as number | undefined,
    queryFn: ({ pageParam }) =>
      data(api.GET("/api/v1/chats/{chat_id}/messages", { params: { path: { chat_id: chatId }, query: { limit: PAGE_SIZE, before: pageParam } } })),
    getNextPageParam: (page) => page.next_before ?? undefined,
  });
}

/** Every loaded page as one list, oldest first. */
export function flatten(pages: { items: Message[] }[] | undefined): Message[] {
  const byId = new Map<string, Message>();
  for (const page of pages ?? []) for (const m of page.items) byId.set(m.id, m);
  return [...byId.values()].sort((a, b) => a.seq - b.seq);
}

export function useCreateChat() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: () => data(api.POST("/api/v1/chats", { body: {} })),
    onSuccess: () => client.invalidateQueries({ queryKey: chatsKey }),
  });
}

export function useRenameChat() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ id, title }: { id: string; title: string }) =>
      data(api.PATCH("/api/v1/chats/{chat_id}", { params: { path: { chat_id: id } }, body: { title } })),
    onSuccess: () => client.invalidateQueries({ queryKey: chatsKey }),
  });
}

/** The caller refreshes the list (after leaving the deleted chat, whose item then unmounts). */
export function useDeleteChat() {
  return useMutation({
    mutationFn: async (id: string) => {
      const { response, error } = await api.DELETE("/api/v1/chats/{chat_id}", { params: { path: { chat_id: id } } });
      if (!response.ok) throw toApiError(response, error);
    },
  });
}

export type SearchHit = components["schemas"]["SearchHit"];

/** Every version of the turn `messageId` belongs to, oldest first (current ones have `superseded_at: null`). */
export function useVersions(chatId: string, messageId: string) {
  return useQuery({
    queryKey: ["chats", chatId, "versions", messageId],
    queryFn: () => data(api.GET("/api/v1/chats/{chat_id}/messages/{message_id}/versions", { params: { path: { chat_id: chatId, message_id: messageId } } })),
  });
}

/** Full-text search over the user's chat titles and messages; idle for an empty query. */
export function useChatSearch(q: string) {
  const query = q.trim();
  return useQuery({
    queryKey: ["chats", "search", query],
    queryFn: () => data(api.GET("/api/v1/chats/search", { params: { query: { q: query, limit: 20 } } })),
    enabled: query.length > 0,
    staleTime: 30_000,
  });
}
