// (a) The frontend guide's hook logic itself, verbatim, against the live server: the contract says
// the guide's useJobSSE must work against the service unchanged.

import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { BASE_URL, TOKEN, isNonDecreasing, live, queueCharacter } from './support/live.mjs';
import { startProxy } from './support/proxy.mjs';

const run = promisify(execFile);
const RUNNER = fileURLToPath(new URL('./support/guide-hook-runner.mjs', import.meta.url));
const GUIDE = process.env.JOBAPP_GUIDE
  || fileURLToPath(new URL('../../../shared/seed/frontend-sse-guide.md', import.meta.url));

/** Run the guide's effect in a child process; resolves with what it recorded. */
async function runGuideHook({ apiBase, timeoutMs, type, jobId }) {
  const args = [RUNNER, String(timeoutMs)];
  if (jobId) args.push(type, jobId);
  const { stdout } = await run(process.execPath, args, {
    env: { ...process.env, NEXT_PUBLIC_API_URL: apiBase, JOBAPP_URL: BASE_URL, JOBAPP_TOKEN: TOKEN },
    timeout: timeoutMs + 10_000,
  });
  return JSON.parse(stdout.trim().split('\n').pop());
}

const normalize = (text) => text.split('\n').map((line) => line.trimEnd()).join('\n');

test('the runner\'s copy of the guide\'s effect is verbatim', {
  skip: existsSync(GUIDE) ? false : `the guide is not at ${GUIDE} (set JOBAPP_GUIDE)`,
}, () => {
  const guide = readFileSync(GUIDE, 'utf8');
  const effect = /^ {2}useEffect\(\(\) => \{\n([\s\S]*?)^ {2}\}, \[jobId, type, token, onComplete, onError\]\);$/m.exec(guide);
  assert.ok(effect, 'the guide\'s useEffect was not found');
  const runner = readFileSync(RUNNER, 'utf8');
  const copy = /\/\/ --- BEGIN GUIDE \(verbatim\) ---\n([\s\S]*?)\/\/ --- END GUIDE ---/.exec(runner);
  assert.ok(copy, 'the runner\'s BEGIN/END GUIDE markers were not found');
  assert.equal(normalize(copy[1]), normalize(effect[1]));
});

test('the guide\'s hook: progress rises to 100 and onComplete gets {characterId}', live(), async (t) => {
  const record = await runGuideHook({ apiBase: BASE_URL, timeoutMs: 15_000 });
  t.diagnostic(`guide hook recorded: ${JSON.stringify(record)}`);
  assert.equal(record.timedOut, false, 'the guide\'s hook never saw the job finish');
  assert.deepEqual(record.errors, [], 'onError was called');
  assert.equal(record.completed.length, 1, 'onComplete must be called once');
  assert.match(record.completed[0].characterId, /^[0-9a-f]{32}$/);
  assert.ok(isNonDecreasing(record.progress), `progress went down: ${record.progress}`);
  assert.equal(record.progress.at(-1), 100);
  assert.ok(new Set(record.progress).size >= 3, `progress did not rise through the job: ${record.progress}`);
  assert.equal(record.status.at(-1), 'completed');
  assert.ok(record.status.includes('active'), `never saw the job active: ${record.status}`);
  // The guide's own defect, not the server's: after abort() its un-awaited readStream() rejects.
  const other = record.unhandled.filter((r) => r.name !== 'AbortError');
  assert.deepEqual(other, [], 'the guide\'s hook threw something other than the AbortError of its own abort()');
  if (record.unhandled.length) {
    t.diagnostic('guide defect: readStream() is not awaited, so the reader\'s AbortError after abort() is an unhandled rejection');
  }
});

test('the guide\'s hook on a finished job gets the final event at once', live(), async () => {
  const { jobId } = await queueCharacter();
  await new Promise((resolve) => setTimeout(resolve, 1500)); // the job takes ~0.3 s
  const record = await runGuideHook({ apiBase: BASE_URL, timeoutMs: 10_000, type: 'character', jobId });
  assert.equal(record.timedOut, false);
  assert.deepEqual(record.progress, [100]);
  assert.deepEqual(record.status, ['completed']);
  assert.equal(record.completed.length, 1);
  assert.match(record.completed[0].characterId, /^[0-9a-f]{32}$/);
});

test('the guide\'s hook works unchanged on jobs that wait, run later and write log lines (contract 1.1)', live(), async (t) => {
  const first = await queueCharacter({ name: 'First', age: 30 });
  const waiting = await queueCharacter({ name: 'Second', age: 31, dependsOn: [first.jobId] });
  const later = await queueCharacter({ name: 'Later', age: 32, delaySeconds: 1 });
  for (const { jobId } of [waiting, later]) {
    const record = await runGuideHook({ apiBase: BASE_URL, timeoutMs: 15_000, type: 'character', jobId });
    t.diagnostic(`guide hook recorded: ${JSON.stringify(record)}`);
    assert.equal(record.timedOut, false, 'the guide\'s hook never saw the job finish');
    assert.deepEqual(record.errors, []);
    assert.equal(record.completed.length, 1);
    assert.ok(isNonDecreasing(record.progress), `progress went down: ${record.progress}`);
    assert.equal(record.status.at(-1), 'completed');
  }
});

test('the guide\'s hook fails when a proxy re-chunks the stream (the defect watchJob fixes)', live(), async (t) => {
  const proxy = await startProxy(BASE_URL, { chunk: [1, 7] });
  try {
    const { jobId } = await queueCharacter();
    const record = await runGuideHook({ apiBase: proxy.url, timeoutMs: 2500, type: 'character', jobId });
    t.diagnostic(`through the re-chunking proxy the guide's hook recorded: ${JSON.stringify(record)}`);
    assert.deepEqual(record.completed, [], 'the guide\'s hook is not expected to survive 1-7 byte chunks');
    assert.ok(record.timedOut || record.unhandled.some((r) => r.name === 'SyntaxError'));
  } finally {
    await proxy.close();
  }
});
