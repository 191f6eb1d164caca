"""What a job shows between two attempts of a retry policy (RQ's ``Retry``).

RQ requeues or schedules a failed job that has retries left and counts ``retries_left`` down,
but keeps its meta: the next attempt would start at the old progress, stage and message. After
RQ has decided, ``prepare_next_attempt`` starts the job's progress again at 0 and says when the
next attempt runs ("Retrying in 5 s (attempt 2 of 3)"); ``state.attempts`` numbers the attempts.
"""

from __future__ import annotations

import math
from typing import Optional

import redis
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

from . import state
from .extensions import SERIALIZER


def prepare_next_attempt(connection: redis.Redis, job: Job) -> bool:
    """If RQ has just queued ``job`` again for another attempt, reset its meta; True if it did."""
    status = job.get_status(refresh=False)
    status = getattr(status, "value", status)
    if status not in (JobStatus.SCHEDULED.value, JobStatus.QUEUED.value):
        return False
    counts = state.attempts(job)
    due_ms: Optional[int] = None
    if status == JobStatus.SCHEDULED.value:
        registry = ScheduledJobRegistry(job.origin, connection=connection, serializer=SERIALIZER)
        score = connection.zscore(registry.key, job.id)
        due_ms = int(score * 1000) if score is not None else None
    wait = "now" if due_ms is None else f"in {max(1, math.ceil((due_ms - state.epoch_ms()) / 1000))} s"
    job.meta.update(progress=0, stage=None, scheduledFor=due_ms,
                    message=f"Retrying {wait} (attempt {counts['attempt']} of {counts['maxAttempts']})")
    job.meta.pop("failedReason", None)
    job.save_meta()
    return True
