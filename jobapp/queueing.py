"""Queueing, finding and cancelling jobs on behalf of a user (the web side of a job's life).

``enqueue`` is public (``from jobapp import enqueue``): the HTTP queue route, the ``flask queue``
command and a team's own views, scripts and cron jobs all queue through it, so they validate the
same way and write the same single transaction.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from functools import lru_cache
from typing import Any, Optional

import redis
from flask import current_app, has_app_context
from pydantic import ValidationError
from rq import Queue
from rq.command import send_stop_job_command
from rq.exceptions import NoSuchJobError
from rq.job import Job

from . import dependencies, queueopts, ratelimit, registry, state, statestore, userjobs
from .config import Config, settings
from .errors import ApiError, not_found
from .exceptions import InvalidParams, UnknownJobType
from .extensions import SERIALIZER, connect, redis_client
from .links import status_url, stream_url
from .redisconn import replicated
from .rqjob import JobappJob
from .queueopts import QueueOptions
from .statestore import StoredState
from .watch import rqpoll

_JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def valid_job_id(job_id: str) -> bool:
    return bool(_JOB_ID.match(job_id))


@lru_cache(maxsize=1)
def _script_connection() -> redis.Redis:
    return connect(settings())


def _runtime(name: str) -> tuple[Config, redis.Redis, Queue]:
    """Settings, Redis and the type's queue: the app's inside a Flask app, else from the environment."""
    if has_app_context() and "JOBAPP" in current_app.config:
        job_type = _job_type(name)
        return current_app.config["JOBAPP"], redis_client.connection, redis_client.queue(job_type.queue)
    config = settings()
    registry.ensure_loaded(config.JOBAPP_JOBS)
    connection = _script_connection()
    return config, connection, Queue(_job_type(name).queue, connection=connection, serializer=SERIALIZER,
                                     job_class=JobappJob)


def _job_type(name: str) -> registry.JobType:
    job_type = registry.get(name)
    if job_type is None:
        known = ", ".join(sorted(registry.REGISTRY)) or "none"
        raise UnknownJobType(f"No job type {name!r} is registered (registered: {known})")
    return job_type


def validate(job_type: registry.JobType, params: Any) -> dict:
    """``params`` checked by the type's pydantic schema (strict), as JSON-ready values."""
    if not isinstance(params, dict):
        raise InvalidParams("The params must be a JSON object", {"body": "must be an object"})
    try:
        return job_type.schema.model_validate(params).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        fields = {".".join(str(p) for p in err["loc"]) or "body": err["msg"] for err in exc.errors()}
        first = next(iter(fields.items()))
        raise InvalidParams(f"{first[0]}: {first[1]}", fields) from None


def enqueue(job_type: str, params: Any, owner: str, *, options: Optional[QueueOptions] = None,
            depends_on: Optional[list[str]] = None, run_at: Optional[datetime] = None,
            gate: Optional["ratelimit.Gate"] = None) -> dict:
    """Queue a ``job_type`` job with ``params`` for user ``owner``; the 202 answer's ``data`` object.

    Validates ``params`` like the HTTP route (raises ``InvalidParams`` with ``.fields``), then
    writes the RQ job, its first state and the owner's job index in one transaction: all of it or
    none of it. Returns ``{"jobId", "type", "status", "streamUrl", "statusUrl"}``; the ``streamUrl``
    carries a stream token, so a page can open it with ``EventSource`` as it is. Works inside a
    Flask app (the app's Redis) and in a plain script or worker (``REDIS_URL``, ``JOBAPP_JOBS``).
    ``depends_on`` (the owner's job ids to wait for) and ``run_at`` (an aware datetime) are the
    queue body's ``dependsOn`` and ``runAt``; the HTTP route passes them parsed as ``options``, and
    its rate limit as ``gate``, which counts the request in the same round trip as the writes (429
    and nothing written past the limit).
    """
    config, connection, queue = _runtime(job_type)
    kind = _job_type(job_type)
    if not isinstance(owner, str) or not owner.strip() or len(owner) > 256:
        raise InvalidParams("owner must be a user id (1-256 characters)", {"owner": "invalid"})
    clean = validate(kind, params)
    if options is None:
        body = {"dependsOn": depends_on, "runAt": run_at.isoformat() if run_at else None}
        _, options = queueopts.split({k: v for k, v in body.items() if v is not None}, config.MAX_SCHEDULE_SECONDS)
    depends = dependencies.check(connection, owner, options.depends_on) if options.depends_on else {}
    meta = {"owner": owner, "jobType": kind.name, "progress": 0, "maxAttempts": kind.max_attempts,
            "waitingFor": dependencies.waiting_for(depends)}
    try:
        description = f"{kind.describe(clean)} for user {owner}"
    except Exception:  # noqa: BLE001 - a describe() bug must not stop the job from being queued
        description = f"{kind.name} job for user {owner}"
    job_id = str(uuid.uuid4())
    # With REDIS_WAIT_REPLICAS, the transaction and a WAIT go on one connection before the 202.
    with replicated(connection, config.REDIS_WAIT_REPLICAS, config.REDIS_WAIT_TIMEOUT_MS) as writer:
        while True:
            with writer.pipeline() as pipe:
                try:
                    job = queueopts.submit(
                        queue, options, kind.func, args=(owner, clean), job_id=job_id, meta=meta,
                        description=description,
                        timeout=kind.timeout or config.JOB_TIMEOUT, result_ttl=config.JOB_RESULT_TTL,
                        failure_ttl=config.JOB_RESULT_TTL, retry=kind.retry, pipeline=pipe,
                    )
                    event = statestore.record(writer, job, pipeline=pipe)
                    userjobs.add(pipe, owner, job.id, event["updatedAt"], config.JOB_RESULT_TTL + config.JOB_TIMEOUT)
                    if gate is None:
                        pipe.execute()
                    else:
                        gate.commit(writer, pipe)
                    break
                except redis.WatchError:  # a dependency changed while RQ checked it: check again
                    continue
    if options.depends_on:
        event = dependencies.after_enqueue(connection, job, owner, options.depends_on) or event
    return {"jobId": job.id, "type": kind.name, "status": event["status"],
            "streamUrl": stream_url(kind.name, job.id, owner, config), "statusUrl": status_url(kind.name, job.id)}


def load(job_type: str, job_id: str, owner: str) -> StoredState:
    """The caller's job of that type, or 404 — the same 404 for unknown, foreign and other-type ids."""
    if not valid_job_id(job_id):
        raise not_found("Job not found")
    connection = redis_client.connection
    stored = statestore.read(connection, job_id) or _rebuild(connection, job_id)
    if stored is None or stored.owner != owner or stored.event["jobType"] != job_type:
        raise not_found("Job not found")
    return rqpoll.refresh(connection, {job_id: stored})[job_id]  # a plain rq worker's progress, too


def _rebuild(connection: redis.Redis, job_id: str) -> Optional[StoredState]:
    """Recreate a missing state record from RQ's job, which stays the source of truth."""
    try:
        job = Job.fetch(job_id, connection=connection, serializer=SERIALIZER)
    except NoSuchJobError:
        return None
    if not statestore.tracked(job):
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
