// Server-Sent Events from a fetch() Response. EventSource cannot POST or send an
// Authorization header, and a chat answer is the reply to a POST, so the stream is read
// from response.body and parsed per the HTML spec's event-stream rules.

export async function* readEventStream(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = fresh();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      // A "\r" that ends the chunk may be the first half of "\r\n": it waits too, so the
      // "\n" is not read as an empty line (which would end the event early).
      const lines = buffer.split(/\r\n|\n|\r(?!$)/);
      buffer = lines.pop(); // an incomplete line waits for the next chunk
      for (const line of lines) {
        if (line === "") {
          if (event.data.length) yield { type: event.type, id: event.id, data: event.data.join("\n") };
          event = fresh();
        } else if (!line.startsWith(":")) {
          // ":" starts a comment (Sage's keep-alives)
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") event.type = text;
          else if (field === "data") event.data.push(text);
          else if (field === "id") event.id = text;
        }
      }
    }
  } finally {
    // Leaving early (the user navigated away) closes the connection; the server then
    // cancels the model call instead of generating for nobody.
    reader.cancel().catch(() => {});
  }
}

function fresh() {
  return { type: "message", id: null, data: [] };
}
