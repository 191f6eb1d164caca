// (g) @microsoft/fetch-event-source, the usual fetch-based SSE client (it can send an Authorization
// header), used the way its README shows, unguarded: `onmessage(ev) { JSON.parse(ev.data) }`.
// It calls onmessage for every block that ends in a blank line, even one without data: (its
// issue #15), so a `retry:`-only block or a `: keep-alive\n\n` comment block would throw
// "Unexpected end of JSON input" there. The server's framing sends neither: a full job and a run of
// heartbeats must pass with zero empty messages. A control run against a small local server that
// frames the old way shows the check can fail.
//
// The library was written for browsers: it touches `document` (visibility handling, skipped with
// openWhenHidden: true, but dispose() still removes its listener) and `window.setTimeout`. A Node
// user gives it those two globals, as here.

import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { fetchEventSource } from '@microsoft/fetch-event-source';

import { BASE_URL, TOKEN, live, queueCharacter, waitFor, within } from './support/live.mjs';

globalThis.window ??= globalThis;
globalThis.document ??= { hidden: false, addEventListener() {}, removeEventListener() {} };

/** A fetch that keeps a copy of every body's text (to see the heartbeats the library hides). */
function teeFetch() {
  const seen = { text: '' };
  const wrapped = async (input, init) => {
    const response = await fetch(input, init);
    const decoder = new TextDecoder();
    const body = response.body.pipeThrough(new TransformStream({
      transform(chunk, controller) { seen.text += decoder.decode(chunk, { stream: true }); controller.enqueue(chunk); },
    }));
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
  return { fetch: wrapped, seen };
}

/** Follow ``url`` README-style until the server ends the stream or ``until(messages, raw)`` holds. */
async function follow(url, { headers = {}, until = null, ms = 20_000 } = {}) {
  const { fetch, seen } = teeFetch();
  const controller = new AbortController();
  const messages = [];
  const raw = [];
  const done = fetchEventSource(url, {
    headers,
    fetch,
    signal: controller.signal,
    openWhenHidden: true,
    onmessage(ev) {
      raw.push(ev.data);
      messages.push(JSON.parse(ev.data)); // the README idiom, no guard
      if (until?.(messages, seen.text)) controller.abort();
    },
    onclose() {}, // the server ended the stream: done (no reconnect)
    onerror(err) { throw err; }, // any error (a JSON.parse throw included) fails the run, no retry
  });
  let timer;
  if (until) timer = setInterval(() => { if (until(messages, seen.text)) controller.abort(); }, 50);
  try {
    await within(ms, done, `fetch-event-source on ${url}`);
  } finally {
    clearInterval(timer);
    controller.abort();
  }
  return { messages, raw, text: seen.text };
}

test('fetch-event-source, README idiom: a full job with zero empty messages', live(), async () => {
  const job = await queueCharacter();
  const { messages, raw, text } = await follow(`${BASE_URL}/api/v1/sse/jobs/character/${job.jobId}`, {
    headers: { Authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(raw.filter((d) => d === '').length, 0, 'no empty messages');
  assert.ok(messages.length >= 2, `only ${messages.length} messages`);
  // job_update events and (contract 1.1) the demo job's job_log lines, all of this job, all parsed.
  assert.ok(messages.every((m) => ['job_update', 'job_log'].includes(m.type) && m.jobId === job.jobId));
  assert.ok(messages.some((m) => m.type === 'job_log'), 'the job log lines came through too');
  assert.equal(messages.at(-1).status, 'completed');
  assert.match(text, /^retry: \d+\n/, 'the server did send retry: (in the first event\'s block)');
});

test('fetch-event-source, README idiom: heartbeats on an open stream give no messages', live(), async () => {
  const job = await queueCharacter();
  // The many-jobs stream stays open after the job ends, so only heartbeats follow (1 s apart here).
  const { messages, raw, text } = await follow(`${BASE_URL}/api/v1/sse/jobs?ids=${job.jobId}`, {
    headers: { Authorization: `Bearer ${TOKEN}` },
    until: (msgs, seenText) => msgs.some((m) => m.status === 'completed')
      && (seenText.split('completed')[1] ?? '').split(': keep-alive').length > 3,
  });
  assert.equal(raw.filter((d) => d === '').length, 0, 'no empty messages');
  assert.ok(text.split(': keep-alive').length > 3, 'three heartbeats arrived after the last event');
  assert.equal(messages.at(-1).status, 'completed');
});

test('control: the old framing (retry: and comments in blocks of their own) gives empty messages', async () => {
  const event = `id: 1\ndata: ${JSON.stringify({ type: 'job_update', status: 'completed' })}\n\n`;
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.end(`retry: 3000\n\n: keep-alive\n\n${event}`);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${server.address().port}/`;
    const raw = [];
    const errors = [];
    await within(10_000, fetchEventSource(url, {
      openWhenHidden: true,
      onmessage(ev) { raw.push(ev.data); JSON.parse(ev.data); },
      onclose() {},
      onerror(err) { errors.push(err); throw err; },
    }).catch(() => {}), 'the control stream');
    await waitFor(() => errors.length > 0, 5000, 'the parse error');
    assert.equal(raw[0], '', 'the retry:-only block reached onmessage as an empty message');
    assert.match(String(errors[0]), /JSON/);
  } finally {
    server.close();
  }
});
