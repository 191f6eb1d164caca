"""Seeing jobs no jobapp code reports on: a plain ``rq worker`` running them, or RQ itself changing them.

Such a worker has neither jobapp's hooks nor its job class, so nothing announces its jobs' changes.
The hub hands this poller the jobs it watches that are unfinished and not run by jobapp's own
worker (that one announces every change itself); about once a second it reads their status and
meta from RQ's job hashes in one pipelined ``HMGET`` per 1,000 jobs and records whatever changed
through the statestore, which applies the contract's rules and announces it like any push. Its
cost grows with those jobs, never with the number of streams watching them.
"""

from __future__ import annotations

import json
from typing import Iterable, Optional

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job

from .. import state, statestore
from ..extensions import SERIALIZER
from ..statestore import StoredState

FIELDS = ("status", "meta")


def _meta(raw: Optional[bytes]) -> dict:
    try:
        meta = SERIALIZER.loads(raw) if raw else {}
    except (ValueError, TypeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def matches(event: dict, status: Optional[bytes], meta: dict) -> bool:
    """Whether the stored ``event`` already says what RQ's hash says (progress may only be ahead)."""
    if state.contract_status(status.decode() if status else None) != event.get("status"):
        return False
    return (state.percent(meta.get("progress")) <= (event.get("progress") or 0)
            and meta.get("stage") == event.get("stage") and meta.get("message") == event.get("message"))


def refresh(connection: redis.Redis, states: dict[str, StoredState]) -> dict[str, StoredState]:
    """``states`` brought up to date with RQ's hashes where no jobapp code reports on the job.

    For a snapshot, a job list or a stream's first event of a job a plain worker ran while nobody
    watched: one pipelined ``HMGET`` for the unfinished, unpushed ones, a record for each that disagrees.
    """
    stale = [i for i, s in states.items() if not state.is_terminal(s.event.get("status")) and not s.pushed]
    if not stale:
        return states
    with connection.pipeline(transaction=False) as pipe:
        for job_id in stale:
            pipe.hmget(Job.key_for(job_id), *FIELDS)
        rows = pipe.execute()
    fresh = dict(states)
    for job_id, (status, meta_raw) in zip(stale, rows):
        if status is None or matches(states[job_id].event, status, _meta(meta_raw)):
            continue
        if _record(connection, job_id):
            fresh[job_id] = statestore.read(connection, job_id) or states[job_id]
    return fresh


def _record(connection: redis.Redis, job_id: str) -> bool:
    """Record the job's state as RQ's hash has it (never taking an active job back to pending)."""
    try:
        job = Job.fetch(job_id, connection=connection, serializer=SERIALIZER)
    except NoSuchJobError:
        return False
    if not statestore.tracked(job):
        return False
    if job.get_status(refresh=False) == "failed" and not job.meta.get("failedReason"):
        job.meta["failedReason"] = failed_reason(job)  # for the event only; RQ's hash is left as it is
    statestore.record(connection, job, forward_only=True)
    return True


class RQPoller:
    def __init__(self, connection: redis.Redis, chunk: int = 1000) -> None:
        self._connection = connection
        self._chunk = chunk
        self.seen: dict[str, tuple[Optional[bytes], Optional[bytes]]] = {}  # job id -> (status, meta) last read
        self.reads = 0  # HMGETs issued (the benchmark reads it)
        self._polls = 0  # polls waiting on their reads now
        self._forgotten: set[str] = set()  # jobs forgotten meanwhile: their reads must not be kept

    def forget(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            self.seen.pop(job_id, None)
            if self._polls:
                self._forgotten.add(job_id)

    def poll(self, job_ids: list[str], stored: dict[str, bytes]) -> int:
        """Read RQ's hashes of ``job_ids``; record each job whose hash changed and disagrees with its stored
        state (``stored``: the hub's raw states, read here for jobs it has not seen yet). Returns how many
        it recorded."""
        if not job_ids:
            return 0
        rows: list = []
        self._polls += 1
        try:
            with self._connection.pipeline(transaction=False) as pipe:
                for start in range(0, len(job_ids), self._chunk):
                    for job_id in job_ids[start:start + self._chunk]:
                        pipe.hmget(Job.key_for(job_id), *FIELDS)
                    rows.extend(pipe.execute())
            forgotten = self._forgotten  # the last stream of these closed during the reads
        finally:
            self._polls -= 1
            if not self._polls:
                self._forgotten = set()
        self.reads += len(job_ids)
        changed: list[tuple[str, Optional[bytes], dict]] = []
        for job_id, (status, meta_raw) in zip(job_ids, rows):
            if status is None or job_id in forgotten:  # gone from RQ (expired or deleted), or no longer watched
                continue
            if self.seen.get(job_id) == (status, meta_raw):
                continue
            self.seen[job_id] = (status, meta_raw)
            changed.append((job_id, status, _meta(meta_raw)))
        if not changed:
            return 0
        missing = [job_id for job_id, _, _ in changed if job_id not in stored]
        known = {**statestore.read_many_raw(self._connection, missing), **stored} if missing else stored
        recorded = 0
        for job_id, status, meta in changed:
            raw = known.get(job_id)
            event = json.loads(raw).get("event", {}) if raw else {}
            if event and matches(event, status, meta):
                continue
            if _record(self._connection, job_id):
                recorded += 1
        return recorded


def failed_reason(job: Job) -> str:
    """A short reason for a job a plain worker failed, from the last line of RQ's stored exception.

    Only jobapp's own ``JobFailed`` message and timeouts are passed on; anything else says only
    the exception's class, as jobapp's worker does (never a traceback or internals).
    """
    try:
        result = job.latest_result()
    except Exception:  # noqa: BLE001 - an unreadable result just gives the generic reason
        result = None
    lines = (getattr(result, "exc_string", None) or "").strip().splitlines()
    last = lines[-1] if lines else ""
    name, _, text = last.partition(": ")
    if name.endswith("JobFailed") and text:
        return text[:300]
    if name.endswith("JobTimeoutException"):
        return f"Job timed out after {job.timeout} seconds"
    short = name.rsplit(".", 1)[-1]
    return f"Job failed with an unexpected error ({short})" if short.isidentifier() else "Job failed"
