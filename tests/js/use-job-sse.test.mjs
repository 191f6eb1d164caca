// useJobSSE under real React (react-test-renderer) against the live server: the guide's signature
// and return value, callbacks kept in refs (inline callbacks that change every render do not
// re-subscribe), errors reported, and unmount cancelling the request.
//
// client/useJobSSE.js imports 'react' as a peer; the test's React lives in tests/js/node_modules,
// which Node would not look in from client/, so a resolve hook points 'react' there.

import test from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { register } from 'node:module';

import { BASE_URL, TOKEN, isNonDecreasing, live, queueCharacter, sleep, waitFor } from './support/live.mjs';

const here = new URL('./package.json', import.meta.url).href;
register(`data:text/javascript,${encodeURIComponent(`
export async function resolve(specifier, context, next) {
  if (specifier === 'react' || specifier.startsWith('react/')) {
    return next(specifier, { ...context, parentURL: ${JSON.stringify(here)} });
  }
  return next(specifier, context);
}`)}`);

let React;
let TestRenderer;
let useJobSSE;
try {
  React = (await import('react')).default;
  TestRenderer = (await import('react-test-renderer')).default;
  ({ useJobSSE } = await import('../../client/useJobSSE.js'));
} catch (err) {
  throw new Error(`React is missing: run \`npm ci --prefix tests/js\` (${err.message})`);
}

/** Count and keep the SSE requests the hook makes through the global fetch. */
function spyOnFetch() {
  const original = globalThis.fetch;
  const calls = [];
  globalThis.fetch = (input, init) => {
    if (String(input).includes('/api/v1/sse/')) calls.push({ url: String(input), init });
    return original(input, init);
  };
  return { calls, restore: () => { globalThis.fetch = original; } };
}

/** Render a component using the hook; every render's state is recorded, callbacks tagged by version. */
function mount(initialProps) {
  const renders = [];
  const calls = [];
  function Probe({ version, jobId, type, token }) {
    const state = useJobSSE({
      jobId,
      type,
      token,
      // New functions on every render, as inline callbacks are.
      onComplete: (result) => calls.push({ kind: 'complete', version, result }),
      onError: (message) => calls.push({ kind: 'error', version, message }),
    });
    renders.push(state);
    return null;
  }
  const renderer = TestRenderer.create(React.createElement(Probe, initialProps));
  return {
    renders,
    calls,
    latest: () => renders.at(-1),
    update: (props) => renderer.update(React.createElement(Probe, props)),
    unmount: () => renderer.unmount(),
  };
}

test('useJobSSE: { progress, status } to completed; inline callbacks and a new token do not re-subscribe', live(), async () => {
  process.env.NEXT_PUBLIC_API_URL = BASE_URL; // the guide's apiBase
  const spy = spyOnFetch();
  try {
    const { jobId } = await queueCharacter();
    const props = { version: 0, jobId, type: 'character', token: TOKEN };
    const view = mount(props);
    assert.deepEqual({ progress: view.latest().progress, status: view.latest().status }, { progress: 0, status: 'pending' });
    // Re-render while the job runs: new callbacks each time, and from version 4 on another token
    // string (a refreshed token is only used by the next reconnect; it must not open a new stream).
    for (let version = 1; version <= 8; version++) {
      await sleep(15);
      view.update({ ...props, version, token: version >= 4 ? `refreshed.${TOKEN}` : TOKEN });
    }
    await waitFor(() => view.latest().status === 'completed', 10_000, 'status completed');
    await sleep(50);
    assert.equal(spy.calls.length, 1, `the hook opened ${spy.calls.length} streams`);
    assert.equal(spy.calls[0].url, `${BASE_URL}/api/v1/sse/jobs/character/${jobId}`);
    const progress = view.renders.map((s) => s.progress);
    assert.ok(isNonDecreasing(progress), `progress went down: ${progress}`);
    assert.equal(view.latest().progress, 100);
    assert.ok(new Set(progress).size >= 2);
    const completes = view.calls.filter((c) => c.kind === 'complete');
    assert.equal(completes.length, 1);
    assert.match(completes[0].result.characterId, /^[0-9a-f]{32}$/);
    assert.ok(completes[0].version >= 1, 'the callback of a later render must be the one called');
    assert.equal(view.latest().result.characterId, completes[0].result.characterId);
    assert.equal(view.latest().error, null);
    view.unmount();
  } finally {
    spy.restore();
  }
});

test('useJobSSE: a 404 is reported through onError and state.error, once, without retrying', live(), async () => {
  process.env.NEXT_PUBLIC_API_URL = BASE_URL;
  const spy = spyOnFetch();
  try {
    const view = mount({ version: 0, jobId: randomUUID(), type: 'character', token: TOKEN });
    await waitFor(() => view.latest().error, 5000, 'state.error');
    await sleep(100);
    assert.equal(view.latest().error, 'Job not found');
    assert.deepEqual(view.calls.map((c) => [c.kind, c.message]), [['error', 'Job not found']]);
    assert.equal(spy.calls.length, 1);
    view.unmount();
  } finally {
    spy.restore();
  }
});

test('useJobSSE: unmounting aborts the request and nothing fires afterwards; a new jobId starts over', live(), async () => {
  process.env.NEXT_PUBLIC_API_URL = BASE_URL;
  const spy = spyOnFetch();
  try {
    const first = await queueCharacter();
    const view = mount({ version: 0, jobId: first.jobId, type: 'character', token: TOKEN });
    await waitFor(() => spy.calls.length === 1, 5000, 'the stream request');
    const second = await queueCharacter();
    view.update({ version: 1, jobId: second.jobId, type: 'character', token: TOKEN });
    await waitFor(() => spy.calls.length === 2, 5000, 'the second stream request');
    assert.equal(spy.calls[0].init.signal.aborted, true, 'changing jobId must abort the old stream');
    assert.equal(spy.calls[1].url, `${BASE_URL}/api/v1/sse/jobs/character/${second.jobId}`);
    view.unmount(); // React runs effect cleanups right after, not inside unmount()
    await waitFor(() => spy.calls[1].init.signal.aborted, 1000, 'unmount to abort the stream');
    const rendersAtUnmount = view.renders.length;
    await sleep(1000); // both jobs finish meanwhile
    assert.deepEqual(view.calls, [], 'no callback may fire after unmount or for the old job');
    assert.equal(view.renders.length, rendersAtUnmount);
  } finally {
    spy.restore();
  }
});

test('useJobSSE: no jobId or no token, no request', live(), async () => {
  const spy = spyOnFetch();
  try {
    const view = mount({ version: 0, jobId: null, type: 'character', token: TOKEN });
    view.update({ version: 1, jobId: randomUUID(), type: 'character', token: '' });
    await sleep(100);
    assert.equal(spy.calls.length, 0);
    assert.deepEqual({ progress: view.latest().progress, status: view.latest().status }, { progress: 0, status: 'pending' });
    view.unmount();
  } finally {
    spy.restore();
  }
});

test('useJobSSE: contract 1.1 fields and the job\'s log lines (a job waiting for another)', live(), async () => {
  process.env.NEXT_PUBLIC_API_URL = BASE_URL;
  const first = await queueCharacter({ name: 'Before', age: 20 });
  const { jobId } = await queueCharacter({ name: 'After', age: 21, dependsOn: [first.jobId] });
  const view = mount({ version: 0, jobId, type: 'character', token: TOKEN });
  try {
    await waitFor(() => view.latest().status === 'completed', 15_000, 'status completed');
    await sleep(50);
    const latest = view.latest();
    assert.equal(latest.log.length, 4, `log: ${JSON.stringify(latest.log)}`);
    assert.match(latest.log[0], /^Species: /);
    assert.equal(latest.attempt, 1);
    assert.equal(latest.maxAttempts, 1);
    assert.equal(latest.waitingFor, null);
    assert.equal(latest.position, null);
  } finally {
    view.unmount();
  }
});
