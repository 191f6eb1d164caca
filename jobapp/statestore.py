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

from . import jobstats, joblog, keys, state


class StoredState(dict):
    """``{"owner": str, "queue": str, "event": payload}`` as stored (plus ``"push": true`` while jobapp's
    worker runs it)."""

    @property
    def owner(self) -> str:
        return self["owner"]

    @property
    def queue(self) -> str:
        """The RQ queue the job runs on (older records: its job type, which was the queue name)."""
        return self.get("queue") or self["event"]["jobType"]

    @property
    def event(self) -> dict[str, Any]:
        return self["event"]

    @property
    def pushed(self) -> bool:
        """jobapp's own worker runs this job and records each change itself (the hub need not poll RQ)."""
        return bool(self.get("push"))


def _ttl(job: Job, status: str) -> Optional[int]:
    """Unfinished states live as long as the RQ job; finished ones as long as its result."""
    if not state.is_terminal(status):
        return None
    ttl = job.failure_ttl if status == state.FAILED else job.result_ttl
    return int(ttl) if ttl and ttl > 0 else None


def decode(raw: Optional[bytes]) -> Optional[StoredState]:
    return StoredState(json.loads(raw)) if raw else None


def record(connection: redis.Redis, job: Job, *, status: Optional[str] = None,
           pipeline: Optional[Pipeline] = None, pushed: bool = False,
           forward_only: bool = False) -> Optional[dict[str, Any]]:
    """Record ``job``'s current state if it changed, and publish its id.

    Rules kept here for every writer: progress never decreases within an attempt (a new attempt
    starts again from its own progress), a finished state is final, an unchanged state is not
    written again, ``updatedAt`` strictly increases and stays above the job's last log line's id
    (see ``joblog``: states and lines share one order).
    Returns the event now stored. With ``pipeline`` (a new job being queued) the first state is
    written inside the caller's transaction. ``pushed`` marks a state jobapp's worker recorded as it
    started the job: later states of the same status keep the mark, and the hub skips polling RQ for
    them. ``forward_only`` (the hub's poll of RQ, which may read a stale hash) never takes an
    active job back to pending.
    """
    new = state.payload(job, job_type=job.meta["jobType"], status=status)
    key = keys.job_state(job.id)
    owner = job.meta["owner"]
    if pipeline is not None:
        new["updatedAt"] = state.epoch_ms()
        _write(pipeline, key, owner, job.origin, new, _ttl(job, new["status"]), job.id)
        return new
    with connection.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key, keys.job_log_head(job.id))
                previous = decode(pipe.get(key))
                above_lines = joblog.last_line_id(pipe, job.id) // 1000 + 1
                push = pushed
                if previous is not None:
                    old = previous.event
                    if state.is_terminal(old["status"]):
                        return old
                    if forward_only and old["status"] == state.ACTIVE and new["status"] == state.PENDING \
                            and new["attempt"] <= old.get("attempt", 1):
                        return old
                    if new["attempt"] == old.get("attempt", 1):
                        new["progress"] = max(new["progress"], old["progress"] or 0)
                    push = push or (previous.pushed and old["status"] == new["status"])
                    if state.same_content(old, new):
                        if push != previous.pushed:  # only the mark changes: same event, nothing to announce
                            pipe.multi()
                            pipe.set(key, json.dumps({**previous, "push": push}, separators=(",", ":")),
                                     ex=_ttl(job, old["status"]))
                            pipe.execute()
                        return old
                    new["updatedAt"] = max(state.epoch_ms(), old["updatedAt"] + 1, above_lines)
                else:
                    new["updatedAt"] = max(state.epoch_ms(), above_lines)
                pipe.multi()
                _write(pipe, key, owner, job.origin, new, _ttl(job, new["status"]), job.id, push)
                if state.is_terminal(new["status"]):
                    jobstats.count(pipe, new["jobType"], new["status"], _run_seconds(job), new.get("failedReason"))
                pipe.execute()
                if state.is_terminal(new["status"]):
                    from . import dependencies  # it records the dependents through this module
                    dependencies.settle(connection, job, new)
                return new
            except redis.WatchError:
                continue


def _run_seconds(job: Job) -> Optional[float]:
    """How long the job ran, if it started (its end is now when RQ has not stamped it yet)."""
    if job.started_at is None:
        return None
    return max(0.0, (state.epoch_ms(job.ended_at) - state.epoch_ms(job.started_at)) / 1000)


def _write(pipe: Pipeline, key: str, owner: str, queue: str, event: dict, ttl: Optional[int], job_id: str,
           push: bool = False) -> None:
    stored = {"owner": owner, "queue": queue, "event": event}
    if push:
        stored["push"] = True
    pipe.set(key, json.dumps(stored, separators=(",", ":")), ex=ttl)
    joblog.expire(pipe, job_id, ttl)
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
