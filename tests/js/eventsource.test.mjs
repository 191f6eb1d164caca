// (b) A native-EventSource-style client (the `eventsource` package, a WHATWG-spec implementation)
// on the streamUrl from the queue answer: no header, the stream token in the URL. It must get the
// events, reconnect with Last-Event-ID as a browser does when a 200 stream ends, and stop for good
// (readyState CLOSED) on the 204 the server answers once it has the terminal event.

import test from 'node:test';
import assert from 'node:assert/strict';

import { EventSource } from 'eventsource';

import { BASE_URL, TOKEN, api, isNonDecreasing, live, queueCharacter, recordingFetch, waitFor } from './support/live.mjs';
import { startProxy } from './support/proxy.mjs';

/** Open an EventSource on ``url`` and collect messages and errors until it is CLOSED. */
async function followUntilClosed(url, ms = 20_000) {
  const fetch = recordingFetch();
  const es = new EventSource(url, { fetch });
  const messages = [];
  const errors = [];
  es.onmessage = (m) => messages.push({ id: m.lastEventId, at: Date.now(), data: JSON.parse(m.data) });
  es.onerror = (e) => errors.push({ code: e.code, message: e.message, readyState: es.readyState });
  try {
    await waitFor(() => es.readyState === EventSource.CLOSED, ms, 'the EventSource to close');
  } finally {
    es.close();
  }
  return { messages, errors, calls: fetch.calls, readyState: es.readyState };
}

function assertCompletedRun(messages) {
  assert.ok(messages.length >= 1, 'no message arrived');
  assert.ok(messages.every((m) => ['job_update', 'job_log'].includes(m.data.type)));
  const updates = messages.map((m) => m.data).filter((u) => u.type === 'job_update'); // 1.1 adds job_log
  assert.ok(isNonDecreasing(updates.map((u) => u.progress)), `progress went down: ${updates.map((u) => u.progress)}`);
  const last = updates.at(-1);
  assert.equal(last.status, 'completed');
  assert.equal(last.progress, 100);
  assert.match(last.result.characterId, /^[0-9a-f]{32}$/);
  const ids = messages.map((m) => BigInt(m.id));
  assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]), `event ids must increase: ${ids}`);
}

test('EventSource on streamUrl: events, then a Last-Event-ID reconnect answered 204, then CLOSED', live(), async (t) => {
  const { streamUrl } = await queueCharacter();
  assert.match(streamUrl, /^\/api\/v1\/sse\/jobs\/character\/[0-9a-f-]{36}\?token=/);
  const { messages, errors, calls, readyState } = await followUntilClosed(BASE_URL + streamUrl);
  t.diagnostic(`requests: ${JSON.stringify(calls.map((c) => ({ lastEventId: c.headers['last-event-id'] ?? null, status: c.status })))}`);

  assert.equal(readyState, EventSource.CLOSED);
  assertCompletedRun(messages);
  assert.ok(new Set(messages.map((m) => m.data.progress)).size >= 2, 'progress did not rise');
  // Two requests: the stream, then the browser-style reconnect after the server closed it.
  assert.equal(calls.length, 2, `expected 2 requests, got ${calls.length}`);
  assert.equal(calls[0].headers.authorization, undefined, 'EventSource sends no Authorization header');
  assert.equal(calls[0].headers['last-event-id'], undefined);
  assert.equal(calls[0].status, 200);
  assert.equal(calls[1].headers['last-event-id'], messages.at(-1).id, 'the reconnect must carry the last id');
  assert.equal(calls[1].status, 204);
  // It waited for the server's retry: (3000 ms by default) before reconnecting.
  assert.ok(calls[1].at - messages.at(-1).at >= 2500, `reconnected after ${calls[1].at - messages.at(-1).at} ms`);
  assert.equal(errors.at(-1).code, 204);
});

test('EventSource through a dropped connection: reconnects with Last-Event-ID, completes, then CLOSED', live(), async (t) => {
  const proxy = await startProxy(BASE_URL, { cutAfterEvents: 1 });
  try {
    const { streamUrl } = await queueCharacter();
    const { messages, readyState } = await followUntilClosed(proxy.url + streamUrl, 25_000);
    const requests = proxy.requests.map((r) => ({ lastEventId: r.headers['last-event-id'] ?? null, status: r.status, cut: r.cut }));
    t.diagnostic(`requests: ${JSON.stringify(requests)}`);

    assert.equal(readyState, EventSource.CLOSED);
    assertCompletedRun(messages);
    assert.equal(requests.length, 3, 'cut stream, resumed stream, 204');
    assert.deepEqual(requests.map((r) => [r.status, r.cut]), [[200, true], [200, false], [204, false]]);
    assert.equal(requests[0].lastEventId, null);
    assert.equal(requests[1].lastEventId, messages[0].id, 'the resume carries the id of the event before the cut');
    assert.equal(requests[2].lastEventId, messages.at(-1).id);
  } finally {
    await proxy.close();
  }
});

test('EventSource with an access token in the URL is refused (401 naming streamUrl) and stops', live(), async () => {
  const { jobId } = await queueCharacter();
  const url = `${BASE_URL}/api/v1/sse/jobs/character/${jobId}?token=${TOKEN}`;
  const { messages, errors, calls } = await followUntilClosed(url, 10_000);
  assert.deepEqual(messages, []);
  assert.equal(calls.length, 1);
  assert.equal(errors.at(-1).code, 401);
  const direct = await api('GET', `/api/v1/sse/jobs/character/${jobId}?token=${TOKEN}`, { token: '' });
  assert.equal(direct.status, 401);
  assert.match(direct.json.error.message, /streamUrl/);
});
