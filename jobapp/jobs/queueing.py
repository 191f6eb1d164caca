"""Queueing, finding and cancelling jobs on behalf of a user (the web side of a job's life)."""

from __future__ import annotations

import re
import uuid
from typing import Optional

import redis
from rq.command import send_stop_job_command
from rq.exceptions import NoSuchJobError
from rq.job import Job

from .. import state, statestore, userjobs
from ..config import Config
from ..errors import ApiError, not_found
from ..extensions import SERIALIZER, redis_client
from ..redisconn import replicated
from ..statestore import StoredState
from . import JobType

_JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def valid_job_id(job_id: str) -> bool:
    return bool(_JOB_ID.match(job_id))


def enqueue(job_type: JobType, params: dict, owner: str, config: Config) -> dict:
    """Queue a job and record its first state in one transaction: all of it, or none of it (a full
    Redis refuses the whole transaction). With ``REDIS_WAIT_REPLICAS``, wait for replicas to have it."""
    queue = redis_client.queue(job_type.name)
    with replicated(redis_client.connection, config.REDIS_WAIT_REPLICAS, config.REDIS_WAIT_TIMEOUT_MS) as connection:
        with connection.pipeline() as pipe:
            job = queue.enqueue_call(
                job_type.func, args=(owner, params), job_id=str(uuid.uuid4()),
                meta={"owner": owner, "jobType": job_type.name, "progress": 0},
                description=f"{job_type.describe(params)} for user {owner}",
                timeout=config.JOB_TIMEOUT, result_ttl=config.JOB_RESULT_TTL, failure_ttl=config.JOB_RESULT_TTL,
                pipeline=pipe,
            )
            event = statestore.record(connection, job, pipeline=pipe)
            userjobs.add(pipe, owner, job.id, event["updatedAt"], config.JOB_RESULT_TTL + config.JOB_TIMEOUT)
            pipe.execute()
    return event


def load(job_type: str, job_id: str, owner: str) -> StoredState:
    """The caller's job of that type, or 404 — the same 404 for unknown, foreign and other-type ids."""
    if not valid_job_id(job_id):
        raise not_found("Job not found")
    connection = redis_client.connection
    stored = statestore.read(connection, job_id) or _rebuild(connection, job_id)
    if stored is None or stored.owner != owner or stored.event["jobType"] != job_type:
        raise not_found("Job not found")
    return stored


def _rebuild(connection: redis.Redis, job_id: str) -> Optional[StoredState]:
    """Recreate a missing state record from RQ's job, which stays the source of truth."""
    try:
        job = Job.fetch(job_id, connection=connection, serializer=SERIALIZER)
    except NoSuchJobError:
        return None
    if "owner" not in job.meta or "jobType" not in job.meta:
        return None
    statestore.record(connection, job)
    return statestore.read(connection, job_id)


def cancel(job_type: str, job_id: str, owner: str) -> dict:
    """Cancel a pending job or stop a running one; its streams end with ``canceled``."""
    stored = load(job_type, job_id, owner)
    if state.is_terminal(stored.event["status"]):
        raise ApiError(409, f"Job already {stored.event['status']}", code="job_finished")
    connection = redis_client.connection
    job = Job.fetch(job_id, connection=connection, serializer=SERIALIZER)
    if stored.event["status"] == state.ACTIVE or job.get_status(refresh=False) == "started":
        send_stop_job_command(connection, job_id, serializer=SERIALIZER)
    elif not job.is_canceled:
        job.cancel()
    return statestore.record(connection, job, status=state.CANCELED)
