import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useState, type FormEvent } from "react";
import { NavLink, useNavigate } from "react-router";

import { describe, field } from "../api/errors";
import { forgetAnswer } from "./answers";
import { setPending } from "./pending";
import { chatsKey, useChats, useChatSearch, useCreateChat, useDeleteChat, useRenameChat, type Chat } from "./queries";
import { snippetParts } from "./snippet";

export function ChatList({ currentId, onOpen }: { currentId: string | undefined; onOpen: () => void }) {
  const chats = useChats();
  const create = useCreateChat();
  const navigate = useNavigate();
  const [search, setSearch] = useState("");
  return (
    <nav className="chat-list" aria-label="Chats">
      <button
        type="button"
        className="primary"
        disabled={create.isPending}
        onClick={() => {
          create.mutate(undefined, {
            onSuccess: (chat) => {
              onOpen();
              void navigate(`/chat/${chat.id}`);
            },
          });
        }}
      >
        New chat
      </button>
      {create.isError && <p className="error" role="alert">{describe(create.error)}</p>}
      <div role="search" className="chat-search">
        <label className="sr-only" htmlFor="chat-search">
          Search chats
        </label>
        <input id="chat-search" type="search" placeholder="Search chats" value={search} maxLength={200} onChange={(e) => setSearch(e.target.value)} />
      </div>
      {search.trim() ? (
        <SearchResults q={search} onOpen={onOpen} />
      ) : (
        <>
          {chats.isError && <p className="error" role="alert">{describe(chats.error)}</p>}
          <ul>
            {chats.data?.items.map((chat) => <ChatItem key={chat.id} chat={chat} current={chat.id === currentId} onOpen={onOpen} />)}
          </ul>
          {chats.data?.items.length === 0 && <p className="muted small">No chats yet.</p>}
        </>
      )}
    </nav>
  );
}

/** `value`, once it has not changed for `ms` (one search request per pause in typing). */
function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

function SearchResults({ q, onOpen }: { q: string; onOpen: () => void }) {
  const settled = useDebounced(q, 250);
  const results = useChatSearch(settled);
  return (
    <div aria-live="polite">
      {results.isError && <p className="error" role="alert">{describe(results.error)}</p>}
      {results.data?.items.length === 0 && <p className="muted small">No chat matches “{settled.trim()}”.</p>}
      <ul className="search-hits" aria-label="Search results">
        {results.data?.items.map((hit) => (
          <li key={`${hit.chat_id}-${hit.message_id ?? "title"}`}>
            <NavLink to={`/chat/${hit.chat_id}`} onClick={onOpen}>
              <strong>{hit.title || "Untitled"}</strong>
              {hit.message_id && (
                <span className="small muted snippet">
                  {snippetParts(hit.snippet).map((part, i) => (part.mark ? <mark key={i}>{part.text}</mark> : <span key={i}>{part.text}</span>))}
                </span>
              )}
            </NavLink>
          </li>
        ))}
      </ul>
    </div>
  );
}

function ChatItem({ chat, current, onOpen }: { chat: Chat; current: boolean; onOpen: () => void }) {
  const [mode, setMode] = useState<"view" | "rename" | "delete">("view");
  const rename = useRenameChat();
  const remove = useDeleteChat();
  const navigate = useNavigate();
  const client = useQueryClient();
  const title = chat.title || "Untitled";

  const submitRename = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const value = field(new FormData(event.currentTarget), "title").trim();
    if (!value) return;
    rename.mutate({ id: chat.id, title: value }, { onSuccess: () => setMode("view") });
  };

  if (mode === "rename") {
    return (
      <li>
        <form className="inline-form" onSubmit={submitRename}>
          <label className="sr-only" htmlFor={`rename-${chat.id}`}>
            New title for {title}
          </label>
          <input id={`rename-${chat.id}`} name="title" defaultValue={chat.title} maxLength={200} required autoFocus />
          <button type="submit" disabled={rename.isPending}>
            Save
          </button>
          <button type="button" onClick={() => setMode("view")}>
            Cancel
          </button>
          {rename.isError && <p className="error" role="alert">{describe(rename.error)}</p>}
        </form>
      </li>
    );
  }
  if (mode === "delete") {
    return (
      <li className="confirm">
        <div role="alertdialog" aria-labelledby={`delete-${chat.id}`}>
        <p id={`delete-${chat.id}`}>Delete “{title}” and all its messages? This cannot be undone.</p>
        <button
          type="button"
          className="danger"
          disabled={remove.isPending}
          onClick={() => {
            remove.mutate(chat.id, {
              onSuccess: () => {
                forgetAnswer(chat.id);
                setPending(chat.id, null);
                if (current) void navigate("/chat");
                void client.invalidateQueries({ queryKey: chatsKey });
              },
            });
          }}
        >
          Delete
        </button>
        <button type="button" autoFocus onClick={() => setMode("view")}>
          Cancel
        </button>
        {remove.isError && <p className="error" role="alert">{describe(remove.error)}</p>}
        </div>
      </li>
    );
  }
  return (
    <li className={current ? "current" : undefined}>
      <NavLink to={`/chat/${chat.id}`} onClick={onOpen} aria-current={current ? "page" : undefined}>
        {title}
      </NavLink>
      <span className="item-actions">
        <button type="button" className="icon" aria-label={`Rename ${title}`} title="Rename" onClick={() => setMode("rename")}>
          ✎
        </button>
        <button type="button" className="icon" aria-label={`Delete ${title}`} title="Delete" onClick={() => setMode("delete")}>
          ×
        </button>
      </span>
    </li>
  );
}
