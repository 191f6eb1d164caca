"""Logs with the request id on every line of a request and the job id on every line logged while a
job runs: JSON lines in production, readable aligned lines for a person in development.

``LOG_FORMAT`` (``json`` or ``human``) picks one; unset, it follows ``JOBAPP_ENV`` (``production``
gets JSON). gunicorn's own lines use the same formatter (``gunicorn.conf.py``).

The request id comes from a valid ``X-Request-ID`` header (a proxy's, such as Heroku's router) or
is made here, and is echoed in the response's ``X-Request-ID``.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import sys
from contextvars import ContextVar
from typing import Optional

from flask import Flask, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

#: The job the worker is busy with (set by jobapp.worker around each job), for every log line.
current_job_id: ContextVar[Optional[str]] = ContextVar("job_id", default=None)
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


class ContextFilter(logging.Filter):
    """Adds ``request_id`` (inside a request) and ``job_id`` (inside a job) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context() and "request_id" in g:
            record.request_id = g.request_id
        job_id = current_job_id.get()
        if job_id is not None and not hasattr(record, "job_id"):
            record.job_id = job_id
        return True


FORMATS = ("human", "json")


def log_format(environ=None) -> str:
    """``LOG_FORMAT`` if set, else ``json`` in production and ``human`` anywhere else."""
    environ = os.environ if environ is None else environ
    chosen = (environ.get("LOG_FORMAT") or "").strip().lower()
    if chosen in FORMATS:
        return chosen
    return "json" if environ.get("JOBAPP_ENV") == "production" else "human"


class HumanFormatter(logging.Formatter):
    """``12:00:01.234 INFO     gunicorn.access      [1f3a9c0e] message``: fixed-width columns, the request
    (or job) id's first 8 characters in brackets, a traceback below its line."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, "%H:%M:%S") + f".{int(record.msecs):03d}"
        context = getattr(record, "request_id", None) or getattr(record, "job_id", None) or ""
        if not context and isinstance(record.args, dict):  # a gunicorn access line: its atoms
            context = str(record.args.get("{x-request-id}o") or "").strip("-")
        logger = record.name if len(record.name) <= 20 else "…" + record.name[-19:]
        line = f"{stamp} {record.levelname:<8} {logger:<20} [{context[:8]:<8}] {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def formatter() -> logging.Formatter:
    """The formatter ``LOG_FORMAT`` (or ``JOBAPP_ENV``) asks for; gunicorn's logconfig uses it too."""
    if log_format() == "human":
        return HumanFormatter()
    return JsonFormatter(FORMAT, rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})


def configure(level: int = logging.INFO) -> None:
    """Send every logger's records to stderr in the chosen format (idempotent)."""
    root = logging.getLogger()
    if any(getattr(h, "_jobapp", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter())
    handler.addFilter(ContextFilter())
    handler._jobapp = True  # type: ignore[attr-defined]
    root.handlers = [handler]
    root.setLevel(level)


class _RequestIds:
    """Request ids made here: 32 hex characters, 20 drawn at random per process and a 12-digit counter.
    As unique as a random id across processes, without reading the OS's random source for every
    request as ``uuid4`` does (a system call per request)."""

    def __init__(self) -> None:
        self.renew()
        os.register_at_fork(after_in_child=self.renew)  # gunicorn's workers are forks: each draws its own

    def renew(self) -> None:
        self._prefix = secrets.token_hex(10)
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFF:012x}"


_request_ids = _RequestIds()


def init_app(app: Flask) -> None:
    configure()

    @app.before_request
    def _request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if incoming and _VALID_ID.match(incoming) else _request_ids.next()

    @app.after_request
    def _echo_request_id(response):
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        return response
