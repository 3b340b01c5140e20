export function StatusBadges({ stale, diverged }: { stale: boolean; diverged: boolean }) {
  return (
    <>
      {stale && (
        <span className="badge warn" title="No exchange has reported recently">
          stale
        </span>
      )}
      {diverged && (
        <span className="badge warn" title="The exchanges disagree on the price">
          diverged
        </span>
      )}
    </>
  );
}

export function StreamBadge({ state }: { state: "connecting" | "live" | "reconnecting" }) {
  return (
    <span className={`badge ${state === "live" ? "ok" : ""}`} role="status" aria-live="polite">
      {state === "live" ? "live" : state === "connecting" ? "connecting…" : "reconnecting…"}
    </span>
  );
}
