"""Fails jobs whose worker died, long before RQ would notice.

RQ marks a job abandoned only when some worker next cleans its registries (90 s to over 13
minutes after a SIGKILL). Our workers heartbeat every ``WORKER_HEARTBEAT_SECONDS`` while a job
runs; a started job with no heartbeat for ``DEAD_WORKER_SECONDS`` is failed here, RQ's way (failed
status, FailedJobRegistry), with ``failedReason`` saying the worker died, and recorded so its
streams hear it. One web process at a time does this, under a short Redis lock.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Optional

import redis
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from . import keys, registry, statestore
from .extensions import SERIALIZER

log = logging.getLogger("jobapp.reaper")

DIED = "The worker running this job died"


def _epoch(raw: Optional[bytes]) -> float:
    if not raw:
        return 0.0
    text = raw.decode().rstrip("Z")
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def stale_jobs(connection: redis.Redis, dead_after: float, now: Optional[float] = None) -> list[str]:
    """Ids of started jobs whose last sign of life is older than ``dead_after`` seconds."""
    now = time.time() if now is None else now
    ids: list[str] = []
    for name in registry.queue_names():  # every registered type's queue, whoever's worker runs it
        ids.extend(StartedJobRegistry(name, connection=connection, serializer=SERIALIZER).get_job_ids(cleanup=False))
    if not ids:
        return []
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(Job.key_for(job_id), "status", "last_heartbeat", "started_at")
        rows = pipe.execute()
    return [job_id for job_id, (status, beat, started) in zip(ids, rows)
            if status == b"started" and now - max(_epoch(beat), _epoch(started)) > dead_after]


def fail_dead(connection: redis.Redis, job_id: str) -> bool:
    """Fail the job RQ's way, only if jobapp queued it and it is still ``started`` when the failure is
    written (a job that finished or failed since it was found stale keeps its end). Returns whether
    it was failed."""
    key = Job.key_for(job_id)
    with connection.pipeline() as pipe:
        try:
            pipe.watch(key)
            if pipe.hget(key, "status") != b"started":
                return False
            job = Job.fetch(job_id, connection=connection, serializer=SERIALIZER)
            if not statestore.tracked(job):  # a team's own RQ job: RQ's own cleanup handles it, as under rq worker
                return False
            job.meta["failedReason"] = DIED
            registry = StartedJobRegistry(job.origin, connection=connection, serializer=SERIALIZER)
            pipe.multi()
            pipe.hset(job.key, "meta", SERIALIZER.dumps(job.meta))
            job.set_status(JobStatus.FAILED, pipeline=pipe)
            job._handle_failure(f"{DIED} (no heartbeat); failed by jobapp's reaper", pipe, worker_name="")
            registry.remove_executions(job, pipeline=pipe)
            pipe.zrem(registry.key, job_id)
            pipe.execute()
        except redis.WatchError:  # its worker wrote to it meanwhile: alive after all, or done
            return False
    statestore.record(connection, job)
    log.warning("job %s failed: %s", job_id, DIED)
    return True


def reap(connection: redis.Redis, dead_after: float, lock_seconds: float) -> int:
    """One pass, if this process holds the lock; returns how many jobs it failed."""
    if not connection.set(keys.REAPER_LOCK, b"1", nx=True, px=int(lock_seconds * 1000)):
        return 0
    return sum(fail_dead(connection, job_id) for job_id in stale_jobs(connection, dead_after))
