// A search hit's snippet marks the matched words with <b>…</b> (PostgreSQL ts_headline). It
// is split into text and marks here and rendered as React text, never as HTML, so a chat
// that contains markup cannot inject any.

export interface SnippetPart {
  text: string;
  mark: boolean;
}

export function snippetParts(snippet: string): SnippetPart[] {
  const parts: SnippetPart[] = [];
  const pattern = /<b>(.*?)<\/b>/gs;
  let at = 0;
  for (const match of snippet.matchAll(pattern)) {
    if (match.index > at) parts.push({ text: snippet.slice(at, match.index), mark: false });
    if (match[1]) parts.push({ text: match[1], mark: true });
    at = match.index + match[0].length;
  }
  if (at < snippet.length) parts.push({ text: snippet.slice(at), mark: false });
  return parts;
}
