"""The straightforward watcher: every stream re-reads its own jobs every tick.

One Redis round trip per stream per tick, and an update waits for the next tick. Kept as the
benchmark's reference (``WATCHER=poll``); the hub replaces it in production.
"""

from __future__ import annotations

import time
from typing import Iterable, Optional

import redis

from .. import keys, lifecycle, positions, statestore
from ..statestore import StoredState


class PollSubscription:
    def __init__(self, connection: redis.Redis, interval: float, job_ids: Iterable[str]) -> None:
        self._connection = connection
        self._interval = interval
        self._seen: dict[str, StoredState] = {}
        self._heads: dict[str, int] = {}
        self.job_ids: list[str] = []
        self._user: Optional[tuple[str, float]] = None
        self.add(job_ids)

    def add(self, job_ids: Iterable[str]) -> None:
        self.job_ids.extend(i for i in job_ids if i not in self.job_ids)

    def follow_user(self, user_id: str) -> None:
        self._user = (user_id, time.time() * 1000)

    def _new_jobs(self) -> None:
        """The straightforward way: look for the user's new jobs on every tick."""
        if self._user:
            user_id, since = self._user
            self.add(m.decode() for m in self._connection.zrangebyscore(keys.user_jobs(user_id), since, "+inf"))

    def wait(self, timeout: float) -> dict[str, StoredState]:
        deadline = time.monotonic() + timeout
        while True:
            time.sleep(max(0.0, min(self._interval, deadline - time.monotonic())))
            self._new_jobs()
            stored = statestore.read_many(self._connection, self.job_ids)
            events = positions.add_to(self._connection, stored)
            current = {i: StoredState({**s, "event": events[i]}) for i, s in stored.items()}
            changed = {i: s for i, s in current.items() if self._seen.get(i) != s}
            self._seen.update(changed)
            grew = self._read_heads()
            if changed or grew or time.monotonic() >= deadline or lifecycle.stopping():
                return changed

    def _read_heads(self) -> bool:
        """Each job's last log line id, read straight (one pipeline per tick)."""
        with self._connection.pipeline(transaction=False) as pipe:
            for job_id in self.job_ids:
                pipe.hget(keys.job_log_head(job_id), "u")
            heads = pipe.execute()
        grew = False
        for job_id, raw in zip(self.job_ids, heads):
            head = int(raw) if raw else 0
            if head > self._heads.get(job_id, 0):
                self._heads[job_id], grew = head, True
        return grew

    def log_head(self, job_id: str) -> int:
        return self._heads.get(job_id, 0)

    def close(self) -> None:
        self.job_ids = []


class PollWatcher:
    def __init__(self, connection: redis.Redis, interval: float) -> None:
        self._connection = connection
        self._interval = interval

    def subscribe(self, job_ids: Iterable[str]) -> PollSubscription:
        return PollSubscription(self._connection, self._interval, job_ids)
