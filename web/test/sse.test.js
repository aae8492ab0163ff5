// The playground's event stream parser, fed the bytes the server sends (docs/PROTOCOL.md),
// cut at every byte boundary, with each line ending the standard allows.
import { describe, expect, it } from 'vitest';
import { createDecoder, readEvents } from '../src/sse.js';

const encoder = new TextEncoder();

// A stream as the server writes it: `id:` lines, a keep-alive comment, tokens with
// multi-byte characters (cut inside them below) and a raw U+2028, which orjson leaves
// unescaped and a splitter that follows Unicode line breaks would cut.
const LF_STREAM =
  'id: 0\nevent: start\ndata: {"chatId":"c-1","messageId":"m-1"}\n\n' +
  ': ping\n\n' +
  'id: 1\nevent: token\ndata: {"token":"Hé 🙂"}\n\n' +
  'id: 2\nevent: token\ndata: {"token":"a\u2028b\u2029c"}\n\n' +
  'id: 3\nevent: token\ndata: {"token":"line\\nbreak"}\n\n' +
  ': ping\n\n' +
  'event: metadata\ndata: {"chatId":"c-1","usage":{"totalTokens":3}}\n\n' +
  'event: end\ndata: {}\n\n';

const EXPECTED = [
  ['start', { chatId: 'c-1', messageId: 'm-1' }],
  ['token', { token: 'Hé 🙂' }],
  ['token', { token: 'a\u2028b\u2029c' }],
  ['token', { token: 'line\nbreak' }],
  ['metadata', { chatId: 'c-1', usage: { totalTokens: 3 } }],
  ['end', {}],
];

function decode(chunks) {
  const events = [];
  const decoder = createDecoder((name, data) => events.push([name, data]));
  chunks.forEach((chunk) => decoder.push(chunk));
  decoder.end();
  return events;
}

// every way to cut `bytes` in two
function* cutsInTwo(bytes) {
  for (let i = 0; i <= bytes.length; i += 1) yield [bytes.slice(0, i), bytes.slice(i)];
}

const LINE_ENDINGS = {
  LF: LF_STREAM,
  CRLF: LF_STREAM.replaceAll('\n', '\r\n'),
  CR: LF_STREAM.replaceAll('\n', '\r'),
  // a line end of each kind in turn (never CR then LF, which would be one CRLF)
  mixed: LF_STREAM.split('\n')
    .slice(0, -1)
    .map((line, i) => line + ['\r', '\r\n', '\n'][i % 3])
    .join(''),
};

describe('createDecoder', () => {
  it('decodes a whole stream in one chunk', () => {
    expect(decode([encoder.encode(LF_STREAM)])).toEqual(EXPECTED);
  });

  for (const [ending, text] of Object.entries(LINE_ENDINGS)) {
    it(`decodes ${ending} line ends cut at every byte boundary`, () => {
      const bytes = encoder.encode(text);
      for (const [head, tail] of cutsInTwo(bytes)) {
        expect(decode([head, tail]), `cut at byte ${head.length}`).toEqual(EXPECTED);
      }
    });

    it(`decodes ${ending} line ends one byte at a time`, () => {
      const bytes = encoder.encode(text);
      expect(decode([...bytes].map((b) => Uint8Array.of(b)))).toEqual(EXPECTED);
    });
  }

  it('dispatches nothing for comments, ids and events without data', () => {
    const text = ': ping\n\n:\n\nid: 7\n\nevent: token\n\nretry: 100\n\n';
    expect(decode([encoder.encode(text)])).toEqual([]);
  });

  it('names an event without `event:` "message", and drops one space after the colon only', () => {
    const text = 'data:{"a":1}\n\nevent:token\ndata: 2\n\nevent:  token\ndata: 3\n\n';
    expect(decode([encoder.encode(text)])).toEqual([
      ['message', { a: 1 }],
      ['token', 2],
      [' token', 3],
    ]);
  });

  it('joins data lines with LF', () => {
    const text = 'event: token\ndata: {"token":\ndata: "two lines"}\n\n';
    expect(decode([encoder.encode(text)])).toEqual([['token', { token: 'two lines' }]]);
  });

  it('drops a leading byte order mark', () => {
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...encoder.encode(LF_STREAM)]);
    expect(decode([bytes.slice(0, 2), bytes.slice(2)])).toEqual(EXPECTED);
  });

  it('drops an event the stream ends before its blank line', () => {
    const text = 'event: token\ndata: {"token":"a"}\n\nevent: token\ndata: {"token":"b"}\n';
    expect(decode([encoder.encode(text)])).toEqual([['token', { token: 'a' }]]);
  });

  it('ends an event at a CR that is the last byte of the stream', () => {
    const text = 'event: end\ndata: {}\r\r';
    expect(decode([encoder.encode(text)])).toEqual([['end', {}]]);
  });

  it('raises on data that is not JSON', () => {
    const decoder = createDecoder(() => {});
    expect(() => decoder.push(encoder.encode('event: token\ndata: {oops\n\n'))).toThrow(
      SyntaxError,
    );
  });
});

describe('readEvents', () => {
  it('reads a fetch Response body chunk by chunk until it closes', async () => {
    const bytes = encoder.encode(LINE_ENDINGS.CRLF);
    const chunks = [];
    for (let i = 0; i < bytes.length; i += 5) chunks.push(bytes.slice(i, i + 5));
    const body = new ReadableStream({
      start(controller) {
        chunks.forEach((chunk) => controller.enqueue(chunk));
        controller.close();
      },
    });
    const events = [];
    await readEvents(new Response(body), (name, data) => events.push([name, data]));
    expect(events).toEqual(EXPECTED);
  });
});
