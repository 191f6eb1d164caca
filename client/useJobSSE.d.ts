// Types for useJobSSE.js: the frontend guide's hook signature and return value, plus contract 1.1.
import type { JobLogEvent, JobResult, JobStatus, JobType, JobUpdateEvent, WatchErrorDetails } from './jobapp-client.js';

export type { JobLogEvent, JobResult, JobStatus, JobUpdateEvent, WatchErrorDetails } from './jobapp-client.js';

export interface UseJobSSEOptions<Result = JobResult> {
  /** Nothing is watched while it is empty. */
  jobId: string | null | undefined;
  type: JobType;
  /** Access token (Authorization: Bearer). */
  token: string | null | undefined;
  onComplete?: (result: Result) => void;
  onError?: (message: string, details: WatchErrorDetails) => void;
  /** Without it a canceled job calls onError("canceled"). */
  onCancel?: (event: JobUpdateEvent<Result>) => void;
  /** Every job_update event. */
  onUpdate?: (event: JobUpdateEvent<Result>) => void;
  /** 1.1: every job_log event. */
  onLog?: (event: JobLogEvent) => void;
  /** Defaults to NEXT_PUBLIC_API_URL, then http://localhost:8088. */
  apiBase?: string;
}

export interface JobSSEState<Result = JobResult> {
  progress: number;
  status: JobStatus;
  stage: string | null;
  message: string | null;
  result: Result | null;
  error: string | null;
  /** 1.1: the job's log lines so far. */
  log: string[];
}

export function useJobSSE<Result = JobResult>(options: UseJobSSEOptions<Result>): JobSSEState<Result>;
export default useJobSSE;
