// Read a prediction's event stream (docs/PROTOCOL.md "The stream"), parsed as the HTML
// standard's event stream interpretation says
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
// a line ends with LF, CRLF or CR; a blank line ends an event; `event:` names it (`message`
// when unnamed); `data:` lines are joined with LF; one space after the colon is dropped;
// comments (`: ping`), `id:` and `retry:` carry nothing this page uses, and an event
// without data is not dispatched. Network chunks may cut anywhere: inside a line, between a
// CR and its LF, inside a UTF-8 character.

// One decoder per stream: `push(bytes)` each chunk, `end()` once it closes; `onEvent(name,
// data)` once per complete event, `data` parsed as JSON (a SyntaxError escapes `push`).
export function createDecoder(onEvent) {
  const decoder = new TextDecoder(); // UTF-8; a leading BOM is dropped, as the standard says
  let buffer = '';
  let afterCR = false; // the text so far ended with CR: an LF next is the same line end

  function dispatch(frame) {
    let name = '';
    const data = [];
    for (const line of frame.split('\n')) {
      const colon = line.indexOf(':');
      if (colon === 0) continue; // a comment, e.g. the keep-alive `: ping`
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') name = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length) onEvent(name || 'message', JSON.parse(data.join('\n')));
  }

  function feed(text) {
    if (afterCR && text.startsWith('\n')) text = text.slice(1);
    if (text) afterCR = text.endsWith('\r');
    buffer += text.replace(/\r\n?/g, '\n');
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      dispatch(frame);
    }
  }

  return {
    push: (bytes) => feed(decoder.decode(bytes, { stream: true })),
    // what follows the last blank line is an event cut short: dropped, as the standard says
    end: () => feed(decoder.decode()),
  };
}

// `response`: a fetch Response whose body is the event stream. Resolves once it has ended.
export async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const events = createDecoder(onEvent);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    events.push(value);
  }
  events.end();
}
