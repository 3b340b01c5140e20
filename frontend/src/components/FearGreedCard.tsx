import { useFearGreed } from "../market/hooks";

export function FearGreedCard() {
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
          <p className="muted small">as of {new Date(current.as_of).toLocaleString()}</p>
          {data.history.length > 1 && (
            <ol className="fng-history" aria-label="Recent readings">
              {data.history.slice(0, 7).map((r) => (
                <li key={r.as_of}>
                  {new Date(r.as_of).toLocaleDateString(undefined, { month: "short", day: "numeric" })}: {r.value}
                </li>
              ))}
            </ol>
          )}
        </>
      )}
    </section>
  );
}
