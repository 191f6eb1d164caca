// A consumer written the way the frontend guide's components/JobProgress.tsx is, with the props
// typed (strict mode needs that) and the 1.1 fields read as a TypeScript app would.
import { useJobSSE } from '../../../client/useJobSSE.js';
import type { JobLogEvent } from '../../../client/useJobSSE.js';

type Props = { jobId: string; type: 'character' | 'media'; token: string };

export function JobProgress({ jobId, type, token }: Props) {
  const { progress, status, stage, message, error, result, log } = useJobSSE({
    jobId,
    type,
    token,
    onComplete: (result) => {
      console.log('Done!', result);
    },
    onError: (error) => {
      console.error('Error:', error);
    },
    onUpdate: (event) => {
      const waiting: string[] = event.waitingFor ?? [];
      const place: number | null = event.position ?? null;
      const due: number | null = event.scheduledFor ?? null;
      const attempt: string = `${event.attempt ?? 1}/${event.maxAttempts ?? 1}`;
      console.log(event.jobType, event.updatedAt, event.failedReason, waiting.length, place, due, attempt);
    },
    onLog: (event: JobLogEvent) => {
      const last: string | undefined = event.lines.at(-1);
      console.log(event.seq, event.dropped, last);
    },
  });
  const done: boolean = status === 'completed' || status === 'failed' || status === 'canceled';

  return (
    <div>
      <div>Status: {status}{done ? ' (done)' : ''}</div>
      <div>Progress: {progress}%</div>
      <div>{stage} {message} {error}</div>
      <div className="progress-bar">
        <div style={{ width: `${progress}%` }} />
      </div>
      {result ? <pre>{JSON.stringify(result)}</pre> : null}
      <pre>{log.join('\n')}</pre>
    </div>
  );
}
