import { useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { NavLink, useNavigate } from "react-router";

import { describe, field } from "../api/errors";
import { forgetAnswer } from "./answers";
import { setPending } from "./pending";
import { chatsKey, useChats, useCreateChat, useDeleteChat, useRenameChat, type Chat } from "./queries";

export function ChatList({ currentId, onOpen }: { currentId: string | undefined; onOpen: () => void }) {
  const chats = useChats();
  const create = useCreateChat();
  const navigate = useNavigate();
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
      {chats.isError && <p className="error" role="alert">{describe(chats.error)}</p>}
      <ul>
        {chats.data?.items.map((chat) => <ChatItem key={chat.id} chat={chat} current={chat.id === currentId} onOpen={onOpen} />)}
      </ul>
      {chats.data?.items.length === 0 && <p className="muted small">No chats yet.</p>}
    </nav>
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
