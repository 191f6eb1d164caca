// A consumer of watchJobs (many jobs on one connection) and watchJob, as the README shows them.
import { queueJob, watchJob, watchJobs, isTerminal } from '../../../client/jobapp-client.js';
import type { CloseReason, JobLogEvent, JobUpdateEvent, Watch } from '../../../client/jobapp-client.js';

const bars = new Map<string, { progress: number; lines: string[] }>();

export async function watchAll(baseUrl: string, token: string): Promise<CloseReason> {
  const stop: Watch = watchJobs({
    baseUrl,
    token: () => token,
    onUpdate: (job: JobUpdateEvent) => {
      const bar = bars.get(job.jobId) ?? { progress: 0, lines: [] };
      bar.progress = job.progress;
      bars.set(job.jobId, bar);
      if (isTerminal(job.status)) console.log(job.jobId, job.status, job.result, job.failedReason);
      if (job.position != null) console.log(`#${job.position} in line`);
    },
    onLog: (event: JobLogEvent) => bars.get(event.jobId)?.lines.push(...event.lines),
    onError: (message, details) => console.error(message, details.status, details.retryAfter),
  });
  setTimeout(stop, 60_000);
  return stop.closed;
}

export async function makeOne(baseUrl: string, token: string) {
  const { streamUrl } = await queueJob({ baseUrl, token, path: '/api/v1/characters/queue', body: { name: 'Aria', age: 27 } });
  const cancel = watchJob<{ characterId: string }>({
    url: streamUrl,
    baseUrl,
    onUpdate: (job) => console.log(job.status, job.progress, job.stage, job.message),
    onComplete: (result) => console.log('made', result.characterId.toUpperCase()),
    onLog: (event) => console.log(event.lines.join('\n')),
    onError: (message) => console.error(message),
  });
  return cancel.closed;
}
