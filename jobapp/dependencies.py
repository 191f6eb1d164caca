"""Jobs that wait for other jobs (``dependsOn``), on top of RQ's own ``depends_on``.

RQ holds a dependent job as ``deferred`` and queues it once every dependency has finished.
It does nothing when a dependency fails or is canceled: the dependent stays deferred forever.
jobapp adds the missing half where each finished state is recorded (``statestore.record`` calls
``settle``): a completed dependency is crossed off the dependents' ``waitingFor``; a failed or
canceled one fails its dependents at once, RQ's way (failed status, FailedJobRegistry), with a
reason naming it, and that failure settles their own dependents in turn.
"""

from __future__ import annotations

import logging
from typing import Iterable

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import DeferredJobRegistry

from . import state, statestore
from .errors import not_found
from .extensions import SERIALIZER

log = logging.getLogger("jobapp.dependencies")

#: A job may wait for at most this many others.
MAX_DEPENDENCIES = 20


def check(connection: redis.Redis, owner: str, job_ids: Iterable[str]) -> dict[str, dict]:
    """The recorded states of ``job_ids``, all the owner's; any other id answers 404 as unknown would."""
    ids = list(dict.fromkeys(job_ids))
    found = statestore.read_many(connection, ids)
    for job_id in ids:
        stored = found.get(job_id)
        if stored is None or stored.owner != owner:
            raise not_found(f"dependsOn: job {job_id[:64]!r} not found")
    return {job_id: found[job_id].event for job_id in ids}


def waiting_for(dependencies: dict[str, dict]) -> list[str]:
    """The ids among ``dependencies`` (id -> recorded event) that have not completed yet."""
    return [job_id for job_id, event in dependencies.items() if event["status"] != state.COMPLETED]


def broken(dependencies: dict[str, dict]) -> tuple[str, dict] | None:
    """The first dependency that failed or was canceled (the job can never run), or None."""
    for job_id, event in dependencies.items():
        if event["status"] in (state.FAILED, state.CANCELED):
            return job_id, event
    return None


def reason(job_id: str, event: dict) -> str:
    what = "failed" if event["status"] == state.FAILED else "was canceled"
    return f"It depended on {event['jobType']} job {job_id}, which {what}"


def after_enqueue(connection: redis.Redis, job: Job, owner: str, job_ids: list[str]) -> dict | None:
    """Right after queueing ``job``: if a dependency has already failed or been canceled, fail it now.

    Read after the job is registered with RQ, so a dependency that ends meanwhile is seen either
    here or by ``settle``. Returns the failed state, or None.
    """
    bad = broken(check(connection, owner, job_ids))
    if bad is None:
        return None
    job.get_status(refresh=True)
    if getattr(job.get_status(refresh=False), "value", None) != JobStatus.DEFERRED.value:
        return None
    fail(connection, job, reason(*bad))
    return statestore.read(connection, job.id).event


def settle(connection: redis.Redis, finished: Job, event: dict) -> None:
    """``finished`` just ended as ``event`` says: update or fail the jobs that wait for it."""
    dependent_ids = [raw.decode() for raw in connection.smembers(finished.dependents_key)]
    for dependent_id in dependent_ids:
        try:
            dependent = Job.fetch(dependent_id, connection=connection, serializer=SERIALIZER)
        except NoSuchJobError:
            continue
        rq_status = dependent.get_status(refresh=False)
        if "owner" not in dependent.meta or getattr(rq_status, "value", rq_status) != JobStatus.DEFERRED.value:
            if event["status"] == state.COMPLETED and "owner" in dependent.meta:
                statestore.record(connection, dependent)  # RQ queued it: no longer waiting
            continue
        if event["status"] == state.COMPLETED:
            dependent.meta["waitingFor"] = [i for i in dependent.meta.get("waitingFor") or [] if i != finished.id]
            dependent.save_meta()
            statestore.record(connection, dependent)
        else:
            fail(connection, dependent, reason(finished.id, event))


def fail(connection: redis.Redis, job: Job, why: str) -> None:
    """Fail a job that waits for a dependency that can never complete (RQ's way), and record it."""
    job.meta["failedReason"] = why
    with connection.pipeline() as pipe:
        pipe.hset(job.key, "meta", SERIALIZER.dumps(job.meta))
        job.set_status(JobStatus.FAILED, pipeline=pipe)
        DeferredJobRegistry(job.origin, connection=connection, serializer=SERIALIZER).remove(job, pipeline=pipe)
        job._handle_failure(f"{why} (failed by jobapp)", pipe, worker_name="")
        pipe.execute()
    statestore.record(connection, job)
    log.info("job %s failed: %s", job.id, why)
