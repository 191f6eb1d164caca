"""The queue body's own fields from contract 1.1, apart from the job type's params.

``dependsOn`` (the caller's job ids to wait for), and ``runAt`` (ISO 8601 with an offset) or
``delaySeconds`` (to run later). They are taken out of the body before the job type's schema
sees it, so every type gets them without declaring them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from redis.client import Pipeline
from rq import Queue
from rq.job import Job

from . import scheduler
from .dependencies import MAX_DEPENDENCIES
from .exceptions import InvalidParams

FIELDS = ("dependsOn", "runAt", "delaySeconds")


@dataclass
class QueueOptions:
    depends_on: list[str] = field(default_factory=list)
    run_at: Optional[datetime] = None  # UTC; None runs now

    @property
    def scheduled_ms(self) -> Optional[int]:
        return int(self.run_at.timestamp() * 1000) if self.run_at else None


def _invalid(name: str, message: str) -> InvalidParams:
    """A 400 on the HTTP route; what ``enqueue(..., run_at=...)`` raises in a script."""
    return InvalidParams(f"{name}: {message}", {name: message})


def split(body: dict[str, Any], max_schedule_seconds: int,
          now: Optional[datetime] = None) -> tuple[dict[str, Any], QueueOptions]:
    """``body`` -> (the job type's params, the options); 400 for an option that is not valid."""
    params = {k: v for k, v in body.items() if k not in FIELDS}
    options = QueueOptions()
    depends = body.get("dependsOn")
    if depends is not None:
        if not isinstance(depends, list) or not all(isinstance(i, str) and i for i in depends):
            raise _invalid("dependsOn", "must be a list of job ids")
        if len(depends) > MAX_DEPENDENCIES:
            raise _invalid("dependsOn", f"at most {MAX_DEPENDENCIES} job ids")
        options.depends_on = list(dict.fromkeys(depends))
    run_at, delay = body.get("runAt"), body.get("delaySeconds")
    if "runAt" in body and "delaySeconds" in body:
        raise _invalid("runAt", "give runAt or delaySeconds, not both")
    if "dependsOn" in body and ("runAt" in body or "delaySeconds" in body):
        raise _invalid("dependsOn", "a job waits for other jobs or for a time, not both")
    now = now or datetime.now(timezone.utc)
    when: Optional[datetime] = None
    if run_at is not None:
        try:
            when = datetime.fromisoformat(run_at) if isinstance(run_at, str) else None
        except ValueError:
            when = None
        if when is None:
            raise _invalid("runAt", "must be an ISO 8601 date and time, e.g. 2030-01-01T14:05:00+00:00")
        if when.tzinfo is None:
            raise _invalid("runAt", "must carry a UTC offset (Z or +hh:mm)")
    elif delay is not None:
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            raise _invalid("delaySeconds", "must be a number of seconds, 0 or more")
        if delay > max_schedule_seconds:
            raise _invalid("delaySeconds", f"must be at most {max_schedule_seconds} seconds ahead")
        when = now + timedelta(seconds=delay)
    if when is not None:
        if (when - now).total_seconds() > max_schedule_seconds:
            raise _invalid("runAt", f"must be at most {max_schedule_seconds} seconds ahead")
        if when > now:  # a time in the past (or now) runs now
            # RQ's scheduler keeps whole seconds (it floors): round up, so the job never starts early.
            whole = when.astimezone(timezone.utc).replace(microsecond=0)
            options.run_at = whole if whole == when else whole + timedelta(seconds=1)
    return params, options


def submit(queue: Queue, options: QueueOptions, func: str, *, args: tuple, job_id: str, meta: dict,
           description: str, timeout: int, result_ttl: int, failure_ttl: int, retry: Any,
           pipeline: Pipeline) -> Job:
    """Queue the job inside ``pipeline`` as ``options`` say: now, later (RQ's scheduler), or after others."""
    if options.run_at is not None:
        meta = {**meta, "scheduledFor": options.scheduled_ms}
        job = queue.enqueue_at(options.run_at, func, args=args, job_id=job_id, meta=meta, description=description,
                               job_timeout=timeout, result_ttl=result_ttl, failure_ttl=failure_ttl, retry=retry,
                               pipeline=pipeline)
        scheduler.wake(pipeline, queue.name)  # jobapp's scheduler sleeps until the next due job it knows of
        return job
    return queue.enqueue_call(func, args=args, job_id=job_id, meta=meta, description=description, timeout=timeout,
                              result_ttl=result_ttl, failure_ttl=failure_ttl, retry=retry,
                              depends_on=options.depends_on or None, pipeline=pipeline)
