// Chats: the list, one conversation, and a question answered as a stream of
// `message` / `delta` / `done` / `error` events (see sse.js for why fetch, not EventSource).

import { ApiError, json, request } from "./api.js";
import { readEventStream } from "./sse.js";

const $ = (id) => document.getElementById(id);
let current = null; // the open chat's id
let answering = null; // AbortController of the answer being streamed

function bubble(role, text = "", status = "") {
  const item = Object.assign(document.createElement("div"), { className: `msg ${role} ${status}`.trim() });
  item.appendChild(Object.assign(document.createElement("div"), { className: "text", textContent: text }));
  const messages = $("messages");
  messages.querySelector(":scope > p.muted")?.remove();
  messages.appendChild(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function note(item, text, isError = false) {
  item.appendChild(Object.assign(document.createElement("div"), { className: isError ? "meta error" : "meta", textContent: text }));
}

function describeDone(data) {
  const parts = [];
  if (data.cached) parts.push("cached");
  if (data.offline) parts.push("offline model");
  const first = data.latency_ms?.first_token;
  if (Number.isFinite(first)) parts.push(`first token ${Math.round(first)} ms`);
  const unverified = data.grounding?.unverified_claims?.length ?? 0;
  if (unverified) parts.push(`${unverified} figure(s) not found in the market data`);
  return parts.join(" · ");
}

// A failed click (chat deleted elsewhere, Sage restarting) is shown, not left as an
// unhandled rejection; a dead session is handled by app.js ("sage:signed-out").
function showError(error) {
  if (error instanceof ApiError && error.status === 401) return;
  const line = Object.assign(document.createElement("p"), { className: "error", textContent: error instanceof ApiError ? error.message : "Sage is not reachable" });
  $("messages").appendChild(line);
  line.scrollIntoView({ block: "end" });
}

const safely =
  (action) =>
  (...args) =>
    action(...args).catch(showError);

async function renderChats() {
  const { items } = await json("/api/v1/chats?limit=50");
  const list = $("chat-list");
  list.replaceChildren(
    ...items.map((chat) => {
      const item = document.createElement("li");
      const open = Object.assign(document.createElement("button"), { className: "link", textContent: chat.title || "Untitled" });
      open.onclick = safely(() => openChat(chat.id));
      const remove = Object.assign(document.createElement("button"), { className: "link danger", textContent: "×", title: "Delete chat" });
      remove.onclick = safely(async () => {
        await json(`/api/v1/chats/${chat.id}`, { method: "DELETE" });
        if (current === chat.id) closeChat();
        await renderChats();
      });
      item.classList.toggle("active", chat.id === current);
      item.append(open, remove);
      return item;
    }),
  );
}

function setComposer(enabled) {
  for (const field of $("composer").elements) field.disabled = !enabled;
}

function closeChat() {
  answering?.abort();
  current = null;
  $("messages").replaceChildren(Object.assign(document.createElement("p"), { className: "muted", textContent: "Pick a chat or start a new one." }));
  setComposer(false);
}

async function openChat(id) {
  answering?.abort();
  current = id;
  const page = await json(`/api/v1/chats/${id}/messages?limit=100`);
  $("messages").replaceChildren();
  for (const message of page.items.slice().sort((a, b) => a.seq - b.seq)) {
    const item = bubble(message.role, message.content, message.status === "complete" ? "" : message.status);
    if (message.role === "assistant" && message.status !== "complete") note(item, `answer ${message.status}`, true);
  }
  setComposer(true);
  $("composer").elements.content.focus();
  await renderChats();
}

async function ask(content) {
  const chatId = current;
  bubble("user", content);
  const answer = bubble("assistant", "", "pending");
  const text = answer.querySelector(".text");
  answering = new AbortController();
  setComposer(false);
  try {
    const signal = answering.signal;
    let response = await request(`/api/v1/chats/${chatId}/messages`, {
      method: "POST",
      body: { content },
      headers: { Accept: "text/event-stream" },
      signal,
    });
    for (;;) {
      const handedOver = await showAnswer(response, answer, text);
      if (!handedOver) break;
      // The server is restarting: the same answer continues on another instance, after
      // the last event shown (Last-Event-ID), so no text is repeated or skipped.
      await new Promise((resolve) => setTimeout(resolve, handedOver.retry_ms ?? 1000));
      const resumeFrom = handedOver.last_event_id ? { "Last-Event-ID": handedOver.last_event_id } : {};
      response = await request(handedOver.resume_url, { headers: { Accept: "text/event-stream", ...resumeFrom }, signal });
    }
  } catch (error) {
    answer.classList.remove("pending");
    if (error.name !== "AbortError") note(answer, error instanceof ApiError ? error.message : "connection lost", true);
  } finally {
    answering = null;
    if (current === chatId) setComposer(true);
    renderChats().catch(() => {});
  }
}

// Shows one stream's events; returns the `reconnect` event's data when the server handed
// the answer over (it is shutting down), else null.
async function showAnswer(response, answer, text) {
  let handedOver = null;
  for await (const event of readEventStream(response)) {
    const data = JSON.parse(event.data);
    if (event.type === "reconnect") {
      handedOver = data;
    } else if (event.type === "delta") {
      answer.classList.remove("pending");
      text.textContent += data.text;
      answer.scrollIntoView({ block: "end" });
    } else if (event.type === "done") {
      answer.classList.remove("pending");
      note(answer, describeDone(data));
    } else if (event.type === "error") {
      answer.classList.remove("pending");
      note(answer, data.message ?? data.code ?? "the answer failed", true);
    }
  }
  return handedOver;
}

export async function startChats() {
  $("new-chat").onclick = safely(async () => {
    const chat = await json("/api/v1/chats", { method: "POST", body: {} });
    await openChat(chat.id);
  });
  $("composer").onsubmit = (event) => {
    event.preventDefault();
    const field = event.target.elements.content;
    const content = field.value.trim();
    if (!content || !current) return;
    field.value = "";
    ask(content);
  };
  $("composer").elements.content.onkeydown = (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  };
  closeChat();
  await renderChats();
}
