// watchJobs against the live server: many jobs on one connection (GET /api/v1/sse/jobs).

import test from 'node:test';
import assert from 'node:assert/strict';

import { watchJobs } from '../../client/jobapp-client.js';
import { BASE_URL, TOKEN, TOKEN_B, isNonDecreasing, live, queueCharacter, recordingFetch, within, deferred } from './support/live.mjs';

const TERMINAL = new Set(['completed', 'failed', 'canceled']);

test('watchJobs: three jobs on one connection each reach completed, and the watch stays open', live(), async () => {
  const jobs = await Promise.all([1, 2, 3].map((i) => queueCharacter({ name: `Many ${i}`, age: i })));
  const foreign = await queueCharacter({ name: 'Not yours', age: 1 }, TOKEN_B);
  const byJob = new Map();
  const allDone = deferred();
  const fetch = recordingFetch();
  const stop = watchJobs({
    baseUrl: BASE_URL, token: TOKEN, fetch, ids: [...jobs.map((j) => j.jobId), foreign.jobId],
    onUpdate: (event) => {
      if (!byJob.has(event.jobId)) byJob.set(event.jobId, []);
      byJob.get(event.jobId).push(event);
      const finished = jobs.filter((j) => TERMINAL.has(byJob.get(j.jobId)?.at(-1).status));
      if (finished.length === jobs.length) allDone.resolve();
    },
    onError: (message) => allDone.reject(new Error(message)),
  });
  try {
    await within(20_000, allDone.promise, 'all three jobs to finish');
    assert.deepEqual(new Set(byJob.keys()), new Set(jobs.map((j) => j.jobId)), 'no foreign job appears');
    for (const job of jobs) {
      const events = byJob.get(job.jobId);
      assert.equal(events.at(-1).status, 'completed');
      assert.ok(isNonDecreasing(events.map((e) => e.progress)));
    }
    assert.equal(fetch.calls.length, 1, 'one connection for all of them');
    const status = await Promise.race([stop.closed, new Promise((r) => setTimeout(() => r('open'), 300))]);
    assert.equal(status, 'open', 'a many-jobs watch does not end when its jobs do');
  } finally {
    stop();
  }
  assert.equal(await stop.closed, 'aborted');
});

test('watchJobs without ids follows a job queued after it opened', live(), async () => {
  const opened = deferred();
  const seen = deferred();
  let jobId = null;
  const stop = watchJobs({
    baseUrl: BASE_URL, token: TOKEN,
    onOpen: () => opened.resolve(),
    onUpdate: (event) => { if (event.jobId === jobId && event.status === 'completed') seen.resolve(event); },
  });
  try {
    await within(5_000, opened.promise, 'the stream to open');
    jobId = (await queueCharacter({ name: 'Later', age: 2 })).jobId;
    const final = await within(20_000, seen.promise, 'the new job to complete on the open stream');
    assert.ok(final.result.characterId);
  } finally {
    stop();
  }
});
