import { useState } from "react";
import { useParams } from "react-router";

import { ChatList } from "../chat/ChatList";
import { ChatView } from "../chat/ChatView";

export function ChatPage() {
  const { chatId } = useParams();
  const [listOpen, setListOpen] = useState(false);
  return (
    <div className={`page chat ${listOpen ? "list-open" : ""} ${chatId ? "" : "no-chat"}`}>
      <h1 className="sr-only">Chat</h1>
      <button type="button" className="list-toggle" aria-expanded={listOpen} aria-controls="chat-sidebar" onClick={() => setListOpen(!listOpen)}>
        {listOpen ? "Hide chats" : "Chats"}
      </button>
      <aside id="chat-sidebar" className="chat-sidebar">
        <ChatList currentId={chatId} onOpen={() => setListOpen(false)} />
      </aside>
      {chatId ? (
        <ChatView key={chatId} chatId={chatId} />
      ) : (
        <section className="chat-view empty">
          <p className="muted">Pick a chat or start a new one.</p>
        </section>
      )}
    </div>
  );
}
