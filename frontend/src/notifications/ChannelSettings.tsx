// Which channels carry alerts: in-app always; email once the address is verified (the
// server sends a signed link); web push to the browsers subscribed below.
import { useState, type FormEvent } from "react";

import { describe } from "../api/errors";
import { useChannelSettings, useRequestVerification, useSaveChannels, type ChannelSettings } from "./queries";

/** What the form would send: only what differs from the saved settings is a change. */
export function channelChanges(saved: ChannelSettings, email: boolean, webPush: boolean): { email: boolean; web_push: boolean } | null {
  return saved.email === email && saved.web_push === webPush ? null : { email, web_push: webPush };
}

export function ChannelSettingsCard() {
  const settings = useChannelSettings();
  // here, not in the form: a save remounts the form (see its key), the outcome stays
  const save = useSaveChannels();
  const s = settings.data;
  return (
    <div className="card">
      <h2 id="channels-heading">Notification channels</h2>
      {settings.isPending && <p className="muted">Loading…</p>}
      {settings.isError && <p className="error" role="alert">{describe(settings.error)}</p>}
      {/* keyed by the saved values: the push opt-in below can switch web push on */}
      {s && <ChannelForm key={`${s.email}/${s.web_push}/${s.email_verified}`} saved={s} save={save} />}
    </div>
  );
}

function ChannelForm({ saved, save }: { saved: ChannelSettings; save: ReturnType<typeof useSaveChannels> }) {
  const verify = useRequestVerification();
  const [email, setEmail] = useState(saved.email);
  const [webPush, setWebPush] = useState(saved.web_push);
  const emailAvailable = saved.available.includes("email");
  const pushAvailable = saved.available.includes("web_push");
  const changes = channelChanges(saved, email, webPush);
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (changes) save.mutate(changes);
  };
  return (
    <form className="form" onSubmit={submit} aria-labelledby="channels-heading">
      <label className="check">
        <input type="checkbox" checked disabled aria-describedby="in-app-note" /> In the app (the bell and live toasts)
      </label>
      <p id="in-app-note" className="muted small">
        Always on: every alert lands in your inbox.
      </p>
      <label className="check">
        <input type="checkbox" checked={email} disabled={!emailAvailable} onChange={(e) => setEmail(e.target.checked)} aria-describedby="email-note" /> Email
      </label>
      <p id="email-note" className="muted small">
        {!emailAvailable
          ? "This server does not send email."
          : saved.email_verified
            ? "Your address is verified."
            : "Your address is not verified yet: alerts are emailed once you open the link we send."}
      </p>
      {emailAvailable && !saved.email_verified && (
        <div>
          <button type="button" onClick={() => verify.mutate()} disabled={verify.isPending}>
            Send verification email
          </button>
          {verify.isSuccess && (
            <p role="status" className="small">
              Sent to {verify.data.email ?? "your address"}; the link is valid for a limited time.
            </p>
          )}
          {verify.isError && <p className="error" role="alert">{describe(verify.error)}</p>}
        </div>
      )}
      <label className="check">
        <input type="checkbox" checked={webPush} disabled={!pushAvailable} onChange={(e) => setWebPush(e.target.checked)} aria-describedby="push-note" /> Browser push
      </label>
      <p id="push-note" className="muted small">
        {pushAvailable ? "To the browsers where you enabled browser notifications." : "This server does not send push notifications."}
      </p>
      {save.isError && <p className="error" role="alert">{describe(save.error)}</p>}
      {save.isSuccess && !changes && (
        <p role="status" className="small">
          Saved.
        </p>
      )}
      <button type="submit" className="primary" disabled={!changes || save.isPending}>
        Save channels
      </button>
    </form>
  );
}
