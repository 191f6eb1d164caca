// (c, d, e) watchJob against the live server: a character job to completion, a media job that
// fails, HTTP errors with the server's message, the 204 after the terminal event, a stream
// re-chunked into 1-7 byte pieces by a proxy, and a connection dropped mid-job.

import test from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { parseSSE, watchJob } from '../../client/jobapp-client.js';
import {
  BASE_URL, CAPPED_URL, TOKEN, TOKEN_B, TOKEN_C, api, sleep, waitFor, isNonDecreasing, live, queueCharacter, queueMedia, recordingFetch, within,
} from './support/live.mjs';
import { startProxy } from './support/proxy.mjs';

const streamPath = (type, jobId) => `/api/v1/sse/jobs/${type}/${jobId}`;

/** watchJob with every callback recorded; ``done`` resolves with the close reason. */
function follow(options, ms = 20_000) {
  const seen = { updates: [], complete: [], errors: [], cancels: [] };
  const fetch = options.fetch ?? recordingFetch();
  const stop = watchJob({
    token: TOKEN,
    onUpdate: (e) => seen.updates.push(e),
    onComplete: (result) => seen.complete.push(result),
    onError: (message, details) => seen.errors.push({ message, details }),
    ...options,
    fetch,
  });
  return { seen, fetch, stop, done: within(ms, stop.closed, 'watchJob to finish') };
}

function assertCharacterCompleted(seen) {
  assert.deepEqual(seen.errors, [], `onError: ${JSON.stringify(seen.errors)}`);
  assert.equal(seen.complete.length, 1);
  assert.match(seen.complete[0].characterId, /^[0-9a-f]{32}$/);
  const progress = seen.updates.map((e) => e.progress);
  assert.ok(isNonDecreasing(progress), `progress went down: ${progress}`);
  assert.equal(progress.at(-1), 100);
  assert.equal(seen.updates.at(-1).status, 'completed');
}

/** A job's terminal event id, as a reconnecting client would hold it. */
async function finishedJob() {
  const { jobId, streamUrl } = await queueCharacter();
  const response = await fetch(BASE_URL + streamUrl);
  const { events, lastEventId } = parseSSE(await response.text()); // the server closes after the terminal event
  return { jobId, streamUrl, lastEventId, final: JSON.parse(events.at(-1).data) };
}

let madeCharacterId = null;

test('watchJob: progress rises, onComplete gets {characterId}, and the character is there', live(), async () => {
  const { jobId } = await queueCharacter();
  const { seen, fetch, done } = follow({ url: BASE_URL + streamPath('character', jobId) });
  assert.equal(await done, 'completed');
  assertCharacterCompleted(seen);
  assert.ok(new Set(seen.updates.map((e) => e.progress)).size >= 3, `progress did not rise: ${seen.updates.map((e) => e.progress)}`);
  assert.ok(seen.updates.every((e) => e.jobId === jobId && e.jobType === 'character'));
  assert.equal(fetch.calls.length, 1);
  assert.equal(fetch.calls[0].headers.authorization, `Bearer ${TOKEN}`);
  madeCharacterId = seen.complete[0].characterId;
  const character = await api('GET', `/api/v1/characters/${madeCharacterId}`);
  assert.equal(character.status, 200);
  assert.equal(character.json.data.name, 'Test');
});

test('watchJob on the relative streamUrl with baseUrl and no Authorization header', live(), async () => {
  const { streamUrl } = await queueCharacter({ name: 'Ünïcødé 東京 😀', age: 7 });
  const { seen, fetch, done } = follow({ url: streamUrl, baseUrl: BASE_URL, token: undefined });
  assert.equal(await done, 'completed');
  assertCharacterCompleted(seen);
  assert.equal(fetch.calls[0].headers.authorization, undefined);
});

test('a media job for an unknown characterId ends in onError("Character not found")', live(), async () => {
  const { jobId, type } = await queueMedia({ characterId: 'no-such-character-0000', kind: 'image' });
  assert.equal(type, 'media');
  const { seen, done } = follow({ url: BASE_URL + streamPath('media', jobId) });
  assert.equal(await done, 'failed');
  assert.equal(seen.errors.length, 1);
  assert.equal(seen.errors[0].message, 'Character not found');
  assert.equal(seen.errors[0].details.kind, 'failed');
  assert.equal(seen.errors[0].details.event.status, 'failed');
  assert.deepEqual(seen.complete, []);
});

test('a media job for a real character completes with its media', live(), async () => {
  const characterId = madeCharacterId ?? (await finishedJob()).final.result.characterId;
  const { jobId } = await queueMedia({ characterId, kind: 'image' });
  const { seen, done } = follow({ url: BASE_URL + streamPath('media', jobId) });
  assert.equal(await done, 'completed');
  assert.equal(seen.complete[0].characterId, characterId);
  assert.equal(seen.complete[0].contentType, 'image/png');
  const media = await fetch(BASE_URL + seen.complete[0].url, { headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal(media.status, 200);
  assert.equal(media.headers.get('content-type'), 'image/png');
});

test('401 with a bad token: onError gets the server\'s message, no retry', live(), async () => {
  const { jobId } = await queueCharacter();
  const url = BASE_URL + streamPath('character', jobId);
  const direct = await api('GET', streamPath('character', jobId), { token: 'not-a-jwt' });
  assert.equal(direct.status, 401);
  const { seen, fetch, done } = follow({ url, token: 'not-a-jwt' });
  assert.equal(await done, 'error');
  assert.deepEqual(seen.errors, [{ message: direct.json.error.message, details: { kind: 'http', status: 401, code: direct.json.error.code } }]);
  assert.equal(fetch.calls.length, 1);
});

test('401 for an access token put in the URL: the message says to use streamUrl', live(), async () => {
  const { jobId } = await queueCharacter();
  const { seen, done } = follow({ url: `${BASE_URL}${streamPath('character', jobId)}?token=${TOKEN}`, token: undefined });
  assert.equal(await done, 'error');
  assert.equal(seen.errors[0].details.status, 401);
  assert.match(seen.errors[0].message, /streamUrl/);
});

test('404 for an unknown job id: onError("Job not found"), no retry', live(), async () => {
  const { seen, fetch, done } = follow({ url: BASE_URL + streamPath('character', randomUUID()) });
  assert.equal(await done, 'error');
  assert.deepEqual(seen.errors, [{ message: 'Job not found', details: { kind: 'http', status: 404, code: 'not_found' } }]);
  assert.equal(fetch.calls.length, 1);
});

test('another user\'s job answers exactly as an unknown one (404)', live({
  skip: TOKEN_B ? undefined : 'JOBAPP_TOKEN_B is not set',
}), async () => {
  const { jobId, streamUrl } = await queueCharacter();
  const foreign = follow({ url: BASE_URL + streamPath('character', jobId), token: TOKEN_B });
  const unknown = follow({ url: BASE_URL + streamPath('character', randomUUID()), token: TOKEN_B });
  assert.equal(await foreign.done, 'error');
  await unknown.done;
  assert.deepEqual(foreign.seen.errors, unknown.seen.errors);
  // ... also of the other type, and a stream token for this job does not open another job.
  const otherType = follow({ url: BASE_URL + streamPath('media', jobId) });
  await otherType.done;
  assert.equal(otherType.seen.errors[0].details.status, 404);
  const { jobId: otherJob } = await queueCharacter();
  const token = new URL(streamUrl, BASE_URL).searchParams.get('token');
  const borrowed = follow({ url: `${BASE_URL}${streamPath('character', otherJob)}?token=${token}`, token: undefined });
  await borrowed.done;
  assert.equal(borrowed.seen.errors[0].details.status, 401);
});

test('a finished job: without Last-Event-ID the final event at once; with it, 204 and a quiet stop', live(), async () => {
  const { jobId, lastEventId, final } = await finishedJob();
  assert.equal(final.status, 'completed');
  const url = BASE_URL + streamPath('character', jobId);

  const again = follow({ url });
  assert.equal(await again.done, 'completed');
  assert.deepEqual(again.seen.updates.map((e) => e.status), ['completed']);
  assert.deepEqual(again.seen.complete, [final.result]);

  const resumed = follow({ url, lastEventId });
  assert.equal(await resumed.done, 'no-content');
  assert.equal(resumed.fetch.calls[0].headers['last-event-id'], lastEventId);
  assert.equal(resumed.fetch.calls[0].status, 204);
  assert.deepEqual([resumed.seen.updates, resumed.seen.complete, resumed.seen.errors], [[], [], []]);
});

test('a job canceled through the API ends the watch with onCancel', live(), async () => {
  const { jobId } = await queueCharacter();
  const cancels = [];
  const { seen, done } = follow({ url: BASE_URL + streamPath('character', jobId), onCancel: (e) => cancels.push(e) });
  const answer = await api('POST', `/api/v1/jobs/character/${jobId}/cancel`);
  assert.equal(answer.status, 200, answer.text);
  assert.equal(await done, 'canceled');
  assert.equal(cancels.length, 1);
  assert.equal(cancels[0].status, 'canceled');
  assert.deepEqual([seen.complete, seen.errors], [[], []]);
});

test('cancel() closes the connection and nothing fires afterwards', live(), async () => {
  const { jobId } = await queueCharacter();
  const calls = { updates: 0, complete: 0, errors: 0 };
  let stop;
  const first = new Promise((resolve) => {
    ({ stop } = follow({
      url: BASE_URL + streamPath('character', jobId),
      onUpdate: (e) => { calls.updates += 1; resolve(e); },
      onComplete: () => { calls.complete += 1; },
      onError: () => { calls.errors += 1; },
    }));
  });
  await within(5000, first, 'the first event');
  stop();
  assert.equal(await stop.closed, 'aborted');
  const atStop = { ...calls };
  // The job goes on to finish on the server; the stopped watch must hear none of it.
  await waitFor(async () => (await api('GET', `/api/v1/jobs/character/${jobId}`)).json?.data?.status === 'completed',
    20_000, 'the job to finish on the server');
  await sleep(300); // a last chance for a stray callback to show up
  assert.deepEqual(calls, atStop, 'a callback fired after cancel()');
  assert.equal(calls.complete, 0);
});

/** A fetch whose response bodies report the size of every chunk the client reads. */
function chunkCountingFetch(sizes) {
  return async (input, init) => {
    const response = await fetch(input, init);
    if (!response.body) return response;
    const counted = response.body.pipeThrough(new TransformStream({
      transform(chunk, controller) {
        sizes.push(chunk.byteLength);
        controller.enqueue(chunk);
      },
    }));
    return new Response(counted, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

test('(d) through a proxy that re-chunks the stream into 1-7 byte pieces', live(), async (t) => {
  const proxy = await startProxy(BASE_URL, { chunk: [1, 7], delayMs: [0, 2] });
  try {
    const { jobId } = await queueCharacter({ name: 'Zoë 😀 Ångström', age: 30 });
    const sizes = [];
    const { seen, done } = follow({ url: proxy.url + streamPath('character', jobId), fetch: chunkCountingFetch(sizes) });
    assert.equal(await done, 'completed');
    assertCharacterCompleted(seen);
    t.diagnostic(`${seen.updates.length} events in ${sizes.length} network chunks, largest ${Math.max(...sizes)} bytes`);
    assert.ok(sizes.length >= 3 * seen.updates.length, 'the stream was not really re-chunked');
    // Everything the client parsed equals what the proxy forwarded, parsed whole.
    const whole = parseSSE(proxy.requests[0].body).events.map((e) => JSON.parse(e.data))
      .filter((e) => e.type === 'job_update'); // job_log events go to onLog
    assert.deepEqual(seen.updates, whole);
  } finally {
    await proxy.close();
  }
});

test('(d) error answers through the re-chunking proxy still carry the server\'s message', live(), async () => {
  const proxy = await startProxy(BASE_URL, { chunk: [1, 3] });
  try {
    const { seen, done } = follow({ url: proxy.url + streamPath('character', randomUUID()) });
    assert.equal(await done, 'error');
    assert.equal(seen.errors[0].message, 'Job not found');
  } finally {
    await proxy.close();
  }
});

test('(e) connection dropped after the first event: reconnects with Last-Event-ID and completes', live(), async (t) => {
  const proxy = await startProxy(BASE_URL, { cutAfterEvents: 1 });
  try {
    const { jobId } = await queueCharacter();
    const { seen, done } = follow({ url: proxy.url + streamPath('character', jobId) });
    assert.equal(await done, 'completed');
    assertCharacterCompleted(seen);
    const [cut, resumed] = proxy.requests;
    t.diagnostic(`requests: ${JSON.stringify(proxy.requests.map((r) => ({ lastEventId: r.headers['last-event-id'] ?? null, status: r.status, cut: r.cut })))}`);
    assert.equal(proxy.requests.length, 2);
    assert.equal(cut.cut, true);
    assert.equal(cut.headers['last-event-id'], undefined);
    const beforeCut = parseSSE(cut.body);
    assert.equal(beforeCut.events.length, 1);
    assert.equal(beforeCut.retry, 3000);
    assert.equal(resumed.headers['last-event-id'], beforeCut.lastEventId);
    assert.equal(resumed.headers.authorization, `Bearer ${TOKEN}`);
    assert.equal(resumed.status, 200);
  } finally {
    await proxy.close();
  }
});

test('(e) dropped mid-job with a short retry: resumes while the job runs, no repeated or lost progress', live(), async (t) => {
  const proxy = await startProxy(BASE_URL, { cutAfterEvents: 1, retryMs: 20 });
  try {
    const { jobId } = await queueCharacter();
    const { seen, done } = follow({ url: proxy.url + streamPath('character', jobId) });
    assert.equal(await done, 'completed');
    assertCharacterCompleted(seen);
    const [cut, resumed] = proxy.requests;
    const first = parseSSE(cut.body);
    const after = parseSSE(resumed.body);
    t.diagnostic(`before the cut: ${first.events.map((e) => JSON.parse(e.data).progress)}; after: ${after.events.map((e) => JSON.parse(e.data).progress)}`);
    assert.equal(resumed.headers['last-event-id'], first.lastEventId);
    assert.ok(after.events.length >= 2, 'the resumed stream should follow the running job');
    const ids = [...first.events, ...after.events].map((e) => BigInt(e.id));
    assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]), `ids must only increase across the reconnect: ${ids}`);
  } finally {
    await proxy.close();
  }
});

test('429 when the user has too many open streams: onError gets the server\'s message, no retry', live({
  skip: TOKEN_C && CAPPED_URL ? undefined : 'JOBAPP_TOKEN_C and JOBAPP_URL_CAPPED are not set',
}), async (t) => {
  // Fill the user's cap with open multi-job streams (they stay open), until the server says 429.
  const controllers = [];
  const url = `${CAPPED_URL}/api/v1/sse/jobs`;
  const open = async () => {
    const controller = new AbortController();
    const response = await fetch(url, { headers: { Authorization: `Bearer ${TOKEN_C}` }, signal: controller.signal });
    if (response.status === 200) controllers.push(controller);
    else await response.text();
    return response.status;
  };
  try {
    let status = 200;
    while (status === 200 && controllers.length < 200) status = await open();
    assert.equal(status, 429, `expected 429 after the cap, got ${status} with ${controllers.length} open`);
    t.diagnostic(`the cap is ${controllers.length} open streams per user`);
    const { seen, fetch, done } = follow({ url, token: TOKEN_C });
    assert.equal(await done, 'error');
    assert.equal(fetch.calls.length, 1);
    assert.equal(seen.errors[0].details.status, 429);
    assert.equal(seen.errors[0].details.code, 'rate_limited');
    assert.match(seen.errors[0].message, /^Too many open streams/);
  } finally {
    for (const controller of controllers) controller.abort();
  }
  // Closed streams give their places back.
  const freed = await waitFor(async () => {
    const controller = new AbortController();
    const response = await fetch(url, { headers: { Authorization: `Bearer ${TOKEN_C}` }, signal: controller.signal });
    controller.abort();
    return response.status === 200;
  }, 10_000, 'a stream place to be released');
  assert.ok(freed);
});

test('onLog gets a job\'s log lines in order, each once, also after a reconnect (contract 1.1)', live(), async () => {
  const { jobId } = await queueCharacter({ name: 'Logger', age: 40 });
  const logs = [];
  const { seen, done } = follow({ url: BASE_URL + streamPath('character', jobId), onLog: (e) => logs.push(e) });
  assert.equal(await done, 'completed');
  assertCharacterCompleted(seen);
  const lines = logs.flatMap((e) => e.lines);
  assert.equal(lines.length, 4, `the demo character job logs four lines: ${JSON.stringify(lines)}`);
  assert.match(lines[0], /^Species: /);
  assert.equal(logs.at(-1).seq, 4);
  assert.ok(logs.every((e) => e.type === 'job_log' && e.jobId === jobId && e.dropped === 0));
  // A watch resuming after the first event gets the lines again from the server, each once.
  const again = [];
  const resumed = follow({ url: BASE_URL + streamPath('character', jobId), lastEventId: '1', onLog: (e) => again.push(e) });
  assert.equal(await resumed.done, 'completed');
  assert.deepEqual(again.flatMap((e) => e.lines), lines);
});
