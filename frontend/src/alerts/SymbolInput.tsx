// A symbol typed or picked from the market catalog (GET /market/symbols): matches show as
// buttons under the input while what was typed is not yet one of them.
import { useId, useState, type ReactNode } from "react";

import { useSymbolSearch } from "./queries";

interface Props {
  value: string;
  onChange: (symbol: string) => void;
  described: { "aria-invalid"?: true; "aria-describedby"?: string };
  error: ReactNode;
}

export function SymbolInput({ value, onChange, described, error }: Props) {
  const id = useId();
  const [typing, setTyping] = useState(false);
  const search = useSymbolSearch(typing ? value : "");
  const matches = typing ? (search.data?.symbols ?? []) : [];
  const exact = matches.some((m) => m.symbol === value.trim().toUpperCase());
  const hint = `${id}-hint`;

  return (
    <div className="field symbol-field">
      <label htmlFor={`${id}-input`}>Symbol</label>
      <input
        id={`${id}-input`}
        value={value}
        onChange={(e) => {
          setTyping(true);
          onChange(e.target.value);
        }}
        autoComplete="off"
        spellCheck={false}
        placeholder="BTC/USDT"
        {...described}
        aria-describedby={[described["aria-describedby"], hint].filter(Boolean).join(" ")}
      />
      <span className="sr-only" id={hint}>
        Type a coin or pair; matching pairs are listed after the field.
      </span>
      {error}
      {typing && !exact && matches.length > 0 && (
        <ul className="symbol-matches" aria-label="Matching symbols">
          {matches.map((m) => (
            <li key={m.symbol}>
              <button
                type="button"
                onClick={() => {
                  onChange(m.symbol);
                  setTyping(false);
                }}
              >
                {m.symbol}
                {m.name && <span className="muted"> {m.name}</span>}
              </button>
            </li>
          ))}
        </ul>
      )}
      {typing && search.isFetched && matches.length === 0 && value.trim() && <span className="muted small">No pair matches “{value.trim()}”.</span>}
    </div>
  );
}
