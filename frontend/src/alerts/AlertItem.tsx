// One alert in the list: what it watches, its state, how often it fired and when last;
// edit, pause / resume and delete (after a confirmation).
import { useState } from "react";

import { describe } from "../api/errors";
import { AlertForm } from "./AlertForm";
import { draftOf, fieldErrors, formatCooldown, kindOf, patchBody, stateOf, type Alert, type AlertCreated, type FieldErrors } from "./kinds";
import { useDeleteAlert, useUpdateAlert } from "./queries";

const EDITABLE = ["threshold", "repeat", "cooldown_seconds", "note"] as const;

export function AlertItem({ alert }: { alert: Alert }) {
  const update = useUpdateAlert(alert.id);
  const remove = useDeleteAlert(alert.id);
  const [editing, setEditing] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [notice, setNotice] = useState<string | null>(null);
  const spec = kindOf(alert.kind);
  const label = spec.describe(alert);
  const state = stateOf(alert);
  const paused = alert.status === "paused";

  const saved = (result: AlertCreated) => setNotice(result.already_triggered ? (result.message ?? "The condition already holds; the alert waits for the next crossing.") : null);

  return (
    <li className="alert-item" aria-label={label}>
      <div className="alert-head">
        <strong>{label}</strong> <span className={`badge ${state.tone}`}>{state.label}</span>{" "}
        <span className="badge">{alert.repeat === "every" ? `repeats, cooldown ${formatCooldown(alert.cooldown_seconds)}` : "once"}</span>
      </div>
      {alert.note && <p className="alert-note">{alert.note}</p>}
      <p className="muted small alert-facts">
        {alert.fire_count === 0 ? "Not fired yet" : `Fired ${alert.fire_count} ${alert.fire_count === 1 ? "time" : "times"}`}
        {alert.triggered_at && (
          <>
            {"; last "}
            <time dateTime={alert.triggered_at}>{new Date(alert.triggered_at).toLocaleString()}</time>
            {alert.triggered_price !== null && ` at ${spec.formatValue(alert.triggered_price)}`}
          </>
        )}
        {"; created "}
        <time dateTime={alert.created_at}>{new Date(alert.created_at).toLocaleDateString()}</time>
      </p>
      {notice && (
        <p className="badge warn notice" role="status">
          {notice}
        </p>
      )}
      {editing ? (
        <AlertForm
          initial={draftOf(alert)}
          editing={`Editing: ${label}`}
          label={`Edit ${label}`}
          errors={errors}
          pending={update.isPending}
          submitLabel="Save"
          onCancel={() => {
            setEditing(false);
            setErrors({});
          }}
          onSubmit={(draft) => {
            const checked = patchBody(alert, draft);
            if (!checked.ok) return setErrors(checked.errors);
            setErrors({});
            if (Object.keys(checked.body).length === 0) return setEditing(false);
            update.mutate(checked.body, {
              onSuccess: (result) => {
                saved(result);
                setEditing(false);
              },
              onError: (error) => setErrors(fieldErrors(error, EDITABLE)),
            });
          }}
        />
      ) : (
        <div className="alert-actions">
          <button type="button" aria-label={`Edit ${label}`} onClick={() => setEditing(true)}>
            Edit
          </button>
          <button
            type="button"
            aria-label={`${paused ? "Resume" : "Pause"} ${label}`}
            disabled={update.isPending}
            onClick={() => update.mutate({ paused: !paused }, { onSuccess: saved })}
          >
            {paused ? "Resume" : "Pause"}
          </button>
          {confirming ? (
            <span role="alertdialog" aria-label={`Delete ${label}?`} className="confirm">
              <span>Delete this alert?</span>{" "}
              <button type="button" className="danger" disabled={remove.isPending} onClick={() => remove.mutate()}>
                Delete
              </button>{" "}
              <button type="button" autoFocus onClick={() => setConfirming(false)}>
                Keep
              </button>
            </span>
          ) : (
            <button type="button" aria-label={`Delete ${label}`} onClick={() => setConfirming(true)}>
              Delete
            </button>
          )}
        </div>
      )}
      {update.isError && !editing && (
        <p className="error" role="alert">
          {describe(update.error)}
        </p>
      )}
      {remove.isError && (
        <p className="error" role="alert">
          {describe(remove.error)}
        </p>
      )}
    </li>
  );
}
