// Entry point: the market panel always runs; the chat side needs a login.

import { ApiError, json, session } from "./api.js";
import { startChats } from "./chat.js";
import { startMarket } from "./market.js";

const $ = (id) => document.getElementById(id);
let registering = false;

function showAuth() {
  $("auth-view").hidden = false;
  $("chat-view").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
}

async function showChats() {
  const me = await json("/api/v1/users/me");
  $("who").textContent = me.display_name || me.email;
  $("logout").hidden = false;
  $("auth-view").hidden = true;
  $("chat-view").hidden = false;
  await startChats();
}

function toggleMode() {
  registering = !registering;
  $("auth-title").textContent = $("auth-submit").textContent = registering ? "Register" : "Log in";
  $("auth-switch-text").textContent = registering ? "Have an account?" : "No account yet?";
  $("auth-switch").textContent = registering ? "Log in" : "Register";
  $("auth-form").elements.password.autocomplete = registering ? "new-password" : "current-password";
  $("auth-error").textContent = "";
}

async function submitAuth(event) {
  event.preventDefault();
  const form = event.target;
  const credentials = { email: form.elements.email.value.trim(), password: form.elements.password.value };
  $("auth-error").textContent = "";
  form.elements[2].disabled = true;
  try {
    if (registering) await json("/api/v1/auth/register", { method: "POST", body: credentials });
    session.tokens = await json("/api/v1/auth/login", { method: "POST", body: credentials });
    form.reset();
    if (registering) toggleMode();
    await showChats();
  } catch (error) {
    const fields = Array.isArray(error.details) ? error.details.map((d) => `${d.field}: ${d.message}`).join("; ") : "";
    $("auth-error").textContent = error instanceof ApiError ? fields || error.message : "Sage is not reachable";
  } finally {
    form.elements[2].disabled = false;
  }
}

async function main() {
  $("auth-form").onsubmit = submitAuth;
  $("auth-switch").onclick = toggleMode;
  $("logout").onclick = () => {
    session.tokens = null;
    showAuth();
  };
  window.addEventListener("sage:signed-out", () => {
    showAuth();
    $("auth-error").textContent = "Your session has ended. Please log in again.";
  });
  startMarket();
  if (!session.tokens) return showAuth();
  try {
    await showChats();
  } catch {
    session.tokens = null; // expired beyond refresh: log in again
    showAuth();
  }
}

main();
