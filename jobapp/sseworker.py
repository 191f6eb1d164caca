"""gunicorn's gevent worker, with idle SSE streams parked: no greenlet, no saved stack, per open stream.

gunicorn serves each connection in a greenlet for its whole life, so an idle stream used to hold a
switched-out greenlet (gevent copies its C stack slice to the heap: ~5 KB), gunicorn's request,
parser and environ, Werkzeug's response wrappers, and a timer: most of the ~36 KB an open stream
cost. Here a response whose body is a ``streambody.StreamBody`` is driven by this worker: frames
are written as they come and, when the stream goes idle (``streambody.Idle``) on a subscription
that can call back (the hub's), the stream is *parked* — a small record holding its socket, its
body and what the access log needs, a libev timer for the end of the wait and a callback on the
subscription — and its greenlet ends. News, or the end of the wait (a heartbeat is due), steps it
in that callback, in gevent's hub, as long as its steps only write frames that the socket takes at
once (nearly always): no greenlet and no switch per event. A step that would wait (a read of log
lines from Redis: ``streambody.Blocking``), a write that would block, the stream's end or an error
goes on in a fresh greenlet, which runs the stream to its next wait and ends again.

A parked stream also watches its socket for reading. An SSE client sends nothing after its request,
so the socket turns readable when the client hangs up, and the stream ends then, in the hub: its
place under the per-user cap and its jobs' watch are freed at once, rather than at the second
heartbeat write after the hang-up (the first one still succeeds).

What stays as gunicorn does it: headers and chunked framing (gunicorn's response object), the
access log line and ``pre_request``/``post_request`` hooks once per stream, errors logged as
gunicorn logs them. A stream's connection closes when the stream ends (``Connection: close``),
since no greenlet is left to read a next request on it. ``worker_connections`` counts parked
streams, and a graceful stop waits for them as for busy greenlets (on SIGTERM jobapp wakes every
stream to send its ``retry:`` and close; gunicorn.conf.py).
"""

from __future__ import annotations

import _socket
import errno
import os
import time
from datetime import datetime
from typing import Any, Optional, Union

import gevent
from gevent import socket as gsocket
from gevent.pool import Pool, PoolFull
from gunicorn.http import wsgi
from gunicorn.workers.ggevent import GeventWorker

from .streambody import BLOCKING, Idle, StreamBody, parkable

QUIET_ERRNOS = (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN)
LAST_CHUNK = b"0\r\n\r\n"  # what gunicorn's ``Response.close`` writes to end a chunked body
#: What gunicorn's access log reads from the environ (its atoms but ``{name}e``); a parked stream keeps only these.
LOGGED_ENVIRON = ("REMOTE_ADDR", "REQUEST_METHOD", "RAW_URI", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL",
                  "HTTP_REFERER", "HTTP_USER_AGENT", "HTTP_AUTHORIZATION")


class StreamPool(Pool):
    """A connection pool whose fullness (``worker_connections``) counts parked streams too."""

    parked = 0

    def free_count(self) -> int:
        return max(0, self.size - len(self) - self.parked)


class _Stream:
    """One open stream between its greenlets: what it needs to write, log and close."""

    __slots__ = ("worker", "pool", "body", "sock", "req", "environ", "resp", "started", "timer", "idle", "pending",
                 "ended", "reader")

    def __init__(self, worker: "Worker", pool: Optional[StreamPool], body: StreamBody, sock: Any,
                 req: Any, environ: dict, resp: Any, started: datetime) -> None:
        self.worker, self.pool, self.body, self.sock = worker, pool, body, sock
        self.req, self.environ, self.resp, self.started = req, environ, resp, started
        self.timer: Any = None
        self.idle: Optional[Idle] = None
        self.pending: Union[bytes, Exception, None] = None  # what a step in the hub left to a greenlet
        self.ended = False  # its body is done and its last chunk written (or left in ``pending``)
        self.reader: Any = None  # while parked: a read watcher on the socket, for the client's hang-up

    def run(self) -> bool:
        """Write frames until the stream ends (True) or parks (False)."""
        body = self.body
        while True:
            try:
                item = body.step()
            except StopIteration:
                self.resp.close()  # the last chunk
                return True
            if item.__class__ is Idle:
                subscription = item.subscription  # type: ignore[union-attr]
                if parkable(subscription) and not subscription.ready() and self.worker.alive:
                    self.park(item)  # type: ignore[arg-type]
                    return False
                body.woke(subscription.wait(item.timeout))  # type: ignore[union-attr]
            elif item is not BLOCKING:
                self.write(item)  # type: ignore[arg-type]

    def write(self, item: bytes) -> None:
        """One frame, as gunicorn's ``Response.write`` would send it, but with one plain ``send`` while
        the socket takes it all (gevent's ``sendall`` arms a timeout for every call)."""
        if not self.framing_here():
            self.resp.write(item)
            return
        data = self.framed(item)
        sent = self.sock.send(data)
        if sent < len(data):
            self.sock.sendall(data[sent:])

    def framing_here(self) -> bool:
        """Whether frames can be framed and sent here rather than by gunicorn's ``Response.write``:
        the headers are out and the body has no set length (a stream's body always, once started)."""
        return self.resp.headers_sent and self.resp.response_length is None

    def framed(self, item: bytes) -> bytes:
        """``item`` as gunicorn puts it on the wire (a chunk, if chunked), counted as sent."""
        resp = self.resp
        resp.sent += len(item)
        return b"%X\r\n%s\r\n" % (len(item), item) if resp.chunked else item

    def sent_at_once(self, data: bytes) -> bool:
        """In the hub: write what the socket takes without waiting; any rest is left in ``pending``
        for a greenlet to send (False). A gone client shows as a rest too: the greenlet finds out."""
        try:
            written = os.write(self.sock.fileno(), data)
        except OSError:  # would block, or the client is gone
            written = 0
        if written < len(data):
            self.pending = data[written:]
            return False
        return True

    def park(self, idle: Idle) -> None:
        if self.pool is not None:
            self.pool.parked += 1
        self.idle = idle
        self._start_timer(idle.timeout)
        idle.subscription.rawlink(self.wake)

    def _start_timer(self, seconds: float) -> None:
        loop = gevent.get_hub().loop
        self.timer = loop.timer(seconds)
        self.timer.start(self.wake, update=True)  # from now, not from the loop's cached time: no early wake
        if self.reader is None:
            self.reader = loop.io(self.sock.fileno(), 1)
        # False: the client sent bytes once; its hang-up shows on a write. Still active: stepped in the hub.
        if self.reader is not False and not self.reader.active:
            self.reader.start(self.hangup)

    def _stop_reader(self) -> None:
        if self.reader:
            self.reader.stop()

    def hangup(self) -> None:
        """In the hub: the parked stream's socket is readable. At its end (the client closed or reset
        the connection) the stream ends now: its timer and link go, its body closes (the cap's place
        and the hub's watch are freed) and its socket closes. Bytes a client sends after its request
        are left unread, and its hang-up is then found by a write, as before."""
        if self.timer is None:
            return  # not parked (woken meanwhile)
        peek = _socket.socket(fileno=self.sock.fileno())
        try:
            gone = peek.recv(1, _socket.MSG_PEEK | _socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return  # nothing to read after all: still parked, still watching
        except OSError:
            gone = True  # reset
        finally:
            peek.detach()
        self._stop_reader()
        if not gone:
            self.reader = False
            return
        self._unpark()
        self._finish_here()

    def _unpark(self) -> Idle:
        """Its timer and its link to the subscription go (news consumed the link already; the end of
        the wait did not); returns what it waited on."""
        self.timer.close()
        self.timer = None
        idle = self.idle
        idle.subscription.unlink(self.wake)  # type: ignore[union-attr]
        return idle  # type: ignore[return-value]

    def _finish_here(self) -> None:
        """In the hub: a parked stream is over, with no greenlet to end it: it stops counting as parked."""
        if self.pool is not None:
            self.pool.parked -= 1
        self.finish()

    def wake(self, *_: Any) -> None:
        """News or the end of the wait (called in the hub: must not block): the stream takes its
        next steps here while they only write frames the socket takes at once; anything else
        (a step that reads Redis, its end, a write that would block, an error) goes on in a greenlet."""
        if self.timer is None:
            return  # already woken
        idle = self._unpark()
        subscription = idle.subscription
        if not idle.reads and self.step_here(subscription):
            return  # parked again (its reader never stopped) or ended
        self._stop_reader()  # a greenlet takes over: its reads and writes find out about a hang-up
        greenlet = gevent.Greenlet(self.resume)
        if self.pool is not None:
            self.pool.parked -= 1
            try:
                self.pool.add(greenlet, blocking=False)
            except PoolFull:  # cannot happen while parked streams count as members; run it anyway
                pass
        greenlet.start()

    def step_here(self, subscription: Any) -> bool:
        """In the hub: step the stream on its news while its steps only write frames that the
        socket takes at once, until it is idle again or over (True: parked again, or closed by
        ``end_here``). Anything else is left to the greenlet ``wake`` then starts (False): the rest
        of a frame as ``pending``, an error as ``pending`` (raised again there), or a step that waits
        (``BLOCKING``). Never for an ``Idle`` that ``reads``: its next step reads Redis whatever comes."""
        body = self.body
        if not self.framing_here():
            return False
        body.woke(subscription.wait(0) if subscription.ready() else {})
        self.idle = None
        try:
            while True:
                item = body.step()
                if item.__class__ is Idle:
                    self.idle = item  # type: ignore[assignment]
                    subscription = item.subscription  # type: ignore[union-attr]
                    if subscription.ready() or not self.worker.alive:  # type: ignore[union-attr]
                        return False  # the greenlet takes the news (or waits, the worker stopping)
                    self._start_timer(item.timeout)  # type: ignore[union-attr]
                    subscription.rawlink(self.wake)  # type: ignore[union-attr]
                    return True
                if item is BLOCKING or not self.sent_at_once(self.framed(item)):  # type: ignore[arg-type]
                    return False
        except StopIteration:
            return self.end_here()
        except Exception as exc:  # noqa: BLE001 (raised again in the greenlet, logged as any stream error)
            self.pending = exc
            return False

    def end_here(self) -> bool:
        """In the hub, the stream over: its last chunk, if the socket takes it at once, then the
        access line and the close (True); else a greenlet sends the rest and closes (False)."""
        self.ended = True
        if self.resp.chunked and not self.sent_at_once(LAST_CHUNK):
            return False
        self._finish_here()
        return True

    def resume(self) -> None:
        idle, self.idle = self.idle, None
        if idle is not None:  # not stepped in the hub (``Idle.reads``, or news it left): the stream takes what changed
            subscription = idle.subscription
            self.body.woke(subscription.wait(0) if subscription.ready() else {})
        pending, self.pending = self.pending, None
        self.serve(pending)

    def serve(self, pending: Union[bytes, Exception, None] = None) -> bool:
        """Run the stream in this greenlet until it parks (True) or ends; at its end (or on an
        error) log it and close it, its body and its socket. ``pending``: what ``step_here`` left."""
        try:
            if isinstance(pending, Exception):
                raise pending
            if pending:
                self.sock.sendall(pending)  # the rest of a frame, already framed and counted
            if not self.ended and not self.run():
                return True
        except OSError as exc:
            if exc.errno not in QUIET_ERRNOS:
                self.worker.log.exception("Socket error processing request.")
        except gevent.GreenletExit:
            pass
        except Exception:  # the generator failed after the headers went out: as gunicorn, cut the stream
            self.worker.log.exception("Error handling request")
        self.finish()
        return False

    def finish(self) -> None:
        worker = self.worker
        try:
            worker.log.access(self.resp, self.req, self.environ, datetime.now() - self.started)
            self.body.close()
        except Exception:
            worker.log.exception("Error closing stream")
        try:
            worker.cfg.post_request(worker, self.req, self.environ, self.resp)
        except Exception:
            worker.log.exception("Exception in post_request hook")
        if self.reader:
            self.reader.close()
        self.reader = None
        try:
            self.sock.close()
        except OSError:
            pass


class Worker(GeventWorker):
    """``worker_class = "jobapp.sseworker.Worker"``: gunicorn's gevent worker plus parked streams."""

    pools: list[StreamPool]

    def handle_request(self, listener_name, req, sock, addr):  # noqa: C901 (gunicorn's, plus streams)
        """gunicorn's ``AsyncWorker.handle_request`` and ``GeventWorker``'s wrapper, but a
        ``StreamBody`` goes to ``_Stream``: its greenlet may end while the stream stays open."""
        request_start = datetime.now()
        environ: dict = {}
        resp = None
        handed_over = False
        try:
            self.cfg.pre_request(self, req)
            resp, environ = wsgi.create(req, sock, addr, listener_name, self.cfg)
            environ["wsgi.multithread"] = True
            self.nr += 1
            if self.nr >= self.max_requests:
                if self.alive:
                    self.log.info("Autorestarting worker after current request.")
                    self.alive = False
            if not self.alive or not self.cfg.keepalive:
                resp.force_close()
            respiter = self.wsgi(environ, resp.start_response)
            if self.is_already_handled(respiter):
                return False
            # Parking hands the raw descriptor around and writes heartbeats to it directly, which would
            # bypass TLS: with gunicorn's own TLS (certfile), a stream is served as a plain body instead.
            if isinstance(respiter, StreamBody) and not self.cfg.is_ssl:
                handed_over = True
                resp.force_close()  # no greenlet reads a next request once the stream is parked
                self._stream(respiter, sock, req, environ, resp, request_start)
                raise StopIteration()
            try:
                if isinstance(respiter, environ["wsgi.file_wrapper"]):
                    resp.write_file(respiter)
                else:
                    for item in respiter:
                        resp.write(item)
                resp.close()
            finally:
                request_time = datetime.now() - request_start
                self.log.access(resp, req, environ, request_time)
                if hasattr(respiter, "close"):
                    respiter.close()
            if resp.should_close():
                raise StopIteration()
        except StopIteration:
            raise
        except gevent.GreenletExit:
            pass
        except SystemExit:
            pass
        except OSError:
            raise
        except Exception:
            if resp and resp.headers_sent:
                self.log.exception("Error handling request")
                try:
                    sock.shutdown(gsocket.SHUT_RDWR)
                    sock.close()
                except OSError:
                    pass
                raise StopIteration()
            raise
        finally:
            if not handed_over:
                try:
                    self.cfg.post_request(self, req, environ, resp)
                except Exception:
                    self.log.exception("Exception in post_request hook")
        return True

    def _stream(self, body: StreamBody, sock, req, environ: dict, resp, started: datetime) -> None:
        """Run the stream here until it ends or parks; a parked stream takes the socket's descriptor
        with it (gunicorn closes the socket object this greenlet was given when it returns)."""
        current = gevent.getcurrent()
        pool = next((p for p in getattr(self, "pools", ()) if current in p), None)
        stream = _Stream(self, pool, body, sock, req, environ, resp, started)
        if stream.serve():  # parked: nothing switched since, so no resume has run yet
            stream.sock = resp.sock = gsocket.socket(sock.family, sock.type, fileno=sock.detach())
            # Keep only what the access line needs: not the request's reader, body or old socket.
            stream.environ = {k: environ[k] for k in LOGGED_ENVIRON if k in environ}
            req.body = req.unreader = None

    def run(self):
        """``GeventWorker.run`` with a ``StreamPool`` per listener (so parked streams count)."""
        from functools import partial

        from gevent.server import StreamServer
        from gunicorn.http.wsgi import base_environ
        from gunicorn.sock import ssl_context
        from gunicorn.workers.ggevent import VERSION

        servers = []
        ssl_args = {}
        if self.cfg.is_ssl:
            ssl_args = {"ssl_context": ssl_context(self.cfg)}
        self.pools = []
        for s in self.sockets:
            s.setblocking(1)
            pool = StreamPool(self.worker_connections)
            self.pools.append(pool)
            if self.server_class is not None:
                environ = base_environ(self.cfg)
                environ.update({"wsgi.multithread": True, "SERVER_SOFTWARE": VERSION})
                server = self.server_class(s, application=self.wsgi, spawn=pool, log=self.log,
                                           handler_class=self.wsgi_handler, environ=environ, **ssl_args)
            else:
                server = StreamServer(s, handle=partial(self.handle, s), spawn=pool, **ssl_args)
                if self.cfg.workers > 1:
                    server.max_accept = 1
            server.start()
            servers.append(server)

        while self.alive:
            self.notify()
            gevent.sleep(1.0)

        try:
            for server in servers:  # stop accepting
                server.close()
            ts = time.time()  # serve current requests and open streams until graceful_timeout
            while time.time() - ts <= self.cfg.graceful_timeout:
                if not any(server.pool.free_count() != server.pool.size for server in servers):
                    return
                self.notify()
                gevent.sleep(1.0)
            self.log.warning("Worker graceful timeout (pid:%s)", self.pid)
            for server in servers:
                server.stop(timeout=1)
        except Exception:
            pass
