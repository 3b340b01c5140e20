// Rename or delete the portfolio on show; deleting asks first, naming what goes with it.
import { useState, type FormEvent } from "react";

import { describe, field } from "../api/errors";
import "./portfolio.css";
import { useDeletePortfolio, useRenamePortfolio, type Portfolio } from "./queries";

export function PortfolioActions({ portfolio, onDeleted }: { portfolio: Portfolio; onDeleted: () => void }) {
  const rename = useRenamePortfolio(portfolio.id);
  const remove = useDeletePortfolio(portfolio.id);
  const [mode, setMode] = useState<"idle" | "renaming" | "confirming">("idle");

  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const name = field(new FormData(event.currentTarget), "name").trim();
    if (name === portfolio.name) {
      setMode("idle");
      return;
    }
    rename.mutate(name, { onSuccess: () => setMode("idle") });
  };

  if (mode === "renaming") {
    return (
      <form className="inline-form portfolio-rename" onSubmit={submit} aria-label={`Rename ${portfolio.name}`}>
        <label>
          <span className="sr-only">New name</span>
          <input name="name" defaultValue={portfolio.name} required maxLength={100} autoComplete="off" autoFocus />
        </label>
        <button type="submit" className="primary" disabled={rename.isPending}>
          Save name
        </button>
        <button type="button" onClick={() => setMode("idle")}>
          Cancel
        </button>
        {rename.isError && (
          <p className="error" role="alert">
            {describe(rename.error)}
          </p>
        )}
      </form>
    );
  }
  if (mode === "confirming") {
    return (
      <div role="alertdialog" aria-label={`Delete ${portfolio.name}?`} className="inline-form portfolio-confirm">
        <p>
          Delete “{portfolio.name}” with all its trades? This cannot be undone{portfolio.is_default ? "; your oldest other portfolio becomes the default" : ""}.
        </p>
        <button type="button" className="danger" disabled={remove.isPending} onClick={() => remove.mutate(undefined, { onSuccess: onDeleted })}>
          Delete portfolio
        </button>
        <button type="button" autoFocus onClick={() => setMode("idle")}>
          Keep
        </button>
        {remove.isError && (
          <p className="error" role="alert">
            {describe(remove.error)}
          </p>
        )}
      </div>
    );
  }
  return (
    <span className="portfolio-actions">
      <button type="button" aria-label={`Rename ${portfolio.name}`} onClick={() => setMode("renaming")}>
        Rename
      </button>
      <button type="button" aria-label={`Delete ${portfolio.name}`} onClick={() => setMode("confirming")}>
        Delete
      </button>
    </span>
  );
}
