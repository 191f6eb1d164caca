// The client's retry, backoff, idle timeout and non-SSE-200 handling against real servers: a small
// Node HTTP front on 127.0.0.1 that misbehaves as scripted (refuses, answers 503 or HTML, goes
// silent mid-stream) and otherwise passes requests through to the live jobapp. These are the live
// counterparts of the scripted-fetch cases in watch-job-unit.test.mjs.

import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { watchJob } from '../../client/jobapp-client.js';
import { BASE_URL, TOKEN, live, queueCharacter, within } from './support/live.mjs';

const streamPath = (jobId) => `/api/v1/sse/jobs/character/${jobId}`;

/**
 * A front whose n-th request is handled by ``script[n]`` (the last entry repeats):
 *   'refuse'  drop the connection without an answer
 *   '503'     the service's JSON 503
 *   'html'    200 text/html (a captive portal or a misrouted proxy)
 *   'silent'  pass through until the first event, then forward nothing more and keep the connection open
 *   'pass'    pass through
 */
async function startFront(script) {
  const target = new URL(BASE_URL);
  const requests = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const action = script[Math.min(requests.length, script.length - 1)];
    requests.push({ action, at: Date.now(), headers: { ...req.headers } });
    if (action === 'refuse') { req.socket.destroy(); return; }
    if (action === '503') {
      res.writeHead(503, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'unavailable', message: 'The job store is unavailable' } }));
      return;
    }
    if (action === 'html') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<html><body>Please sign in to the network</body></html>');
      return;
    }
    const upstream = http.request({
      host: target.hostname, port: target.port, method: req.method, path: req.url,
      headers: { ...req.headers, host: target.host },
    }, (up) => {
      const headers = { ...up.headers };
      delete headers['transfer-encoding'];
      delete headers.connection;
      res.writeHead(up.statusCode, headers);
      res.flushHeaders();
      let forwarded = '';
      up.on('data', (chunk) => {
        if (action === 'silent' && forwarded.includes('data:')) return; // silence after the first event
        forwarded += chunk.toString('latin1');
        res.write(chunk);
      });
      up.on('end', () => { if (action !== 'silent') res.end(); });
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (socket) => { sockets.add(socket); socket.on('close', () => sockets.delete(socket)); });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(resolve); }),
  };
}

function follow(url, options = {}) {
  const seen = { updates: [], complete: [], errors: [] };
  const stop = watchJob({
    url, token: TOKEN,
    onUpdate: (e) => seen.updates.push(e),
    onComplete: (result) => seen.complete.push(result),
    onError: (message, details) => seen.errors.push({ message, details }),
    ...options,
  });
  return { seen, stop, done: within(options.waitMs ?? 25_000, stop.closed, 'watchJob to finish') };
}

test('live: 503 and a dropped connection are retried, and the next connection completes the job', live(), async () => {
  const front = await startFront(['503', 'refuse', 'pass']);
  try {
    const { jobId } = await queueCharacter();
    const { seen, done } = follow(front.url + streamPath(jobId), { retryMs: 50 });
    assert.equal(await done, 'completed');
    assert.deepEqual(front.requests.slice(0, 3).map((r) => r.action), ['503', 'refuse', 'pass']);
    assert.deepEqual(seen.errors, []);
    assert.equal(seen.complete.length, 1);
    assert.equal(seen.updates.at(-1).status, 'completed');
  } finally {
    await front.close();
  }
});

test('live: refused connections back off exponentially and the client gives up after maxRetries', live(), async () => {
  const front = await startFront(['refuse']);
  try {
    const { jobId } = await queueCharacter();
    const { seen, done } = follow(front.url + streamPath(jobId), { retryMs: 100, maxRetries: 3 });
    assert.equal(await done, 'error');
    assert.equal(front.requests.length, 4, 'one try and three retries');
    const gaps = front.requests.slice(1).map((r, i) => r.at - front.requests[i].at);
    // 100, 200, 400 ms (plus jitter): each at least about the one before, doubled.
    assert.ok(gaps[0] >= 90 && gaps[1] >= 180 && gaps[2] >= 360, `gaps ${gaps}`);
    assert.equal(seen.errors.length, 1);
    assert.equal(seen.errors[0].details.kind, 'network');
  } finally {
    await front.close();
  }
});

test('live: a stream gone silent is dropped after idleTimeoutMs and reopened with Last-Event-ID', live(), async () => {
  const front = await startFront(['silent', 'pass']);
  try {
    const { jobId } = await queueCharacter();
    // The live service heartbeats every second; 2.5 s of silence can only be the front's doing.
    const { seen, done } = follow(front.url + streamPath(jobId), { idleTimeoutMs: 2500, retryMs: 50 });
    assert.equal(await done, 'completed');
    assert.deepEqual(front.requests.map((r) => r.action), ['silent', 'pass']);
    assert.ok(front.requests[1].headers['last-event-id'], 'the reconnect carries Last-Event-ID');
    assert.deepEqual(seen.errors, []);
    assert.equal(seen.complete.length, 1);
  } finally {
    await front.close();
  }
});

test('live: a 200 that is not text/event-stream is an error, not retried', live(), async () => {
  const front = await startFront(['html']);
  try {
    const { jobId } = await queueCharacter();
    const { seen, done } = follow(front.url + streamPath(jobId), { retryMs: 50 });
    assert.equal(await done, 'error');
    assert.equal(front.requests.length, 1);
    assert.equal(seen.errors[0].details.kind, 'protocol');
  } finally {
    await front.close();
  }
});
