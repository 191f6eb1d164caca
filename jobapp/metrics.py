"""Prometheus metrics at /metrics, correct across gunicorn's worker processes.

With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn.conf.py sets it) each process writes its samples
there and a scrape sums them; without it (tests, ``flask run``) the process's own registry is used.
Queue depths and retained jobs per status are read from Redis at scrape time.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import gevent
from flask import Blueprint, Response
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest, multiprocess)
from prometheus_client.core import GaugeMetricFamily
from rq import Queue

from . import jobstats
from . import registry as job_registry
from .extensions import SERIALIZER, redis_client

OPEN_STREAMS = Gauge("jobapp_open_streams", "SSE streams open now", multiprocess_mode="livesum")
WATCHED_JOBS = Gauge("jobapp_hub_watched_jobs", "Jobs the hub watches now", multiprocess_mode="livesum")
EVENTS_SENT = Counter("jobapp_events_sent", "job_update events written to streams")


class Tally:
    """A counter's increments gathered in this process and added at most once per ``seconds`` (a
    gevent timer; and at each scrape this process answers). A multi-process counter takes a lock
    and writes its file on every ``inc``: per event sent, that was 5 % of a drain's CPU."""

    def __init__(self, counter: Counter, seconds: float = 1.0) -> None:
        self._counter = counter
        self._seconds = seconds
        self._pending = 0
        self._timer: Optional[Any] = None

    def inc(self, amount: int = 1) -> None:
        self._pending += amount
        if self._timer is None:
            self._timer = gevent.get_hub().loop.timer(self._seconds)
            self._timer.start(self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        pending, self._pending = self._pending, 0
        if pending:
            self._counter.inc(pending)


EVENTS = Tally(EVENTS_SENT)
STREAM_SECONDS = Histogram("jobapp_stream_duration_seconds", "How long SSE streams stay open",
                           buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600))

bp = Blueprint("metrics", __name__)


class QueueCollector:
    """Queue depth and retained jobs per RQ registry, read from Redis when scraped."""

    def __init__(self, connection) -> None:
        self._connection = connection

    def collect(self):
        depth = GaugeMetricFamily("jobapp_queue_depth", "Jobs waiting in each queue", labels=["queue"])
        retained = GaugeMetricFamily("jobapp_jobs", "Jobs RQ holds per queue and registry", labels=["queue", "status"])
        for name in job_registry.queue_names():
            queue = Queue(name, connection=self._connection, serializer=SERIALIZER)
            depth.add_metric([name], queue.count)
            for status, registry in (("active", queue.started_job_registry), ("completed", queue.finished_job_registry),
                                     ("failed", queue.failed_job_registry), ("canceled", queue.canceled_job_registry)):
                retained.add_metric([name, status], registry.count)
        yield depth
        yield retained
        yield from jobstats.collect(self._connection, tuple(job_registry.REGISTRY))


class ProcessCollector:
    """Greenlets and open file descriptors of the process answering the scrape (leak checks)."""

    def collect(self):
        import gc

        from greenlet import greenlet

        pid = str(os.getpid())
        greenlets = GaugeMetricFamily("jobapp_process_greenlets", "Live greenlets in this process", labels=["pid"])
        greenlets.add_metric([pid], sum(1 for o in gc.get_objects() if isinstance(o, greenlet) and not o.dead))
        fds = GaugeMetricFamily("jobapp_process_open_fds", "Open file descriptors of this process", labels=["pid"])
        fds.add_metric([pid], len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0)
        yield greenlets
        yield fds


@bp.get("/metrics")
def metrics():
    EVENTS.flush()
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        for collector in (OPEN_STREAMS, WATCHED_JOBS, EVENTS_SENT, STREAM_SECONDS):
            registry.register(collector)
    registry.register(QueueCollector(redis_client.connection))
    registry.register(ProcessCollector())
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
