// The live server the tests talk to, from the environment (tests/test_js_client.py sets these):
//   JOBAPP_URL      base URL of a running jobapp (gunicorn + an RQ worker), e.g. http://127.0.0.1:8088
//   JOBAPP_TOKEN    an access token for one user
//   JOBAPP_TOKEN_B  an access token for a second user (ownership checks)
//   JOBAPP_TOKEN_C  an access token for a third user, whom the 429 test gives the most open streams allowed
//   JOBAPP_URL_CAPPED  a web process of the same service started with a small MAX_STREAMS_PER_USER
//                      (the 429 test; it opens streams until refused, up to 200)
// Without JOBAPP_URL and JOBAPP_TOKEN the live tests are skipped, with that as the stated reason.

export const BASE_URL = (process.env.JOBAPP_URL || '').replace(/\/+$/, '');
export const TOKEN = process.env.JOBAPP_TOKEN || '';
export const TOKEN_B = process.env.JOBAPP_TOKEN_B || '';
export const TOKEN_C = process.env.JOBAPP_TOKEN_C || ''; // a user the 429 test fills with open streams
export const CAPPED_URL = (process.env.JOBAPP_URL_CAPPED || '').replace(/\/+$/, '');

/** Options for node:test's test(): skipped, with the reason, when no live server is configured. */
export const live = (extra = {}) => ({
  timeout: 30_000,
  ...extra,
  skip: BASE_URL && TOKEN ? extra.skip ?? false : 'JOBAPP_URL and JOBAPP_TOKEN are not set (run through tests/test_js_client.py)',
});

export async function api(method, path, { body, token = TOKEN } = {}) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`${BASE_URL}${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: response.status, json, text, headers: response.headers };
}

/** POST /api/v1/characters/queue with the guide's body; returns the answer's data. */
export async function queueCharacter(body = { name: 'Test', age: 25 }, token = TOKEN) {
  const { status, json, text } = await api('POST', '/api/v1/characters/queue', { body, token });
  if (status !== 202) throw new Error(`queue character: HTTP ${status}: ${text}`);
  return json.data;
}

export async function queueMedia(body, token = TOKEN) {
  const { status, json, text } = await api('POST', '/api/v1/media/queue', { body, token });
  if (status !== 202) throw new Error(`queue media: HTTP ${status}: ${text}`);
  return json.data;
}

/** A promise with its resolve/reject outside. */
export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

/** ``promise``, or a rejection naming ``what`` after ``ms``. */
export function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll ``check`` until it returns a truthy value (returned) or ``ms`` pass (throws). */
export async function waitFor(check, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** A fetch that records each request's URL and headers and each answer's status. */
export function recordingFetch(inner = globalThis.fetch) {
  const calls = [];
  const wrapped = async (input, init = {}) => {
    const headers = new Headers(init.headers || {});
    const call = { url: String(input), headers: Object.fromEntries(headers.entries()), status: null, at: Date.now(), signal: init.signal };
    calls.push(call);
    const response = await inner(input, init);
    call.status = response.status;
    return response;
  };
  wrapped.calls = calls;
  return wrapped;
}

/** Assert-friendly: the progress values of a list of job_update events. */
export const progressOf = (events) => events.map((e) => e.progress);

export function isNonDecreasing(values) {
  return values.every((v, i) => i === 0 || v >= values[i - 1]);
}
