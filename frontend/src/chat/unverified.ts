// Figures of an answer the grounding check could not verify, as character spans to underline.
// The chat issue's grounding v2 sends spans ({start, end, reason}) in the `done` event and the
// stored message's metadata (`unverified`); today's check sends `unverified_claims` with the
// claim's text only, which is located in the answer.
export interface UnverifiedSpan {
  start: number;
  end: number;
  reason: string;
}

const DEFAULT_REASON = "Sage could not find this figure in the market data it had";

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

export function unverifiedSpans(content: string, source: Record<string, unknown>): UnverifiedSpan[] {
  const spans: UnverifiedSpan[] = [];
  const explicit = source.unverified ?? source.unverified_spans;
  if (Array.isArray(explicit)) {
    for (const item of explicit) {
      if (!isRecord(item)) continue;
      const { start, end, reason } = item;
      if (typeof start === "number" && typeof end === "number" && start >= 0 && end > start && end <= content.length) {
        spans.push({ start, end, reason: typeof reason === "string" && reason ? reason : DEFAULT_REASON });
      }
    }
    return normalise(spans);
  }
  const grounding = isRecord(source.grounding) ? source.grounding : {};
  const claims = source.unverified_claims ?? grounding.unverified_claims;
  if (!Array.isArray(claims)) return [];
  let from = 0;
  for (const claim of claims) {
    if (!isRecord(claim) || typeof claim.text !== "string" || !claim.text) continue;
    const at = content.indexOf(claim.text, from);
    const found = at >= 0 ? at : content.indexOf(claim.text);
    if (found < 0) continue;
    spans.push({ start: found, end: found + claim.text.length, reason: typeof claim.reason === "string" ? claim.reason : DEFAULT_REASON });
    from = found + claim.text.length;
  }
  return normalise(spans);
}

/** Sorted, without overlaps (an overlapping span is dropped). */
function normalise(spans: UnverifiedSpan[]): UnverifiedSpan[] {
  const out: UnverifiedSpan[] = [];
  for (const span of [...spans].sort((a, b) => a.start - b.start)) {
    const last = out.at(-1);
    if (!last || span.start >= last.end) out.push(span);
  }
  return out;
}
