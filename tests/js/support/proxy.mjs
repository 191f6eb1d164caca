// A small HTTP proxy on 127.0.0.1 in front of the live server, to put the clients through what
// real networks do to a stream:
//   chunk: [min, max]  re-chunk every response body into pieces of min..max bytes, each written
//                      separately with a small delay (splits land inside "data:", inside JSON,
//                      inside multi-byte UTF-8 characters and between CR and LF)
//   cutAfterEvents: n  on the first `cutRequests` streams, forward the first n events (and what
//                      precedes them, the retry: line), then drop the connection mid-stream, as a
//                      router restart or a flaky mobile network does
//   retryMs: ms        rewrite the server's "retry:" line (as a server configured with
//                      SSE_RETRY_MS=ms would send it), so a client reconnects while a job still runs
// Every request is recorded ({method, url, headers, status, cut, body}) for assertions; body is
// the text forwarded to the client.

import http from 'node:http';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const randomInt = (min, max) => min + Math.floor(Math.random() * (max - min + 1));

/** Byte offset just past the n-th complete event (a block with a data: line, ended by a blank line), or -1. */
function endOfEvents(buffer, n) {
  const text = buffer.toString('latin1'); // 1 char per byte: offsets stay byte offsets
  let from = 0;
  for (let seen = 0; seen < n; seen++) {
    const data = text.indexOf('data:', from);
    if (data === -1) return -1;
    const end = text.indexOf('\n\n', data);
    if (end === -1) return -1;
    from = end + 2;
  }
  return from;
}

export async function startProxy(targetBase, { chunk = null, delayMs = [0, 2], cutAfterEvents = null, cutRequests = 1, retryMs = null } = {}) {
  const target = new URL(targetBase);
  const requests = [];
  const sockets = new Set();
  let streamsSeen = 0;

  const server = http.createServer((req, res) => {
    const record = { method: req.method, url: req.url, headers: { ...req.headers }, status: null, cut: false, body: '' };
    requests.push(record);
    const upstream = http.request({
      host: target.hostname, port: target.port, method: req.method, path: req.url,
      headers: { ...req.headers, host: target.host },
    }, (up) => {
      record.status = up.statusCode;
      const headers = { ...up.headers };
      delete headers['transfer-encoding']; // node frames the body again itself
      delete headers.connection;
      delete headers['keep-alive'];
      res.writeHead(up.statusCode, headers);
      res.flushHeaders();

      const isStream = up.statusCode === 200 && String(up.headers['content-type'] || '').startsWith('text/event-stream');
      const cutThis = isStream && cutAfterEvents != null && streamsSeen++ < cutRequests;
      let seen = Buffer.alloc(0); // for cutting: everything forwarded so far
      let cutDone = false;
      const queue = [];
      let pumping = false;
      let ended = false;

      const finish = () => { if (!res.destroyed) res.end(); };
      const cut = () => {
        cutDone = true;
        record.cut = true;
        up.destroy();
        res.socket?.destroy(); // mid-body: the client sees the connection drop
      };
      const pump = async () => {
        pumping = true;
        while (queue.length && !res.destroyed) {
          let piece = queue.shift();
          if (!chunk) {
            res.write(piece);
            continue;
          }
          while (piece.length && !res.destroyed) {
            const size = randomInt(chunk[0], chunk[1]);
            res.write(piece.subarray(0, size));
            piece = piece.subarray(size);
            await sleep(randomInt(delayMs[0], delayMs[1]));
          }
        }
        pumping = false;
        if (ended && !cutDone) finish();
      };
      const send = (data) => {
        record.body += data.toString('utf8');
        queue.push(data);
        if (!pumping) pump();
      };

      up.on('data', (data) => {
        if (cutDone) return;
        if (isStream && retryMs != null) data = Buffer.from(data.toString('latin1').replace(/^retry: \d+/m, `retry: ${retryMs}`), 'latin1');
        if (!cutThis) {
          send(data);
          return;
        }
        const before = seen.length;
        seen = Buffer.concat([seen, data]);
        const end = endOfEvents(seen, cutAfterEvents);
        if (end === -1) {
          send(data);
          return;
        }
        send(data.subarray(0, end - before));
        // Let the forwarded bytes reach the client, then drop the connection.
        const waitThenCut = async () => {
          while (pumping || queue.length) await sleep(5);
          await sleep(20);
          cut();
        };
        cutDone = true;
        waitThenCut();
      });
      up.on('end', () => {
        ended = true;
        if (!pumping && !cutDone) finish();
      });
      up.on('error', () => res.destroy());
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
