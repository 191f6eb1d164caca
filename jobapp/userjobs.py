"""A user's jobs: the per-user index in Redis, pages of it, and the unfinished ones.

The index is a sorted set per user (job id scored by queue time), written in the same
transaction that queues the job. Entries whose state has expired are pruned as they are met,
so the index lives as long as the jobs' states do.
"""

from __future__ import annotations

import base64
from typing import Iterable, Optional

import redis
from redis.client import Pipeline

from . import keys, state, statestore
from .statestore import StoredState
from .watch import rqpoll

#: The newest entries kept per user; older ones are trimmed at each enqueue.
MAX_INDEXED = 10_000


def add(pipe: Pipeline, user_id: str, job_id: str, queued_ms: int, ttl: int) -> None:
    """Index a new job (inside the enqueue transaction) and announce it to the user's streams."""
    key = keys.user_jobs(user_id)
    pipe.zadd(key, {job_id: queued_ms})
    pipe.zremrangebyrank(key, 0, -MAX_INDEXED - 1)
    pipe.expire(key, ttl)
    pipe.publish(keys.NEW_JOBS_CHANNEL, f"{user_id} {job_id}")


def owned(connection: redis.Redis, user_id: str, job_ids: Iterable[str]) -> dict[str, StoredState]:
    """States of those of ``job_ids`` that exist and belong to ``user_id``; the rest silently left out."""
    found = statestore.read_many(connection, job_ids)
    return {i: s for i, s in found.items() if s.owner == user_id}


def encode_cursor(score: float, job_id: str) -> str:
    return base64.urlsafe_b64encode(f"{int(score)}:{job_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """Raises ValueError for anything that is not a cursor this module made."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    score, job_id = raw.split(":", 1)
    return int(score), job_id


def page(connection: redis.Redis, user_id: str, limit: int, status: Optional[str] = None,
         cursor: Optional[str] = None) -> tuple[list[dict], Optional[str]]:
    """Up to ``limit`` of the user's jobs, newest first, optionally of one status; and the next cursor."""
    key = keys.user_jobs(user_id)
    after = decode_cursor(cursor) if cursor else None
    top: str = str(after[0]) if after else "+inf"
    events: list[dict] = []
    batch = max(limit * 2, 50)
    while len(events) < limit:
        rows = connection.zrevrangebyscore(key, top, "-inf", start=0, num=batch, withscores=True)
        rows = [(m.decode(), s) for m, s in rows]
        if after:  # skip what the previous page already showed (same score, same or greater id)
            rows = [(m, s) for m, s in rows if (s, m) < (after[0], after[1])]
        if not rows:
            return events, None
        states = rqpoll.refresh(connection, statestore.read_many(connection, [m for m, _ in rows]))
        gone = [m for m, _ in rows if m not in states]
        if gone:
            connection.zrem(key, *gone)
        for job_id, score in rows:
            stored = states.get(job_id)
            if stored is None or (status and stored.event["status"] != status):
                continue
            events.append(stored.event)
            if len(events) == limit:
                return events, encode_cursor(score, job_id)
        after = (rows[-1][1], rows[-1][0])
        top = str(int(after[0]))
    return events, None


def unfinished(connection: redis.Redis, user_id: str, scan: int = 1000) -> list[str]:
    """Ids of the user's jobs (among the newest ``scan``) that have not finished."""
    ids = [m.decode() for m in connection.zrevrange(keys.user_jobs(user_id), 0, scan - 1)]
    states = owned(connection, user_id, ids)
    return [i for i, s in states.items() if not state.is_terminal(s.event["status"])]
