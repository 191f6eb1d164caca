// Must NOT type-check (tests/test_types.py expects exactly these two errors): `percent` is not a field of the hook's state nor of job_update.
import { watchJobs } from '../../../../client/jobapp-client.js';
import { useJobSSE } from '../../../../client/useJobSSE.js';

export function JobProgress({ jobId, token }: { jobId: string; token: string }) {
  const { percent } = useJobSSE({ jobId, type: 'character', token });
  return <div>{percent}%</div>;
}

// Must NOT type-check either: job_update has `failedReason`, not `error`.

watchJobs({ onUpdate: (job) => console.log(job.error) });
