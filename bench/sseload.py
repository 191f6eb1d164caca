"""Load generator for jobapp: many SSE streams, or many queue requests, over raw sockets with gevent.

Run it in its own process (``bench/run.py`` does), so the load never shares the web process:

    python -m bench.sseload streams --port 8088 --paths-file paths.txt --count 10000 --hold 60 --out r.json
    python -m bench.sseload enqueue --port 8088 --count 10000 --conns 16 --jobs-out paths.txt --out r.json

``streams`` opens ``--count`` streams (GET, one raw socket each, HTTP/1.1 chunked like a browser),
ramping with at most ``--concurrency`` connects in flight; a stream is *open* once its first event
(the job's current state) has arrived. When every stream is open or has failed it prints one line
``{"type": "ready", ...}`` on stdout, holds them for ``--hold`` seconds (or until SIGTERM/SIGINT, or
until every stream has seen ``--expect-updates`` events after its first), then writes the full result
to ``--out`` and prints ``{"type": "result", ...}``. Every event after the first gives one latency
sample: the client's receive time (epoch ms, taken as ``recv()`` returns) minus the event's
``updatedAt`` (stamped by the writer on the same machine, so the clocks agree), taken only from events
that carry a newer ``updatedAt`` than the stream's last: an event that resends a recorded state with
only its place in line changed (contract 1.1 ``position``) keeps the state's ``updatedAt``, so its
"lag" would be the job's time in line, not a delivery delay. Those are counted as ``restated_events``.

Errors are counted per kind: a connect/handshake failure, a non-200 answer, a stream the server ended
(unless ``--allow-end``, for streams that finish with their job), a reset, and a stall (no byte for
longer than ``--max-silence`` seconds, i.e. missed heartbeats).

``enqueue`` fires ``--count`` POST /api/v1/characters/queue over ``--conns`` keep-alive connections
(Bearer tokens for ``--users`` users) after ``--warmup`` unmeasured requests, and reports requests per
second and latency percentiles. With ``--jobs-out`` it writes each queued job's ``streamUrl``.

Both raise RLIMIT_NOFILE to the hard limit, and both stop by themselves (``--hold`` / ``--timeout``).
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Optional  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402
from gevent.lock import Semaphore  # noqa: E402


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def read_head(sock: socket.socket, buf: bytes, eof: str) -> tuple[bytes, bytes]:
    """Read an HTTP response head; return it and what followed. A closed socket fails with ``eof``."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise Failed(eof)
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def percentiles(values: list, points=(50, 90, 99, 99.9)) -> dict:
    if not values:
        return {}
    ordered = sorted(values)
    out = {}
    for p in points:
        index = min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))
        out[f"p{p:g}"] = round(ordered[index], 3)
    out.update(min=round(ordered[0], 3), max=round(ordered[-1], 3), mean=round(sum(ordered) / len(ordered), 3),
               n=len(ordered))
    return out


class Failed(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


# -- SSE streams ---------------------------------------------------------------------------------------

class Stream:
    """One SSE stream's parse state: HTTP chunked decoding, then SSE framing."""

    __slots__ = ("path", "sock", "raw", "text", "chunk_left", "first", "updates", "heartbeats", "last_id",
                 "last_rx", "max_silence", "opened_at", "ended", "complete", "error", "ids_ok", "initial",
                 "updated_at", "restated")

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock: Optional[socket.socket] = None
        self.raw = b""  # undecoded chunked bytes
        self.text = b""  # decoded SSE bytes not yet split into events
        self.chunk_left = 0  # bytes left in the current HTTP chunk (+2 for its CRLF when > 0)
        self.first: Optional[dict] = None
        self.updates = 0
        self.updated_at: dict[str, int] = {}  # job id -> the newest updatedAt this stream has seen of it
        self.restated = 0  # events that resent an already seen updatedAt (a new place in line)
        self.heartbeats = 0
        self.last_id = 0
        self.last_rx = 0.0
        self.max_silence = 0.0
        self.opened_at = 0.0
        self.ended = False  # the server ended the stream
        self.complete = False  # the response's last chunk arrived (the connection may stay open)
        self.error: Optional[str] = None
        self.ids_ok = True
        self.initial = 0  # snapshot events received before the stream counts as open


class StreamLoad:
    def __init__(self, args) -> None:
        self.args = args
        self.host, self.port = args.host, args.port
        self.streams = [Stream(p) for p in self.paths(args)]
        self.gate = Semaphore(args.concurrency)
        self.stopping = False
        self.stop_event = Event()
        self.ready_event = Event()
        self.settled = 0  # streams that are open or failed
        self.latencies: list[float] = []
        self.samples: list[tuple[int, float]] = []  # (updatedAt, latency ms) with --keep-latencies
        self.errors: Counter = Counter()
        self.error_times: list[float] = []
        self.t_start = time.time()
        self.t_ready: Optional[float] = None
        self.done_updates = 0  # streams that reached --expect-updates

    @staticmethod
    def paths(args) -> list[str]:
        with open(args.paths_file) as handle:
            paths = [line.strip() for line in handle if line.strip()]
        if not paths:
            raise SystemExit("no paths")
        count = args.count or len(paths)
        return [paths[i % len(paths)] for i in range(args.offset, args.offset + count)]

    # one greenlet per stream
    def run_stream(self, st: Stream) -> None:
        a = self.args
        opened = False
        try:
            with self.gate:
                if self.stopping:
                    return
                try:
                    sock = socket.create_connection((self.host, self.port), timeout=a.open_timeout)
                except OSError as exc:
                    raise Failed(f"connect:{type(exc).__name__}:{getattr(exc, 'errno', '')}")
                st.sock = sock
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                request = (f"GET {st.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                           f"Accept: text/event-stream\r\nCache-Control: no-cache\r\n")
                if a.token:
                    request += f"Authorization: Bearer {a.token}\r\n"
                sock.sendall((request + "\r\n").encode())
                head, rest = read_head(sock, b"", "eof-before-headers")
                status = int(head.split(b" ", 2)[1])
                if status != 200:
                    raise Failed(f"status-{status}")
                if b"transfer-encoding: chunked" not in head.lower():
                    raise Failed("not-chunked")
                st.last_rx = time.time()
                self.feed(st, rest, st.last_rx)
                while st.first is None:
                    data = sock.recv(65536)
                    now = time.time()
                    if not data:
                        raise Failed("eof-before-first-event")
                    self.feed(st, data, now)
                opened = True
                st.opened_at = time.time()
                self.settle()
            sock.settimeout(None)
            while True:
                if st.complete:  # the response ended; HTTP keep-alive would hold the socket open
                    data = b""
                else:
                    data = sock.recv(65536)
                now = time.time()
                if not data:
                    st.ended = True
                    if not self.stopping and not a.allow_end:
                        raise Failed("server-ended-stream")
                    if a.allow_end and sum(1 for s in self.streams if s.ended) == len(self.streams):
                        self.stop_event.set()  # every job finished and its stream ended
                    return
                self.feed(st, data, now)
        except Failed as exc:
            self.fail(st, exc.kind, opened)
        except socket.timeout:
            self.fail(st, "timeout" if opened else "open-timeout", opened)
        except OSError as exc:
            if not self.stopping:
                self.fail(st, f"{type(exc).__name__}:{getattr(exc, 'errno', '')}", opened)
        finally:
            if st.sock is not None and not self.stopping:
                st.sock.close()

    def fail(self, st: Stream, kind: str, opened: bool) -> None:
        if self.stopping and opened:
            return
        st.error = kind
        self.errors[kind if opened else f"open:{kind}"] += 1
        self.error_times.append(time.time())
        if not opened:
            self.settle()

    def settle(self) -> None:
        self.settled += 1
        if self.settled == len(self.streams):
            self.t_ready = time.time()
            self.ready_event.set()

    def feed(self, st: Stream, data: bytes, now: float) -> None:
        silence = now - st.last_rx
        if silence > st.max_silence and st.first is not None:
            st.max_silence = silence
        st.last_rx = now
        # HTTP/1.1 chunked decoding: "<hex size>\r\n<bytes>\r\n", repeated. chunk_left counts the
        # current chunk's bytes still to come, its trailing CRLF included.
        raw = st.raw + data if st.raw else data
        out = []
        pos = 0
        while pos < len(raw):
            if st.chunk_left:
                take = min(st.chunk_left, len(raw) - pos)
                keep = max(0, min(take, st.chunk_left - 2))
                if keep:
                    out.append(raw[pos:pos + keep])
                pos += take
                st.chunk_left -= take
                continue
            end = raw.find(b"\r\n", pos)
            if end < 0:
                break
            size = int(raw[pos:end].split(b";")[0] or b"0", 16)
            pos = end + 2
            if size == 0:
                st.complete = True
                pos = len(raw)  # the last chunk: the server ends the stream
                break
            st.chunk_left = size + 2
        st.raw = raw[pos:]
        text = st.text + b"".join(out)
        while True:
            end = text.find(b"\n\n")
            if end < 0:
                break
            self.on_frame(st, text[:end], now)
            text = text[end + 2:]
        st.text = text

    def on_frame(self, st: Stream, frame: bytes, now: float) -> None:
        data = None
        for line in frame.split(b"\n"):
            if line.startswith(b":"):
                st.heartbeats += 1
            elif line.startswith(b"data:"):
                data = line[5:].strip()
            elif line.startswith(b"id:"):
                event_id = int(line[3:].strip())
                if event_id <= st.last_id:
                    st.ids_ok = False
                st.last_id = event_id
        if data is None:
            return
        event = json.loads(data)
        if event.get("type") != "job_update":  # job_log lines (contract 1.1): not state updates
            return
        if st.first is None:
            st.initial += 1  # a many-jobs stream opens with one snapshot per job (--initial-events)
            if st.initial >= self.args.initial_events:
                st.first = event
            st.updated_at[event["jobId"]] = max(st.updated_at.get(event["jobId"], 0), event["updatedAt"])
            return
        st.updates += 1
        if event["updatedAt"] <= st.updated_at.get(event["jobId"], 0):
            st.restated += 1
        else:
            st.updated_at[event["jobId"]] = event["updatedAt"]
            if self.t_ready is not None:
                self.latencies.append(now * 1000.0 - event["updatedAt"])
                if self.args.keep_latencies:
                    self.samples.append((event["updatedAt"], round(now * 1000.0 - event["updatedAt"], 3)))
        expect = self.args.expect_updates
        if expect and st.updates == expect:
            self.done_updates += 1
            if self.done_updates == len(self.streams) - sum(self.errors.values()):
                self.stop_event.set()

    def watchdog(self) -> None:
        """Streams that received nothing for longer than --max-silence count as stalled (once each)."""
        limit = self.args.max_silence
        while not self.stopping:
            gevent.sleep(1.0)
            now = time.time()
            for st in self.streams:
                if st.first is not None and st.error is None and not st.ended and now - st.last_rx > limit:
                    st.error = "stalled"
                    self.errors["stalled"] += 1
                    self.error_times.append(now)

    def run(self) -> dict:
        a = self.args
        nofile = raise_nofile()
        for sig in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(sig, self.stop_event.set)
        greenlets = [gevent.spawn(self.run_stream, st) for st in self.streams]
        dog = gevent.spawn(self.watchdog)
        ready = self.ready_event.wait(a.ramp_timeout)
        if not ready:
            self.t_ready = time.time()
        ramp = self.t_ready - self.t_start
        opened = sum(1 for st in self.streams if st.first is not None)
        emit({"type": "ready", "pid": os.getpid(), "complete": ready, "open": opened,
              "failed": sum(self.errors.values()), "ramp_seconds": round(ramp, 3), "t_ready": self.t_ready})
        self.stop_event.wait(a.hold)
        t_end = time.time()
        still_open = sum(1 for st in self.streams if st.first is not None and st.error is None and not st.ended)
        self.stopping = True
        dog.kill(block=False)
        for st in self.streams:
            if st.sock is not None:
                try:
                    st.sock.close()
                except OSError:
                    pass
        gevent.killall(greenlets, block=True, timeout=5)
        silences = [st.max_silence for st in self.streams if st.first is not None]
        updates = Counter(st.updates for st in self.streams if st.first is not None)
        return {
            "type": "result", "mode": "streams", "requested": len(self.streams), "opened": opened,
            "open_at_end": still_open, "ended_by_server": sum(1 for st in self.streams if st.ended),
            "errors": dict(self.errors), "error_count": sum(self.errors.values()),
            "errors_after_ready": sum(1 for t in self.error_times if t >= self.t_ready),
            "ramp_seconds": round(ramp, 3), "held_seconds": round(t_end - self.t_ready, 3),
            "t_start": self.t_start, "t_ready": self.t_ready, "t_end": t_end,
            "heartbeats": sum(st.heartbeats for st in self.streams),
            "streams_without_heartbeat": sum(1 for st in self.streams if st.first is not None and not st.heartbeats),
            "max_silence_seconds": percentiles(silences, (50, 99, 100)),
            "update_events": sum(st.updates for st in self.streams),
            "restated_events": sum(st.restated for st in self.streams),
            "updates_per_stream": {str(k): v for k, v in sorted(updates.items())},
            "ids_increasing": all(st.ids_ok for st in self.streams),
            "latency_ms": percentiles(self.latencies),
            "samples": sorted(self.samples) if a.keep_latencies else None,
            "nofile": nofile,
        }


# -- queue requests ------------------------------------------------------------------------------------

class EnqueueLoad:
    def __init__(self, args) -> None:
        import jwt  # HS256 access tokens as any issuer mints them: just sub and exp
        from jobapp.config import DEV_SECRET
        self.args = args
        exp = int(time.time()) + 6 * 3600
        self.tokens = [jwt.encode({"sub": f"{args.user_prefix}{i}", "exp": exp}, DEV_SECRET, algorithm="HS256")
                       for i in range(args.users)]
        self.latencies: list[float] = []
        self.statuses: Counter = Counter()
        self.errors: Counter = Counter()
        self.jobs: list[str] = []
        self.next = 0
        self.reconnects = 0
        self.timeline: list[tuple[float, float, int]] = []  # (start offset s, latency ms, status)
        self.t0 = time.perf_counter()
        self.deadline = float("inf")

    def request(self, n: int) -> bytes:
        body = json.dumps({"name": f"Bench {n}", "age": 20 + n % 80}).encode()
        return (f"POST /api/v1/characters/queue HTTP/1.1\r\nHost: {self.args.host}:{self.args.port}\r\n"
                f"Authorization: Bearer {self.tokens[n % len(self.tokens)]}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    def connect(self) -> socket.socket:
        sock = socket.create_connection((self.args.host, self.args.port), timeout=self.args.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    @staticmethod
    def response(sock: socket.socket, buf: bytes) -> tuple[int, bytes, bool, bytes]:
        head, rest = read_head(sock, buf, "eof")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        while len(rest) < length:
            data = sock.recv(65536)
            if not data:
                raise Failed("eof-in-body")
            rest += data
        return status, rest[:length], close, rest[length:]

    def worker(self, limit: int, measure: bool) -> None:
        sock = None
        buf = b""
        while self.next < limit and time.perf_counter() < self.deadline:
            n = self.next
            self.next += 1
            try:
                if sock is None:
                    sock = self.connect()
                    buf = b""
                t0 = time.perf_counter()
                sock.sendall(self.request(n))
                status, body, close, buf = self.response(sock, buf)
                elapsed = (time.perf_counter() - t0) * 1000.0
                if measure:
                    self.latencies.append(elapsed)
                    if self.args.timeline:
                        self.timeline.append((round(t0 - self.t0, 4), round(elapsed, 2), status))
                    self.statuses[status] += 1
                    if status == 202 and self.args.jobs_out:
                        url = json.loads(body)["data"]["streamUrl"]
                        if "token=" not in url:  # a server without stream tokens takes the access token
                            url += f"?token={self.tokens[n % len(self.tokens)]}"
                        self.jobs.append(url)
                if close:
                    sock.close()
                    sock = None
                    self.reconnects += 1
            except (Failed, OSError) as exc:
                if measure:
                    self.errors[getattr(exc, "kind", type(exc).__name__)] += 1
                if sock is not None:
                    sock.close()
                sock = None
                self.reconnects += 1
        if sock is not None:
            sock.close()

    def phase(self, count: int, measure: bool, duration: float = 0.0) -> float:
        self.next = 0
        t0 = time.perf_counter()
        self.deadline = t0 + duration if duration else float("inf")
        pool = [gevent.spawn(self.worker, count, measure) for _ in range(self.args.conns)]
        if not gevent.joinall(pool, timeout=self.args.timeout):
            gevent.killall(pool, block=False)
            self.errors["timeout"] += 1
        return time.perf_counter() - t0

    def run(self) -> dict:
        raise_nofile()
        a = self.args
        if a.warmup:
            self.phase(a.warmup, measure=False)
        t_start = time.time()
        self.t0 = time.perf_counter()
        seconds = self.phase(a.count if not a.duration else 10 ** 9, measure=True, duration=a.duration)
        if a.jobs_out:
            with open(a.jobs_out, "w") as handle:
                handle.write("\n".join(self.jobs) + "\n")
        done = len(self.latencies)
        return {
            "type": "result", "mode": "enqueue", "requests": done, "completed": done, "conns": a.conns,
            "users": a.users, "seconds": round(seconds, 3), "t_start": t_start, "t_end": time.time(),
            "rps": round(self.statuses.get(202, 0) / seconds, 1) if seconds else 0.0,
            "statuses": {str(k): v for k, v in self.statuses.items()}, "errors": dict(self.errors),
            "latency_ms": percentiles(self.latencies), "reconnects": self.reconnects,
            "timeline": self.timeline if a.timeline else None,
        }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("streams", help="open and hold SSE streams")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--paths-file", required=True, help="one stream path (with ?token=) per line")
    s.add_argument("--count", type=int, default=0, help="streams to open (cycles through the paths)")
    s.add_argument("--offset", type=int, default=0, help="start at this line of the paths file")
    s.add_argument("--token", default="", help="send this Bearer token (else the path's ?token= is used)")
    s.add_argument("--concurrency", type=int, default=100, help="connects in flight while ramping")
    s.add_argument("--open-timeout", type=float, default=30.0, help="seconds for one stream to open")
    s.add_argument("--ramp-timeout", type=float, default=180.0, help="seconds for all streams to open")
    s.add_argument("--hold", type=float, default=60.0, help="seconds to hold after ready (max)")
    s.add_argument("--expect-updates", type=int, default=0, help="stop once every stream has this many updates")
    s.add_argument("--initial-events", type=int, default=1,
                   help="events that open a stream (a many-jobs stream sends one per watched job)")
    s.add_argument("--max-silence", type=float, default=40.0, help="a stream silent this long is stalled")
    s.add_argument("--allow-end", action="store_true", help="streams may end (their job finishes)")
    s.add_argument("--keep-latencies", action="store_true", help="include every latency sample")
    s.add_argument("--out", required=True)
    e = sub.add_parser("enqueue", help="fire queue requests over keep-alive connections")
    e.add_argument("--host", default="127.0.0.1")
    e.add_argument("--port", type=int, required=True)
    e.add_argument("--count", type=int, default=5000)
    e.add_argument("--warmup", type=int, default=300)
    e.add_argument("--conns", type=int, default=16)
    e.add_argument("--users", type=int, default=100)
    e.add_argument("--timeout", type=float, default=120.0)
    e.add_argument("--duration", type=float, default=0.0, help="fire at full speed for this many seconds instead of --count")
    e.add_argument("--user-prefix", default="bench-user-", help="token subjects are this plus a number")
    e.add_argument("--jobs-out", default="", help="write each job's streamUrl here")
    e.add_argument("--timeline", action="store_true", help="keep every request's start time and latency")
    e.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.host != "127.0.0.1":
        raise SystemExit("this tool only targets 127.0.0.1")
    result = StreamLoad(args).run() if args.mode == "streams" else EnqueueLoad(args).run()
    with open(args.out, "w") as handle:
        json.dump(result, handle)
    emit({k: v for k, v in result.items() if k not in ("samples", "timeline")})
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
