// Answers are markdown from a model: rendered with react-markdown (no raw HTML is parsed at
// all) and then sanitised by rehype-sanitize (GitHub's allow-list), so neither a `javascript:`
// link nor an injected element can reach the page. GitHub-flavoured tables and lists
// (remark-gfm); a single newline is a line break (remark-breaks), as chat answers mean it.
import type { Element, ElementContent, Root, Text } from "hast";
import ReactMarkdown from "react-markdown";
import rehypeSanitize, { defaultSchema } from "rehype-sanitize";
import remarkBreaks from "remark-breaks";
import remarkGfm from "remark-gfm";

import type { UnverifiedSpan } from "./unverified";

const schema = {
  ...defaultSchema,
  attributes: {
    ...defaultSchema.attributes,
    span: [...(defaultSchema.attributes?.span ?? []), ["className", "unverified"], "title", "tabIndex", "dataReason"],
  },
};

/**
 * Wraps the answer's unverified figures in <span class="unverified">. Spans are character
 * offsets in the markdown source; a text node knows its own source offset, and a figure
 * sits inside one text node (plain digits and symbols), so the node is split there.
 */
export function rehypeUnverified(spans: UnverifiedSpan[]) {
  return () => (tree: Root) => {
    if (spans.length === 0) return;
    const walk = (parent: Root | Element) => {
      const children: ElementContent[] = [];
      for (const child of parent.children) {
        if (child.type === "text") children.push(...split(child, spans));
        else {
          if (child.type === "element") walk(child);
          children.push(child as ElementContent); // a doctype only ever sits at the root
        }
      }
      parent.children = children;
    };
    walk(tree);
  };
}

function split(node: Text, spans: UnverifiedSpan[]): ElementContent[] {
  const start = node.position?.start.offset;
  const end = node.position?.end.offset;
  // Only nodes whose text is exactly their source (no escapes or entities) can be cut by offset.
  if (start === undefined || end === undefined || end - start !== node.value.length) return [node];
  const out: ElementContent[] = [];
  let cursor = 0;
  for (const span of spans) {
    const from = span.start - start;
    const to = span.end - start;
    if (from < cursor || to > node.value.length) continue;
    if (from > cursor) out.push({ type: "text", value: node.value.slice(cursor, from) });
    out.push({
      type: "element",
      tagName: "span",
      properties: { className: ["unverified"], title: `Unverified: ${span.reason}`, tabIndex: 0, dataReason: span.reason },
      children: [{ type: "text", value: node.value.slice(from, to) }],
    });
    cursor = to;
  }
  if (cursor === 0) return [node];
  if (cursor < node.value.length) out.push({ type: "text", value: node.value.slice(cursor) });
  return out;
}

export function Markdown({ text, unverified = [] }: { text: string; unverified?: UnverifiedSpan[] }) {
  return (
    <div className="markdown">
      <ReactMarkdown
        remarkPlugins={[remarkGfm, remarkBreaks]}
        rehypePlugins={[rehypeUnverified(unverified), [rehypeSanitize, schema]]}
        components={{
          a: ({ href, children }) => (
            <a href={href} target="_blank" rel="noopener noreferrer nofollow">
              {children}
            </a>
          ),
        }}
      >
        {text}
      </ReactMarkdown>
    </div>
  );
}
