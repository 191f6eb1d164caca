"""Records each job's contract state in Redis and announces every change.

RQ's job hash stays the source of truth; this keeps a small projection of it per job — the
event payload, its owner, and an ``updatedAt`` that only increases — so streams read one key
(or one ``MGET`` for many jobs) instead of decoding RQ jobs, and so that every change is
announced on one pub/sub channel. ``record`` is the only writer.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Optional

import redis
from redis.client import Pipeline
from rq.job import Job

from . import jobstats, keys, sse, state


class StoredState(dict):
    """``{"owner": str, "event": payload}`` as stored."""

    _encoded: Optional[str] = None

    def encoded_event(self) -> str:
        """The event as an SSE ``data:`` value, encoded once however many streams send this object."""
        if self._encoded is None:
            self._encoded = sse.encode(self.event)
        return self._encoded

    @property
    def owner(self) -> str:
        return self["owner"]

    @property
    def event(self) -> dict[str, Any]:
        return self["event"]


def _ttl(job: Job, status: str) -> Optional[int]:
    """Unfinished states live as long as the RQ job; finished ones as long as its result."""
    if not state.is_terminal(status):
        return None
    ttl = job.failure_ttl if status == state.FAILED else job.result_ttl
    return int(ttl) if ttl and ttl > 0 else None


def decode(raw: Optional[bytes]) -> Optional[StoredState]:
    return StoredState(json.loads(raw)) if raw else None


def record(connection: redis.Redis, job: Job, *, status: Optional[str] = None,
           pipeline: Optional[Pipeline] = None) -> Optional[dict[str, Any]]:
    """Record ``job``'s current state if it changed, and publish its id.

    Rules kept here for every writer: progress never decreases, a finished state is final,
    an unchanged state is not written again, ``updatedAt`` strictly increases.
    Returns the event now stored. With ``pipeline`` (a new job being queued) the first state is
    written inside the caller's transaction.
    """
    new = state.payload(job, job_type=job.meta["jobType"], status=status)
    key = keys.job_state(job.id)
    owner = job.meta["owner"]
    if pipeline is not None:
        new["updatedAt"] = state.epoch_ms()
        _write(pipeline, key, owner, new, _ttl(job, new["status"]), job.id)
        return new
    with connection.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)
                previous = decode(pipe.get(key))
                if previous is not None:
                    old = previous.event
                    if state.is_terminal(old["status"]):
                        return old
                    new["progress"] = max(new["progress"], old["progress"] or 0)
                    if state.same_content(old, new):
                        return old
                    new["updatedAt"] = max(state.epoch_ms(), old["updatedAt"] + 1)
                else:
                    new["updatedAt"] = state.epoch_ms()
                pipe.multi()
                _write(pipe, key, owner, new, _ttl(job, new["status"]), job.id)
                if state.is_terminal(new["status"]):
                    jobstats.count(pipe, new["jobType"], new["status"], _run_seconds(job))
                pipe.execute()
                return new
            except redis.WatchError:
                continue


def _run_seconds(job: Job) -> Optional[float]:
    """How long the job ran, if it started (its end is now when RQ has not stamped it yet)."""
    if job.started_at is None:
        return None
    return max(0.0, (state.epoch_ms(job.ended_at) - state.epoch_ms(job.started_at)) / 1000)


def _write(pipe: Pipeline, key: str, owner: str, event: dict, ttl: Optional[int], job_id: str) -> None:
    pipe.set(key, json.dumps({"owner": owner, "event": event}, separators=(",", ":")), ex=ttl)
    pipe.publish(keys.CHANGES_CHANNEL, job_id)


def read(connection: redis.Redis, job_id: str) -> Optional[StoredState]:
    return decode(connection.get(keys.job_state(job_id)))


def read_many(connection: redis.Redis, job_ids: Iterable[str], chunk: int = 1000) -> dict[str, StoredState]:
    """Stored states of many jobs in as few round trips as possible (one ``MGET`` per ``chunk``)."""
    return {job_id: decode(raw) for job_id, raw in read_many_raw(connection, job_ids, chunk).items()}


def read_many_raw(connection: redis.Redis, job_ids: Iterable[str], chunk: int = 1000) -> dict[str, bytes]:
    """The stored bytes of many jobs, undecoded: the hub compares bytes and decodes only what it delivers."""
    ids = list(job_ids)
    found: dict[str, bytes] = {}
    with connection.pipeline(transaction=False) as pipe:
        for start in range(0, len(ids), chunk):
            pipe.mget([keys.job_state(i) for i in ids[start:start + chunk]])
        replies = pipe.execute() if ids else []
    for start, values in zip(range(0, len(ids), chunk), replies):
        for job_id, raw in zip(ids[start:start + chunk], values):
            if raw:
                found[job_id] = raw
    return found
