import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "react-router";

import { api, data } from "../api/client";
import { describe } from "../api/errors";
import { logout } from "../auth/session";

export function AccountPage() {
  const me = useQuery({ queryKey: ["me"], queryFn: () => data(api.GET("/api/v1/users/me")) });
  const client = useQueryClient();
  const navigate = useNavigate();
  return (
    <section className="page narrow">
      <h1>Account</h1>
      <div className="card">
        <h2>Profile</h2>
        {me.isPending && <p className="muted">Loading…</p>}
        {me.isError && <p className="error" role="alert">{describe(me.error)}</p>}
        {me.data && (
          <dl className="facts">
            <dt>Email</dt>
            <dd>{me.data.email}</dd>
            <dt>Display name</dt>
            <dd>{me.data.display_name ?? <span className="muted">not set</span>}</dd>
            <dt>Member since</dt>
            <dd>{new Date(me.data.created_at).toLocaleDateString()}</dd>
          </dl>
        )}
      </div>
      <button
        type="button"
        onClick={() => {
          void logout().then(() => {
            client.clear();
            void navigate("/login");
          });
        }}
      >
        Log out
      </button>
    </section>
  );
}
