// Unit tests of the SSE parser (no server): a stream must parse the same however the network
// splits it — byte by byte, inside "data:", inside multi-byte UTF-8 characters, between CR and LF.

import test from 'node:test';
import assert from 'node:assert/strict';

import { createSSEParser, parseSSE } from '../../client/jobapp-client.js';

const encoder = new TextEncoder();

// What the server writes (retry:, then id:/data: events, a keep-alive comment), with non-ASCII text.
const PAYLOADS = [
  { type: 'job_update', status: 'active', progress: 30, message: 'Choosing traits — élan, 東京, 😀' },
  { type: 'job_update', status: 'active', progress: 60, message: 'Ünïcödé ✓ 🧙‍♀️' },
  { type: 'job_update', status: 'completed', progress: 100, result: { characterId: 'abc123' } },
];
const SERVER_STREAM = 'retry: 3000\n\n'
  + `id: 101\ndata: ${JSON.stringify(PAYLOADS[0])}\n\n`
  + ': keep-alive\n\n'
  + `id: 102\ndata: ${JSON.stringify(PAYLOADS[1])}\n\n`
  + `id: 103\ndata: ${JSON.stringify(PAYLOADS[2])}\n\n`;

/** Feed ``chunks`` one by one; return everything the parser reported. */
function run(chunks) {
  const seen = { events: [], retries: [], comments: [] };
  const parser = createSSEParser({
    onEvent: (e) => seen.events.push(e),
    onRetry: (ms) => seen.retries.push(ms),
    onComment: (c) => seen.comments.push(c),
  });
  for (const chunk of chunks) parser.feed(chunk);
  parser.end();
  return seen;
}

/** Split bytes at the given offsets. */
function splitAt(bytes, offsets) {
  const pieces = [];
  let last = 0;
  for (const offset of offsets) {
    pieces.push(bytes.subarray(last, offset));
    last = offset;
  }
  pieces.push(bytes.subarray(last));
  return pieces;
}

/** A deterministic pseudo-random generator, so a failure can be replayed. */
function rng(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function randomChunks(bytes, seed, maxSize = 7) {
  const random = rng(seed);
  const chunks = [];
  for (let i = 0; i < bytes.length;) {
    const size = 1 + Math.floor(random() * maxSize);
    chunks.push(bytes.subarray(i, i + size));
    i += size;
  }
  return chunks;
}

test('parses the server\'s stream: retry, ids, one JSON data line per event, comments', () => {
  const seen = run([SERVER_STREAM]);
  assert.deepEqual(seen.retries, [3000]);
  assert.deepEqual(seen.comments, ['keep-alive']);
  assert.deepEqual(seen.events.map((e) => e.id), ['101', '102', '103']);
  assert.deepEqual(seen.events.map((e) => e.type), ['message', 'message', 'message']);
  assert.deepEqual(seen.events.map((e) => JSON.parse(e.data)), PAYLOADS);
});

test('byte by byte gives the same events, multi-byte UTF-8 characters included', () => {
  const bytes = encoder.encode(SERVER_STREAM);
  const chunks = Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
  assert.deepEqual(run(chunks), run([SERVER_STREAM]));
});

test('every two-way split of the stream gives the same events', () => {
  const bytes = encoder.encode(SERVER_STREAM);
  const expected = run([bytes]);
  for (let offset = 0; offset <= bytes.length; offset++) {
    assert.deepEqual(run(splitAt(bytes, [offset])), expected, `split at byte ${offset}`);
  }
});

test('splits inside "data:", inside the JSON and inside a 4-byte emoji', () => {
  const bytes = encoder.encode(SERVER_STREAM);
  const dataAt = SERVER_STREAM.indexOf('data:');
  const emoji = encoder.encode(SERVER_STREAM.slice(0, SERVER_STREAM.indexOf('😀'))).length;
  const offsets = [dataAt + 1, dataAt + 3, dataAt + 5, dataAt + 20, emoji + 1, emoji + 2, emoji + 3];
  const chunks = splitAt(bytes, offsets);
  assert.ok(chunks.some((c) => new TextDecoder('utf-8', { fatal: false }).decode(c).includes('\ufffd')),
    'the test must really split a UTF-8 character');
  assert.deepEqual(run(chunks), run([SERVER_STREAM]));
});

test('random 1-7 byte chunks, 200 different ways', () => {
  const bytes = encoder.encode(SERVER_STREAM);
  const expected = run([bytes]);
  for (let seed = 1; seed <= 200; seed++) {
    assert.deepEqual(run(randomChunks(bytes, seed)), expected, `seed ${seed}`);
  }
});

test('CRLF, CR and LF line endings, a CRLF split between chunks', () => {
  const crlf = SERVER_STREAM.replaceAll('\n', '\r\n');
  const cr = SERVER_STREAM.replaceAll('\n', '\r');
  const expected = run([SERVER_STREAM]);
  assert.deepEqual(run([crlf]), expected);
  assert.deepEqual(run([cr]), expected);
  // The CR ends the line in one chunk; the LF at the start of the next must not end another.
  assert.deepEqual(run(['data: a\r', '\n', '\r', '\n', 'data: b\r', '\n\r\n']).events.map((e) => e.data), ['a', 'b']);
  // ... and CRLF split everywhere, byte by byte, with multi-byte text.
  const bytes = encoder.encode(crlf);
  assert.deepEqual(run(Array.from(bytes, (_, i) => bytes.subarray(i, i + 1))), expected);
  for (let seed = 1; seed <= 50; seed++) assert.deepEqual(run(randomChunks(bytes, seed, 3)), expected, `seed ${seed}`);
  // Mixed endings in one stream.
  assert.deepEqual(run(['data: x\rdata: y\r\ndata: z\n\r\n']).events.map((e) => e.data), ['x\ny\nz']);
});

test('multi-line data, the one optional space, fields without a colon, unknown fields', () => {
  const { events } = parseSSE('data: line 1\ndata:line 2\ndata:  two spaces\ndata\nfoo: bar\n\n');
  assert.deepEqual(events.map((e) => e.data), ['line 1\nline 2\n two spaces\n']);
  assert.equal(events[0].type, 'message');
});

test('event: sets the type, blocks without data dispatch nothing, "data:" alone dispatches ""', () => {
  const { events } = parseSSE('event: ping\ndata: 1\n\nid: 7\n\nevent: ignored\n\ndata:\n\n');
  assert.deepEqual(events, [
    { type: 'ping', data: '1', id: '' },
    { type: 'message', data: '', id: '7' },
  ]);
});

test('the last event id persists across events; an id with NUL is ignored', () => {
  const { events, lastEventId } = parseSSE('id: 1\ndata: a\n\ndata: b\n\nid: x\u0000y\ndata: c\n\nid\ndata: d\n\n');
  assert.deepEqual(events.map((e) => [e.data, e.id]), [['a', '1'], ['b', '1'], ['c', '1'], ['d', '']]);
  assert.equal(lastEventId, '');
});

test('retry: only with ASCII digits; comments with or without a space', () => {
  const result = parseSSE('retry: 1500\n\nretry: 12a\n\nretry: -5\n\nretry:250\n\n:no space\n: with space\n\n');
  assert.equal(result.retry, 250);
  assert.deepEqual(result.comments, ['no space', 'with space']);
  assert.deepEqual(result.events, []);
});

test('an event cut off by the end of the stream is not dispatched', () => {
  assert.deepEqual(parseSSE('data: complete\n\ndata: cut off\n').events.map((e) => e.data), ['complete']);
  assert.deepEqual(parseSSE(['data: complete\n\n', 'data: no newline at all']).events.map((e) => e.data), ['complete']);
});

test('a leading BOM is dropped, in bytes and in strings; a later U+FEFF is data', () => {
  const bom = new Uint8Array([0xef, 0xbb, 0xbf]);
  const rest = encoder.encode('data: \ufeffx\n\n');
  assert.deepEqual(parseSSE([bom.subarray(0, 1), bom.subarray(1), rest]).events.map((e) => e.data), ['\ufeffx']);
  assert.deepEqual(parseSSE('\ufeffdata: y\n\n').events.map((e) => e.data), ['y']);
});

test('strings and bytes can be mixed; invalid UTF-8 becomes U+FFFD instead of throwing', () => {
  const { events } = parseSSE(['data: ', encoder.encode('é'), new Uint8Array([0xff]), '\n\n']);
  assert.deepEqual(events.map((e) => e.data), ['é\ufffd']);
});

test('the guide\'s split-each-chunk-on-newlines loop breaks on the same split stream (why the parser exists)', () => {
  // The guide's loop, reduced to its parsing: decode a chunk, split it on \n, JSON.parse "data: " lines.
  const guideParse = (chunks) => {
    const decoder = new TextDecoder();
    const out = [];
    for (const value of chunks) {
      for (const line of decoder.decode(value, { stream: true }).split('\n')) {
        if (line.startsWith('data: ')) out.push(JSON.parse(line.slice(6)));
      }
    }
    return out;
  };
  const bytes = encoder.encode(SERVER_STREAM);
  assert.deepEqual(guideParse([bytes]), PAYLOADS); // whole events per chunk: fine
  // A chunk boundary inside the JSON: JSON.parse of half a line throws (and in the hook kills the loop).
  const split = splitAt(bytes, [SERVER_STREAM.indexOf('data:') + 20]);
  assert.throws(() => guideParse(split), SyntaxError);
  assert.deepEqual(run(split).events.map((e) => JSON.parse(e.data)), PAYLOADS);
  // Tiny chunks: "data: " itself is split, so events are lost silently (or it throws).
  const tiny = randomChunks(bytes, 7);
  let guideEvents;
  try { guideEvents = guideParse(tiny); } catch { guideEvents = null; }
  assert.ok(guideEvents === null || guideEvents.length < PAYLOADS.length);
  assert.deepEqual(run(tiny).events.map((e) => JSON.parse(e.data)), PAYLOADS);
});
