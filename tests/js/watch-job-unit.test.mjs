// watchJob against scripted fetch answers (no server): HTTP errors, 204, retries and backoff,
// Last-Event-ID, retry:, cancel, terminal statuses, URL and token handling.

import test from 'node:test';
import assert from 'node:assert/strict';

import { watchJob } from '../../client/jobapp-client.js';
import { deferred, within } from './support/live.mjs';

const URL_ = 'http://api.test/api/v1/sse/jobs/character/job-1';
const update = (status, progress, extra = {}) => ({
  type: 'job_update', jobId: 'job-1', jobType: 'character', status, progress, stage: null, message: null,
  updatedAt: 0, result: null, failedReason: null, ...extra,
});
const frame = (id, payload) => `id: ${id}\ndata: ${JSON.stringify(payload)}\n\n`;

/** A text/event-stream Response whose body is ``chunks``; it stays open when ``open`` (until aborted). */
function sseResponse(chunks, { signal, open = false, status = 200, contentType = 'text/event-stream; charset=utf-8' } = {}) {
  const encoder = new TextEncoder();
  const body = new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      if (!open) controller.close();
      signal?.addEventListener('abort', () => {
        try { controller.error(new DOMException('This operation was aborted', 'AbortError')); } catch { /* closed */ }
      });
    },
  });
  return new Response(body, { status, headers: { 'Content-Type': contentType } });
}

const jsonResponse = (status, body) => new Response(JSON.stringify(body), {
  status, headers: { 'Content-Type': 'application/json' },
});

/** A fetch that answers call i with answers[i](init) and records each call with its time. */
function scriptedFetch(answers) {
  const calls = [];
  const fetch = async (url, init) => {
    const call = { url: String(url), headers: { ...init.headers }, at: Date.now(), signal: init.signal };
    calls.push(call);
    const answer = answers[Math.min(calls.length - 1, answers.length - 1)];
    return answer(init, call);
  };
  fetch.calls = calls;
  return fetch;
}

/** Start a watch, collecting every callback; ``done`` resolves with the close reason. */
function watch(options) {
  const seen = { updates: [], complete: [], errors: [], cancels: [], closes: [] };
  const closed = deferred();
  const stop = watchJob({
    url: URL_,
    token: 'tok',
    retryMs: 10,
    onUpdate: (e) => seen.updates.push(e),
    onComplete: (result) => seen.complete.push(result),
    onError: (message, details) => seen.errors.push({ message, details }),
    onClose: (reason) => { seen.closes.push(reason); closed.resolve(reason); },
    ...options,
  });
  return { seen, stop, done: within(5000, stop.closed, 'the watch to close') };
}

for (const [status, code, message] of [
  [401, 'unauthorized', 'Invalid token: Signature verification failed'],
  [404, 'not_found', 'Job not found'],
  [429, 'rate_limited', 'Too many requests; try again in 5 s'],
]) {
  test(`HTTP ${status}: onError gets the server's error.message, and there is no retry`, async () => {
    const fetch = scriptedFetch([() => jsonResponse(status, { error: { code, message } })]);
    const { seen, done } = watch({ fetch });
    assert.equal(await done, 'error');
    assert.deepEqual(seen.errors, [{ message, details: { kind: 'http', status, code } }]);
    assert.equal(fetch.calls.length, 1);
    assert.deepEqual(seen.complete, []);
  });
}

test('an error answer that is not JSON is reported by its status', async () => {
  const fetch = scriptedFetch([() => new Response('<html>nope</html>', { status: 403, statusText: 'Forbidden' })]);
  const { seen, done } = watch({ fetch });
  await done;
  assert.equal(seen.errors[0].message, 'HTTP 403 Forbidden');
  assert.equal(fetch.calls.length, 1);
});

test('HTTP 204: already finished, stop quietly without retrying', async () => {
  const fetch = scriptedFetch([() => new Response(null, { status: 204 })]);
  const { seen, done } = watch({ fetch, lastEventId: '99' });
  assert.equal(await done, 'no-content');
  assert.equal(fetch.calls.length, 1);
  assert.equal(fetch.calls[0].headers['Last-Event-ID'], '99');
  assert.deepEqual([seen.errors, seen.complete, seen.updates], [[], [], []]);
});

test('a 200 that is not text/event-stream is an error, not retried', async () => {
  const fetch = scriptedFetch([(init) => sseResponse(['<html>'], { signal: init.signal, contentType: 'text/html' })]);
  const { seen, done } = watch({ fetch });
  assert.equal(await done, 'error');
  assert.equal(seen.errors[0].details.kind, 'protocol');
  assert.equal(fetch.calls.length, 1);
});

test('5xx and network errors are retried; the next connection completes the job', async () => {
  const fetch = scriptedFetch([
    () => jsonResponse(503, { error: { code: 'unavailable', message: 'The job store is unavailable' } }),
    () => { throw new TypeError('fetch failed'); },
    (init) => sseResponse([frame(1, update('active', 50)), frame(2, update('completed', 100, { result: { characterId: 'c1' } }))], { signal: init.signal, open: true }),
  ]);
  const { seen, done } = watch({ fetch });
  assert.equal(await done, 'completed');
  assert.equal(fetch.calls.length, 3);
  assert.deepEqual(seen.complete, [{ characterId: 'c1' }]);
  assert.deepEqual(seen.updates.map((e) => e.progress), [50, 100]);
  assert.deepEqual(seen.errors, []);
  // The terminal event aborted the still-open stream.
  assert.equal(fetch.calls[2].signal.aborted, true);
});

test('a stream that ends early reconnects with Last-Event-ID, after the server\'s retry:', async () => {
  const fetch = scriptedFetch([
    (init) => sseResponse(['retry: 150\n\n', frame(41, update('active', 30))], { signal: init.signal }),
    (init) => sseResponse([frame(42, update('completed', 100, { result: { characterId: 'c2' } }))], { signal: init.signal }),
  ]);
  const { seen, done } = watch({ fetch });
  assert.equal(await done, 'completed');
  assert.equal(fetch.calls[0].headers['Last-Event-ID'], undefined);
  assert.equal(fetch.calls[1].headers['Last-Event-ID'], '41');
  const waited = fetch.calls[1].at - fetch.calls[0].at;
  assert.ok(waited >= 145, `reconnected after ${waited} ms, before the server's retry: 150`);
  assert.deepEqual(seen.complete, [{ characterId: 'c2' }]);
});

test('failed connections back off exponentially and give up after maxRetries', async () => {
  const fetch = scriptedFetch([() => { throw new TypeError('fetch failed'); }]);
  const { seen, done } = watch({ fetch, retryMs: 40, maxRetries: 3 });
  assert.equal(await done, 'error');
  assert.equal(fetch.calls.length, 4);
  const gaps = fetch.calls.slice(1).map((c, i) => c.at - fetch.calls[i].at);
  // 40, 80, 160 ms (plus up to 20 % jitter): each at least the one before, doubled.
  assert.ok(gaps[0] >= 38 && gaps[1] >= 78 && gaps[2] >= 155, `gaps ${gaps}`);
  assert.equal(seen.errors.length, 1);
  assert.match(seen.errors[0].message, /^Connection lost: fetch failed/);
  assert.equal(seen.errors[0].details.kind, 'network');
});

test('maxRetryMs caps the backoff, but never below the server\'s retry:', async () => {
  const fetch = scriptedFetch([
    (init) => sseResponse(['retry: 60\n\n'], { signal: init.signal }),
    () => { throw new TypeError('fetch failed'); },
  ]);
  const { done } = watch({ fetch, maxRetries: 4, maxRetryMs: 10 });
  await done;
  const gaps = fetch.calls.slice(1).map((c, i) => c.at - fetch.calls[i].at);
  assert.ok(gaps.every((g) => g >= 58 && g < 200), `gaps ${gaps}`);
});

test('a silent connection is dropped after idleTimeoutMs and reopened', async () => {
  const fetch = scriptedFetch([
    (init) => sseResponse([frame(5, update('active', 10))], { signal: init.signal, open: true }),
    (init) => sseResponse([frame(6, update('completed', 100, { result: {} }))], { signal: init.signal, open: true }),
  ]);
  const { done } = watch({ fetch, idleTimeoutMs: 100 });
  assert.equal(await done, 'completed');
  assert.equal(fetch.calls.length, 2);
  assert.equal(fetch.calls[0].signal.aborted, true);
  assert.equal(fetch.calls[1].headers['Last-Event-ID'], '5');
});

test('failed -> onError(failedReason); canceled -> onCancel, or onError("canceled") without it', async () => {
  const answer = (payload) => scriptedFetch([(init) => sseResponse([frame(1, payload)], { signal: init.signal, open: true })]);

  const failed = watch({ fetch: answer(update('failed', 40, { failedReason: 'Character not found' })) });
  assert.equal(await failed.done, 'failed');
  assert.equal(failed.seen.errors[0].message, 'Character not found');
  assert.equal(failed.seen.errors[0].details.kind, 'failed');

  const canceled = watch({ fetch: answer(update('canceled', 40)) });
  assert.equal(await canceled.done, 'canceled');
  assert.equal(canceled.seen.errors[0].message, 'canceled');

  const cancels = [];
  const withCallback = watch({ fetch: answer(update('canceled', 40)), onCancel: (e) => cancels.push(e.status) });
  assert.equal(await withCallback.done, 'canceled');
  assert.deepEqual([cancels, withCallback.seen.errors], [['canceled'], []]);
});

test('cancel() aborts the request and no callback fires afterwards', async () => {
  const body = deferred();
  const fetch = scriptedFetch([(init) => {
    body.resolve(init.signal);
    return sseResponse([frame(1, update('active', 10))], { signal: init.signal, open: true });
  }]);
  const { seen, stop } = watch({ fetch });
  const signal = await body.promise;
  await new Promise((resolve) => setTimeout(resolve, 50));
  stop();
  assert.equal(await stop.closed, 'aborted');
  assert.equal(signal.aborted, true);
  assert.deepEqual(seen.updates.map((e) => e.progress), [10]);
  assert.deepEqual([seen.errors, seen.complete, seen.closes], [[], [], ['aborted']]);
  stop(); // idempotent
});

test('an AbortSignal passed in cancels the watch', async () => {
  const controller = new AbortController();
  const fetch = scriptedFetch([(init) => sseResponse([], { signal: init.signal, open: true })]);
  const { stop } = watch({ fetch, signal: controller.signal });
  controller.abort();
  assert.equal(await stop.closed, 'aborted');
});

test('relative url needs baseUrl; no token means no Authorization header; a token function is asked each time', async () => {
  assert.throws(() => watchJob({ url: '/api/v1/sse/jobs/character/x?token=s' }), TypeError);

  const fetch = scriptedFetch([(init) => sseResponse([frame(1, update('completed', 100))], { signal: init.signal })]);
  const plain = watch({ fetch, url: '/api/v1/sse/jobs/character/x?token=s', baseUrl: 'http://api.test', token: undefined });
  await plain.done;
  assert.equal(fetch.calls[0].url, 'http://api.test/api/v1/sse/jobs/character/x?token=s');
  assert.equal(fetch.calls[0].headers.Authorization, undefined);
  assert.equal(fetch.calls[0].headers.Accept, 'text/event-stream');

  let asked = 0;
  const fetch2 = scriptedFetch([
    (init) => sseResponse([frame(1, update('active', 1))], { signal: init.signal }),
    (init) => sseResponse([frame(2, update('completed', 100))], { signal: init.signal }),
  ]);
  const refreshed = watch({ fetch: fetch2, token: async () => `t${++asked}` });
  await refreshed.done;
  assert.deepEqual(fetch2.calls.map((c) => c.headers.Authorization), ['Bearer t1', 'Bearer t2']);
});

test('events that are not job updates are ignored', async () => {
  const fetch = scriptedFetch([(init) => sseResponse([
    ': keep-alive\n\n', 'data: not json\n\n', 'event: other\ndata: {"type":"job_update","status":"completed"}\n\n',
    frame(3, { type: 'something_else' }), frame(4, update('completed', 100, { result: 7 })),
  ], { signal: init.signal })]);
  const { seen, done } = watch({ fetch });
  await done;
  assert.deepEqual(seen.updates.length, 1);
  assert.deepEqual(seen.complete, [7]);
});

test('connections that deliver events before breaking do not use up maxRetries', async () => {
  let n = 0;
  const breaking = (init) => {
    n += 1;
    const encoder = new TextEncoder();
    return new Response(new ReadableStream({
      start(controller) {
        controller.enqueue(encoder.encode(frame(n, update('active', n))));
        setTimeout(() => controller.error(new TypeError('terminated')), 5);
      },
    }), { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
  };
  const fetch = scriptedFetch([breaking, breaking, breaking, breaking, breaking,
    (init) => sseResponse([frame(9, update('completed', 100))], { signal: init.signal })]);
  const { seen, done } = watch({ fetch, maxRetries: 1 });
  assert.equal(await done, 'completed');
  assert.equal(fetch.calls.length, 6);
  assert.deepEqual(fetch.calls.slice(1).map((c) => c.headers['Last-Event-ID']), ['1', '2', '3', '4', '5']);
  assert.deepEqual(seen.errors, []);
});

test('stopping does not wait for a body that ignores the abort: the reader is cancelled', async () => {
  const cancelled = deferred();
  const fetch = scriptedFetch([() => new Response(new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(frame(1, update('completed', 100, { result: 1 }))));
      // never closes, never errors, knows nothing of the signal
    },
    cancel() { cancelled.resolve(true); },
  }), { status: 200, headers: { 'Content-Type': 'text/event-stream' } })]);
  const { seen, done } = watch({ fetch, idleTimeoutMs: 60_000 });
  assert.equal(await done, 'completed');
  assert.equal(await within(1000, cancelled.promise, 'the reader to be cancelled'), true);
  assert.deepEqual(seen.complete, [1]);
});

test('a 429 with Retry-After reports it in details.retryAfter (and still does not retry)', async () => {
  const fetch = scriptedFetch([() => new Response(JSON.stringify({ error: { code: 'rate_limited', message: 'Too many open streams' } }), {
    status: 429, headers: { 'Content-Type': 'application/json', 'Retry-After': '5' },
  })]);
  const { seen, done } = watch({ fetch });
  await done;
  assert.deepEqual(seen.errors, [{ message: 'Too many open streams', details: { kind: 'http', status: 429, code: 'rate_limited', retryAfter: 5 } }]);
  assert.equal(fetch.calls.length, 1);
});
