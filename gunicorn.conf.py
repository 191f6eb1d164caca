"""gunicorn settings for the web process: gevent greenlets, one per open stream."""

import logging
import os
import re
import resource
import shutil
import tempfile
import traceback
import weakref

from gunicorn.glogging import Logger
from gunicorn.http import wsgi

# Metrics from every worker process are summed at scrape time (prometheus-client multiprocess mode).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="jobapp-metrics-"))

bind = f"0.0.0.0:{os.environ.get('PORT', '8088')}"
# gunicorn's gevent worker, with idle SSE streams parked without a greenlet (jobapp/sseworker.py).
worker_class = "jobapp.sseworker.Worker"
# gunicorn parses requests with gunicorn-h1c's C parser when it is installed (requirements.txt), else in Python.
http_parser = "auto"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# Each open SSE stream holds one connection (and one greenlet) for its whole life.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "20000"))
# Streams end cleanly on SIGTERM within this many seconds (a deploy or dyno restart).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
timeout = 30
# gunicorn's control socket defaults to one path per user; several servers on a machine (tests,
# benchmarks, a dev box) would fight over it, and nothing here uses it.
control_socket_disable = True
# Idle keep-alive connections close after this many seconds; gunicorn's gevent worker also gives a
# client this long to send each request's head, so a connection that sends half a request line and
# stops is closed after it too (with worker_connections, the bound on slow clients at the door).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
accesslog = "-"
# No query strings in the access log (stream tokens travel in ?token=); the request id ties a line
# to the application's lines of the same request.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms request_id=%({x-request-id}o)s'


class AccessLogger(Logger):
    """gunicorn's logger, whose access line gets only the atoms its format uses.

    gunicorn builds each line's atoms from every request header, response header and environ
    variable (some 60 entries, each escaped); the format above uses eight. Any other format falls
    back to gunicorn's own atoms.
    """

    LEAN = frozenset({"h", "m", "U", "H", "s", "B", "M", "{x-request-id}o"})

    def _is_lean(self) -> bool:
        lean = self.__dict__.get("_lean")
        if lean is None:
            lean = self._lean = set(re.findall(r"%\(([^)]*)\)s", self.cfg.access_log_format)) <= self.LEAN
        return lean

    def access(self, resp, req, environ, request_time):
        """The line gunicorn's ``access`` logs, handed to the access logger's handlers without the
        caller lookup ``Logger.info`` makes (a walk up the stack to name the file and line, which no
        format here prints)."""
        log = self.access_log
        if not self.access_log_enabled or not self._is_lean() or not log.isEnabledFor(logging.INFO):
            return super().access(resp, req, environ, request_time)
        try:
            atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
            log.handle(log.makeRecord(log.name, logging.INFO, "gunicorn.glogging", 0, self.cfg.access_log_format,
                                      (atoms,), None))
        except Exception:  # noqa: BLE001 - as gunicorn: a log line never fails a request
            self.error(traceback.format_exc())

    def atoms(self, resp, req, environ, request_time):
        if not self._is_lean():
            return super().atoms(resp, req, environ, request_time)
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        request_id = "-"
        for name, value in resp.headers:
            if name.lower() == "x-request-id":
                request_id = value
                break
        return {"h": environ.get("REMOTE_ADDR", "-"), "m": environ.get("REQUEST_METHOD"),
                "U": environ.get("PATH_INFO"), "H": environ.get("SERVER_PROTOCOL"), "s": status,
                "B": getattr(resp, "sent", None), "{x-request-id}o": request_id,
                "M": request_time.seconds * 1000 + request_time.microseconds // 1000}


logger_class = AccessLogger
# Every gunicorn line in the application's format (jobapp/logs.py): JSON objects in production,
# readable aligned lines in development (LOG_FORMAT switches).
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"jobapp": {"()": "jobapp.logs.formatter"}},
    "handlers": {
        "error": {"class": "logging.StreamHandler", "formatter": "jobapp", "stream": "ext://sys.stderr"},
        "access": {"class": "logging.StreamHandler", "formatter": "jobapp", "stream": "ext://sys.stdout"},
    },
    "root": {"handlers": ["error"], "level": "INFO"},
    "loggers": {
        "gunicorn.error": {"handlers": ["error"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


def _headers_with_the_body() -> None:
    """A response with a length and no chunking goes out in one send: headers and body together.

    gunicorn sends a response's headers, then each body chunk, one ``sendall`` each; over loopback
    every send costs a system call and wakes the client once more (a queue answer paid for two). Only
    the first write of a plain response is joined; chunked responses (event streams), file responses
    and everything after the first write go through gunicorn's own ``write`` unchanged.
    """
    Response = wsgi.Response
    if getattr(Response, "_jobapp_joined", False):
        return
    write = Response.write

    def joined_write(self, arg):
        if (self.headers_sent or self.chunked or not isinstance(arg, bytes) or not arg or self._omits_body
                or self.response_length is None or len(arg) > self.response_length):
            return write(self, arg)
        head = self.default_headers()
        head.extend(["%s: %s\r\n" % (k, v) for k, v in self.headers])
        self.headers_sent = True
        self.sent += len(arg)
        wsgi.util.write(self.sock, ("%s\r\n" % "".join(head)).encode("latin-1") + arg)

    Response.write = joined_write
    Response._jobapp_joined = True


_headers_with_the_body()


def on_starting(server):
    """Start with empty metrics; raise the open-file limit so one process can hold tens of thousands of sockets."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def child_exit(server, worker):
    """Drop a dead worker's live gauges (open streams, watched jobs) from the sums."""
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


_in_flight = weakref.WeakSet()  # requests this worker is serving, open streams among them


def pre_request(worker, req):
    _in_flight.add(req)


def post_request(worker, req, environ, resp):
    _in_flight.discard(req)


def post_worker_init(worker):
    """On SIGTERM, end open streams first (each with a retry: hint, then its connection closes,
    so the client reconnects to a process that is staying), then stop as gunicorn does.

    The app is loaded by now: its objects (some 90,000: Flask, RQ, pydantic, the job types) move out
    of the garbage collector's reach (``gc.freeze``), so a full collection only walks what requests
    and streams made since (it took 37 ms with them, once every few thousand queue requests)."""
    import gc
    import signal

    gc.collect()
    gc.freeze()

    from jobapp import lifecycle

    def graceful_exit(sig, frame):
        for req in list(_in_flight):
            req.must_close = True  # no keep-alive after the current response
        lifecycle.begin_shutdown()
        worker.handle_exit(sig, frame)

    signal.signal(signal.SIGTERM, graceful_exit)
