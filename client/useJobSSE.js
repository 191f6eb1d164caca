// useJobSSE: the frontend guide's hook, with its signature and return value, built on watchJob.
//
//   const { progress, status, stage, message, result, error } =
//     useJobSSE({ jobId, type: 'character', token, onComplete, onError });
//
// What it fixes in the guide's version:
// - onComplete/onError (and the token) live in refs, so inline callbacks that change on every
//   render do not tear the stream down and open a new one; a refreshed token is used on the next
//   reconnect without one either.
// - The stream is parsed by a real SSE parser that buffers partial lines across network chunks.
// - HTTP errors (401, 404, 429, ...) are checked and reported through onError with the server's
//   message instead of being parsed as a stream; 4xx are not retried.
// - A dropped connection reconnects with exponential backoff and Last-Event-ID; a canceled job
//   ends the watch too (onCancel if given, else onError("canceled")).
// - Unmounting (or a new jobId) cancels the request; no callback or state update follows.

import { useState, useEffect, useRef } from 'react';
import { watchJob } from './jobapp-client.js';

const INITIAL = Object.freeze({
  progress: 0, status: 'pending', stage: null, message: null, result: null, error: null,
  // contract 1.1 (null until the server sends them)
  attempt: 1, maxAttempts: 1, position: null, scheduledFor: null, waitingFor: null, log: Object.freeze([]),
});

/** The newest log lines the hook keeps in `log` (older ones are dropped from the front). */
const MAX_LOG_LINES = 1000;

function defaultApiBase() {
  // Written out in full so Next.js inlines it; `process` may not exist in other bundlers.
  try {
    return process.env.NEXT_PUBLIC_API_URL || 'http://localhost:8088';
  } catch {
    return 'http://localhost:8088';
  }
}

/**
 * @param {object} args
 * @param {string|null|undefined} args.jobId nothing is watched while it is empty
 * @param {'character'|'media'} args.type
 * @param {string} args.token access token (Authorization: Bearer)
 * @param {(result: any) => void} [args.onComplete]
 * @param {(message: string, details: object) => void} [args.onError]
 * @param {(event: object) => void} [args.onCancel] without it a canceled job calls onError("canceled")
 * @param {(event: object) => void} [args.onUpdate] every job_update event
 * @param {(event: object) => void} [args.onLog] every job_log event (lines the job wrote for its user)
 * @param {string} [args.apiBase] defaults to NEXT_PUBLIC_API_URL, then http://localhost:8088 (as in the guide)
 * @returns {{progress: number, status: string, stage: string|null, message: string|null, result: any, error: string|null,
 *   attempt: number, maxAttempts: number, position: number|null, scheduledFor: number|null,
 *   waitingFor: string[]|null, log: string[]}} `progress` starts again from 0 when a retry starts a new attempt
 */
export function useJobSSE({ jobId, type, token, onComplete, onError, onCancel, onUpdate, onLog, apiBase } = {}) {
  const [state, setState] = useState(INITIAL);
  const callbacks = useRef({ onComplete, onError, onCancel, onUpdate, onLog });
  const tokenRef = useRef(token);

  // Declared before the subscribing effect, so it runs first after every render.
  useEffect(() => {
    callbacks.current = { onComplete, onError, onCancel, onUpdate, onLog };
    tokenRef.current = token;
  });

  const base = (apiBase || defaultApiBase()).replace(/\/+$/, '');
  const hasToken = Boolean(token);

  useEffect(() => {
    setState(INITIAL);
    if (!jobId || !hasToken) return undefined;

    const endpoint = `${base}/api/v1/sse/jobs/${type === 'character' ? 'character' : 'media'}/${encodeURIComponent(jobId)}`;
    const cancel = watchJob({
      url: endpoint,
      token: () => tokenRef.current,
      onUpdate: (event) => {
        setState((previous) => {
          const attempt = Number(event.attempt) || 1;
          const sameAttempt = attempt === previous.attempt;
          return {
            ...previous,
            status: event.status,
            progress: sameAttempt ? Math.max(previous.progress, Number(event.progress) || 0) : Number(event.progress) || 0,
            stage: event.stage ?? null,
            message: event.message ?? null,
            result: event.result ?? previous.result,
            attempt,
            maxAttempts: Number(event.maxAttempts) || 1,
            position: event.position ?? null,
            scheduledFor: event.scheduledFor ?? null,
            waitingFor: event.waitingFor ?? null,
          };
        });
        callbacks.current.onUpdate?.(event);
      },
      onLog: (event) => {
        setState((previous) => ({ ...previous, log: [...previous.log, ...event.lines].slice(-MAX_LOG_LINES) }));
        callbacks.current.onLog?.(event);
      },
      onComplete: (result) => callbacks.current.onComplete?.(result),
      onCancel: (event) => {
        const { onCancel: cancelled, onError: failed } = callbacks.current;
        if (cancelled) cancelled(event);
        else failed?.('canceled', { kind: 'canceled', event });
      },
      onError: (message, details) => {
        setState((previous) => ({ ...previous, error: message }));
        callbacks.current.onError?.(message, details);
      },
    });
    return cancel;
  }, [jobId, type, base, hasToken]);

  return state;
}

export default useJobSSE;
