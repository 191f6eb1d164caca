// Runs the frontend guide's useJobSSE effect VERBATIM, without React, against a live server.
//
// The function body between the BEGIN/END markers is copied character for character from the
// useEffect of shared/seed/frontend-sse-guide.md (guide-hook.test.mjs checks that it still matches).
// React's pieces are replaced by recorders: setProgress/setStatus append to lists, abortRef is a
// plain object, and the cleanup the effect returns is what React would call on unmount.
//
// It runs in its own process because the guide's readStream() promise is never awaited or caught:
// once the hook aborts the request after the terminal event, the pending reader.read() rejects
// with an AbortError nobody handles. A browser logs that as "Uncaught (in promise)"; node:test
// would fail the test on it. Here it is recorded and reported instead.
//
// Usage: node guide-hook-runner.mjs <timeoutMs> [<type> <jobId>]
//   Without a job it first queues a character the way the guide's createCharacter does
//   (POST /api/v1/characters/queue, body {"name": "Test", "age": 25}) and watches that, at once.
// env:   NEXT_PUBLIC_API_URL  base URL the hook streams from (the guide's apiBase)
//        JOBAPP_URL           base URL to queue at (default: NEXT_PUBLIC_API_URL)
//        JOBAPP_TOKEN         the access token
// Prints one JSON line: {jobId, progress, status, completed, errors, unhandled, timedOut}.

const [timeoutArg, typeArg, jobIdArg] = process.argv.slice(2);
const token = process.env.JOBAPP_TOKEN;
const record = { jobId: null, progress: [], status: [], completed: [], errors: [], unhandled: [], timedOut: false };

async function createCharacter() {
  const base = process.env.JOBAPP_URL || process.env.NEXT_PUBLIC_API_URL;
  const res = await fetch(`${base}/api/v1/characters/queue`, {
    method: 'POST',
    headers: {
      'Authorization': `Bearer ${token}`,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify({ name: 'Test', age: 25 })
  });
  if (res.status !== 202) throw new Error(`queue: HTTP ${res.status}: ${await res.text()}`);
  const { data } = await res.json();
  return data.jobId;
}

const type = typeArg || 'character';
const jobId = jobIdArg || await createCharacter();
record.jobId = jobId;

process.on('unhandledRejection', (err) => {
  record.unhandled.push({ name: err?.name ?? null, message: String(err?.message ?? err) });
});

const setProgress = (value) => record.progress.push(value);
const setStatus = (value) => record.status.push(value);
const abortRef = { current: null };

function guideEffect({ jobId, type, token, onComplete, onError }) {
// --- BEGIN GUIDE (verbatim) ---
    if (!jobId) return;

    const apiBase = process.env.NEXT_PUBLIC_API_URL || 'http://localhost:8088';
    const endpoint = type === 'character'
      ? `${apiBase}/api/v1/sse/jobs/character/${jobId}`
      : `${apiBase}/api/v1/sse/jobs/media/${jobId}`;

    const abortController = new AbortController();
    abortRef.current = abortController;

    fetch(endpoint, {
      headers: {
        'Authorization': `Bearer ${token}`,
        'Accept': 'text/event-stream'
      },
      signal: abortController.signal
    })
      .then(response => {
        const reader = response.body.getReader();
        const decoder = new TextDecoder();

        const readStream = async () => {
          while (true) {
            const { done, value } = await reader.read();
            if (done) break;

            const chunk = decoder.decode(value, { stream: true });
            const lines = chunk.split('\n');

            for (const line of lines) {
              if (line.startsWith('data: ')) {
                const data = JSON.parse(line.slice(6));
                
                if (data.type === 'job_update') {
                  setProgress(data.progress || 0);
                  setStatus(data.status);

                  if (data.status === 'completed') {
                    onComplete?.(data.result);
                    abortController.abort();
                  }
                  if (data.status === 'failed') {
                    onError?.(data.failedReason);
                    abortController.abort();
                  }
                }
              }
            }
          }
        };

        readStream();
      })
      .catch(err => {
        if (err.name !== 'AbortError') {
          onError?.('Connection error');
        }
      });

    return () => abortController.abort();
// --- END GUIDE ---
}

let finish;
const finished = new Promise((resolve) => { finish = resolve; });
const cleanup = guideEffect({
  jobId,
  type,
  token,
  onComplete: (result) => { record.completed.push(result); finish(); },
  onError: (error) => { record.errors.push(error); finish(); },
});
const timer = setTimeout(() => { record.timedOut = true; finish(); }, Number(timeoutArg) || 15000);
await finished;
clearTimeout(timer);
await new Promise((resolve) => setTimeout(resolve, 300)); // let a late rejection surface
cleanup?.();
process.stdout.write(JSON.stringify(record) + '\n');
process.exit(0);
