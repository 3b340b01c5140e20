import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "react-router";

import { api, data } from "../api/client";
import { describe } from "../api/errors";
import { logout } from "../auth/session";
import { ChannelSettingsCard } from "../notifications/ChannelSettings";
import { PushOptIn } from "../notifications/PushOptIn";

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
      <UsageCard />
      <ChannelSettingsCard />
      <PushOptIn />
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

/** Today's (UTC) chat tokens against the daily budget. */
export function UsageCard() {
  const usage = useQuery({ queryKey: ["usage"], queryFn: () => data(api.GET("/api/v1/users/me/usage")), refetchInterval: 60_000 });
  const u = usage.data;
  const n = (value: number) => value.toLocaleString("en-US");
  return (
    <div className="card">
      <h2>Today’s chat usage</h2>
      {usage.isPending && <p className="muted">Loading…</p>}
      {usage.isError && <p className="error" role="alert">{describe(usage.error)}</p>}
      {u && (
        <>
          <p>
            {n(u.tokens_used)} of {n(u.daily_budget)} tokens used ({n(u.remaining)} left)
          </p>
          <meter aria-label="Tokens used today" min={0} max={Math.max(u.daily_budget, 1)} low={u.daily_budget * 0.8} high={u.daily_budget * 0.95} optimum={0} value={Math.min(u.tokens_used, u.daily_budget)} />
          <dl className="facts small">
            <dt>Questions</dt>
            <dd>{n(u.requests)}</dd>
            <dt>Input / output</dt>
            <dd>
              {n(u.input_tokens)} / {n(u.output_tokens)} ({n(u.cache_read_tokens)} read from cache)
            </dd>
            <dt>Resets</dt>
            <dd>{new Date(u.resets_at).toLocaleString()}</dd>
          </dl>
        </>
      )}
    </div>
  );
}
