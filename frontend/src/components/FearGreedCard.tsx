import { memo } from "react";

import { useFearGreed } from "../market/hooks";

const asOfFormat = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric" });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

/** Memoized: it has no props, so the market page's live updates do not re-render it. */
export const FearGreedCard = memo(function FearGreedCard() {
  const { data, isError } = useFearGreed();
  const current = data?.current;
  return (
    <section className="card" aria-labelledby="fng-title">
      <h2 id="fng-title">Fear &amp; Greed</h2>
      {isError && <p className="muted">The index is not available right now.</p>}
      {!isError && !current && <p className="muted">No reading yet.</p>}
      {current && (
        <>
          <p className="fng-value">
            <strong>{current.value}</strong> <span>{current.classification}</span>
          </p>
          <meter min={0} max={100} low={25} high={75} optimum={50} value={current.value} aria-label={`Fear and Greed index ${current.value} of 100`} />
          <p className="muted small">as of {asOfFormat.format(new Date(current.as_of))}</p>
          {data.history.length > 1 && (
            <ol className="fng-history" aria-label="Recent readings">
              {data.history.slice(0, 7).map((r) => (
                <li key={r.as_of}>
                  {dayFormat.format(new Date(r.as_of))}: {r.value}
                </li>
              ))}
            </ol>
          )}
        </>
      )}
    </section>
  );
});
