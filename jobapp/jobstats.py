"""Finished jobs by status and their run times, counted in Redis.

Workers run on other processes (often other machines) than the web's /metrics, so the counts
live in Redis: each terminal state recorded adds to a per-type hash in the same script, and
every web process's scrape reads the totals. Counters only ever grow, as Prometheus expects.

Failures are also counted by the kind of their reason (``REASON_KINDS``, a fixed set, so the
metric's cardinality stays bounded whatever text jobs fail with).
"""

from __future__ import annotations

from typing import Iterator, Optional

import redis
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from . import keys

BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0)

#: What a failure's ``failedReason`` says, as a small fixed set of label values.
REASON_KINDS = ("job_failed", "error", "timeout", "worker_died", "dependency")


def reason_kind(failed_reason: Optional[str]) -> str:
    """``timeout``, ``worker_died``, ``error`` (an unexpected exception), ``dependency`` (a job it
    waited for failed), else ``job_failed`` (the job failed itself with its own reason)."""
    text = (failed_reason or "").lower()
    if "timed out" in text:
        return "timeout"
    if "worker running this job died" in text:
        return "worker_died"
    if "unexpected error" in text:
        return "error"
    if "depend" in text or "waited for" in text:
        return "dependency"
    return "job_failed"


def increments(status: str, seconds: Optional[float], failed_reason: Optional[str] = None) -> list[tuple[str, float]]:
    """The fields one job ending ``status`` after running ``seconds`` (None: it never ran) adds to.

    Its run time goes into one bucket (``b:<bound>``, or ``b:+Inf``); ``collect`` adds them up into
    Prometheus's cumulative buckets and count, so a job costs three increments, not one per bucket.
    (``le:<bound>`` and ``count``, which older workers increment, are still added in.)
    """
    fields: list[tuple[str, float]] = [(f"status:{status}", 1)]
    if status == "failed":
        fields.append((f"reason:{reason_kind(failed_reason)}", 1))
    if seconds is not None:
        fields.append((f"b:{next((b for b in BUCKETS if seconds <= b), '+Inf')}", 1))
        fields.append(("sum", float(seconds)))
    return fields


def collect(connection: redis.Redis, job_types: tuple[str, ...]) -> Iterator:
    finished = CounterMetricFamily("jobapp_jobs_finished", "Jobs that reached a final status",
                                   labels=["type", "status"])
    failures = CounterMetricFamily("jobapp_jobs_failed", "Failed jobs by the kind of their reason",
                                   labels=["type", "reason"])
    durations = HistogramMetricFamily("jobapp_job_duration_seconds", "Run time of jobs that started, to their end",
                                      labels=["type"])
    with connection.pipeline(transaction=False) as pipe:
        for job_type in job_types:
            pipe.hgetall(keys.job_stats(job_type))
        rows = pipe.execute()
    for job_type, row in zip(job_types, rows):
        fields = {k.decode(): v.decode() for k, v in row.items()}
        for status in ("completed", "failed", "canceled"):
            finished.add_metric([job_type, status], int(fields.get(f"status:{status}", 0)))
        for kind in REASON_KINDS:
            failures.add_metric([job_type, kind], int(fields.get(f"reason:{kind}", 0)))
        buckets, below = [], 0
        for b in BUCKETS:
            below += int(fields.get(f"b:{b}", 0))
            buckets.append((str(b), below + int(fields.get(f"le:{b}", 0))))
        total = below + int(fields.get("b:+Inf", 0)) + int(fields.get("count", 0))
        durations.add_metric([job_type], buckets + [("+Inf", total)], float(fields.get("sum", 0)))
    yield finished
    yield failures
    yield durations
