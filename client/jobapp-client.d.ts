// Types for jobapp-client.js (wire contract 1.1). Hand-written beside the plain ES module so the
// module needs no build step; tests/js/types/ type-checks consumers against them under tsc --strict.

/** A job's status. `completed`, `failed` and `canceled` are terminal. */
export type JobStatus = 'pending' | 'active' | 'completed' | 'failed' | 'canceled';
export type TerminalStatus = 'completed' | 'failed' | 'canceled';

/** The built-in job types; any string names a job type registered from outside. */
export type JobType = 'character' | 'media' | (string & {});

/** The `job_update` event (contract 1.0 fields plus the 1.1 additions). */
export interface JobUpdateEvent<Result = JobResult> {
  type: 'job_update';
  jobId: string;
  jobType: JobType;
  status: JobStatus;
  /** 0..100, never decreasing within an attempt; 100 on `completed`. */
  progress: number;
  /** Machine-readable step name set by the job, or null. */
  stage: string | null;
  /** Human-readable text set by the job, or null. */
  message: string | null;
  /** Epoch ms at which this state was recorded. */
  updatedAt: number;
  /** The job's JSON result on `completed`, else null. */
  result: Result | null;
  /** A short reason on `failed`, else null. */
  failedReason: string | null;
  /** 1.1: 1 on the first run, 2, 3… on retries. */
  attempt?: number;
  /** 1.1: how many attempts the job may take (1 without a retry policy). */
  maxAttempts?: number;
  /** 1.1: 1-based place in its queue while `pending`, else null. */
  position?: number | null;
  /** 1.1: epoch ms at which a job queued to run later becomes due, else null. */
  scheduledFor?: number | null;
  /** 1.1: the job ids it still waits for, else null. */
  waitingFor?: string[] | null;
}

/** 1.1: lines a job wrote to its own log for the user. */
export interface JobLogEvent {
  type: 'job_log';
  jobId: string;
  /** The 1-based number of the last line in `lines` across the job's whole log. */
  seq: number;
  lines: string[];
  /** Older lines dropped by the cap that will never be sent (0 when none). */
  dropped: number;
}

export type JobEvent = JobUpdateEvent | JobLogEvent;

/** A job's result: a JSON object, e.g. `{characterId}` for a character, `{mediaId, ...}` for media. */
export type JobResult = { [key: string]: unknown };

/** What the stream answered or why it could not be followed. */
export interface WatchErrorDetails {
  kind: 'failed' | 'canceled' | 'http' | 'protocol' | 'network';
  /** HTTP status of an `http` error. */
  status?: number;
  /** The server's error code, e.g. `token_expired`. */
  code?: string;
  /** Seconds from the server's Retry-After (429). */
  retryAfter?: number;
  /** The event that ended the watch (`failed`, `canceled`). */
  event?: JobUpdateEvent;
  [key: string]: unknown;
}

/** Why a watch ended. */
export type CloseReason = 'completed' | 'failed' | 'canceled' | 'no-content' | 'error' | 'aborted';

/** Calling it cancels the watch; `closed` resolves with the reason it ended. */
export interface Watch {
  (): void;
  readonly closed: Promise<CloseReason>;
}

export type TokenSource = string | (() => string | Promise<string>);

interface CommonWatchOptions {
  /** Base for a relative url (in a browser, the page's location by default). */
  baseUrl?: string;
  /** Access token sent as `Authorization: Bearer`; a function is called before each (re)connect. */
  token?: TokenSource;
  /** 1.1: every `job_log` event. */
  onLog?: (event: JobLogEvent) => void;
  onError?: (message: string, details: WatchErrorDetails) => void;
  onOpen?: () => void;
  onClose?: (reason: CloseReason) => void;
  fetch?: typeof fetch;
  maxRetries?: number;
  retryMs?: number;
  maxRetryMs?: number;
  idleTimeoutMs?: number;
  lastEventId?: string | number;
  signal?: AbortSignal;
}

export interface WatchJobOptions<Result = JobResult> extends CommonWatchOptions {
  /** The stream URL: absolute, or relative (the queue answer's `streamUrl`) with `baseUrl`. */
  url: string;
  /** Every `job_update` event. */
  onUpdate?: (event: JobUpdateEvent<Result>) => void;
  onComplete?: (result: Result, event: JobUpdateEvent<Result>) => void;
  /** Status `canceled`; without it `onError("canceled")` is called. */
  onCancel?: (event: JobUpdateEvent<Result>) => void;
}

export interface WatchJobsOptions extends CommonWatchOptions {
  /** Defaults to `/api/v1/sse/jobs`. */
  url?: string;
  /** The job ids to watch (up to 100); by default every unfinished job and each one queued later. */
  ids?: string[];
  /** Every `job_update` event, of any watched job (a terminal one does not end the watch). */
  onUpdate?: (event: JobUpdateEvent) => void;
}

export function watchJob<Result = JobResult>(options: WatchJobOptions<Result>): Watch;
export function watchJobs(options?: WatchJobsOptions): Watch;

/** The queue answer's `data`. */
export interface QueuedJob {
  jobId: string;
  type: JobType;
  status: JobStatus;
  streamUrl: string;
  statusUrl: string;
}

export function queueJob(options: {
  baseUrl?: string;
  path: string;
  body: unknown;
  token: string;
  fetch?: typeof fetch;
}): Promise<QueuedJob>;

export const TERMINAL_STATUSES: readonly TerminalStatus[];
export function isTerminal(status: string): status is TerminalStatus;

/** A dispatched SSE event. */
export interface SSEMessage {
  /** The `event:` field, or "message". */
  type: string;
  data: string;
  id: string;
}

export interface SSEParser {
  feed(chunk: string | Uint8Array | ArrayBuffer): void;
  end(): void;
  reset(): void;
  readonly lastEventId: string;
}

export function createSSEParser(handlers?: {
  onEvent?: (event: SSEMessage) => void;
  onRetry?: (ms: number) => void;
  onComment?: (text: string) => void;
}): SSEParser;

export function parseSSE(input: string | Uint8Array | ArrayBuffer | Iterable<string | Uint8Array | ArrayBuffer>): {
  events: SSEMessage[];
  retry: number | null;
  comments: string[];
  lastEventId: string;
};
