// jobapp-client: watch a jobapp job's progress over Server-Sent Events.
//
// A plain ES module with no dependencies and no build step: it runs in browsers (through any
// bundler) and in Node 20+ (global fetch, web streams, TextDecoder).
//
//   import { watchJob } from './jobapp-client.js';
//   const stop = watchJob({
//     url: data.streamUrl, baseUrl: 'https://api.example.com',   // or an absolute url
//     token,                                                       // optional when url has ?token=
//     onUpdate: (event) => render(event.progress, event.stage, event.message),
//     onComplete: (result) => console.log(result.characterId),
//     onError: (message, details) => console.error(message, details),
//   });
//   stop();   // cancels: aborts the request, no callback fires afterwards
//
// Unlike a loop that splits each network chunk on '\n', the parser here (createSSEParser) buffers
// partial lines and partial UTF-8 characters across chunks, as the SSE spec requires, so it works
// behind proxies that re-chunk the stream.

/** The contract's statuses after which a job's stream ends. */
export const TERMINAL_STATUSES = Object.freeze(['completed', 'failed', 'canceled']);

/** True when ``status`` is ``completed``, ``failed`` or ``canceled``. */
export function isTerminal(status) {
  return TERMINAL_STATUSES.includes(status);
}

const LF = 10;
const CR = 13;

/**
 * A streaming parser for the text/event-stream format (WHATWG HTML, "Server-sent events").
 *
 * Feed it chunks as they arrive, strings or bytes, split anywhere (inside a field name, inside
 * "data:", between the CR and LF of a CRLF, inside a multi-byte UTF-8 character).
 *
 * @param {object} handlers
 * @param {(event: {type: string, data: string, id: string}) => void} [handlers.onEvent]
 *   a dispatched event: ``type`` is the ``event:`` field or "message", ``data`` the ``data:``
 *   lines joined with "\n", ``id`` the last event ID (it persists across events, as in EventSource)
 * @param {(ms: number) => void} [handlers.onRetry] a valid ``retry:`` field (ASCII digits only)
 * @param {(text: string) => void} [handlers.onComment] a comment line (``: keep-alive``), without the colon
 * @returns {{feed(chunk: string|Uint8Array|ArrayBuffer): void, end(): void, reset(): void,
 *            readonly lastEventId: string}}
 */
export function createSSEParser({ onEvent, onRetry, onComment } = {}) {
  let decoder = new TextDecoder('utf-8'); // strips a leading BOM itself; invalid bytes become U+FFFD
  let line = ''; // the current, unterminated line
  let afterCR = false; // the last character seen was a CR: an LF right after it ends nothing
  let atStart = true; // nothing decoded yet (a leading BOM in string input is dropped)
  let data = '';
  let hasData = false;
  let eventType = '';
  let lastEventId = '';

  function dispatch() {
    if (!hasData) {
      eventType = '';
      return;
    }
    const event = { type: eventType || 'message', data: data.endsWith('\n') ? data.slice(0, -1) : data, id: lastEventId };
    data = '';
    hasData = false;
    eventType = '';
    onEvent?.(event);
  }

  function processLine(text) {
    if (text === '') {
      dispatch();
      return;
    }
    if (text.charCodeAt(0) === 58 /* ':' */) {
      onComment?.(text.slice(1).replace(/^ /, ''));
      return;
    }
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.charCodeAt(0) === 32 /* ' ' */) value = value.slice(1);
    switch (field) {
      case 'data':
        data += value + '\n';
        hasData = true;
        break;
      case 'event':
        eventType = value;
        break;
      case 'id':
        if (!value.includes('\u0000')) lastEventId = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) onRetry?.(parseInt(value, 10));
        break;
      default:
        break; // unknown fields are ignored
    }
  }

  function feedText(text, decoded = false) {
    if (atStart && text.length > 0) {
      atStart = false;
      // TextDecoder already dropped a leading BOM from bytes; drop one from string input here.
      if (!decoded && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== LF && c !== CR) {
        afterCR = false;
        continue;
      }
      if (c === LF && afterCR) {
        // The LF of a CRLF whose CR ended the line already (possibly in the previous chunk).
        afterCR = false;
        start = i + 1;
        continue;
      }
      afterCR = c === CR;
      const complete = line + text.slice(start, i);
      line = '';
      start = i + 1;
      processLine(complete);
    }
    if (start < text.length) line += text.slice(start);
  }

  return {
    feed(chunk) {
      if (typeof chunk === 'string') {
        feedText(chunk);
      } else if (chunk != null) {
        feedText(decoder.decode(chunk, { stream: true }), true);
      }
    },
    /** The stream ended: an event without its closing blank line is discarded, as the spec says. */
    end() {
      feedText(decoder.decode(), true);
      line = '';
      data = '';
      hasData = false;
      eventType = '';
      afterCR = false;
    },
    /** Forget everything, the last event ID included (a new stream). */
    reset() {
      decoder = new TextDecoder('utf-8');
      line = '';
      afterCR = false;
      atStart = true;
      data = '';
      hasData = false;
      eventType = '';
      lastEventId = '';
    },
    get lastEventId() {
      return lastEventId;
    },
  };
}

/**
 * Parse a whole event stream at once: a string, bytes, or an iterable of chunks (strings or bytes).
 * @returns {{events: Array<{type: string, data: string, id: string}>, retry: number|null,
 *            comments: string[], lastEventId: string}}
 */
export function parseSSE(input) {
  const events = [];
  const comments = [];
  let retry = null;
  const parser = createSSEParser({
    onEvent: (event) => events.push(event),
    onRetry: (ms) => { retry = ms; },
    onComment: (text) => comments.push(text),
  });
  if (typeof input === 'string' || input instanceof Uint8Array || input instanceof ArrayBuffer) {
    parser.feed(input instanceof ArrayBuffer ? new Uint8Array(input) : input);
  } else {
    for (const chunk of input) parser.feed(chunk);
  }
  parser.end();
  return { events, retry, comments, lastEventId: parser.lastEventId };
}

/** An error answered by the server (or a broken response): not retried. */
class FatalError extends Error {
  constructor(message, details) {
    super(message);
    this.details = details;
  }
}

async function errorFromResponse(response) {
  let code = null;
  let message = null;
  try {
    const body = await response.json();
    if (body && body.error && typeof body.error.message === 'string') {
      message = body.error.message;
      code = body.error.code ?? null;
    }
  } catch {
    // not JSON: fall back to the status line
  }
  if (!message) message = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  return { message, code };
}

function resolveUrl(url, baseUrl) {
  const base = baseUrl ?? globalThis.location?.href;
  try {
    return new URL(url, base).toString();
  } catch {
    throw new TypeError(`${JSON.stringify(url)} is not an absolute URL; pass baseUrl`);
  }
}

/**
 * Follow one job's stream (GET /api/v1/sse/jobs/{type}/{jobId}) until it reaches a terminal status.
 *
 * @param {object} options
 * @param {string} options.url the stream URL: absolute, or relative (the queue answer's streamUrl) with baseUrl
 * @param {string} [options.baseUrl] base for a relative url (in a browser, defaults to the page's location)
 * @param {string|(() => string|Promise<string>)} [options.token] access token sent as
 *   "Authorization: Bearer"; a function is called before every (re)connection, so a refreshed token
 *   is used. Optional when url carries its own ?token= stream token.
 * @param {(event: object) => void} [options.onUpdate] every job_update event (status, progress, stage, message, ...)
 * @param {(result: any, event: object) => void} [options.onComplete] status "completed": the job's result
 * @param {(message: string, details: object) => void} [options.onError] the job failed (its failedReason),
 *   was canceled ("canceled", unless onCancel is given), or the stream could not be followed: an HTTP
 *   error (the server's error.message; details.status, details.code, details.retryAfter when the
 *   server sent Retry-After) or too many failed reconnects. A 4xx is never retried: after a 401
 *   "Token has expired" (a stream ends when its token expires), start a new watch with a fresh
 *   token, or pass token as a function that returns a fresh one.
 *   details.kind is "failed", "canceled", "http", "protocol" or "network".
 * @param {(event: object) => void} [options.onCancel] status "canceled"; without it onError("canceled") is called
 * @param {(event: {type: 'job_log', jobId: string, seq: number, lines: string[], dropped: number}) => void} [options.onLog]
 *   each job_log event (contract 1.1): lines the job wrote to its own log, in order; `seq` is the number of
 *   the last line in `lines`, `dropped` how many of the oldest lines the server's cap removed for good.
 *   Across reconnects each line arrives once (lines already delivered are left out by their number).
 * @param {() => void} [options.onOpen] each time a connection opens (a 200 text/event-stream answer)
 * @param {(reason: string) => void} [options.onClose] the watch ended, for any reason (after the other callback)
 * @param {typeof fetch} [options.fetch] the fetch to use (default globalThis.fetch)
 * @param {number} [options.maxRetries=10] consecutive failed (re)connections before giving up; Infinity is allowed
 * @param {number} [options.retryMs=1000] first reconnect delay until the server sends retry:
 * @param {number} [options.maxRetryMs=30000] ceiling of the exponential backoff (never below the server's retry:)
 * @param {number} [options.idleTimeoutMs=60000] reconnect when nothing, not even a keep-alive, arrives for this long (0: never)
 * @param {string} [options.lastEventId] resume after this event id (a finished job then answers 204)
 * @param {AbortSignal} [options.signal] aborting it cancels the watch
 * @returns {(() => void) & {closed: Promise<string>}} cancel; .closed resolves with the reason the watch ended:
 *   "completed", "failed", "canceled", "no-content" (HTTP 204), "error" or "aborted"
 */
export function watchJob(options) {
  return follow('watchJob', options, (payload, { finish, fail, call }) => {
    const { onComplete, onCancel } = options;
    if (payload.status === 'completed') {
      finish('completed', () => call(onComplete, payload.result, payload));
    } else if (payload.status === 'failed') {
      fail(payload.failedReason || 'Job failed', { kind: 'failed', event: payload });
    } else if (payload.status === 'canceled') {
      if (typeof onCancel === 'function') finish('canceled', () => call(onCancel, payload));
      else fail('canceled', { kind: 'canceled', event: payload });
    }
  });
}

/**
 * Follow many of the caller's jobs on one connection (GET /api/v1/sse/jobs): `ids` (up to 100), or
 * by default every unfinished job plus every job queued while it is open. It keeps going after jobs
 * finish — each job's terminal event is just another onUpdate — until cancelled or a 4xx.
 *
 * @param {object} options the options of watchJob (url defaults to '/api/v1/sse/jobs'), plus
 * @param {string[]} [options.ids] the job ids to watch (unknown or foreign ids are left out by the server)
 * @param {(event: object) => void} [options.onUpdate] every job_update event, of any watched job
 * @returns {(() => void) & {closed: Promise<string>}} cancel, as watchJob's
 */
export function watchJobs(options = {}) {
  const { ids, url = '/api/v1/sse/jobs' } = options;
  let target = url;
  if (Array.isArray(ids)) {
    target += `${url.includes('?') ? '&' : '?'}ids=${ids.map(encodeURIComponent).join(',')}`;
  }
  return follow('watchJobs', { ...options, url: target }, () => {});
}

// The connection loop both watchers share: connect, parse, hand each job_update to onUpdate and
// then to `react` (which may end the watch), reconnect with backoff and Last-Event-ID.
function follow(name, options, react) {
  const {
    url,
    baseUrl,
    token,
    onUpdate,
    onLog,
    onError,
    onOpen,
    onClose,
    fetch: fetchImpl = globalThis.fetch,
    maxRetries = 10,
    retryMs: initialRetryMs = 1000,
    maxRetryMs = 30000,
    idleTimeoutMs = 60000,
    lastEventId: initialLastEventId,
    signal,
  } = options ?? {};
  if (typeof url !== 'string' || url === '') throw new TypeError(`${name}: url is required`);
  if (typeof fetchImpl !== 'function') throw new TypeError(`${name}: no fetch available; pass options.fetch`);
  const target = resolveUrl(url, baseUrl);

  let stopped = false;
  let controller = null; // the current request's
  let release = null; // stops the current response's reader and idle timer
  let sleepTimer = null;
  let wake = null;
  let retryMs = initialRetryMs;
  let lastEventId = initialLastEventId != null ? String(initialLastEventId) : '';
  let delivered = false; // the current connection delivered at least one event
  const logSeq = new Map(); // job id -> number of the last log line delivered
  let resolveClosed;
  const closed = new Promise((resolve) => { resolveClosed = resolve; });

  // A throwing callback must not break the stream loop: report it the way an event handler's would be.
  function call(fn, ...args) {
    if (typeof fn !== 'function') return;
    try {
      fn(...args);
    } catch (err) {
      setTimeout(() => { throw err; }, 0);
    }
  }

  function stop(reason) {
    if (stopped) return false;
    stopped = true;
    if (sleepTimer !== null) clearTimeout(sleepTimer);
    wake?.();
    controller?.abort();
    // A pending reader.read() does not always settle after abort() (seen with Node's fetch when
    // the body had already been received): cancel the reader too, which ends the read at once.
    release?.();
    resolveClosed(reason);
    return true;
  }

  function finish(reason, notify) {
    if (stop(reason)) {
      notify?.();
      call(onClose, reason);
    }
  }

  function fail(message, details) {
    finish(details.kind === 'failed' || details.kind === 'canceled' ? details.kind : 'error',
      () => call(onError, message, details));
  }

  function handleEvent(event) {
    if (stopped) return;
    if (event.id !== '') lastEventId = event.id;
    if (event.type !== 'message') return;
    let payload;
    try {
      payload = JSON.parse(event.data);
    } catch {
      return; // not a job update
    }
    if (payload && payload.type === 'job_log' && Array.isArray(payload.lines)) {
      const known = logSeq.get(payload.jobId) ?? 0;
      const fresh = payload.seq - known; // lines not delivered yet (the last `fresh` of this event)
      if (fresh <= 0) return;
      logSeq.set(payload.jobId, payload.seq);
      call(onLog, fresh >= payload.lines.length ? payload : { ...payload, lines: payload.lines.slice(-fresh) });
      return;
    }
    if (!payload || payload.type !== 'job_update') return;
    call(onUpdate, payload);
    if (stopped) return; // onUpdate cancelled the watch
    react(payload, { finish, fail, call });
  }

  // One connection, until its stream ends (resolves) or breaks (throws). Sets `delivered` when it
  // brings an event. Throws FatalError for what must not be retried; any other throw is retried.
  async function connectOnce() {
    delivered = false;
    controller = new AbortController();
    const request = controller;
    const headers = { Accept: 'text/event-stream' };
    const bearer = typeof token === 'function' ? await token() : token;
    if (stopped) return;
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    if (lastEventId !== '') headers['Last-Event-ID'] = lastEventId;

    const response = await fetchImpl(target, { method: 'GET', headers, signal: request.signal });
    if (response.status === 204) {
      // The server knows this client has the terminal event: there is nothing more to come.
      finish('no-content');
      return;
    }
    if (!response.ok) {
      const { message, code } = await errorFromResponse(response);
      const details = { kind: 'http', status: response.status, code };
      const retryAfter = Number.parseInt(response.headers.get('retry-after') ?? '', 10);
      if (Number.isFinite(retryAfter)) details.retryAfter = retryAfter; // seconds, on 429 and 503
      if (response.status >= 400 && response.status < 500) throw new FatalError(message, details);
      const retryable = new Error(message);
      retryable.details = details;
      throw retryable; // 5xx: the service may be restarting
    }
    const contentType = response.headers.get('content-type') || '';
    if (!/^text\/event-stream\b/i.test(contentType) || !response.body) {
      try { await response.body?.cancel(); } catch { /* ignore */ }
      throw new FatalError(`Expected a text/event-stream response, got ${contentType || 'no content type'}`,
        { kind: 'protocol', status: response.status, code: null });
    }
    call(onOpen);

    let idle = false;
    let idleTimer = null;
    let reader = null;
    const armIdle = () => {
      if (!(idleTimeoutMs > 0) || stopped) return;
      if (idleTimer !== null) clearTimeout(idleTimer);
      idleTimer = setTimeout(() => {
        idle = true;
        request.abort();
        reader.cancel().catch(() => {}); // ends a read() the abort alone may leave pending
      }, idleTimeoutMs);
    };
    const parser = createSSEParser({
      onEvent: (event) => { delivered = true; handleEvent(event); },
      onRetry: (ms) => { retryMs = ms; },
    });
    reader = response.body.getReader();
    release = () => {
      if (idleTimer !== null) clearTimeout(idleTimer);
      idleTimer = null;
      reader.cancel().catch(() => { /* already errored by the abort */ });
    };
    armIdle();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || stopped) break;
        armIdle();
        parser.feed(value);
      }
      parser.end();
      if (idle && !stopped) throw new Error(`No data for ${idleTimeoutMs} ms`);
    } catch (err) {
      if (stopped) return;
      if (idle) throw new Error(`No data for ${idleTimeoutMs} ms`);
      throw err;
    } finally {
      if (idleTimer !== null) clearTimeout(idleTimer);
      release = null;
    }
  }

  function sleep(ms) {
    return new Promise((resolve) => {
      wake = resolve;
      sleepTimer = setTimeout(resolve, ms);
    }).finally(() => { sleepTimer = null; wake = null; });
  }

  async function run() {
    let failures = 0;
    let lastProblem = 'the stream ended';
    while (!stopped) {
      try {
        await connectOnce();
        if (stopped) return;
        // The stream ended before the terminal event (server restart, token expiry, maximum
        // lifetime, a proxy's timeout): reconnect, resuming after the last event.
        lastProblem = 'the stream ended before the job finished';
      } catch (err) {
        if (stopped) return;
        if (err instanceof FatalError) {
          fail(err.message, err.details);
          return;
        }
        lastProblem = err?.message || String(err);
      }
      // A connection that brought events was a success: the backoff starts again from retry:.
      failures = delivered ? 1 : failures + 1;
      if (failures > maxRetries) {
        fail(`Connection lost: ${lastProblem}`, { kind: 'network', attempts: failures });
        return;
      }
      const ceiling = Math.max(maxRetryMs, retryMs);
      const delay = Math.min(ceiling, retryMs * 2 ** (failures - 1)) * (1 + Math.random() * 0.2);
      await sleep(Math.min(delay, ceiling * 1.2));
    }
  }

  const cancel = () => finish('aborted');
  cancel.closed = closed;
  if (signal) {
    if (signal.aborted) {
      cancel();
      return cancel;
    }
    signal.addEventListener('abort', cancel, { once: true });
    closed.then(() => signal.removeEventListener('abort', cancel));
  }
  run().catch((err) => {
    // A bug here, not a network problem: report it rather than leave the caller waiting.
    if (!stopped) fail(err?.message || String(err), { kind: 'network' });
  });
  return cancel;
}

/**
 * Queue a job and return the queue answer's data ({jobId, type, status, streamUrl, statusUrl}).
 * A convenience for scripts and tests; errors throw with the server's error.message.
 */
export async function queueJob({ baseUrl, path, body, token, fetch: fetchImpl = globalThis.fetch }) {
  const response = await fetchImpl(resolveUrl(path, baseUrl), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    const { message, code } = await errorFromResponse(response);
    const err = new Error(message);
    err.status = response.status;
    err.code = code;
    throw err;
  }
  return (await response.json()).data;
}
