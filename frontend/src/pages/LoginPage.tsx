import { useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Navigate, useLocation, useNavigate } from "react-router";

import { describe, field } from "../api/errors";
import { login, register, useSignedIn } from "../auth/session";

type Mode = "login" | "register";

export function LoginPage() {
  const [mode, setMode] = useState<Mode>("login");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const signedIn = useSignedIn();
  const navigate = useNavigate();
  const location = useLocation();
  const client = useQueryClient();
  const from = (location.state as { from?: string } | null)?.from ?? "/chat";
  if (signedIn && !busy) return <Navigate to={from} replace />;

  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const email = field(form, "email");
    const password = field(form, "password");
    setBusy(true);
    setError(null);
    try {
      if (mode === "login") await login(email, password);
      else await register(email, password, field(form, "display_name"));
      client.clear();
      void navigate(from, { replace: true });
    } catch (caught) {
      setError(describe(caught));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="page narrow">
      <h1>{mode === "login" ? "Sign in" : "Create an account"}</h1>
      <form className="card form" onSubmit={(e) => void submit(e)} aria-describedby={error ? "auth-error" : undefined}>
        <label>
          Email
          <input name="email" type="email" autoComplete="email" required />
        </label>
        {mode === "register" && (
          <label>
            Display name <span className="muted">(optional)</span>
            <input name="display_name" maxLength={100} autoComplete="nickname" />
          </label>
        )}
        <label>
          Password {mode === "register" && <span className="muted">(at least 8 characters)</span>}
          <input
            name="password"
            type="password"
            required
            minLength={mode === "register" ? 8 : 1}
            maxLength={128}
            autoComplete={mode === "login" ? "current-password" : "new-password"}
          />
        </label>
        {error && (
          <p id="auth-error" className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {mode === "login" ? "Sign in" : "Create account"}
        </button>
      </form>
      <p>
        {mode === "login" ? "New to Sage? " : "Already have an account? "}
        <button
          type="button"
          className="link"
          onClick={() => {
            setMode(mode === "login" ? "register" : "login");
            setError(null);
          }}
        >
          {mode === "login" ? "Create an account" : "Sign in"}
        </button>
      </p>
    </section>
  );
}
